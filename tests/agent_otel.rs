//! AgentTracer's OpenTelemetry dual export, received by a real OTLP/HTTP receiver: one trace span, one child span
//! per component linked by component id (concurrent components are siblings, a nested one is its parent's
//! child), GenAI attributes and cost on LLM components, error status on failed ones.

mod common;

use std::time::Duration;

use common::otlp::OtlpReceiver;
use observer::trace::{configure_tracing, AgentTrace, AgentTracer, AgentTracerConfig, MemoryTraceSink, TracingConfig};
use observer::{calculate_cost_cached, CaptureLevel};
use serde_json::json;

#[test]
fn components_become_child_spans_linked_by_component_id() {
    let receiver = OtlpReceiver::start();
    common::memory_sink();
    configure_tracing(TracingConfig {
        service_name: "agent-otel-test".into(),
        otlp_endpoint: Some(receiver.endpoint()),
        ..Default::default()
    })
    .expect("configure_tracing");

    let tracer = AgentTracer::new(AgentTracerConfig {
        trace: AgentTrace {
            trace_name: "Support Flow".into(),
            flow_id: "flow-otel".into(),
            session_id: Some("session-1".into()),
            ..Default::default()
        },
        enable_otel: true,
        agent_description: Some("Answers support questions".into()),
        ..Default::default()
    })
    .unwrap()
    .sink(MemoryTraceSink::new());
    tracer.start_trace();
    // An unrelated span is current while the components run: it must not become their parent.
    let unrelated = tracing::info_span!("unrelated-request");
    let _entered = unrelated.enter();
    std::thread::scope(|s| {
        for id in ["a", "b"] {
            let tracer = tracer.clone();
            s.spawn(move || {
                tracer.add_trace(id, &format!("Worker-{id}"), "tool", json!({}));
                std::thread::sleep(Duration::from_millis(10));
                let error = (id == "b").then_some("tool failed");
                tracer.end_trace(id, &format!("Worker-{id}"), json!({}), error);
            });
        }
    });
    tracer.add_trace("gen", "Generator", "llm", json!({"prompt": "GEN-INPUT-MARKER"}));
    tracer.component("inner", "Formatter").parent("gen").kind("processing").start();
    tracer.end_trace("inner", "Formatter", json!({}), None);
    tracer.end_trace(
        "gen",
        "Generator",
        json!({"model": "claude-3-haiku-20240307", "text": "GEN-OUTPUT-MARKER", "usage": {"input_tokens": 1000,
               "output_tokens": 500, "cache_read_input_tokens": 0}}),
        None,
    );
    tracer.end(json!({}), json!({}), None, None);
    drop(_entered);
    observer::flush(Duration::from_secs(10)).expect("spans exported");

    let spans = receiver
        .wait_for(Duration::from_secs(15), |s| s.iter().filter(|s| s.attr_str("agent.trace_id").is_some()).count() >= 5)
        .expect("the trace span and four component spans arrive");
    let ours: Vec<_> = spans.iter().filter(|s| s.attr_str("agent.trace_id") == Some(tracer.trace_id())).collect();
    let span = |name: &str| *ours.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("span {name}"));
    let root = span("invoke_agent Support Flow");
    assert!(root.parent_span_id.is_none(), "the trace span is a root, not a child of the current span");
    assert_eq!(root.attr_str("gen_ai.operation.name"), Some("invoke_agent"));
    assert_eq!(root.attr_str("gen_ai.conversation.id"), Some("session-1"));
    assert_eq!(root.attr_str("gen_ai.agent.name"), Some("Support Flow"));
    assert_eq!(root.attr_str("gen_ai.agent.id"), Some("flow-otel"));
    assert_eq!(root.attr_str("gen_ai.agent.description"), Some("Answers support questions"));
    let (a, b, gen, inner) = (span("Worker-a"), span("Worker-b"), span("Generator"), span("Formatter"));
    for child in [a, b, gen] {
        assert_eq!(child.trace_id, root.trace_id);
        assert_eq!(
            child.parent_span_id.as_deref(),
            Some(root.span_id.as_str()),
            "{} is a child of the trace",
            child.name
        );
    }
    assert_eq!(inner.parent_span_id.as_deref(), Some(gen.span_id.as_str()), "explicit parent by component id");
    assert_eq!(a.attr_str("gen_ai.tool.name"), Some("Worker-a"));
    assert_eq!(b.status_code, 2, "error status");
    assert_eq!(b.status_message, "tool failed");
    assert!(b.end_time_unix_nano - b.start_time_unix_nano >= 10_000_000, "the span lasts as long as the component");
    assert_eq!(gen.attr_str("gen_ai.operation.name"), Some("chat"));
    assert_eq!(gen.attr_str("gen_ai.request.model"), Some("claude-3-haiku-20240307"));
    assert_eq!(gen.attr_str("gen_ai.provider.name"), Some("anthropic"));
    assert_eq!(gen.attributes["gen_ai.usage.input_tokens"], json!(1000));
    assert_eq!(gen.attributes["gen_ai.usage.output_tokens"], json!(500));
    let cost = calculate_cost_cached("anthropic", "claude-3-haiku-20240307", 1000, 500, 0).total_cost;
    assert_eq!(gen.attributes["gen_ai.cost"].as_f64().unwrap(), cost);
    assert_eq!(root.attributes["gen_ai.cost"].as_f64().unwrap(), cost);
    assert!(!gen.attributes.contains_key("observer.cost_trusted"), "a sane cost carries no untrusted flag");
    assert!(!root.attributes.contains_key("observer.cost_trusted"));
    // The default capture level (Metadata): no content on any span.
    for s in &ours {
        let text = format!("{} {:?} {:?} {}", s.name, s.attributes, s.events, s.status_message);
        assert!(!text.contains("MARKER"), "content at Metadata: {text}");
        assert!(
            !s.attributes.contains_key("gen_ai.input.messages") && !s.attributes.contains_key("gen_ai.output.messages")
        );
    }

    // At RequestResponse: the LLM component's and the trace's content as the conventions' messages; an agent
    // component carries gen_ai.agent.*; a tool carries no content.
    let full = AgentTracer::new(AgentTracerConfig {
        trace: AgentTrace { trace_name: "Full Flow".into(), flow_id: "flow-full".into(), ..Default::default() },
        enable_otel: true,
        capture: Some(CaptureLevel::RequestResponse),
        ..Default::default()
    })
    .unwrap()
    .sink(MemoryTraceSink::new());
    full.start_trace();
    full.add_trace("planner", "Planner", "agent", json!({}));
    full.end_trace("planner", "Planner", json!({}), None);
    full.add_trace("t", "Lookup", "tool", json!({"q": "TOOL-IN"}));
    full.end_trace("t", "Lookup", json!({"r": "TOOL-OUT"}), None);
    full.add_trace("llm", "Writer", "llm", json!({"messages": [{"role": "user", "content": "WRITER-IN"}]}));
    full.end_trace("llm", "Writer", json!("WRITER-OUT"), None);
    full.end(json!("FLOW-IN"), json!("FLOW-OUT"), None, None);
    observer::flush(Duration::from_secs(10)).expect("spans exported");
    let spans = receiver
        .wait_for(Duration::from_secs(15), |s| {
            s.iter().filter(|s| s.attr_str("agent.trace_id") == Some(full.trace_id())).count() >= 4
        })
        .expect("the full trace's spans arrive");
    let ours: Vec<_> = spans.iter().filter(|s| s.attr_str("agent.trace_id") == Some(full.trace_id())).collect();
    let span = |name: &str| *ours.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("span {name}"));
    let messages = |s: &common::otlp::ReceivedSpan, key: &str| -> serde_json::Value {
        serde_json::from_str(s.attr_str(key).unwrap_or_else(|| panic!("{key} on {}", s.name))).unwrap()
    };
    let writer = span("Writer");
    assert_eq!(
        messages(writer, "gen_ai.input.messages"),
        json!([{"role": "user", "parts": [{"type": "text", "content": "WRITER-IN"}]}])
    );
    assert_eq!(
        messages(writer, "gen_ai.output.messages"),
        json!([{"role": "assistant", "parts": [{"type": "text", "content": "WRITER-OUT"}], "finish_reason": "stop"}])
    );
    let root = span("invoke_agent Full Flow");
    assert_eq!(messages(root, "gen_ai.input.messages")[0]["parts"][0]["content"], "FLOW-IN");
    assert_eq!(messages(root, "gen_ai.output.messages")[0]["parts"][0]["content"], "FLOW-OUT");
    let planner = span("Planner");
    assert_eq!(planner.attr_str("gen_ai.operation.name"), Some("invoke_agent"));
    assert_eq!(
        (planner.attr_str("gen_ai.agent.name"), planner.attr_str("gen_ai.agent.id")),
        (Some("Planner"), Some("planner"))
    );
    let tool = span("Lookup");
    assert!(!format!("{:?}", tool.attributes).contains("TOOL-"), "tool spans carry no content");

    // A component whose token count is absurd: its span and the trace span say the cost is not trustworthy.
    let absurd = AgentTracer::new(AgentTracerConfig {
        trace: AgentTrace { trace_name: "Absurd Flow".into(), flow_id: "flow-absurd".into(), ..Default::default() },
        enable_otel: true,
        ..Default::default()
    })
    .unwrap()
    .sink(MemoryTraceSink::new());
    absurd.start_trace();
    absurd.add_trace("big", "Generator", "llm", json!({}));
    absurd.end_trace(
        "big",
        "Generator",
        json!({"model": "gpt-4o", "prompt_tokens": 1e300, "completion_tokens": 1}),
        None,
    );
    absurd.end(json!({}), json!({}), None, None);
    observer::flush(Duration::from_secs(10)).expect("spans exported");
    let spans = receiver
        .wait_for(Duration::from_secs(15), |s| {
            s.iter().filter(|s| s.attr_str("agent.trace_id") == Some(absurd.trace_id())).count() >= 2
        })
        .expect("the absurd trace's two spans arrive");
    let ours: Vec<_> = spans.iter().filter(|s| s.attr_str("agent.trace_id") == Some(absurd.trace_id())).collect();
    for span in ours {
        assert_eq!(span.attributes["observer.cost_trusted"], json!(false), "{}", span.name);
    }
}
