struct Opaque;

#[observer::audit(delete, Token, id = token)]
fn revoke(token: u64) -> Result<(), Opaque> {
    if token == 0 {
        return Err(Opaque);
    }
    Ok(())
}

fn main() {
    let _ = revoke(1);
}
