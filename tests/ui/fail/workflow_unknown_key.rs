#[observer::workflow(nmae = "process-order")]
fn process() {}

fn main() {
    process();
}
