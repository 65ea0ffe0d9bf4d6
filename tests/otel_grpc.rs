//! OTLP over gRPC (feature `otel-grpc`) to a real tonic receiver, from a plain test thread (no Tokio runtime of
//! the caller's): the exporter runs on observer's own small runtime.

mod common;

use std::time::Duration;

use common::otlp::OtlpReceiver;
use observer::trace::{configure_tracing, OtlpProtocol, TracingConfig};

#[test]
fn spans_are_exported_over_grpc() {
    for var in ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL"] {
        assert!(std::env::var_os(var).is_none(), "unset {var} to run this test");
    }
    let receiver = OtlpReceiver::start_grpc();
    let config = TracingConfig {
        service_name: "grpc-service".into(),
        otlp_endpoint: Some(receiver.endpoint()),
        protocol: OtlpProtocol::Grpc,
        ..Default::default()
    };
    assert_eq!(config.export_endpoint().as_deref(), Some(receiver.endpoint().as_str()));
    configure_tracing(config).expect("configure_tracing over gRPC");
    {
        let _parent = tracing::info_span!("process-document", document_id = "doc-123").entered();
        let _child = tracing::info_span!("extract-pages", pages = 3_i64).entered();
    }
    // An LLM call of an agent tracer: its GenAI metrics go over gRPC too (`MetricsService/Export`).
    let tracer = observer::trace::AgentTracer::new(observer::trace::AgentTrace {
        trace_name: "grpc-flow".into(),
        flow_id: "grpc-flow".into(),
        ..Default::default()
    })
    .expect("tracer")
    .sink(observer::trace::MemoryTraceSink::new());
    tracer.llm_call_start("llm", "gpt-4o", serde_json::json!({}));
    tracer.llm_call_end("llm", serde_json::json!({"model": "gpt-4o", "input_tokens": 12, "output_tokens": 3}), None);
    tracer.end(serde_json::json!({}), serde_json::json!({}), None, None);
    observer::flush(Duration::from_secs(10)).expect("flush over gRPC");
    let metrics: Vec<_> = receiver.metric_requests().into_iter().flatten().collect();
    let input = metrics
        .iter()
        .find(|p| p.name == "gen_ai.client.token.usage" && p.attr_str("gen_ai.token.type") == Some("input"))
        .unwrap_or_else(|| panic!("token usage over gRPC: {metrics:#?}"));
    assert_eq!((input.value, input.attr_str("gen_ai.request.model")), (12.0, Some("gpt-4o")));
    assert_eq!(input.resource.get("service.name").and_then(|v| v.as_str()), Some("grpc-service"));
    let spans = receiver
        .wait_for(Duration::from_secs(15), |s| s.len() >= 2)
        .unwrap_or_else(|| panic!("spans over gRPC, got {:?}", receiver.spans()));
    let parent = spans.iter().find(|s| s.name == "process-document").unwrap();
    let child = spans.iter().find(|s| s.name == "extract-pages").unwrap();
    assert_eq!(child.parent_span_id.as_deref(), Some(parent.span_id.as_str()));
    assert_eq!(parent.attr_str("document_id"), Some("doc-123"));
    assert_eq!(child.attributes["pages"], 3);
    assert_eq!(parent.resource_str("service.name"), Some("grpc-service"));
    assert!(receiver.requests()[0].headers.get("content-type").is_some_and(|c| c.starts_with("application/grpc")));

    // Inside a caller's Tokio runtime too, and shutdown (bounded) from there.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        drop(tracing::info_span!("inside-tokio").entered());
        tokio::task::yield_now().await;
        observer::trace::shutdown_tracing().expect("shutdown over gRPC");
    });
    receiver.wait_for(Duration::from_secs(5), |s| s.iter().any(|s| s.name == "inside-tokio")).expect("inside-tokio");
}
