//! Every key, trailing commas and a renamed `observer` dependency through `crate = path`.
use std::time::Duration;

extern crate observer as obs;

#[observer::audit(share, Document, id = doc_id, name = title, description = format!("shared with {to}"),)]
fn share(doc_id: u32, title: &str, to: &str) {
    let _ = (doc_id, title, to);
}

#[obs::audit(login, User, id = user, crate = obs)]
fn login(user: &str) -> bool {
    !user.is_empty()
}

#[obs::audit(logout, User, crate = ::observer, id = user)]
fn logout(user: &str) {
    let _ = user;
}

fn main() {
    let sink = observer::export::MemorySink::new();
    let _guard = observer::init(observer::ObserverConfig {
        audit_sink: observer::AuditSink::Memory(sink.clone()),
        ..Default::default()
    })
    .expect("init");

    share(9, "Plan", "bob");
    assert!(login("alice"));
    logout("alice");

    let e = sink.wait_for(Duration::from_secs(5), |e| e.resource_id == "9").expect("share event");
    assert_eq!(e.resource_name.as_deref(), Some("Plan"));
    assert_eq!(e.description.as_deref(), Some("shared with bob"));
    sink.wait_for(Duration::from_secs(5), |e| e.resource_id == "alice").expect("login event");
}
