#[observer::step(nam = "validate")]
fn validate() {}

fn main() {
    validate();
}
