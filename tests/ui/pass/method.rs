//! Methods: `&self`, `&mut self` returning a borrow of `self`, `self` by value, trait methods, `Self`.
use std::time::Duration;

use observer::audit;

struct Store {
    id: String,
    docs: Vec<String>,
}

impl Store {
    #[audit(create, Project, id = id)]
    fn new(id: &str) -> Self {
        Self { id: id.to_owned(), docs: Vec::new() }
    }

    #[audit(read, VectorStore, id = self.id)]
    fn first(&self) -> Option<&str> {
        self.docs.first().map(String::as_str)
    }

    #[audit(update, VectorStore, id = self.id, name = doc)]
    fn push(&mut self, doc: String) -> &mut String {
        self.docs.push(doc);
        self.docs.last_mut().expect("just pushed")
    }

    #[audit(delete, VectorStore, id = self.id)]
    fn into_docs(self) -> Vec<String> {
        self.docs
    }

    #[audit(read, VectorStore, id = self.id)]
    async fn count(&self) -> usize {
        self.docs.len()
    }
}

trait Named {
    fn name(&self) -> String;

    #[audit(read, Component, id = self.name())]
    fn describe(&self) -> String {
        format!("component {}", self.name())
    }
}

impl Named for Store {
    #[audit(read, Component, id = self.id)]
    fn name(&self) -> String {
        self.id.clone()
    }
}

fn main() {
    let sink = observer::export::MemorySink::new();
    let _guard = observer::init(observer::ObserverConfig {
        audit_sink: observer::AuditSink::Memory(sink.clone()),
        ..Default::default()
    })
    .expect("init");

    let mut store = Store::new("store-1");
    assert_eq!(store.first(), None);
    store.push("a".into()).push('!');
    assert_eq!(store.first(), Some("a!"));
    assert_eq!(store.describe(), "component store-1");
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    assert_eq!(rt.block_on(store.count()), 1);
    assert_eq!(store.into_docs(), ["a!"]);
    let e = sink.wait_for(Duration::from_secs(5), |e| e.resource_name.as_deref() == Some("a")).expect("update");
    assert_eq!(e.resource_id, "store-1");
}
