#[observer::step(crate = ::observer, name = "validate", crate = ::observer)]
fn validate() {}

fn main() {
    validate();
}
