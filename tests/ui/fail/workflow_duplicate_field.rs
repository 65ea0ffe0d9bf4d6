#[observer::workflow(fields(order_id = id, order_id = id + 1))]
fn process(id: u64) {
    let _ = id;
}

fn main() {
    process(1);
}
