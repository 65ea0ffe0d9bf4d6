//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::sync::OnceLock;
use std::time::Duration;

use observer::export::MemorySink;
use observer::{AuditEvent, AuditSink, ObserverConfig, ObserverGuard};

/// The memory sink of this test binary's process-wide `init` (tests in one binary share it).
#[allow(dead_code)]
pub fn memory_sink() -> &'static MemorySink {
    static SINK: OnceLock<(MemorySink, ObserverGuard)> = OnceLock::new();
    &SINK
        .get_or_init(|| {
            let sink = MemorySink::new();
            let guard = observer::init(ObserverConfig {
                service_name: "test-service".into(),
                service_version: "9.9.9".into(),
                environment: "test".into(),
                audit_sink: AuditSink::Memory(sink.clone()),
                ..Default::default()
            })
            .expect("init");
            (sink, guard)
        })
        .0
}

/// Waits for the event with `event_id` to reach the memory sink and returns its JSON.
pub fn recorded_json(event: &AuditEvent) -> serde_json::Value {
    let sink = memory_sink();
    observer::flush(Duration::from_secs(10)).expect("flush");
    let id = event.event_id.clone();
    sink.wait_for(Duration::from_secs(10), |e| e.event_id == id).expect("event reached the sink");
    sink.json().into_iter().find(|j| j["event_id"] == id.as_str()).expect("json of the event")
}

/// This test binary run again as a child process that runs only the ignored test `name` (a child's body
/// usually returns at once unless an environment variable the parent sets is present).
pub fn child_test(name: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new(std::env::current_exe().expect("test binary"));
    cmd.args(["--ignored", "--exact", name, "--nocapture", "--test-threads=1"]);
    cmd
}

#[cfg(feature = "kafka")]
pub mod kafka;
#[cfg(feature = "otel")]
pub mod otlp;
pub mod trail;
