//! Dropping the init guard flushes every queued event: a burst of 100,000 events into the JSON-lines file
//! sink arrives complete, with no duplicates, and nothing is rejected.

use std::collections::HashSet;
use std::io::BufRead;

use observer::{audit, AuditSink, ObserverConfig, ResourceType};

#[test]
fn guard_flushes_a_burst_of_100k_events_into_the_file_sink() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/audit.jsonl");
    const THREADS: usize = 4;
    const PER_THREAD: usize = 25_000;

    let guard = observer::init(ObserverConfig {
        service_name: "burst".into(),
        audit_sink: AuditSink::file(&path),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(guard.sink_names(), [format!("file {}", path.display())]);

    let emitted: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                s.spawn(move || {
                    (0..PER_THREAD)
                        .map(|i| {
                            audit::log_create(ResourceType::Document, format!("doc-{t}-{i}"))
                                .emit()
                                .expect("queue has room for the burst")
                                .event_id
                                .clone()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let stats = observer::stats().unwrap();
    assert_eq!(stats.accepted, (THREADS * PER_THREAD) as u64);
    assert_eq!(stats.rejected_queue_full, 0);
    drop(guard); // must wait for all of them

    assert!(!observer::is_initialized());
    let file = std::fs::File::open(&path).unwrap();
    let mut seen = HashSet::new();
    let mut lines = 0;
    for line in std::io::BufReader::new(file).lines() {
        let v: serde_json::Value = serde_json::from_str(&line.unwrap()).expect("every line is one JSON event");
        assert_eq!(v["service_name"], "burst");
        seen.insert(v["event_id"].as_str().unwrap().to_owned());
        lines += 1;
    }
    assert_eq!(lines, THREADS * PER_THREAD, "one line per event");
    assert_eq!(seen.len(), THREADS * PER_THREAD, "no duplicates");
    assert!(emitted.iter().all(|id| seen.contains(id)), "every emitted event is in the file");
}
