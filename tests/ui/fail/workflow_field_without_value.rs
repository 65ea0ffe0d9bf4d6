#[observer::workflow(fields(order_id))]
fn process(order_id: u64) {
    let _ = order_id;
}

fn main() {
    process(1);
}
