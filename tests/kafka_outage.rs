//! 100,000 audit events emitted through the SDK while the broker is paused mid-stream (SIGSTOP: an outage
//! that keeps what the in-memory test broker already acknowledged) and resumed: every event is delivered,
//! counted by `event_id`; duplicates are counted and reported.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::kafka::{bootstrap, broker_script, consume_until, Resume};
use observer::export::MemorySink;
use observer::{audit, AuditSink, KafkaConfig, ObserverConfig, ResourceType};

const TOPIC: &str = "observer-test-outage";
const N: usize = 100_000;

#[test]
fn broker_paused_mid_stream_loses_nothing() {
    let created = broker_script().args(["create-topic", TOPIC]).status().unwrap();
    assert!(created.success(), "creating {TOPIC}");
    let spool = tempfile::tempdir().unwrap();
    let guard = observer::init(ObserverConfig {
        service_name: "outage-test".into(),
        audit_sink: AuditSink::Memory(MemorySink::new()),
        kafka: Some(KafkaConfig {
            bootstrap_servers: bootstrap(),
            audit_topic: TOPIC.into(),
            // Short, so that the outage outlasts librdkafka's retries and the spool does the work.
            message_timeout: Duration::from_secs(3),
            spool_dir: Some(spool.path().to_owned()),
            ..Default::default()
        }),
        ..Default::default()
    })
    .unwrap();

    let mut ids = Vec::with_capacity(N);
    let mut resume = None;
    for i in 0..N {
        if i == N / 3 {
            assert!(broker_script().arg("pause").status().unwrap().success(), "pausing the broker");
            resume = Some(Resume);
        }
        if i == 2 * N / 3 {
            // Keep the outage longer than message_timeout so that messages fail and are spooled.
            std::thread::sleep(Duration::from_secs(5));
            drop(resume.take());
        }
        let e = audit::log_create(ResourceType::Document, format!("outage-{i}")).emit().expect("emit never fails");
        ids.push(e.event_id.clone());
    }
    drop(resume);

    let exporter = observer::kafka_exporter().unwrap();
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let _ = observer::flush(Duration::from_secs(10));
        let s = exporter.stats();
        if (s.spool_records == 0 && s.in_flight == 0) || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let stats = exporter.stats();
    eprintln!("exporter after the outage: {stats:?}");
    assert!(stats.spooled > 0, "the outage sent events through the spool: {stats:?}");
    assert_eq!(stats.spool_overflow, 0);
    assert_eq!(stats.spool_records, 0, "{stats:?}");
    drop(guard);

    let wanted: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
    let got = consume_until(&bootstrap(), TOPIC, Duration::from_secs(180), |msgs| {
        let seen: std::collections::HashSet<&str> =
            msgs.iter().filter_map(|m| m.payload["event_id"].as_str()).filter(|id| wanted.contains(id)).collect();
        seen.len() == N
    });
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for m in &got {
        if let Some(id) = m.payload["event_id"].as_str().filter(|id| wanted.contains(id)) {
            *counts.entry(id).or_default() += 1;
        }
    }
    let missing = ids.iter().filter(|id| !counts.contains_key(id.as_str())).count();
    let duplicates: usize = counts.values().map(|c| c - 1).sum();
    eprintln!(
        "consumed {} messages: {} distinct events, {duplicates} duplicates, {missing} missing",
        got.len(),
        counts.len()
    );
    assert_eq!(missing, 0, "every emitted event is on the topic");
}
