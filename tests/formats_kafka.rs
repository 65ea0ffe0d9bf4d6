//! The Kafka sink in FHIR and OCSF format against the test broker (`scripts/test.sh` starts it): every message is
//! the event in the topic's format, with the format's headers, the same bytes the other sinks of that format got,
//! and it passes the independent validators (`scripts/check-audit-formats.py`).

mod common;

use std::collections::HashSet;
use std::io::Write;
use std::process::Command;
use std::time::Duration;

use common::kafka::{bootstrap, consume_until};
use observer::export::{self, MemorySink, Pipeline};
use observer::{audit, ActorContext, AuditFormat, AuditSink, KafkaConfig, ObserverConfig, ResourceType};

const AUDIT_TOPIC: &str = "observer-test-audit";

fn check_with_validators(format: &str, payloads: &[serde_json::Value]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("records.jsonl");
    let mut f = std::fs::File::create(&path).unwrap();
    for p in payloads {
        writeln!(f, "{p}").unwrap();
    }
    drop(f);
    let python = std::env::var("OBSERVER_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/check-audit-formats.py");
    let out = Command::new(&python).arg(script).arg(format).arg(&path).output().expect("run the Python checker");
    assert!(
        out.status.success(),
        "{format} messages rejected by the independent validators (exit {:?}; exit 3 = packages missing: run \
         `eval \"$(bash scripts/python-env.sh)\"`):\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn run(format: AuditFormat) {
    let spool = tempfile::tempdir().unwrap();
    let memory = MemorySink::new();
    let pipeline = Pipeline::new(ObserverConfig {
        service_name: "formats-kafka".into(),
        audit_sink: AuditSink::Memory(memory.clone()),
        audit_format: format,
        kafka: Some(KafkaConfig {
            bootstrap_servers: bootstrap(),
            audit_topic: AUDIT_TOPIC.into(),
            spool_dir: Some(spool.path().to_owned()),
            audit_format: format,
            ..Default::default()
        }),
        ..Default::default()
    })
    .unwrap();
    let actor = ActorContext::new("kafka-user").email("user@example.com").roles(["clinician"]);
    let events = export::with_pipeline_sync(&pipeline, || {
        observer::actor::with_actor_sync(actor, || {
            vec![
                audit::log_create(ResourceType::Document, "kdoc").resource_name("Note").emit().unwrap(),
                audit::log_read(ResourceType::Document, "kdoc").emit().unwrap(),
                audit::log_login("kafka-user").success(false).reason("Invalid password").emit().unwrap(),
                audit::log_llm_interaction("openai", "gpt-4o").input_tokens(10).output_tokens(5).emit().unwrap(),
                audit::log_data_export(ResourceType::Dataset, "kset").record_count(3).emit().unwrap(),
            ]
        })
    });
    pipeline.flush(Duration::from_secs(30)).expect("acknowledged by the broker");
    let wanted: HashSet<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    let got = consume_until(&bootstrap(), AUDIT_TOPIC, Duration::from_secs(60), |msgs| {
        let seen: HashSet<&str> = msgs.iter().filter_map(|m| m.headers.get("event_id").map(String::as_str)).collect();
        wanted.iter().all(|id| seen.contains(id))
    });
    let output = memory.output();
    let mut payloads = Vec::new();
    for (e, expected) in events.iter().zip(&output) {
        let m = got
            .iter()
            .find(|m| m.headers.get("event_id") == Some(&e.event_id))
            .unwrap_or_else(|| panic!("event {} not on the topic", e.event_id));
        assert_eq!(&m.payload, expected, "the message is the event in {format}, as the other {format} sinks got it");
        assert_eq!(m.headers.get("format").map(String::as_str), Some(format.as_str()));
        assert_eq!(m.headers.get("content-type").map(String::as_str), Some(format.content_type()));
        let version = if format == AuditFormat::Ocsf { AuditFormat::OCSF_VERSION } else { AuditFormat::FHIR_VERSION };
        assert_eq!(m.headers.get("schema_version").map(String::as_str), Some(version));
        assert_eq!(m.key.as_deref(), Some(format!("{}:{}", e.resource_type, e.resource_id).as_str()));
        payloads.push(m.payload.clone());
    }
    check_with_validators(format.as_str(), &payloads);
    pipeline.shutdown().unwrap();
}

#[test]
fn the_kafka_sink_in_fhir_sends_audit_event_resources() {
    run(AuditFormat::Fhir);
}

#[test]
fn the_kafka_sink_in_ocsf_sends_ocsf_events() {
    run(AuditFormat::Ocsf);
}
