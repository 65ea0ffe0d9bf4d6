//! A full queue never blocks or panics: the caller gets `AuditError::QueueFull` with the event back, and it
//! is counted. A sink that fails does not take the pipeline down.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use observer::export::Record;
use observer::{audit, AuditError, AuditSink, ExporterError, MemorySink, ObserverConfig, ResourceType, Sink};

/// Blocks in `write` until released, so the queue fills up; fails every 2nd write after release.
#[derive(Debug, Default)]
struct GateSink {
    open: AtomicBool,
    writes: AtomicUsize,
}

impl Sink for GateSink {
    fn name(&self) -> String {
        "gate".into()
    }

    fn write(&self, _record: Record<'_>) -> Result<(), ExporterError> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.open.load(Ordering::Acquire) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        if self.writes.fetch_add(1, Ordering::Relaxed) % 2 == 1 {
            return Err(ExporterError::Other("simulated failure".into()));
        }
        Ok(())
    }
}

#[test]
fn full_queue_returns_the_event_and_a_failing_sink_is_counted() {
    let gate = Arc::new(GateSink::default());
    let memory = MemorySink::new();
    let guard = observer::init(ObserverConfig {
        queue_capacity: 8,
        audit_sink: AuditSink::Memory(memory.clone()),
        extra_sinks: vec![gate.clone()],
        ..Default::default()
    })
    .unwrap();

    let mut accepted = Vec::new();
    let mut rejected = Vec::new();
    let started = Instant::now();
    for i in 0..100 {
        match audit::log_create(ResourceType::File, format!("f-{i}")).emit() {
            Ok(e) => accepted.push(e.event_id.clone()),
            Err(AuditError::QueueFull { capacity, event }) => {
                assert_eq!(capacity, 8);
                assert_eq!(event.resource_id, format!("f-{i}"), "the caller gets its event back");
                rejected.push(event.event_id.clone());
            }
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert!(started.elapsed() < Duration::from_secs(5), "emitting never blocks on a stuck sink");
    // capacity 8 in the queue + at most one batch in the dispatcher's hands
    assert!(
        !rejected.is_empty() && accepted.len() <= 8 + 1024,
        "accepted {} rejected {}",
        accepted.len(),
        rejected.len()
    );
    let stats = observer::stats().unwrap();
    assert_eq!(stats.rejected_queue_full as usize, rejected.len());
    assert_eq!(stats.accepted as usize, accepted.len());

    gate.open.store(true, Ordering::Release);
    guard.shutdown().expect("the memory sink flushes fine");
    // every accepted event reached the healthy sink; the gate sink's failures were counted
    let got: Vec<String> = memory.events().into_iter().map(|e| e.event_id).collect();
    assert_eq!(got, accepted);
    assert_eq!(gate.writes.load(Ordering::Relaxed), accepted.len());
}
