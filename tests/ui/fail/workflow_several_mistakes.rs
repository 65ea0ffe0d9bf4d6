#[observer::workflow(nmae = "x", name = process, fields(a = 1, a = 2))]
fn process() {}

fn main() {
    process();
}
