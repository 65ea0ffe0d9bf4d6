//! Generics, where-clauses, lifetimes and `impl Trait` arguments.
use std::fmt::Display;

use observer::audit;

#[audit(read, Dataset, id = key)]
fn get<'a, K, V>(map: &'a std::collections::HashMap<K, V>, key: &K) -> Option<&'a V>
where
    K: std::hash::Hash + Eq + Display,
{
    map.get(key)
}

#[audit(export, Dataset, id = name, description = format!("{} rows", rows.len()))]
fn export<T: Clone>(name: impl Display, rows: &[T]) -> Vec<T> {
    rows.to_vec()
}

#[audit(import, Dataset, id = source)]
async fn import<S: AsRef<str> + Display + Send>(source: S, rows: impl IntoIterator<Item = u8>) -> Vec<u8> {
    let _ = source.as_ref();
    rows.into_iter().collect()
}

fn main() {
    let sink = observer::export::MemorySink::new();
    let _guard = observer::init(observer::ObserverConfig {
        audit_sink: observer::AuditSink::Memory(sink.clone()),
        ..Default::default()
    })
    .expect("init");

    let map = std::collections::HashMap::from([("k".to_owned(), 1)]);
    assert_eq!(get(&map, &"k".to_owned()), Some(&1));
    assert_eq!(export("ds", &[1, 2]), [1, 2]);
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    assert_eq!(rt.block_on(import("src", [1u8, 2])), [1, 2]);
}
