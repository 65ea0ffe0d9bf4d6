struct Opaque;

#[observer::step]
fn validate(n: u64) -> Result<u64, Opaque> {
    if n == 0 {
        return Err(Opaque);
    }
    Ok(n)
}

fn main() {
    let _ = validate(1);
}
