#[observer::step]
enum Stage {
    Validate,
}

fn main() {
    let _ = Stage::Validate;
}
