#[observer::step]
pub const fn validate() -> bool {
    true
}

fn main() {
    let _ = validate();
}
