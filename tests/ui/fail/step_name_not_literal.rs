#[observer::step(name = validate)]
fn validate() {}

fn main() {
    validate();
}
