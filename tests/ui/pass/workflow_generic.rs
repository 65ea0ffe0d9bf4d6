//! Generics: type and lifetime parameters, where-clauses, `impl Trait` arguments and return types, fields of a
//! generic type (through `Display` when `Serialize` is not known).
use std::fmt::Display;

use observer::{step, workflow};

#[workflow(fields(key = key, n = items.len()))]
fn summarise<'a, K: Display, T>(key: K, items: &'a [T]) -> Option<&'a T>
where
    T: Clone,
{
    pick(items)
}

#[step]
fn pick<T>(items: &[T]) -> Option<&T> {
    items.first()
}

#[step]
fn render(value: impl Display) -> impl Display {
    format!("<{value}>")
}

#[workflow(fields(value = value))]
async fn render_async<V: Display + Send + Sync>(value: V) -> String {
    render_step(&value).await
}

#[step]
async fn render_step<V: Display + ?Sized>(value: &V) -> String {
    render(value).to_string()
}

fn main() {
    assert_eq!(summarise("k", &[1, 2]), Some(&1));
    assert_eq!(render(5).to_string(), "<5>");
    let s = tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(render_async(7));
    assert_eq!(s, "<7>");
}
