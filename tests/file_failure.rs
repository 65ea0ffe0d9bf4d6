//! A file sink that cannot write (here `/dev/full`: every write fails with ENOSPC) never panics or blocks
//! the caller; failures are counted and the events go to stderr instead.

use std::time::Duration;

use observer::{audit, AuditSink, ObserverConfig, ResourceType};

#[test]
#[cfg(target_os = "linux")]
fn failing_file_is_counted_not_fatal() {
    let guard =
        observer::init(ObserverConfig { audit_sink: AuditSink::file("/dev/full"), ..Default::default() }).unwrap();
    for i in 0..10 {
        audit::log_create(ResourceType::File, format!("lost-{i}")).emit().expect("queued");
    }
    let err = observer::flush(Duration::from_secs(10)).expect_err("the flush reports the failing sink");
    assert!(err.to_string().contains("/dev/full"), "{err}");
    let stats = observer::stats().unwrap();
    assert!(stats.sink_errors >= 1, "{stats:?}");
    assert_eq!(stats.pending, 0);
    // still accepting events after the failure
    audit::log_create(ResourceType::File, "after").emit().expect("queued");
    let _ = guard.shutdown();
}
