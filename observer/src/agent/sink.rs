//! Where an [`AgentTracer`](super::AgentTracer)'s events go: the [`TraceSink`] trait, an in-memory sink for
//! tests, and (feature `kafka`) the trace topic through one shared producer per process.

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

#[cfg(feature = "kafka")]
pub use kafka::KafkaTraceSink;

#[cfg(feature = "kafka")]
mod kafka {
    use std::sync::{Arc, Mutex, PoisonError, Weak};
    use std::time::Duration;

    use super::{TraceEvent, TraceSink};
    use crate::config::KafkaConfig;
    use crate::error::ExporterError;
    use crate::export::kafka::KafkaExporter;

    /// How long an exporter created for agent tracers (not the one of `observer::init`) gets to deliver when the
    /// last tracer and factory using it are dropped; what is left goes to its spool.
    const OWNED_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

    /// Streams trace events to a Kafka topic, keyed by trace id, through a shared [`KafkaExporter`] (acks and
    /// retries as configured, a disk spool for what the broker has not acknowledged).
    #[derive(Clone)]
    pub struct KafkaTraceSink {
        exporter: Producer,
        topic: Arc<str>,
    }

    impl std::fmt::Debug for KafkaTraceSink {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("KafkaTraceSink").field("topic", &self.topic).field("exporter", self.exporter()).finish()
        }
    }

    /// The exporter of `observer::init`, or one created for tracers and shut down when its last user is dropped.
    #[derive(Clone)]
    enum Producer {
        Global(KafkaExporter),
        Owned(Arc<OwnedExporter>),
    }

    struct OwnedExporter {
        key: String,
        exporter: KafkaExporter,
    }

    impl Drop for OwnedExporter {
        fn drop(&mut self) {
            if let Err(e) = self.exporter.shutdown(OWNED_SHUTDOWN_TIMEOUT) {
                crate::diag::report!(
                    WARN,
                    "agent-exporter-shutdown",
                    "agent trace exporter shut down with undelivered events (kept in its spool): {e}"
                );
            }
        }
    }

    /// Exporters created for tracers, one per cluster, shared while any tracer or factory uses them.
    static OWNED: Mutex<Vec<Weak<OwnedExporter>>> = Mutex::new(Vec::new());

    fn cluster_key(config: &KafkaConfig) -> String {
        format!(
            "{}|{}|{}|{}",
            config.bootstrap_servers,
            config.effective_security_protocol().as_str(),
            config.sasl_username.as_deref().unwrap_or(""),
            config.client_id
        )
    }

    impl KafkaTraceSink {
        /// A sink writing to `config.trace_topic`.
        ///
        /// Uses the exporter of `observer::init` when it is connected to the same bootstrap servers; otherwise one
        /// exporter per cluster is created and shared by every tracer of the process, and shut down (flushed,
        /// the rest spooled) when the last one using it is dropped.
        ///
        /// # Errors
        /// The [`KafkaExporter::new`] errors (invalid config, spool directory in use).
        pub fn new(config: &KafkaConfig) -> Result<Self, ExporterError> {
            Self::on_topic(config, &config.trace_topic)
        }

        /// A sink writing to `topic` of `config`'s cluster, through the shared producer (as [`new`](Self::new)).
        pub(crate) fn on_topic(config: &KafkaConfig, topic: &str) -> Result<Self, ExporterError> {
            // The one place Kafka settings are checked (and SASL defaults applied), also when the exporter
            // of `observer::init` is reused.
            config.validate().map_err(|e| ExporterError::Other(e.to_string()))?;
            let topic: Arc<str> = topic.into();
            if let Some(global) = crate::kafka_exporter() {
                if global.config().bootstrap_servers == config.bootstrap_servers {
                    return Ok(Self { exporter: Producer::Global(global), topic });
                }
            }
            let key = cluster_key(config);
            let mut owned = OWNED.lock().unwrap_or_else(PoisonError::into_inner);
            owned.retain(|w| w.strong_count() > 0);
            if let Some(existing) = owned.iter().filter_map(Weak::upgrade).find(|o| o.key == key) {
                return Ok(Self { exporter: Producer::Owned(existing), topic });
            }
            let exporter = KafkaExporter::new(config.clone())?;
            exporter.initialize();
            let shared = Arc::new(OwnedExporter { key, exporter });
            owned.push(Arc::downgrade(&shared));
            Ok(Self { exporter: Producer::Owned(shared), topic })
        }

        /// A sink writing to `topic` through `exporter`.
        pub fn with_exporter(exporter: KafkaExporter, topic: impl Into<String>) -> Self {
            Self { exporter: Producer::Global(exporter), topic: topic.into().into() }
        }

        /// The exporter the events go through.
        pub fn exporter(&self) -> &KafkaExporter {
            match &self.exporter {
                Producer::Global(e) => e,
                Producer::Owned(o) => &o.exporter,
            }
        }

        /// The topic.
        pub fn topic(&self) -> &str {
            &self.topic
        }
    }

    impl TraceSink for KafkaTraceSink {
        fn send(&self, event: &TraceEvent, payload: &[u8]) {
            let headers = [("event_type", event.event_type.as_str()), ("content-type", "application/json")];
            let result = self.exporter().send(&self.topic, Some(&event.trace_id), &headers, payload);
            if !result.success {
                // Only when the spool itself failed; the exporter has already written the event to stderr.
                crate::diag::report!(
                    ERROR,
                    "agent-event-unqueued",
                    "agent trace event could not be queued for Kafka topic `{}`: {:?}",
                    self.topic,
                    result.error
                );
            }
        }

        fn flush(&self, timeout: Duration) -> Result<(), ExporterError> {
            self.exporter().flush(timeout)
        }

        fn describe(&self) -> String {
            format!("kafka {}", self.topic)
        }
    }
}
