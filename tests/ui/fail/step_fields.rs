#[observer::step(fields(items = items.len()))]
fn validate(items: &[u32]) {
    let _ = items;
}

fn main() {
    validate(&[1]);
}
