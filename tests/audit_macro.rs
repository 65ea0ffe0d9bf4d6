//! `#[observer::audit]` at run time: what each annotated call records.
//!
//! Every test in this binary shares one process-wide `observer::init` with a memory sink, and finds its own
//! events by resource ids or names unique to it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::Duration;

use observer::export::MemorySink;
use observer::{audit, ActorContext, AuditEvent, ObserverGuard};
use serde_json::Value;

static OBSERVER: LazyLock<(MemorySink, ObserverGuard)> = LazyLock::new(|| {
    let sink = MemorySink::new();
    let guard = observer::init(observer::ObserverConfig {
        service_name: "audit-macro-test".into(),
        audit_sink: observer::AuditSink::Memory(sink.clone()),
        ..Default::default()
    })
    .expect("init");
    (sink, guard)
});

/// The shared memory sink; initialises observer on first use. Call it before the annotated fn runs.
fn sink() -> &'static MemorySink {
    &OBSERVER.0
}

/// The JSON of the first event matching `pred`, exactly as serialised for every sink.
fn recorded(pred: impl Fn(&AuditEvent) -> bool) -> Value {
    observer::flush(Duration::from_secs(5)).expect("flush");
    let event = sink().wait_for(Duration::from_secs(5), &pred).expect("the annotated call recorded an event");
    sink().json().into_iter().find(|j| j["event_id"] == event.event_id.as_str()).expect("the event's JSON was recorded")
}

fn by_id(id: &str) -> impl Fn(&AuditEvent) -> bool + '_ {
    move |e| e.resource_id == id
}

// ---- annotated functions ---------------------------------------------------------------------------------

#[audit(create, Document, id = doc_id, name = title)]
fn create_named(doc_id: &str, title: &str) {
    let _ = (doc_id, title);
}

#[audit(delete, File, id = path)]
fn delete_file(path: &str) -> bool {
    !path.is_empty()
}

#[derive(Debug, Clone, PartialEq)]
struct Doc {
    id: String,
    title: String,
}

#[derive(Debug, PartialEq)]
struct DocError(String);

impl std::fmt::Display for DocError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot create document: {}", self.0)
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Creates a document whose id is only known after the body ran.
#[audit(create, Document, id = ret.id, name = title)]
fn create_doc(title: String) -> Result<Doc, DocError> {
    if title.starts_with("bad") {
        return Err(DocError(format!("invalid title {title}")));
    }
    let n: u64 = NEXT_ID.fetch_add(1, Ordering::Relaxed).to_string().parse().map_err(|_| DocError("id".into()))?;
    Ok(Doc { id: format!("am-generated-{n}"), title })
}

#[audit(read, Document, id = doc_id)]
async fn read_doc(doc_id: String) -> Result<Doc, DocError> {
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    Ok(Doc { id: doc_id, title: "Async".into() })
}

#[audit(import, Dataset, id = source)]
fn ingest(source: String) -> usize {
    let owned: String = source; // the argument is moved into the body; `id` was taken before
    owned.len()
}

struct Project {
    id: String,
    name: String,
}

impl Project {
    #[audit(update, Project, id = self.id, description = format!("renamed to {new_name}"))]
    fn rename(&mut self, new_name: String) -> &str {
        self.name = new_name;
        &self.name
    }
}

// ---- tests -----------------------------------------------------------------------------------------------

#[test]
fn records_action_resource_type_outcome_and_severity() {
    sink();
    create_named("am-create-1", "Project Proposal");
    let j = recorded(by_id("am-create-1"));
    assert_eq!(j["action"], "CREATE");
    assert_eq!(j["resource_type"], "DOCUMENT");
    assert_eq!(j["audit_type"], "DATA_MODIFICATION");
    assert_eq!(j["outcome"], "SUCCESS");
    assert_eq!(j["severity"], "INFO");
    assert_eq!(j["resource_name"], "Project Proposal");
    assert_eq!(j["description"], "Created DOCUMENT am-create-1");
    assert_eq!(j["service_name"], "audit-macro-test");
    let function = j["metadata"]["function"].as_str().expect("function metadata");
    assert!(function.ends_with("audit_macro::create_named"), "{function}");
}

#[test]
fn action_sets_the_event_type_and_severity() {
    sink();
    assert!(delete_file("am-delete-1"));
    let j = recorded(by_id("am-delete-1"));
    assert_eq!((j["action"].as_str(), j["resource_type"].as_str()), (Some("DELETE"), Some("FILE")));
    assert_eq!(j["audit_type"], "DATA_MODIFICATION");
    assert_eq!(j["severity"], "MEDIUM");
    assert_eq!(j["outcome"], "SUCCESS");
}

#[test]
fn id_from_the_returned_value() {
    sink();
    let doc = create_doc("am-ret-title".into()).expect("created");
    assert_eq!(doc.title, "am-ret-title");
    let j = recorded(|e| e.resource_name.as_deref() == Some("am-ret-title"));
    assert_eq!(j["resource_id"], doc.id.as_str());
    assert_eq!(j["outcome"], "SUCCESS");
    assert!(j["metadata"].get("error").is_none());
}

#[test]
fn err_is_recorded_as_failure_and_returned() {
    sink();
    let err = create_doc("bad-am-title".into()).expect_err("the body returns Err");
    assert_eq!(err, DocError("invalid title bad-am-title".into()));
    let j = recorded(|e| e.resource_name.as_deref() == Some("bad-am-title"));
    assert_eq!(j["outcome"], "FAILURE");
    assert_eq!(j["metadata"]["error"], "cannot create document: invalid title bad-am-title");
    assert_eq!(j.get("resource_id"), Some(&Value::Null), "`id = ret.id` has no value on Err: null, not left out: {j}");
    assert_eq!(j["action"], "CREATE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_fn_carries_the_actor_of_its_scope() {
    sink();
    let actor = ActorContext::new("am-user-async").email("async@example.com");
    let doc = tokio::spawn(observer::with_actor(actor, async { read_doc("am-async-1".into()).await }))
        .await
        .expect("task")
        .expect("read");
    assert_eq!(doc.id, "am-async-1");
    let j = recorded(by_id("am-async-1"));
    assert_eq!(j["action"], "READ");
    assert_eq!(j["audit_type"], "DATA_ACCESS");
    assert_eq!(j["actor"]["actor_id"], "am-user-async");
    assert_eq!(j["actor"]["email"], "async@example.com");

    // Outside the scope, the same fn records no actor from it.
    read_doc("am-async-2".into()).await.expect("read");
    let j = recorded(by_id("am-async-2"));
    assert_ne!(j["actor"]["actor_id"], "am-user-async");
}

#[test]
fn method_on_mut_self() {
    sink();
    let mut project = Project { id: "am-project-1".into(), name: "old".into() };
    assert_eq!(project.rename("new".into()), "new");
    assert_eq!(project.name, "new");
    let j = recorded(by_id("am-project-1"));
    assert_eq!(j["action"], "UPDATE");
    assert_eq!(j["resource_type"], "PROJECT");
    assert_eq!(j["description"], "renamed to new");
}

#[test]
fn id_from_an_argument_the_body_moves() {
    sink();
    assert_eq!(ingest("am-moved-source".into()), "am-moved-source".len());
    let j = recorded(by_id("am-moved-source"));
    assert_eq!(j["action"], "IMPORT");
    assert_eq!(j["resource_type"], "DATASET");
}

#[test]
fn sync_fn_carries_the_thread_actor() {
    sink();
    observer::actor::with_actor_sync(ActorContext::new("am-user-sync"), || create_named("am-sync-actor", "x"));
    let j = recorded(by_id("am-sync-actor"));
    assert_eq!(j["actor"]["actor_id"], "am-user-sync");
}
