//! Where an [`AgentTracer`](super::AgentTracer)'s events go: the [`TraceSink`] trait, an in-memory sink for
//! tests. The Kafka sink is `observer::export::KafkaTopicSink`.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::ExporterError;

/// The `event_type` of an agent trace event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TraceEventType {
    /// [`AgentTracer::start_trace`](super::AgentTracer::start_trace).
    TraceStart,
    /// [`AgentTracer::add_trace`](super::AgentTracer::add_trace): a component started.
    SpanStart,
    /// [`AgentTracer::end_trace`](super::AgentTracer::end_trace): a component finished.
    SpanEnd,
    /// [`AgentTracer::end`](super::AgentTracer::end).
    TraceEnd,
    /// [`AgentTracer::llm_call_start`](super::AgentTracer::llm_call_start).
    LlmCallStart,
    /// [`AgentTracer::llm_call_end`](super::AgentTracer::llm_call_end).
    LlmCallEnd,
    /// [`AgentTracer::custom_event`](super::AgentTracer::custom_event).
    Custom,
}

impl TraceEventType {
    /// The JSON spelling, e.g. `"span_end"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TraceStart => "trace_start",
            Self::SpanStart => "span_start",
            Self::SpanEnd => "span_end",
            Self::TraceEnd => "trace_end",
            Self::LlmCallStart => "llm_call_start",
            Self::LlmCallEnd => "llm_call_end",
            Self::Custom => "custom",
        }
    }
}

impl fmt::Display for TraceEventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One message of the agent trace stream (topic `genesis-traces-streaming`), in the Langflow/AI Studio format.
///
/// Fields that do not apply to an event are left out of the JSON. Every event carries the trace's context
/// (`trace_id`, `flow_id`, `flow_name`, `user_id`, `session_id`, `project_name`), so each message can be read on its
/// own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceEvent {
    /// A UUID (version 7, time-ordered) per event.
    pub event_id: String,
    /// What happened.
    pub event_type: TraceEventType,
    /// RFC 3339, microseconds, UTC (`Z`).
    pub timestamp: String,
    /// The trace (flow run) id: a UUID string; also the Kafka message key.
    pub trace_id: String,
    /// The component id (span events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span_id: Option<String>,
    /// The parent component's id, for nested components.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_span_id: Option<String>,
    /// The flow id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow_id: Option<String>,
    /// The trace name (the flow's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow_name: Option<String>,
    /// The component's name (span events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_name: Option<String>,
    /// The component's type: `llm`, `tool`, `retrieval`, ... (span events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_type: Option<String>,
    /// The order in which the component was added, from 0 (span events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_index: Option<u32>,
    /// Duration in milliseconds (`span_end`, `trace_end`, `llm_call_end`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    /// Inputs (`span_start`, `trace_end`, `llm_call_start`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_data: Option<Value>,
    /// Outputs (`span_end`, `trace_end`, `llm_call_end`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_data: Option<Value>,
    /// The error message, when the component or the trace failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The user who ran the flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The project, default `"GenesisStudio"`.
    pub project_name: String,
    /// Event-specific details (status, model, tokens, cost, totals, ...).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
}

/// A destination for agent trace events.
///
/// `send` is called on the thread that made the tracer call, while the tracer holds its lock (this is what keeps
/// the events of one trace in order), so it must not block: hand the bytes to a queue.
pub trait TraceSink: Send + Sync + 'static {
    /// Takes one event; `payload` is its JSON and the message key is `event.trace_id`.
    fn send(&self, event: &TraceEvent, payload: &[u8]);

    /// Waits (at most `timeout`) until what was sent is delivered.
    ///
    /// # Errors
    /// When the events could not all be delivered in time.
    fn flush(&self, timeout: Duration) -> Result<(), ExporterError> {
        let _ = timeout;
        Ok(())
    }

    /// A short description for logs and `Debug`, e.g. `kafka genesis-traces-streaming`.
    fn describe(&self) -> String;
}

/// Keeps every event in memory, for tests and for reading a trace back in-process.
#[derive(Debug, Default, Clone)]
pub struct MemoryTraceSink {
    events: Arc<Mutex<Vec<TraceEvent>>>,
}

impl MemoryTraceSink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// The events received so far, in order.
    pub fn events(&self) -> Vec<TraceEvent> {
        self.events.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The events received so far as JSON values (exactly what was serialised).
    pub fn json(&self) -> Vec<Value> {
        self.events().iter().filter_map(|e| serde_json::to_value(e).ok()).collect()
    }

    /// Removes and returns the events received so far.
    pub fn take(&self) -> Vec<TraceEvent> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl TraceSink for MemoryTraceSink {
    fn send(&self, event: &TraceEvent, _payload: &[u8]) {
        self.events.lock().unwrap_or_else(PoisonError::into_inner).push(event.clone());
    }

    fn describe(&self) -> String {
        "memory".into()
    }
}
