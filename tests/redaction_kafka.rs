//! Redaction before Kafka: events full of identifiers and secrets, sent through a pipeline with the Kafka sink to
//! the test broker, arrive with none of them; `KafkaExporter::export_audit` redacts too.

mod common;

use std::time::Duration;

use common::kafka::{bootstrap, consume_key};
use observer::export::{self, KafkaExporter, MemorySink, Pipeline};
use observer::{audit, AuditEvent, AuditSink, ChangeRecord, KafkaConfig, ObserverConfig, ResourceType};
use serde_json::json;

const TOPIC: &str = "observer-test-audit";

const PHI: &[&str] = &[
    "123-45-6789",
    "(617) 555-0123",
    "jane.roe@example.org",
    "03/02/1985",
    "4111 1111 1111 1111",
    "10.20.30.40",
    "00442211",
    "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789",
    "ghp_0123456789abcdefghijABCDEFGHIJ012345",
    "hunter2-secret",
    "Jane Roe",
];

fn kafka_config(spool: &std::path::Path) -> KafkaConfig {
    KafkaConfig {
        bootstrap_servers: bootstrap(),
        audit_topic: TOPIC.into(),
        spool_dir: Some(spool.to_owned()),
        ..Default::default()
    }
}

#[test]
fn the_kafka_sink_receives_no_identifier_or_secret() {
    let spool = tempfile::tempdir().unwrap();
    let id = format!("redact-kafka-{}", audit::new_event_id());
    let pipeline = Pipeline::new(ObserverConfig {
        audit_sink: AuditSink::Memory(MemorySink::new()),
        kafka: Some(kafka_config(spool.path())),
        ..Default::default()
    })
    .unwrap();
    export::with_pipeline_sync(&pipeline, || {
        audit::log_update(ResourceType::Document, id.as_str())
            .description("Patient: Jane Roe (SSN 123-45-6789) called from (617) 555-0123, DOB 03/02/1985")
            .metadata("note", "card 4111 1111 1111 1111 from 10.20.30.40, e-mail jane.roe@example.org")
            .metadata(
                "ids",
                json!({"text": "MRN: 00442211", "prompt": "key sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"}),
            )
            .changes([
                ChangeRecord::new("password", "hunter2-secret", "x"),
                ChangeRecord::new("note", "ghp_0123456789abcdefghijABCDEFGHIJ012345", ""),
            ])
            .emit()
            .unwrap();
    });
    pipeline.flush(Duration::from_secs(30)).unwrap();
    drop(pipeline);
    let got = consume_key(TOPIC, &format!("DOCUMENT:{id}"), 1);
    assert_eq!(got.len(), 1);
    let bytes = got[0].payload.to_string();
    for phi in PHI {
        assert!(!bytes.contains(phi), "{phi:?} reached Kafka: {bytes}");
    }
    assert!(bytes.contains("[SSN]") && bytes.contains("[API_KEY]") && bytes.contains("[PASSWORD]"), "{bytes}");
}

#[test]
fn export_audit_redacts_too() {
    let spool = tempfile::tempdir().unwrap();
    let exporter = KafkaExporter::new(kafka_config(spool.path())).unwrap();
    let id = format!("redact-export-{}", audit::new_event_id());
    let mut event = AuditEvent::new(
        observer::AuditEventType::DataAccess,
        observer::AuditAction::Read,
        ResourceType::Document,
        id.as_str(),
    );
    event.description = Some("SSN 123-45-6789 for jane.roe@example.org".into());
    exporter.export_audit(&event).unwrap();
    exporter.flush(Duration::from_secs(30)).unwrap();
    let got = consume_key(TOPIC, &format!("DOCUMENT:{id}"), 1);
    assert_eq!(got[0].payload["description"], "SSN [SSN] for [EMAIL]");
}
