//! PHI and secrets never reach Kafka unmasked outside the audit topic, against the test broker: the agent stream
//! (trace topic), workflow events (workflow topic) and spans sent as OTLP-JSON (`TracingConfig::kafka_topic`),
//! after emitting data full of identifiers.
#![cfg(all(feature = "kafka", feature = "otel-kafka"))]

mod common;

use std::time::Duration;

use common::kafka::{bootstrap, consume_key, consume_until};
use observer::trace::{configure_tracing, AgentTrace, TracerFactory, TracingConfig};
use observer::CaptureLevel;
use serde_json::json;

const LEAKS: &[&str] = &[
    "123-45-6789",
    "617-555-0123",
    "jane.roe@example.org",
    "00442211",
    "sk-proj-abcDEF1234567890abcdEFGH",
    "AKIAIOSFODNN7EXAMPLE",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
];

fn phi(tag: &str) -> String {
    format!(
        "{tag}: SSN 123-45-6789, call 617-555-0123, mail jane.roe@example.org, MRN: 00442211, key \
         sk-proj-abcDEF1234567890abcdEFGH AKIAIOSFODNN7EXAMPLE, Bearer \
         eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
    )
}

fn assert_clean(what: &str, text: &str) {
    for leak in LEAKS {
        assert!(!text.contains(leak), "{what} leaks {leak:?}: {text}");
    }
}

#[test]
fn agent_stream_workflow_events_and_otlp_spans_on_kafka_are_redacted() {
    let config = common::kafka::init_observer("redact-kafka-test");
    configure_tracing(TracingConfig {
        service_name: "redact-kafka-test".into(),
        kafka_topic: Some("genesis-otel".into()),
        ..Default::default()
    })
    .expect("configure_tracing");
    let factory = TracerFactory::new(config.clone()).unwrap().otel(true).capture(CaptureLevel::RequestResponse);
    let kafka = config.kafka.as_ref().unwrap();

    // The agent stream.
    let tracer = factory.create_agent_tracer(AgentTrace { trace_name: "Redacted Flow".into(), ..Default::default() });
    let trace_id = tracer.trace_id().to_owned();
    tracer.start_trace();
    tracer
        .component("c1", "Writer")
        .kind("llm")
        .inputs(json!({"prompt": phi("in")}))
        .metadata(json!({"n": phi("m")}))
        .start();
    tracer.end_trace(
        "c1",
        "Writer",
        json!({"answer": phi("out"), "model": "gpt-4o", "input_tokens": 3, "output_tokens": 1}),
        Some(&phi("err")),
    );
    tracer.end(json!({"q": phi("trace-in")}), json!({"a": phi("trace-out")}), None, Some(json!({"m": phi("meta")})));

    // A workflow.
    let wf = factory.create_workflow_tracer_with_attributes("redacted-intake", [("patient", phi("attr"))]);
    let workflow_id = wf.workflow_id().expect("a Kafka factory streams workflows");
    let mut step = wf.step("lookup");
    step.set("note", phi("step")).record_error(phi("step-err"));
    step.finish();
    wf.finish();

    // A plain span with identifiers, to the OTLP-JSON topic.
    let marker = format!("redact-kafka-{}", std::process::id());
    {
        let _span =
            tracing::info_span!("redacted-span", marker = marker.as_str(), note = phi("span").as_str()).entered();
        tracing::info!("{}", phi("event"));
    }
    observer::flush(Duration::from_secs(30)).expect("flush");
    factory.flush(Duration::from_secs(30)).expect("factory flush");

    let trace = consume_key(&kafka.trace_topic, &trace_id, 4);
    assert_eq!(trace.len(), 4);
    for m in &trace {
        assert_clean("agent stream message", &m.payload.to_string());
    }
    assert!(
        trace[1].payload["input_data"]["prompt"].as_str().is_some_and(|p| p.starts_with("in:")),
        "content kept, redacted"
    );

    let workflow = consume_key(&kafka.workflow_topic, &workflow_id, 4);
    assert_eq!(workflow.len(), 4);
    for m in &workflow {
        assert_clean("workflow message", &m.payload.to_string());
    }

    let has_marker = |m: &common::kafka::Consumed| m.payload.to_string().contains(&marker);
    let otlp = consume_until(&bootstrap(), "genesis-otel", Duration::from_secs(30), |msgs| msgs.iter().any(has_marker));
    let mine: Vec<_> = otlp.iter().filter(|m| has_marker(m)).collect();
    assert!(!mine.is_empty(), "the span batch arrived");
    for m in mine {
        assert_clean("OTLP-JSON span batch", &m.payload.to_string());
    }
    // The agent spans of this trace (sent with the same batches or later ones) are redacted too.
    let agent_spans = otlp.iter().filter(|m| m.payload.to_string().contains(&trace_id));
    for m in agent_spans {
        assert_clean("agent spans on Kafka", &m.payload.to_string());
    }
}
