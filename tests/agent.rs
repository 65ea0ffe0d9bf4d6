//! AgentTracer without a broker (events captured by a `MemoryTraceSink`): the event sequence and every field of
//! each event type, tokens and cost from outputs, totals under concurrency, out-of-order calls, TracerFactory
//! and `#[agent_component]`.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use observer::trace::{
    AgentTrace, AgentTracer, AgentTracerConfig, MemoryTraceSink, TraceEvent, TraceEventType, TracerFactory,
};
use observer::{calculate_cost_cached, CaptureLevel, ObserverConfig, ScopeExt};
use serde_json::{json, Value};

fn tracer(name: &str) -> (AgentTracer, MemoryTraceSink) {
    let sink = MemoryTraceSink::new();
    let tracer = AgentTracer::new(AgentTracerConfig {
        trace: AgentTrace {
            trace_name: name.into(),
            flow_id: "flow-123".into(),
            user_id: Some("user-456".into()),
            session_id: Some("session-789".into()),
            ..Default::default()
        },
        project_name: "SupportProject".into(),
        environment: "staging".into(),
        // The wire-format tests check every field, content included.
        capture: Some(CaptureLevel::RequestResponse),
        ..Default::default()
    })
    .unwrap()
    .sink(sink.clone());
    (tracer, sink)
}

/// A tracer at `level` (`None`: the process's level, `Metadata` in this binary: `init` is never called).
fn tracer_at(level: Option<CaptureLevel>) -> (AgentTracer, MemoryTraceSink) {
    let sink = MemoryTraceSink::new();
    let config = AgentTracerConfig {
        trace: AgentTrace { trace_name: "capture".into(), ..Default::default() },
        capture: level,
        ..Default::default()
    };
    (AgentTracer::new(config).unwrap().sink(sink.clone()), sink)
}

/// Runs a flow whose inputs and outputs hold marker text (and usage), with one component per level override.
fn marked_flow(tracer: &AgentTracer) {
    tracer.start_trace();
    tracer.add_trace("c1", "Classifier", "llm", json!({"query": "INPUT-MARKER patient question"}));
    tracer.llm_call_start("c1", "gpt-4o", json!({"messages": [{"role": "user", "content": "LLM-INPUT-MARKER"}]}));
    tracer.llm_call_end(
        "c1",
        json!({"text": "LLM-OUTPUT-MARKER", "usage": {"prompt_tokens": 7, "completion_tokens": 3}}),
        None,
    );
    tracer.end_trace(
        "c1",
        "Classifier",
        json!({"answer": "OUTPUT-MARKER reply", "model": "gpt-4o", "usage": {"prompt_tokens": 10, "completion_tokens": 5}}),
        None,
    );
    tracer.end(json!({"flow_input": "TRACE-INPUT-MARKER"}), json!({"flow_output": "TRACE-OUTPUT-MARKER"}), None, None);
}

fn stream_text(sink: &MemoryTraceSink) -> String {
    sink.json().iter().map(Value::to_string).collect::<Vec<_>>().join("\n")
}

#[test]
fn agent_capture_levels_gate_inputs_and_outputs() {
    // Default (the process's level: Metadata before init): counts, models, ids, timings; no content at all.
    let (tracer, sink) = tracer_at(None);
    assert_eq!(tracer.capture_level(), CaptureLevel::Metadata);
    marked_flow(&tracer);
    let text = stream_text(&sink);
    assert!(!text.contains("MARKER"), "content at Metadata: {text}");
    let events = sink.events();
    assert_eq!(events.len(), 6, "every event is still sent");
    assert!(events.iter().all(|e| e.input_data.is_none() && e.output_data.is_none()));
    let end = of_type(&events, TraceEventType::SpanEnd)[0];
    assert_eq!((end.metadata["input_tokens"].clone(), end.metadata["model"].clone()), (json!(10), json!("gpt-4o")));
    assert!(end.duration_ms.is_some());
    assert_eq!(tracer.totals().input_tokens, 10);

    // Request: inputs, never outputs.
    let (tracer, sink) = tracer_at(Some(CaptureLevel::Request));
    marked_flow(&tracer);
    let text = stream_text(&sink);
    for marker in ["\"INPUT-MARKER", "LLM-INPUT-MARKER", "TRACE-INPUT-MARKER"] {
        assert!(text.contains(marker), "{marker} at Request");
    }
    assert!(!text.contains("OUTPUT-MARKER"), "{text}");

    // RequestResponse: both.
    let (tracer, sink) = tracer_at(Some(CaptureLevel::RequestResponse));
    marked_flow(&tracer);
    let text = stream_text(&sink);
    for marker in ["\"INPUT-MARKER", "\"OUTPUT-MARKER", "LLM-OUTPUT-MARKER", "TRACE-OUTPUT-MARKER"] {
        assert!(text.contains(marker), "{marker} at RequestResponse");
    }

    // None on the tracer: the trace's own events only, no component events; totals still count.
    let (tracer, sink) = tracer_at(Some(CaptureLevel::None));
    marked_flow(&tracer);
    let types: Vec<_> = sink.events().iter().map(|e| e.event_type).collect();
    assert_eq!(types, [TraceEventType::TraceStart, TraceEventType::TraceEnd]);
    assert!(!stream_text(&sink).contains("MARKER"));
    assert_eq!(tracer.totals().input_tokens, 10);
    assert_eq!(sink.events()[1].metadata["total_input_tokens"], 10);
}

#[test]
fn a_component_can_capture_more_or_less_than_its_tracer() {
    let (tracer, sink) = tracer_at(Some(CaptureLevel::Metadata));
    tracer.start_trace();
    tracer
        .component("open", "Retriever")
        .kind("retrieval")
        .inputs(json!({"q": "OPEN-IN"}))
        .capture(CaptureLevel::RequestResponse)
        .start();
    tracer.end_trace("open", "Retriever", json!({"docs": "OPEN-OUT"}), None);
    tracer
        .component("hidden", "Tool")
        .kind("tool")
        .inputs(json!({"q": "HIDDEN-IN"}))
        .capture(CaptureLevel::None)
        .start();
    tracer.end_trace("hidden", "Tool", json!({"r": "HIDDEN-OUT", "input_tokens": 4, "output_tokens": 1}), None);
    tracer.add_trace("plain", "Other", "tool", json!({"q": "PLAIN-IN"}));
    tracer.end_trace("plain", "Other", json!({"r": "PLAIN-OUT"}), None);
    tracer.end(json!({}), json!({}), None, None);
    let text = stream_text(&sink);
    assert!(text.contains("OPEN-IN") && text.contains("OPEN-OUT"));
    assert!(!text.contains("HIDDEN") && !text.contains("\"hidden\""), "a None component sends nothing: {text}");
    assert!(!text.contains("PLAIN-IN") && !text.contains("PLAIN-OUT"));
    assert_eq!(tracer.totals().input_tokens, 4, "the None component's tokens count");
}

fn of_type(events: &[TraceEvent], t: TraceEventType) -> Vec<&TraceEvent> {
    events.iter().filter(|e| e.event_type == t).collect()
}

fn json_of(sink: &MemoryTraceSink) -> Vec<Value> {
    sink.json()
}

#[test]
fn guide_flow_sends_four_events_with_every_field() {
    let (tracer, sink) = tracer("Customer Support Flow");
    tracer.start_trace();
    tracer.add_trace("comp-1", "QueryClassifier", "llm", json!({"query": "How do I reset my password?"}));
    tracer.end_trace(
        "comp-1",
        "QueryClassifier",
        json!({"classification": "account", "model": "gpt-4o", "input_tokens": 100, "output_tokens": 50}),
        None,
    );
    tracer.add_tags([("team", "support"), ("topic", "password")]);
    tracer.set_param("temperature", 0.2);
    tracer.set_metric("latency_budget_ms", 500);
    tracer.end(json!({"question": "reset"}), json!({"answer": "Use the link"}), None, Some(json!({"run": 7})));

    let events = json_of(&sink);
    let types: Vec<&str> = events.iter().map(|e| e["event_type"].as_str().unwrap()).collect();
    assert_eq!(types, ["trace_start", "span_start", "span_end", "trace_end"]);
    let trace_id = tracer.trace_id();
    assert_eq!(trace_id.len(), 36);
    let mut ids = std::collections::HashSet::new();
    for e in &events {
        // Context on every event: the reference lost project_name after the first one.
        assert_eq!(e["trace_id"], trace_id);
        assert_eq!(e["project_name"], "SupportProject");
        assert_eq!(e["flow_id"], "flow-123");
        assert_eq!(e["flow_name"], "Customer Support Flow");
        assert_eq!(e["user_id"], "user-456");
        assert_eq!(e["session_id"], "session-789");
        assert!(ids.insert(e["event_id"].as_str().unwrap().to_owned()), "unique event ids");
        assert_eq!(e["event_id"].as_str().unwrap().len(), 36);
        let ts = e["timestamp"].as_str().unwrap();
        assert!(ts.ends_with('Z') && ts.len() == 27, "RFC 3339 µs UTC: {ts}");
    }

    let start = &events[0];
    assert_eq!(start["metadata"], json!({"environment": "staging"}));
    for absent in ["span_id", "component_name", "duration_ms", "input_data", "output_data", "error"] {
        assert!(start.get(absent).is_none(), "trace_start has no {absent}");
    }

    let span_start = &events[1];
    assert_eq!(span_start["span_id"], "comp-1");
    assert_eq!(span_start["component_name"], "QueryClassifier");
    assert_eq!(span_start["component_type"], "llm");
    assert_eq!(span_start["component_index"], 0);
    assert_eq!(span_start["input_data"], json!({"query": "How do I reset my password?"}));
    assert!(span_start.get("parent_span_id").is_none());

    let span_end = &events[2];
    assert_eq!(span_end["span_id"], "comp-1");
    assert_eq!(span_end["component_name"], "QueryClassifier");
    assert!(span_end["duration_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(span_end["output_data"]["classification"], "account");
    assert!(span_end.get("error").is_none());
    let m = &span_end["metadata"];
    assert_eq!(m["component_name"], "QueryClassifier");
    assert_eq!(m["status"], "success");
    assert_eq!(m["component_type"], "llm");
    assert_eq!(m["model"], "gpt-4o");
    assert_eq!(m["provider"], "openai");
    assert_eq!(m["input_tokens"], 100);
    assert_eq!(m["output_tokens"], 50);
    let expected = calculate_cost_cached("openai", "gpt-4o", 100, 50, 0);
    assert!(expected.price_found);
    assert_eq!(m["cost"].as_f64().unwrap(), expected.total_cost);

    let end = &events[3];
    assert!(end["duration_ms"].as_f64().unwrap() >= span_end["duration_ms"].as_f64().unwrap());
    assert_eq!(end["input_data"], json!({"question": "reset"}), "end()'s inputs are kept");
    assert_eq!(end["output_data"], json!({"answer": "Use the link"}), "end()'s outputs are kept");
    assert!(end.get("error").is_none());
    let m = &end["metadata"];
    assert_eq!(m["flow_id"], "flow-123");
    assert_eq!(m["flow_name"], "Customer Support Flow");
    assert_eq!(m["total_spans"], 1);
    assert_eq!(m["status"], "success");
    assert_eq!(m["project_name"], "SupportProject");
    assert_eq!(m["total_input_tokens"], 100);
    assert_eq!(m["total_output_tokens"], 50);
    assert_eq!(m["total_cost"].as_f64().unwrap(), expected.total_cost);
    // Tags, params and metrics flattened into metadata, as the reference writes them.
    assert_eq!((&m["team"], &m["topic"]), (&json!("support"), &json!("password")));
    assert_eq!(m["temperature"], 0.2);
    assert_eq!(m["latency_budget_ms"], 500);
    assert_eq!(m["run"], 7, "end()'s metadata is kept");
    assert!(m.get("warnings").is_none());
    assert!(tracer.warnings().is_empty());
}

#[test]
fn cost_on_span_end_equals_the_cost_module_for_raw_dated_claude_ids() {
    let (tracer, sink) = tracer("claude-costs");
    tracer.start_trace();
    // Anthropic Messages bodies: `input_tokens` excludes cache reads, which are priced at the cache rate.
    let bodies = [
        (
            "sonnet",
            json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-3-5-sonnet-20241022",
                   "content": [{"type": "text", "text": "Hi"}], "stop_reason": "end_turn",
                   "usage": {"input_tokens": 500, "cache_read_input_tokens": 1500, "output_tokens": 500}}),
            ("claude-3-5-sonnet-20241022", 2000, 500, 1500),
        ),
        (
            "haiku",
            json!({"message": {"model": "claude-3-haiku-20240307",
                   "usage": {"input_tokens": 1000, "output_tokens": 500}}}),
            ("claude-3-haiku-20240307", 1000, 500, 0),
        ),
    ];
    let mut total = 0.0;
    for (id, body, _) in &bodies {
        tracer.add_trace(id, "Generator", "", json!({}));
        tracer.end_trace(id, "Generator", body.clone(), None);
    }
    tracer.end(json!({}), json!({}), None, None);
    let events = sink.events();
    for (id, _, (model, input, output, cached)) in &bodies {
        let end = events.iter().find(|e| e.event_type == TraceEventType::SpanEnd && e.span_id.as_deref() == Some(id));
        let m = &end.unwrap().metadata;
        let expected = calculate_cost_cached("anthropic", model, *input, *output, *cached);
        assert!(expected.price_found, "{model} is priced");
        assert_eq!(m["model"], *model);
        assert_eq!(m["provider"], "anthropic");
        assert_eq!(m["component_type"], "llm", "inferred from the model");
        assert_eq!(m["input_tokens"], *input);
        assert_eq!(m["cost"].as_f64().unwrap(), expected.total_cost, "{model}");
        total += expected.total_cost;
    }
    // The guide's figure: 2000 in (1500 cached) / 500 out on claude-3-5-sonnet → input cost 0.00195.
    assert!(
        (calculate_cost_cached("anthropic", "claude-3-5-sonnet-20241022", 2000, 500, 1500).input_cost - 0.00195).abs()
            < 1e-12
    );
    let trace_end = events.last().unwrap();
    assert!((trace_end.metadata["total_cost"].as_f64().unwrap() - total).abs() < 1e-12);
    assert_eq!(trace_end.metadata["total_input_tokens"], 3000);
}

#[test]
fn nested_and_unpriced_usage_counts_toward_the_totals() {
    let (tracer, sink) = tracer("nested");
    tracer.start_trace();
    // A LangChain message nested in the outputs.
    tracer.add_trace("c1", "Agent", "", json!({}));
    tracer.end_trace(
        "c1",
        "Agent",
        json!({"result": {"message": {
            "content": "done",
            "response_metadata": {"model_name": "gpt-4o-mini", "token_usage": {"prompt_tokens": 30, "completion_tokens": 7}},
            "usage_metadata": {"input_tokens": 30, "output_tokens": 7, "input_token_details": {"cache_read": 10}}
        }}}),
        None,
    );
    // Usage without any model: counted, not priced.
    tracer.add_trace("c2", "Tool", "tool", json!({}));
    tracer.end_trace("c2", "Tool", json!({"usage": {"prompt_tokens": 5, "completion_tokens": 5}}), None);
    // A model no one prices: counted, no cost.
    tracer.add_trace("c3", "Local", "", json!({}));
    tracer.end_trace("c3", "Local", json!({"model": "my-finetune-xyz", "input_tokens": 1, "output_tokens": 2}), None);
    tracer.end(json!({}), json!({}), None, None);

    let totals = tracer.totals();
    assert_eq!((totals.input_tokens, totals.output_tokens, totals.cached_tokens), (36, 14, 10));
    let mini = calculate_cost_cached("openai", "gpt-4o-mini", 30, 7, 10);
    assert!((totals.total_cost - mini.total_cost).abs() < 1e-12);
    let events = sink.events();
    let ends = of_type(&events, TraceEventType::SpanEnd);
    assert_eq!(ends[0].metadata["model"], "gpt-4o-mini");
    assert_eq!(ends[0].metadata["cached_tokens"], 10);
    assert_eq!(ends[0].metadata["component_type"], "llm");
    assert!(ends[1].metadata.get("model").is_none());
    assert!(ends[1].metadata.get("cost").is_none());
    assert_eq!(ends[1].metadata["input_tokens"], 5);
    assert_eq!(ends[1].metadata["component_type"], "tool", "a given type is kept");
    assert!(ends[2].metadata.get("cost").is_none(), "unknown model: no price, no made-up cost");
}

#[test]
fn component_types_are_inferred_from_names() {
    let (tracer, sink) = tracer("types");
    let names = [
        ("AgentExecutor", "agent"),
        ("ChatInput", "input"),
        ("ChatOutput", "output"),
        ("VectorStoreRetriever", "retrieval"),
        ("ConversationMemory", "memory"),
        ("WeatherTool", "tool"),
        ("ParseData", "processing"),
        ("OpenAIModel", "llm"),
        ("Something", "component"),
    ];
    for (i, (name, _)) in names.iter().enumerate() {
        tracer.add_trace(&format!("c{i}"), name, "", json!({}));
    }
    let events = sink.events();
    for (i, (name, kind)) in names.iter().enumerate() {
        let e = of_type(&events, TraceEventType::SpanStart)[i];
        assert_eq!(e.component_name.as_deref(), Some(*name));
        assert_eq!(e.component_type.as_deref(), Some(*kind), "{name}");
        assert_eq!(e.component_index, Some(i as u32));
    }
    // A model named in the component's metadata makes it an LLM and prices its output.
    tracer.component("m1", "Generator").metadata(json!({"model": "gpt-4o"})).inputs(json!({"q": 1})).start();
    tracer.end_trace("m1", "Generator", json!({"usage": {"prompt_tokens": 10, "completion_tokens": 10}}), None);
    let events = sink.events();
    let start = events.iter().rev().find(|e| e.event_type == TraceEventType::SpanStart).unwrap();
    assert_eq!(start.component_type.as_deref(), Some("llm"));
    assert_eq!(start.metadata["model"], "gpt-4o");
    let end = events.last().unwrap();
    assert_eq!(end.metadata["cost"].as_f64().unwrap(), calculate_cost_cached("openai", "gpt-4o", 10, 10, 0).total_cost);
}

#[test]
fn concurrent_components_keep_exact_totals_and_per_component_order() {
    let (tracer, sink) = tracer("concurrent");
    tracer.start_trace();
    const THREADS: usize = 8;
    const PER_THREAD: usize = 200;
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let tracer = tracer.clone();
            s.spawn(move || {
                for i in 0..PER_THREAD {
                    let id = format!("t{t}-c{i}");
                    tracer.add_trace(&id, "Classifier", "llm", json!({"i": i}));
                    let error = (i % 10 == 0).then_some("model timeout");
                    tracer.end_trace(
                        &id,
                        "Classifier",
                        json!({"model": "gpt-4o", "usage": {"prompt_tokens": 3, "completion_tokens": 2}}),
                        error,
                    );
                }
            });
        }
    });
    tracer.end(json!({}), json!({}), None, None);

    let n = (THREADS * PER_THREAD) as u64;
    let totals = tracer.totals();
    assert_eq!(totals.spans, n);
    assert_eq!(totals.failed_spans, n / 10);
    assert_eq!((totals.input_tokens, totals.output_tokens), (3 * n, 2 * n));
    let one = calculate_cost_cached("openai", "gpt-4o", 3, 2, 0).total_cost;
    assert!((totals.total_cost - one * n as f64).abs() < 1e-9);

    let events = sink.events();
    assert_eq!(events.len(), 2 + 2 * n as usize);
    assert_eq!(events.first().unwrap().event_type, TraceEventType::TraceStart);
    assert_eq!(events.last().unwrap().event_type, TraceEventType::TraceEnd);
    let mut position: HashMap<(&str, TraceEventType), usize> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        if let Some(id) = e.span_id.as_deref() {
            assert!(position.insert((id, e.event_type), i).is_none(), "one event of each kind per component");
        }
    }
    for ((id, t), i) in &position {
        if *t == TraceEventType::SpanEnd {
            assert!(position[&(*id, TraceEventType::SpanStart)] < *i, "{id}: span_start before span_end");
        }
    }
    let indexes: std::collections::HashSet<u32> =
        of_type(&events, TraceEventType::SpanStart).iter().map(|e| e.component_index.unwrap()).collect();
    assert_eq!(indexes.len(), n as usize, "component_index is unique");
    let errors = of_type(&events, TraceEventType::SpanEnd).iter().filter(|e| e.error.is_some()).count();
    assert_eq!(errors as u64, n / 10);
    let end = events.last().unwrap();
    assert_eq!(end.metadata["total_spans"], n);
    assert_eq!(end.metadata["failed_spans"], n / 10);
}

#[test]
fn out_of_order_calls_are_reported_and_recorded_not_panicking() {
    let (tracer, sink) = tracer("out-of-order");
    // Before start_trace: the trace is started first.
    tracer.add_trace("a", "First", "tool", json!({}));
    // Unknown component: a span_end without duration; its tokens still count.
    tracer.end_trace("ghost", "Ghost", json!({"input_tokens": 4, "output_tokens": 1}), None);
    tracer.end_trace("a", "First", json!({}), None);
    // Twice: ignored.
    tracer.end_trace("a", "First", json!({"input_tokens": 1000}), None);
    // Starting a running id again: ignored.
    tracer.add_trace("b", "Second", "tool", json!({}));
    tracer.add_trace("b", "Second", "tool", json!({}));
    tracer.start_trace(); // already started
                          // "b" is still running at end: ended with an error.
    tracer.end(json!({}), json!({}), Some("flow failed"), None);
    tracer.end(json!({}), json!({}), None, None); // twice
    tracer.add_trace("late", "Late", "tool", json!({})); // after end: still sent

    let events = sink.events();
    let types: Vec<TraceEventType> = events.iter().map(|e| e.event_type).collect();
    use TraceEventType::*;
    assert_eq!(types, [TraceStart, SpanStart, SpanEnd, SpanEnd, SpanStart, SpanEnd, TraceEnd, SpanStart]);
    let ghost = &events[2];
    assert_eq!(ghost.span_id.as_deref(), Some("ghost"));
    assert!(ghost.duration_ms.is_none());
    assert_eq!(ghost.metadata["input_tokens"], 4);
    let b_end = &events[5];
    assert_eq!(b_end.span_id.as_deref(), Some("b"));
    assert_eq!(b_end.metadata["status"], "error");
    assert!(b_end.error.as_deref().unwrap().contains("ended before the component finished"));
    let end = &events[6];
    assert_eq!(end.error.as_deref(), Some("flow failed"));
    assert_eq!(end.metadata["status"], "error");
    assert_eq!(end.metadata["total_spans"], 3);
    assert_eq!(end.metadata["total_input_tokens"], 4, "the ignored second end_trace did not count");
    let warnings = end.metadata["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 6, "{warnings:?}");
    assert_eq!(tracer.warnings().len(), 8, "end twice and add after end are reported too");
}

#[test]
fn a_tracer_dropped_without_end_ends_its_trace() {
    let sink = MemoryTraceSink::new();
    {
        let tracer = AgentTracer::new(AgentTrace { trace_name: "dropped".into(), ..Default::default() })
            .unwrap()
            .sink(sink.clone());
        tracer.start_trace();
        tracer.add_trace("c", "Work", "tool", json!({}));
        let clone = tracer.clone();
        drop(tracer);
        assert_eq!(sink.events().len(), 2, "a clone still holds the trace");
        drop(clone);
    }
    let events = sink.events();
    let types: Vec<TraceEventType> = events.iter().map(|e| e.event_type).collect();
    assert_eq!(
        types,
        [TraceEventType::TraceStart, TraceEventType::SpanStart, TraceEventType::SpanEnd, TraceEventType::TraceEnd]
    );
    assert_eq!(events[3].metadata["status"], "error");
    assert!(events[3].error.as_deref().unwrap().contains("not ended"));
    assert_eq!(events[3].project_name, "GenesisStudio", "the default project");
}

#[test]
fn custom_extractors_and_llm_call_and_custom_events() {
    let sink = MemoryTraceSink::new();
    let extractors = observer::llm::Extractors::builtin().extractor(|node: &serde_json::Map<String, Value>| {
        let n = node.get("my_tokens")?.as_u64()?;
        Some(observer::llm::LlmInfo {
            usage: Some(observer::llm::TokenUsage::new(n, n)),
            model: Some("gpt-4o".into()),
            provider: None,
        })
    });
    let tracer = AgentTracer::new(AgentTracerConfig {
        trace: AgentTrace { trace_name: "custom".into(), ..Default::default() },
        extractors,
        ..Default::default()
    })
    .unwrap()
    .sink(sink.clone());
    tracer.start_trace();
    tracer.add_trace("c", "Custom", "", json!({}));
    tracer.llm_call_start("c", "gpt-4o", json!({"messages": [{"role": "user", "content": "hi"}]}));
    tracer.llm_call_end("c", json!({"my_tokens": 9}), None);
    tracer.custom_event("cache_hit", json!({"key": "k1"}));
    tracer.end_trace("c", "Custom", json!({"payload": {"my_tokens": 9}}), None);
    tracer.end(json!({}), json!({}), None, None);
    let events = sink.events();
    let call_end = of_type(&events, TraceEventType::LlmCallEnd)[0];
    assert_eq!(call_end.metadata["input_tokens"], 9);
    assert!(call_end.duration_ms.is_some());
    assert_eq!(of_type(&events, TraceEventType::LlmCallStart)[0].metadata["model"], "gpt-4o");
    let custom = of_type(&events, TraceEventType::Custom)[0];
    assert_eq!(custom.metadata["name"], "cache_hit");
    assert_eq!(custom.metadata["key"], "k1");
    assert_eq!(tracer.totals().input_tokens, 9, "llm_call_end is informational; span_end counts once");
}

#[test]
fn the_factory_shares_its_config_across_tracers() {
    let sink = MemoryTraceSink::new();
    let factory = TracerFactory::new(ObserverConfig { service_name: "ai-studio".into(), ..Default::default() })
        .unwrap()
        .project_name("Studio")
        .sink(sink.clone());
    let runs: Vec<AgentTracer> = (0..3)
        .map(|i| {
            factory.create_agent_tracer(AgentTrace {
                flow_id: "flow-123".into(),
                trace_name: format!("run-{i}"),
                user_id: Some("user-456".into()),
                ..Default::default()
            })
        })
        .collect();
    for t in &runs {
        t.start_trace();
        t.add_trace("comp-1", "QueryClassifier", "llm", json!({"query": "..."}));
        t.end_trace("comp-1", "QueryClassifier", json!({"classification": "account"}), None);
        t.end(json!({}), json!({}), None, None);
    }
    let events = sink.events();
    assert_eq!(events.len(), 12);
    let traces: std::collections::HashSet<&str> = events.iter().map(|e| e.trace_id.as_str()).collect();
    assert_eq!(traces.len(), 3, "one trace id per tracer");
    assert!(events.iter().all(|e| e.project_name == "Studio"));
    let wf = factory.create_workflow_tracer("batch");
    assert_eq!(wf.name(), "batch");
    assert!(format!("{factory:?}").contains("memory"));
}

#[cfg(not(feature = "kafka"))]
#[test]
fn kafka_settings_without_the_kafka_feature_are_a_configuration_error() {
    let err =
        AgentTracer::new(AgentTracerConfig { kafka: Some(Default::default()), ..Default::default() }).unwrap_err();
    assert!(err.to_string().contains("kafka"), "{err}");
}

// ---- #[agent_component] ---------------------------------------------------------------------------------

#[derive(Debug, serde::Serialize)]
struct Query {
    text: String,
}

struct NotSerialisable;

#[derive(Debug)]
struct Failure;
impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("retriever unavailable")
    }
}

#[observer::agent_component(name = "QueryClassifier", kind = "llm")]
async fn classify(query: &Query, _client: Arc<()>) -> Result<Value, Failure> {
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let answer = generate(&query.text);
    Ok(json!({"classification": answer, "model": "gpt-4o", "usage": {"prompt_tokens": 12, "completion_tokens": 3}}))
}

#[observer::agent_component(kind = "tool")]
fn generate(prompt: &str) -> String {
    format!("class-of-{}", prompt.len())
}

#[observer::agent_component(name = "Retriever", skip(handle))]
async fn retrieve(top_k: u32, handle: NotSerialisable) -> Result<Vec<String>, Failure> {
    let _ = handle;
    if top_k == 0 {
        return Err(Failure);
    }
    Ok((0..top_k).map(|i| format!("doc-{i}")).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_component_records_inputs_outputs_errors_and_nesting() {
    let (tracer, sink) = tracer("macro-flow");
    tracer.start_trace();
    let q = Query { text: "reset password".into() };
    let flow = async {
        let (a, b, c) =
            tokio::join!(classify(&q, Arc::new(())), retrieve(2, NotSerialisable), retrieve(0, NotSerialisable));
        (a, b, c)
    };
    let (a, b, c) = tracer.scope(flow).await;
    assert_eq!(a.unwrap()["classification"], "class-of-14");
    assert_eq!(b.unwrap().len(), 2);
    assert!(c.is_err());
    tracer.end(json!({}), json!({}), None, None);

    let events = sink.events();
    let starts = of_type(&events, TraceEventType::SpanStart);
    let ends = of_type(&events, TraceEventType::SpanEnd);
    assert_eq!(starts.len(), 4);
    assert_eq!(ends.len(), 4);
    let by_name = |name: &str| starts.iter().filter(|e| e.component_name.as_deref() == Some(name)).collect::<Vec<_>>();
    let classify_start = by_name("QueryClassifier")[0];
    assert_eq!(classify_start.component_type.as_deref(), Some("llm"));
    assert_eq!(
        classify_start.input_data.as_ref().unwrap(),
        &json!({"query": {"text": "reset password"}, "_client": null})
    );
    assert!(classify_start.parent_span_id.is_none(), "concurrent components are siblings");
    let generate_start = by_name("generate")[0];
    assert_eq!(generate_start.component_type.as_deref(), Some("tool"));
    assert_eq!(generate_start.input_data.as_ref().unwrap(), &json!({"prompt": "reset password"}));
    assert_eq!(generate_start.parent_span_id, classify_start.span_id, "nested: the caller is the parent");
    for r in by_name("Retriever") {
        assert_eq!(r.input_data.as_ref().unwrap().as_object().unwrap().keys().collect::<Vec<_>>(), ["top_k"]);
        assert!(r.parent_span_id.is_none());
    }
    let end_of = |id: &Option<String>| ends.iter().find(|e| &e.span_id == id).unwrap();
    let classify_end = end_of(&classify_start.span_id);
    assert_eq!(classify_end.metadata["input_tokens"], 12);
    assert_eq!(
        classify_end.metadata["cost"].as_f64().unwrap(),
        calculate_cost_cached("openai", "gpt-4o", 12, 3, 0).total_cost
    );
    assert!(classify_end.duration_ms.unwrap() >= 5.0);
    assert_eq!(end_of(&generate_start.span_id).output_data.as_ref().unwrap(), "class-of-14");
    let failed: Vec<_> = ends.iter().filter(|e| e.error.is_some()).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].error.as_deref(), Some("retriever unavailable"));
    assert_eq!(failed[0].metadata["status"], "error");
    assert_eq!(tracer.totals().input_tokens, 12);
}

#[test]
fn agent_component_outside_a_trace_is_a_plain_call() {
    assert_eq!(generate("abc"), "class-of-3");
    assert!(observer::trace::current_agent().is_none());
}

#[test]
fn agent_component_in_a_thread_scope_and_a_panicking_component() {
    let (tracer, sink) = tracer("sync-scope");
    tracer.start_trace();
    tracer.scope_sync(|| {
        assert_eq!(generate("xy"), "class-of-2");
        let panicked = std::panic::catch_unwind(|| panicking_component(1));
        assert!(panicked.is_err());
    });
    tracer.end(json!({}), json!({}), None, None);
    let events = sink.events();
    let ends = of_type(&events, TraceEventType::SpanEnd);
    assert_eq!(ends.len(), 2);
    assert_eq!(ends[1].component_name.as_deref(), Some("panicking_component"));
    assert_eq!(ends[1].error.as_deref(), Some("the component panicked"));
}

#[observer::agent_component]
fn panicking_component(x: u8) -> u8 {
    if x == 1 {
        panic!("boom");
    }
    x
}

#[test]
fn huge_outputs_are_previewed_and_the_event_still_sent() {
    let (tracer, sink) = tracer("huge");
    tracer.start_trace();
    tracer.add_trace("c", "Summariser", "llm", json!({"document": "d".repeat(600_000)}));
    let outputs = json!({"text": "y".repeat(2_000_000), "model": "gpt-4o", "usage": {"prompt_tokens": 7, "completion_tokens": 3}});
    tracer.end_trace("c", "Summariser", outputs, None);
    tracer.end(json!({}), json!({}), None, Some(json!({"blob": "z".repeat(1_000_000)})));
    let events = sink.events();
    assert_eq!(events.len(), 4, "every event is sent");
    for e in &events {
        let bytes = serde_json::to_vec(e).unwrap().len();
        assert!(bytes <= observer::trace::MAX_EVENT_BYTES, "{} is {bytes} bytes", e.event_type);
    }
    assert_eq!(events[1].input_data.as_ref().unwrap()["document"].as_str().unwrap().len(), 600_000, "fits: kept");
    let end = &events[2];
    let out = end.output_data.as_ref().unwrap();
    // A 2 MB string is beyond the redaction size budget (1 MiB): it fails closed to a marker before the event is
    // sized, so this event needs no truncation; the trace_end below does.
    assert_eq!(out["text"], "[REDACTED:oversize]");
    assert_eq!(out["model"], "gpt-4o");
    assert_eq!(end.metadata["input_tokens"], 7, "tokens were taken before");
    assert_eq!(end.metadata["cost"].as_f64().unwrap(), calculate_cost_cached("openai", "gpt-4o", 7, 3, 0).total_cost);
    let trace_end = &events[3];
    assert_eq!(trace_end.metadata["total_input_tokens"], 7);
    assert_eq!(trace_end.metadata["user_metadata"]["_truncated"], true);
}

#[test]
fn a_flood_of_out_of_order_calls_is_counted_not_kept() {
    let (tracer, sink) = tracer("flood");
    tracer.start_trace();
    for i in 0..1_000 {
        tracer.end_trace(&format!("ghost-{i}"), "Ghost", Value::Null, None);
    }
    tracer.end(json!({}), json!({}), None, None);
    let end = sink.events().pop().unwrap();
    assert_eq!(end.metadata["warnings"].as_array().unwrap().len(), observer::trace::MAX_WARNINGS);
    assert_eq!(end.metadata["warnings_total"], 1_000);
    assert_eq!(end.metadata["total_spans"], 1_000, "the unknown components still count");
}

#[observer::agent_component(name = "Dispatcher", kind = "agent")]
async fn dispatch(n: u32) -> u32 {
    // A spawned task keeps the trace and its parent component only when wrapped.
    let joined = tokio::spawn(async move { generate("spawned").len() as u32 }.in_current_scope());
    let plain = tokio::spawn(async move { generate("not traced").len() as u32 });
    n + joined.await.unwrap() + plain.await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawned_tasks_join_the_trace_with_in_current_scope() {
    let (tracer, sink) = tracer("spawn");
    tracer.start_trace();
    let n = tracer.scope(dispatch(1)).await;
    assert_eq!(n, 1 + "class-of-7".len() as u32 + "class-of-10".len() as u32);
    tracer.end(json!({}), json!({}), None, None);
    let events = sink.events();
    let starts = of_type(&events, TraceEventType::SpanStart);
    assert_eq!(starts.len(), 2, "the unwrapped spawn is not part of the trace");
    let (parent, child) = (starts[0], starts[1]);
    assert_eq!(parent.component_name.as_deref(), Some("Dispatcher"));
    assert_eq!(child.component_name.as_deref(), Some("generate"));
    assert_eq!(child.parent_span_id, parent.span_id, "the spawned component is the caller's child");
}

// ---------------------------------------------------------------------------------------------
// Durations measure only the user's work (not the SDK's price table), in a fresh process.

/// Child of `first_component_duration_excludes_the_price_table_load`: prints one measurement of a fresh process,
/// selected by `OBSERVER_COLD_MEASURE`: `load` (decoding the price table) or `component` (the duration of the
/// first component of the process, a priced no-op).
#[test]
#[ignore = "run by first_component_duration_excludes_the_price_table_load in a fresh process"]
fn cold_process_measurement() {
    let Ok(what) = std::env::var("OBSERVER_COLD_MEASURE") else { return };
    let ms = match what.as_str() {
        "load" => {
            let t = std::time::Instant::now();
            observer::cost::warm_up();
            t.elapsed().as_secs_f64() * 1000.0
        }
        "component" => {
            let (tracer, sink) = tracer("Cold Flow");
            tracer.start_trace();
            tracer.add_trace("cold-1", "Generator", "", json!({}));
            tracer.end_trace(
                "cold-1",
                "Generator",
                json!({"model": "gpt-4o", "input_tokens": 10, "output_tokens": 5}),
                None,
            );
            let events = json_of(&sink);
            let end = events.iter().find(|e| e["event_type"] == "span_end").expect("span_end");
            assert!(end["metadata"]["cost"].as_f64().is_some_and(|c| c > 0.0), "the component was priced: {end}");
            end["duration_ms"].as_f64().expect("duration_ms")
        }
        other => panic!("unknown measurement {other}"),
    };
    println!("OBSERVER_COLD_MS={ms}");
}

fn cold_measure(what: &str) -> f64 {
    let out = common::child_test("cold_process_measurement").env("OBSERVER_COLD_MEASURE", what).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child ({what}) failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    stdout
        .lines()
        .find_map(|l| l.split_once("OBSERVER_COLD_MS=").map(|(_, v)| v))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no measurement in {stdout}"))
}

/// The first component of a process used to report the time the SDK spent decoding the price table (~0.5 s)
/// as its own duration. Compared with the table's load time measured in another fresh process, a no-op
/// component's duration must be far smaller.
#[test]
fn first_component_duration_excludes_the_price_table_load() {
    let load_ms = cold_measure("load");
    let component_ms = cold_measure("component");
    assert!(
        component_ms * 10.0 < load_ms,
        "the first no-op component took {component_ms:.3} ms; loading the price table takes {load_ms:.3} ms"
    );
}

#[test]
fn flow_name_drops_the_langflow_id_suffix() {
    let (tracer, sink) = tracer("Customer Support Flow - 6f1c1f3e-9a1b-4c62-8f1e-0d2b7c9a1e55");
    tracer.start_trace();
    tracer.add_trace("comp-1", "QueryClassifier", "llm", json!({}));
    tracer.end_trace("comp-1", "QueryClassifier", json!({}), None);
    tracer.end(json!({}), json!({}), None, None);
    let events = json_of(&sink);
    assert_eq!(events.len(), 4);
    for e in &events {
        assert_eq!(e["flow_name"], "Customer Support Flow", "{}", e["event_type"]);
    }
    assert_eq!(events[3]["metadata"]["flow_name"], "Customer Support Flow");
}

#[test]
fn trace_end_flattens_params_and_metrics_like_the_reference() {
    let (tracer, sink) = tracer("Flat");
    tracer.start_trace();
    tracer.set_param("temperature", 0.2);
    tracer.set_metric("latency_budget_ms", 500);
    tracer.end(json!({}), json!({}), None, None);
    let events = json_of(&sink);
    let m = &events.last().expect("trace_end")["metadata"];
    assert_eq!(m["temperature"], 0.2, "{m}");
    assert_eq!(m["latency_budget_ms"], 500, "{m}");
    assert!(m.get("params").is_none() && m.get("metrics").is_none(), "{m}");
}

#[test]
fn absurd_token_counts_are_bounded_and_their_cost_marked_untrusted() {
    let (tracer, sink) = tracer("Absurd");
    tracer.start_trace();
    tracer.add_trace("comp-1", "Generator", "llm", json!({}));
    tracer.end_trace(
        "comp-1",
        "Generator",
        json!({"model": "gpt-4o", "prompt_tokens": 1e300, "completion_tokens": 1}),
        None,
    );
    tracer.add_trace("comp-2", "Summariser", "llm", json!({}));
    tracer.end_trace(
        "comp-2",
        "Summariser",
        json!({"model": "gpt-4o-mini", "prompt_tokens": 1500, "completion_tokens": 1500}),
        None,
    );
    tracer.end(json!({}), json!({}), None, None);
    let events = json_of(&sink);
    let ends: Vec<&Value> = events.iter().filter(|e| e["event_type"] == "span_end").collect();
    let absurd = &ends[0]["metadata"];
    // Whatever the ceiling, no count of one call reaches u64::MAX and no call costs millions.
    assert!(absurd["input_tokens"].as_u64().unwrap() < u64::MAX / 2, "{absurd}");
    assert!(absurd["cost"].as_f64().unwrap() < 1e6, "{absurd}");
    assert_eq!(absurd["cost_trusted"], false, "{absurd}");
    let sane = &ends[1]["metadata"];
    assert!(sane.get("cost_trusted").is_none(), "{sane}");
    // Money without float noise, totals included.
    let end = &events.last().unwrap()["metadata"];
    assert_eq!(end["cost_trusted"], false, "{end}");
    for cost in [sane["cost"].as_f64().unwrap(), end["total_cost"].as_f64().unwrap()] {
        assert_eq!(format!("{cost:.10}").parse::<f64>().unwrap(), cost, "more than 10 decimals");
    }
}

#[test]
fn a_factory_gives_its_tracers_the_configs_capture_level() {
    let make = |config: ObserverConfig| {
        let sink = MemoryTraceSink::new();
        let factory = TracerFactory::new(config).unwrap().sink(sink.clone());
        let tracer = factory.create_agent_tracer(AgentTrace { trace_name: "f".into(), ..Default::default() });
        tracer.start_trace();
        tracer.add_trace("c", "C", "tool", json!({"q": "FACTORY-IN"}));
        tracer.end_trace("c", "C", json!({}), None);
        tracer.end(json!({}), json!({}), None, None);
        (tracer.capture_level(), stream_text(&sink).contains("FACTORY-IN"))
    };
    assert_eq!(make(ObserverConfig::default()), (CaptureLevel::Metadata, false));
    let config = ObserverConfig { capture_level: CaptureLevel::Request, ..Default::default() };
    assert_eq!(make(config), (CaptureLevel::Request, true));
}

#[observer::agent_component(name = "Open", kind = "tool", capture = "request_response")]
fn open_component(text: &str) -> String {
    format!("OPEN-OUT {text}")
}

#[observer::agent_component(name = "Hidden", kind = "tool", capture = "none")]
fn hidden_component(text: &str) -> String {
    format!("HIDDEN-OUT {text}")
}

#[test]
fn agent_component_capture_key_sets_the_components_level() {
    let (tracer, sink) = tracer_at(Some(CaptureLevel::Metadata));
    tracer.start_trace();
    tracer.scope_sync(|| {
        open_component("OPEN-IN");
        hidden_component("HIDDEN-IN");
    });
    tracer.end(json!({}), json!({}), None, None);
    let text = stream_text(&sink);
    assert!(text.contains("OPEN-IN") && text.contains("OPEN-OUT"), "{text}");
    assert!(!text.contains("HIDDEN") && !text.contains("Hidden"), "{text}");
    assert_eq!(of_type(&sink.events(), TraceEventType::SpanStart).len(), 1);
}
