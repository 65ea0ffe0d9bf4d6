//! PHI and secrets never leave unmasked outside the audit pipeline: spans exported over OTLP (decoded from the
//! protobuf a real receiver gets: names, attributes, events, status), the agent stream (inputs, outputs,
//! metadata, errors, custom events), workflow events (attributes, step errors) and their spans and logs, after
//! emitting data full of identifiers (SSNs, phones, e-mails, MRNs, API keys, JWTs, bearer tokens). The LLM layer's
//! captured content is checked in `llm_http.rs`, the Kafka paths in `redact_kafka.rs`.
#![cfg(feature = "otel")]

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use common::otlp::{OtlpReceiver, ReceivedSpan};
use observer::trace::{
    configure_tracing, AgentTrace, AgentTracer, AgentTracerConfig, MemoryTraceSink, MemoryWorkflowSink, TracingConfig,
    WorkflowTracer,
};
use observer::CaptureLevel;
use serde_json::json;

/// Raw identifiers and secrets: none of them may appear in any output.
const LEAKS: &[&str] = &[
    "123-45-6789",
    "617-555-0123",
    "(617) 555-0123",
    "jane.roe@example.org",
    "00442211",
    "sk-proj-abcDEF1234567890abcdEFGH",
    "sk-ant-api03-abcdefghijklmnop1234567890_xyz",
    "AKIAIOSFODNN7EXAMPLE",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "hunter2-password",
];

/// A clinical sentence holding every identifier of [`LEAKS`].
fn phi(tag: &str) -> String {
    format!(
        "{tag}: SSN 123-45-6789, call (617) 555-0123 or 617-555-0123, mail jane.roe@example.org, MRN: 00442211, \
         key sk-proj-abcDEF1234567890abcdEFGH, sk-ant-api03-abcdefghijklmnop1234567890_xyz, AKIAIOSFODNN7EXAMPLE, \
         Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
    )
}

fn assert_clean(what: &str, text: &str) {
    for leak in LEAKS {
        assert!(!text.contains(leak), "{what} leaks {leak:?}: {text}");
    }
}

fn receiver() -> &'static OtlpReceiver {
    static RECEIVER: OnceLock<OtlpReceiver> = OnceLock::new();
    RECEIVER.get_or_init(|| {
        let receiver = OtlpReceiver::start();
        common::memory_sink();
        configure_tracing(TracingConfig {
            service_name: "redact-outputs-test".into(),
            otlp_endpoint: Some(receiver.endpoint()),
            ..Default::default()
        })
        .expect("configure_tracing");
        receiver
    })
}

/// Everything a received span says, as one text.
fn span_text(span: &ReceivedSpan) -> String {
    format!("{} {:?} {:?} {:?} {}", span.name, span.attributes, span.events, span.event_attributes, span.status_message)
}

/// The spans whose text contains `tag` (waits until at least `n` arrived).
fn spans_tagged(tag: &str, n: usize) -> Vec<ReceivedSpan> {
    observer::flush(Duration::from_secs(10)).expect("flush");
    let has = |s: &ReceivedSpan| span_text(s).contains(tag);
    let spans = receiver()
        .wait_for(Duration::from_secs(15), |all| all.iter().filter(|s| has(s)).count() >= n)
        .unwrap_or_else(|| panic!("{n} spans tagged {tag}"));
    spans.into_iter().filter(has).collect()
}

#[test]
fn span_names_attributes_events_and_status_are_redacted() {
    receiver();
    let tag = "span-tag";
    let note = phi(tag);
    {
        let span = tracing::info_span!(
            "lookup",
            otel.name = format!("lookup {tag} jane.roe@example.org"),
            note = note.as_str(),
            password = "hunter2-password",
            otel.status_code = "error",
            otel.status_description = format!("failed for 123-45-6789 {tag}"),
            gen_ai.request.model = "gpt-4o-2024-08-06",
        );
        let _entered = span.enter();
        tracing::info!(detail = note.as_str(), "called (617) 555-0123 about SSN 123-45-6789 ({tag})");
        tracing::warn!("token sk-ant-api03-abcdefghijklmnop1234567890_xyz seen ({tag})");
    }
    let spans = spans_tagged(tag, 1);
    let span = spans.iter().find(|s| s.attr_str("gen_ai.request.model").is_some()).expect("the span");
    assert_clean("span", &span_text(span));
    assert_eq!(span.attr_str("gen_ai.request.model"), Some("gpt-4o-2024-08-06"), "the SDK's keys are untouched");
    assert_eq!(span.events.len(), 2, "events are kept, redacted");
    assert!(span.attr_str("note").is_some_and(|n| n.starts_with(tag)), "text around identifiers stays");
    assert!(span.attr_str("password").is_none_or(|p| !p.contains("hunter2")), "the key rule applies");
}

#[test]
fn the_agent_stream_and_agent_spans_are_redacted() {
    receiver();
    let tag = "agent-tag";
    let events = MemoryTraceSink::new();
    let tracer = AgentTracer::new(AgentTracerConfig {
        trace: AgentTrace { trace_name: format!("Flow {tag}"), flow_id: "flow-redact".into(), ..Default::default() },
        enable_otel: true,
        capture: Some(CaptureLevel::RequestResponse),
        agent_description: Some(phi("description")),
        ..Default::default()
    })
    .unwrap()
    .sink(events.clone());
    tracer.start_trace();
    tracer
        .component("c1", "Writer")
        .kind("llm")
        .inputs(json!({"prompt": phi(tag)}))
        .metadata(json!({"note": phi(tag)}))
        .start();
    tracer.llm_call_start("c1", "gpt-4o", json!({"messages": [{"role": "user", "content": phi(tag)}]}));
    tracer.llm_call_end("c1", json!({"text": phi(tag)}), Some(&phi("llm error")));
    tracer.end_trace(
        "c1",
        "Writer",
        json!({"answer": phi(tag), "model": "gpt-4o", "input_tokens": 3, "output_tokens": 1}),
        Some(&phi("error")),
    );
    tracer.add_tags([("patient", phi("tag"))]);
    tracer.set_param("contact", phi("param"));
    tracer.custom_event("note", json!({"text": phi(tag), "ssn": "123-45-6789"}));
    tracer.end(
        json!({"question": phi(tag)}),
        json!({"reply": phi(tag)}),
        Some(&phi("trace error")),
        Some(json!({"m": phi(tag)})),
    );

    let stream = events.json();
    assert_eq!(stream.len(), 7);
    for event in &stream {
        assert_clean("agent stream event", &event.to_string());
    }
    assert!(stream[1]["input_data"]["prompt"].as_str().unwrap().starts_with(tag), "content is there, redacted");
    assert_eq!(stream[4]["metadata"]["input_tokens"], 3, "counts are untouched");
    let spans = spans_tagged(tag, 2);
    for span in &spans {
        assert_clean("agent span", &span_text(span));
    }
    assert!(spans.iter().any(|s| s.attributes.contains_key("gen_ai.input.messages")));
}

#[test]
fn workflow_events_spans_and_logs_are_redacted() {
    receiver();
    let tag = "workflow-tag";
    let events = MemoryWorkflowSink::new();
    let wf = WorkflowTracer::new(format!("intake {tag}")).attr("patient", phi(tag)).stream(events.clone(), "svc");
    wf.set("email", "jane.roe@example.org");
    wf.log(phi("log"));
    let mut step = wf.step("lookup");
    step.set("note", phi(tag)).set("mrn", "00442211").log(phi("step log")).record_error(phi("step error"));
    step.finish();
    wf.finish();

    let stream = events.json();
    assert!(stream.len() >= 4, "{stream:?}");
    for event in &stream {
        assert_clean("workflow event", &event.to_string());
    }
    let spans = spans_tagged(tag, 2);
    for span in &spans {
        assert_clean("workflow span", &span_text(span));
    }
    let summary = wf.get_summary();
    assert!(summary.to_string().contains("123-45-6789"), "the in-process summary is the caller's own data, unredacted");
}
