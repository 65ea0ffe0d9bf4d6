struct Opaque;

#[observer::workflow(fields(token = token))]
fn process(token: Opaque) {
    let _ = token;
}

fn main() {
    process(Opaque);
}
