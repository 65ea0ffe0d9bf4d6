//! `ret`: the returned value (the `Ok` value of a `Result`), for keys evaluated after the body.
use std::time::Duration;

use observer::audit;

struct Doc {
    id: u64,
    title: String,
}

#[audit(create, Document, id = ret.id, name = ret.title)]
fn create_doc(title: String) -> Result<Doc, String> {
    if title.is_empty() {
        return Err("empty title".into());
    }
    Ok(Doc { id: 7, title })
}

#[audit(create, Folder, id = ret, name = format!("{prefix}-folder"))]
fn create_folder(prefix: &str) -> u64 {
    prefix.len() as u64 + 100
}

#[audit(create, Session, id = format!("s-{ret}"))]
fn open_session() -> u32 {
    5
}

fn main() {
    let sink = observer::export::MemorySink::new();
    let _guard = observer::init(observer::ObserverConfig {
        audit_sink: observer::AuditSink::Memory(sink.clone()),
        ..Default::default()
    })
    .expect("init");

    assert_eq!(create_doc("Report".into()).expect("ok").title, "Report");
    assert!(create_doc(String::new()).is_err());
    assert_eq!(create_folder("ab"), 102);
    assert_eq!(open_session(), 5);

    let e = sink.wait_for(Duration::from_secs(5), |e| e.resource_id == "7").expect("create event");
    assert_eq!(e.resource_name.as_deref(), Some("Report"));
    sink.wait_for(Duration::from_secs(5), |e| e.resource_id == "102").expect("folder event");
    sink.wait_for(Duration::from_secs(5), |e| e.resource_id == "s-5").expect("session event");
}
