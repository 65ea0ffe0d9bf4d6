//! `shutdown_tracing` exports what is pending without any flush; dropping the `ObserverGuard` does the same for
//! an exporter installed with `otel_layer` on a subscriber of the application's own.

mod common;

use std::time::Duration;

use common::otlp::OtlpReceiver;
use observer::export::MemorySink;
use observer::trace::{configure_tracing, otel_layer, shutdown_tracing, TracingConfig};
use observer::{AuditSink, ObserverConfig};
use tracing_subscriber::layer::SubscriberExt;

const WAIT: Duration = Duration::from_secs(15);

fn has(receiver: &OtlpReceiver, name: &str) -> bool {
    receiver.spans().iter().any(|s| s.name == name)
}

#[test]
fn shutdown_and_guard_drop_export_pending_spans() {
    let first = OtlpReceiver::start();
    configure_tracing(TracingConfig { otlp_endpoint: Some(first.endpoint()), ..Default::default() }).unwrap();
    drop(tracing::info_span!("before-shutdown").entered());
    // The batch processor exports every 5 s; shutdown must not wait for that.
    shutdown_tracing().expect("shutdown exports the pending spans");
    assert!(first.wait_for(Duration::from_secs(1), |_| has(&first, "before-shutdown")).is_some());
    drop(tracing::info_span!("after-shutdown").entered());
    shutdown_tracing().expect("a second shutdown is a no-op");
    observer::flush(Duration::from_secs(2)).expect("flush after shutdown is a no-op");
    std::thread::sleep(Duration::from_millis(300));
    assert!(!has(&first, "after-shutdown"), "spans that end after the shutdown are dropped");

    // After a shutdown an exporter may be installed again, e.g. as a layer of one's own subscriber; the guard of
    // `init` shuts it down (and so exports) when dropped.
    let sink = MemorySink::new();
    let guard = observer::init(ObserverConfig {
        audit_sink: AuditSink::Memory(sink.clone()),
        flush_timeout: Duration::from_secs(5),
        ..Default::default()
    })
    .unwrap();
    let second = OtlpReceiver::start();
    let config = TracingConfig {
        service_name: "own-subscriber".into(),
        otlp_endpoint: Some(second.endpoint()),
        ..Default::default()
    };
    let subscriber = tracing_subscriber::registry().with(otel_layer(&config).expect("otel_layer"));
    tracing::subscriber::with_default(subscriber, || {
        let _span = tracing::info_span!("guarded", step = "one").entered();
        let event = observer::audit::log_read(observer::ResourceType::Document, "doc-1").emit().unwrap();
        assert!(event.trace_id.is_some(), "the layer gives audit events trace ids");
    });
    drop(guard);
    let spans = second.wait_for(WAIT, |s| s.iter().any(|s| s.name == "guarded")).expect("exported on guard drop");
    let span = spans.iter().find(|s| s.name == "guarded").unwrap();
    assert_eq!(span.resource_str("service.name"), Some("own-subscriber"));
    assert_eq!(span.attr_str("step"), Some("one"));
    assert!(first.requests().iter().all(|r| r.status == 200));
}
