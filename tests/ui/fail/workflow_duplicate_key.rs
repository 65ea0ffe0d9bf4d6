#[observer::workflow(name = "process-order", name = "process")]
fn process() {}

fn main() {
    process();
}
