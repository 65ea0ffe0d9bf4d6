//! Sync workflows and steps: default and explicit names, `fields(..)` of every key form and value kind, fields
//! computed before the body moves the arguments, inner attributes, steps called directly and through helpers.
use observer::{step, workflow};

#[derive(Debug, Clone)]
struct Order {
    id: String,
    items: Vec<u32>,
    note: Option<String>,
    addr: std::net::Ipv4Addr,
}

struct Unserialisable(u8);

impl std::fmt::Display for Unserialisable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "u{}", self.0)
    }
}

/// Docs stay on the fn.
#[workflow(
    name = "process-order",
    fields(order_id = order.id, items = order.items.len(), order.note = order.note, "ip-addr" = order.addr, r#type = "sync"),
)]
#[inline]
fn process(order: Order) -> usize {
    #![allow(unused_mut)]
    let mut total = validate(&order);
    total += helper(order); // moves `order`: the fields were computed before
    total
}

#[workflow(fields(raw = Unserialisable(7), unit = ()))]
fn bare() {}

#[workflow()]
fn empty_args() -> u8 {
    step_in_empty()
}

#[step]
fn validate(order: &Order) -> usize {
    order.items.len()
}

fn helper(order: Order) -> usize {
    fulfil(order.items)
}

#[step(name = "fulfillment")]
pub(crate) fn fulfil(items: Vec<u32>) -> usize {
    items.into_iter().map(|i| i as usize).sum()
}

#[step(name = "step-in-empty")]
fn step_in_empty() -> u8 {
    if true {
        return 3;
    }
    4
}

fn main() {
    let order = Order { id: "o-1".into(), items: vec![1, 2], note: None, addr: std::net::Ipv4Addr::LOCALHOST };
    assert_eq!(process(order), 5);
    bare();
    assert_eq!(empty_args(), 3);
    // Outside any workflow a step is a plain call.
    assert_eq!(fulfil(vec![4]), 4);
}
