//! Tracing: [`WorkflowTracer`] for step-timed workflows, [`AgentTracer`] for AI Studio (Langflow) flow runs (one
//! span per component, streamed as [`TraceEvent`]s; [`TracerFactory`] shares one configuration), and (feature
//! `otel`) the OpenTelemetry set-up that exports `tracing` spans over OTLP — the guide's "LLM Tracing with
//! Logfire", "Workflow Tracing" and "AI Studio Agent Tracing".
//!
//! With `otel`: `configure_tracing` (the guide's `configure_logfire`), `otel_layer` for your own subscriber,
//! `shutdown_tracing` ([`observer::flush`](crate::flush) flushes spans too); `TracingConfig` says where spans go. With `otel-kafka`, also straight to
//! Kafka as OTLP-JSON (`TracingConfig::kafka_topic`, `KafkaSpanExporter`), without a collector.
//!
//! Custom spans are plain [`tracing`] spans: `tracing::info_span!("process-document", document_id = "doc-123")`.

#[cfg(feature = "otel")]
#[cfg_attr(docsrs, doc(cfg(feature = "otel")))]
pub use crate::config::{OtlpProtocol, TraceSampler, TracingConfig};
#[cfg(feature = "otel")]
#[cfg_attr(docsrs, doc(cfg(feature = "otel")))]
pub use crate::otel::{
    configure_tracing, otel_layer, shutdown_tracing, shutdown_tracing_with_timeout, RedactingSpanExporter,
};

#[cfg(feature = "otel-kafka")]
#[cfg_attr(docsrs, doc(cfg(feature = "otel-kafka")))]
pub use crate::export::kafka::otlp::{KafkaSpanExporter, DEFAULT_OTEL_TOPIC};

pub use crate::agent::{
    current_agent, AgentScope, AgentTotals, AgentTrace, AgentTracer, AgentTracerConfig, ComponentKind, ComponentStart,
    MemoryTraceSink, TraceEvent, TraceEventType, TraceSink, TracerFactory, DEFAULT_PROJECT_NAME, DEFAULT_TRACE_TOPIC,
    MAX_EVENT_BYTES, MAX_WARNINGS,
};
pub use crate::workflow::{
    current_workflow, trace_workflow, MemoryWorkflowSink, Step, StepRecord, StepStatus, WorkflowEvent,
    WorkflowEventType, WorkflowScope, WorkflowSink, WorkflowSummary, WorkflowTracer,
};
