//! Kafka export against a real broker (the test broker started by `scripts/test.sh`): every helper's event
//! arrives with the guide's JSON, key and headers; custom events arrive on their topic with their key; a
//! missing topic is reported and its events kept; a broker that is absent at start-up gets everything once
//! it is started.

mod common;

use std::collections::HashSet;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::kafka::{bootstrap, broker_script, consume_until, free_port};
use observer::export::{Accepted, KafkaExporter, MemorySink};
use observer::{
    audit, ActorContext, AuditSink, ChangeRecord, ExporterError, KafkaConfig, ObserverConfig, ResourceType,
};
use serde_json::json;

const AUDIT_TOPIC: &str = "observer-test-audit";
const CUSTOM_TOPIC: &str = "observer-test-custom";

/// This binary's process-wide init: memory sink + Kafka to the test broker, spool in a temp dir.
fn init_with_kafka() -> &'static MemorySink {
    static INIT: OnceLock<(MemorySink, observer::ObserverGuard, tempfile::TempDir)> = OnceLock::new();
    &INIT
        .get_or_init(|| {
            let spool = tempfile::tempdir().unwrap();
            let sink = MemorySink::new();
            let guard = observer::init(ObserverConfig {
                service_name: "kafka-test".into(),
                audit_sink: AuditSink::Memory(sink.clone()),
                kafka: Some(KafkaConfig {
                    bootstrap_servers: bootstrap(),
                    audit_topic: AUDIT_TOPIC.into(),
                    spool_dir: Some(spool.path().to_owned()),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .unwrap();
            (sink, guard, spool)
        })
        .0
}

#[test]
fn every_helper_event_arrives_with_the_guides_json() {
    init_with_kafka();
    // Unique per run: the topic keeps earlier runs' messages while the broker lives.
    let doc = format!("kafka-doc-{}-{}", std::process::id(), observer::audit::new_event_id());
    let actor = ActorContext::new("kafka-user").email("user@example.com").roles(["admin"]);
    let events = observer::actor::with_actor_sync(actor, || {
        vec![
            audit::log_create(ResourceType::Document, doc.as_str()).resource_name("Project Proposal").emit().unwrap(),
            audit::log_read(ResourceType::Document, doc.as_str()).emit().unwrap(),
            audit::log_update(ResourceType::Document, doc.as_str())
                .changes([ChangeRecord::new("title", "Draft", "Final")])
                .emit()
                .unwrap(),
            audit::log_delete(ResourceType::Document, doc.as_str()).emit().unwrap(),
            audit::log_login("kafka-user").success(false).reason("Invalid password").emit().unwrap(),
            audit::log_logout("kafka-user").emit().unwrap(),
            audit::log_llm_interaction("openai", "gpt-4o").input_tokens(150).output_tokens(75).emit().unwrap(),
            audit::log_data_export(ResourceType::Database, "kafka-customers")
                .export_format("CSV")
                .record_count(1500)
                .emit()
                .unwrap(),
        ]
    });
    observer::flush(Duration::from_secs(30)).expect("flush: all acknowledged");
    let wanted: HashSet<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    let got = consume_until(&bootstrap(), AUDIT_TOPIC, Duration::from_secs(60), |msgs| {
        let seen: HashSet<&str> = msgs.iter().filter_map(|m| m.payload["event_id"].as_str()).collect();
        wanted.iter().all(|id| seen.contains(id))
    });
    for e in &events {
        let m = got
            .iter()
            .find(|m| m.payload["event_id"] == e.event_id.as_str())
            .unwrap_or_else(|| panic!("event {} ({:?}) not on the topic", e.event_id, e.action));
        assert_eq!(m.payload, serde_json::to_value(&**e).unwrap(), "the message is the event's JSON");
        assert_eq!(m.key.as_deref(), Some(format!("{}:{}", e.resource_type, e.resource_id).as_str()));
        assert_eq!(m.headers.get("event_type").map(String::as_str), Some(e.audit_type.as_str()));
        assert_eq!(m.headers.get("event_id"), Some(&e.event_id));
        assert_eq!(m.headers.get("schema_version").map(String::as_str), Some("1.0"));
    }
    let create = &got.iter().find(|m| m.payload["event_id"] == events[0].event_id.as_str()).unwrap().payload;
    assert_eq!(create["audit_type"], "DATA_MODIFICATION");
    assert_eq!(
        create["actor"],
        json!({"actor_id": "kafka-user", "actor_type": "user", "email": "user@example.com", "roles": ["admin"],
               "name": null, "username": null, "groups": [], "session_id": null, "ip_address": null,
               "user_agent": null, "tenant_id": null, "organization_id": null})
    );
    // one resource's events share a key, hence a partition, in order
    let key = format!("DOCUMENT:{doc}");
    let doc: Vec<_> = got.iter().filter(|m| m.key.as_deref() == Some(key.as_str())).collect();
    assert_eq!(doc.len(), 4);
    assert!(doc.windows(2).all(|w| w[0].partition == w[1].partition && w[0].offset < w[1].offset));
    let actions: Vec<&str> = doc.iter().map(|m| m.payload["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["CREATE", "READ", "UPDATE", "DELETE"]);
}

#[test]
fn custom_events_arrive_on_their_topic_with_their_key() {
    init_with_kafka();
    let exporter = observer::kafka_exporter().expect("init with a Kafka config shares its exporter");
    let marker = format!("custom-{}", std::process::id());
    let data = json!({"event_type": "custom", "data": {"marker": marker, "n": 42}});
    let accepted = exporter.export_custom_event(CUSTOM_TOPIC, "my-key", &data).unwrap();
    assert_eq!(accepted, Accepted::Queued);
    exporter.flush(Duration::from_secs(30)).unwrap();
    let got = consume_until(&bootstrap(), CUSTOM_TOPIC, Duration::from_secs(60), |msgs| {
        msgs.iter().any(|m| m.payload["data"]["marker"] == marker.as_str())
    });
    let m = got.iter().find(|m| m.payload["data"]["marker"] == marker.as_str()).expect("custom event consumed");
    assert_eq!(m.key.as_deref(), Some("my-key"));
    assert_eq!(m.payload, data);
}

#[test]
fn a_missing_topic_is_reported_and_its_events_are_kept() {
    let spool = tempfile::tempdir().unwrap();
    let exporter = KafkaExporter::new(KafkaConfig {
        bootstrap_servers: bootstrap(),
        audit_topic: "observer-no-such-topic".into(),
        message_timeout: Duration::from_secs(2),
        spool_dir: Some(spool.path().to_owned()),
        ..Default::default()
    })
    .unwrap();
    let started = Instant::now();
    let err = exporter.check_topic("observer-no-such-topic", Duration::from_secs(10)).unwrap_err();
    assert!(matches!(err, ExporterError::UnknownTopic(_)), "{err}");
    assert!(err.to_string().contains("observer-no-such-topic"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10), "reported, not hung");
    exporter.check_topic(AUDIT_TOPIC, Duration::from_secs(10)).expect("an existing topic passes");

    let event = observer::AuditEvent::new(
        observer::AuditEventType::DataModification,
        observer::AuditAction::Create,
        ResourceType::File,
        "orphan",
    );
    exporter.export_audit(&event).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while exporter.stats().spooled == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let stats = exporter.stats();
    assert_eq!(stats.spooled, 1, "undeliverable event kept in the spool: {stats:?}");
    exporter.shutdown(Duration::from_secs(5)).unwrap();
    let text: String = std::fs::read_dir(spool.path())
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.unwrap().path()).ok())
        .collect();
    assert!(text.contains(&event.event_id), "the spool holds the event");
}

#[test]
fn broker_absent_at_start_gets_everything_once_started() {
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let spool = tempfile::tempdir().unwrap();
    let config = KafkaConfig {
        bootstrap_servers: address.clone(),
        audit_topic: AUDIT_TOPIC.into(),
        message_timeout: Duration::from_secs(2),
        spool_dir: Some(spool.path().to_owned()),
        ..Default::default()
    };
    let exporter = KafkaExporter::new(config).expect("a missing broker does not fail creation");
    const N: usize = 1_000;
    let ids: Vec<String> = (0..N)
        .map(|i| {
            let e = observer::AuditEvent::new(
                observer::AuditEventType::DataAccess,
                observer::AuditAction::Read,
                ResourceType::File,
                format!("absent-{i}"),
            );
            exporter.export_audit(&e).unwrap();
            e.event_id
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while exporter.stats().spooled < N as u64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(exporter.stats().spooled, N as u64, "all spooled while the broker is absent");

    let status = broker_script().args(["start-at", &port.to_string(), AUDIT_TOPIC]).status().unwrap();
    assert!(status.success(), "starting the broker at {address}");
    let stop = StopAt(port);
    let deadline = Instant::now() + Duration::from_secs(120);
    while exporter.stats().replayed < N as u64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let stats = exporter.stats();
    assert_eq!(stats.replayed, N as u64, "{stats:?}");
    let got = consume_until(&address, AUDIT_TOPIC, Duration::from_secs(60), |m| m.len() >= N);
    let seen: HashSet<String> = got.iter().filter_map(|m| m.payload["event_id"].as_str().map(str::to_owned)).collect();
    assert!(
        ids.iter().all(|id| seen.contains(id)),
        "{} of {N} delivered",
        ids.iter().filter(|i| seen.contains(*i)).count()
    );
    exporter.shutdown(Duration::from_secs(5)).unwrap();
    assert_eq!(exporter.stats().spool_records, 0, "the spool is empty once everything was delivered");
    drop(stop);
}

struct StopAt(u16);

impl Drop for StopAt {
    fn drop(&mut self) {
        let _ = broker_script().args(["stop-at", &self.0.to_string()]).status();
    }
}

#[test]
fn a_message_larger_than_kafka_takes_is_refused_not_spooled_forever() {
    let spool = tempfile::tempdir().unwrap();
    let exporter = KafkaExporter::new(KafkaConfig {
        bootstrap_servers: bootstrap(),
        audit_topic: AUDIT_TOPIC.into(),
        spool_dir: Some(spool.path().to_owned()),
        ..Default::default()
    })
    .unwrap();
    // librdkafka's default `message.max.bytes` is 1,000,000.
    let huge = json!({"blob": "x".repeat(1_500_000)});
    let error = exporter.export_custom_event(CUSTOM_TOPIC, "huge", &huge).unwrap_err();
    assert!(
        matches!(error, ExporterError::MessageTooLarge { ref topic, bytes } if topic == CUSTOM_TOPIC && bytes > 1_500_000),
        "{error}"
    );
    let error = error.to_string();
    assert!(error.contains("maximum message size") && error.contains("stderr"), "{error}");
    let marker = format!("after-huge-{}", std::process::id());
    let ok = exporter.export_custom_event(CUSTOM_TOPIC, "small", &json!({"marker": marker}));
    assert_eq!(ok.unwrap(), Accepted::Queued);
    exporter.flush(Duration::from_secs(30)).expect("the exporter is not stuck behind the refused message");
    let stats = exporter.stats();
    assert_eq!(stats.rejected, 1);
    assert_eq!(stats.spool_records, 0, "nothing that can never be sent sits in the spool");
    let got = consume_until(&bootstrap(), CUSTOM_TOPIC, Duration::from_secs(60), |msgs| {
        msgs.iter().any(|m| m.payload["marker"] == marker.as_str())
    });
    assert!(got.iter().any(|m| m.payload["marker"] == marker.as_str()));
    exporter.shutdown(Duration::from_secs(10)).unwrap();
}
