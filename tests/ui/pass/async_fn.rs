//! Async fns: awaited bodies, `?` and early `return` in them, futures that stay `Send`.
use std::time::Duration;

use observer::audit;

#[derive(Debug)]
struct NotFound(String);

impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} not found", self.0)
    }
}

#[audit(read, Document, id = doc_id)]
async fn read_doc(doc_id: &str) -> Result<String, NotFound> {
    tokio::task::yield_now().await;
    if doc_id.is_empty() {
        return Err(NotFound(doc_id.to_owned()));
    }
    let n: usize = doc_id.len().to_string().parse().map_err(|_| NotFound("len".into()))?;
    Ok(format!("{doc_id}:{n}"))
}

#[audit(execute, Agent, id = name)]
async fn run_agent(name: String) -> impl std::fmt::Display {
    tokio::task::yield_now().await;
    name.len()
}

fn assert_send<T: Send>(t: T) -> T {
    t
}

fn main() {
    let sink = observer::export::MemorySink::new();
    let _guard = observer::init(observer::ObserverConfig {
        audit_sink: observer::AuditSink::Memory(sink.clone()),
        ..Default::default()
    })
    .expect("init");

    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let doc = tokio::spawn(assert_send(async { read_doc("async-doc").await })).await.expect("task");
        assert_eq!(doc.expect("ok"), "async-doc:9");
        assert!(read_doc("").await.is_err());
        assert_eq!(run_agent("agent-7".into()).await.to_string(), "7");
    });
    sink.wait_for(Duration::from_secs(5), |e| e.resource_id == "async-doc").expect("read event");
    sink.wait_for(Duration::from_secs(5), |e| e.resource_id == "agent-7").expect("execute event");
}
