#[observer::step(name = "")]
fn validate() {}

fn main() {
    validate();
}
