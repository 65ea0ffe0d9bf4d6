#[observer::workflow]
#[derive(Debug)]
pub struct Order {
    id: u32,
}

fn main() {
    println!("{:?}", Order { id: 1 });
}
