const NAME: &str = "process-order";

#[observer::workflow(name = NAME)]
fn process() {}

fn main() {
    process();
}
