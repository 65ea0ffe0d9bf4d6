//! Spans straight to Kafka as OTLP-JSON (feature `otel-kafka`) against the test broker (`scripts/test.sh`):
//! `configure_tracing` with `kafka_topic` writes each batch as one OTLP `ExportTraceServiceRequest` in its JSON
//! encoding, through the shared Kafka exporter of `observer::init`; reserved topics are refused.

mod common;

use std::time::Duration;

use common::kafka::{bootstrap, broker_script, consume_until, Consumed};
use observer::export::{KafkaExporter, MemorySink};
use observer::trace::{configure_tracing, otel_layer, KafkaSpanExporter, TracingConfig};
use observer::{AuditSink, KafkaConfig, ObserverConfig};
use serde_json::Value;

const TOPIC: &str = "genesis-otel";
const AUDIT_TOPIC: &str = "observer-test-audit";

fn kafka_config(spool: &std::path::Path) -> KafkaConfig {
    KafkaConfig {
        bootstrap_servers: bootstrap(),
        audit_topic: AUDIT_TOPIC.into(),
        spool_dir: Some(spool.to_owned()),
        ..Default::default()
    }
}

fn tracing_config() -> TracingConfig {
    TracingConfig { service_name: "otel-kafka-test".into(), kafka_topic: Some(TOPIC.into()), ..Default::default() }
}

/// The spans of every `resourceSpans[].scopeSpans[]` of an OTLP-JSON request.
fn spans(request: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for rs in request["resourceSpans"].as_array().into_iter().flatten() {
        for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
            out.extend(ss["spans"].as_array().into_iter().flatten());
        }
    }
    out
}

fn string_attr<'a>(attributes: &'a Value, key: &str) -> Option<&'a str> {
    attributes.as_array()?.iter().find(|kv| kv["key"] == key)?["value"]["stringValue"].as_str()
}

fn has_marker(span: &Value, marker: &str) -> bool {
    string_attr(&span["attributes"], "marker") == Some(marker)
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[test]
fn spans_arrive_on_the_topic_as_otlp_json() {
    let status = broker_script().args(["create-topic", TOPIC]).status().expect("broker script");
    assert!(status.success(), "create-topic {TOPIC}");

    // Before `init` there is no shared exporter: the error names the field.
    let err = otel_layer::<tracing_subscriber::Registry>(&tracing_config()).err().expect("no shared exporter");
    let observer::ObserverError::Configuration(err) = err else { panic!("{err:?}") };
    assert_eq!(err.field, "kafka_topic");

    let spool = tempfile::tempdir().unwrap();
    let _guard = observer::init(ObserverConfig {
        service_name: "otel-kafka-test".into(),
        audit_sink: AuditSink::Memory(MemorySink::new()),
        kafka: Some(kafka_config(spool.path())),
        ..Default::default()
    })
    .expect("init");
    configure_tracing(tracing_config()).expect("configure_tracing");

    let marker = format!("otel-kafka-{}-{}", std::process::id(), observer::audit::new_event_id());
    {
        let parent = tracing::info_span!("otel-kafka-parent", marker = marker.as_str());
        let _p = parent.enter();
        let _child = tracing::info_span!("otel-kafka-child", marker = marker.as_str()).entered();
    }
    observer::flush(Duration::from_secs(10)).expect("flush");
    observer::trace::shutdown_tracing().expect("shutdown_tracing");
    observer::kafka_exporter().unwrap().flush(Duration::from_secs(10)).expect("kafka flush");

    let find = |msgs: &[Consumed]| {
        msgs.iter().find(|m| spans(&m.payload).iter().filter(|s| has_marker(s, &marker)).count() == 2).cloned()
    };
    let msgs = consume_until(&bootstrap(), TOPIC, Duration::from_secs(30), |m| find(m).is_some());
    let msg = find(&msgs).unwrap_or_else(|| panic!("no message with both spans among {} on {TOPIC}", msgs.len()));
    eprintln!("OTLP-JSON message (key {:?}): {}", msg.key, msg.payload);

    assert_eq!(msg.headers.get("content-type").map(String::as_str), Some("application/json"));
    let spans = spans(&msg.payload);
    let named = |name: &str| *spans.iter().find(|s| s["name"] == name && has_marker(s, &marker)).expect(name);
    let (parent, child) = (named("otel-kafka-parent"), named("otel-kafka-child"));
    let parent_id = parent["spanId"].as_str().expect("spanId is a string");
    let trace_id = parent["traceId"].as_str().expect("traceId is a string");
    assert!(is_hex(parent_id, 16), "{parent_id}");
    assert!(is_hex(trace_id, 32), "{trace_id}");
    assert_eq!(child["parentSpanId"].as_str(), Some(parent_id));
    assert_eq!(child["traceId"].as_str(), Some(trace_id));
    assert!(is_hex(child["spanId"].as_str().unwrap(), 16));
    assert!(parent.get("parentSpanId").is_none_or(|p| p == ""), "root span: {parent}");
    // The key is the first span's trace id.
    let first = spans[0]["traceId"].as_str().unwrap();
    assert_eq!(msg.key.as_deref(), Some(first));
    // lowerCamelCase names, timestamps as decimal strings (proto3 JSON for 64-bit integers).
    assert!(child["startTimeUnixNano"].as_str().is_some_and(|t| t.parse::<u64>().is_ok()), "{child}");
    assert!(child["endTimeUnixNano"].as_str().is_some(), "{child}");
    let resource = &msg.payload["resourceSpans"][0]["resource"]["attributes"];
    assert_eq!(string_attr(resource, "service.name"), Some("otel-kafka-test"));
    assert_eq!(msg.payload["resourceSpans"][0]["scopeSpans"][0]["scope"]["name"], "observer");
}

#[test]
fn reserved_topics_are_refused() {
    for topic in ["genesis-audit-events", "genesis-traces-streaming", "not a topic"] {
        let config = TracingConfig { kafka_topic: Some(topic.into()), ..Default::default() };
        assert_eq!(config.validate().unwrap_err().field, "kafka_topic", "{topic}");
    }
    // The exporter's own audit and trace topics too, whatever their names.
    let spool = tempfile::tempdir().unwrap();
    let kafka = KafkaExporter::new(KafkaConfig { trace_topic: "my-traces".into(), ..kafka_config(spool.path()) })
        .expect("exporter");
    for topic in [AUDIT_TOPIC, "my-traces"] {
        assert_eq!(KafkaSpanExporter::new(kafka.clone(), topic).unwrap_err().field, "kafka_topic", "{topic}");
    }
    assert_eq!(KafkaSpanExporter::new(kafka.clone(), TOPIC).unwrap().topic(), TOPIC);
    kafka.shutdown(Duration::from_secs(1)).unwrap();
}
