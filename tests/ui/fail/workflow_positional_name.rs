#[observer::workflow("process-order")]
fn process() {}

fn main() {
    process();
}
