#[observer::audit(create, Document)]
#[derive(Debug)]
pub struct Document {
    id: u32,
}

fn main() {
    println!("{:?}", Document { id: 1 });
}
