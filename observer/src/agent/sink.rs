//! Where an [`AgentTracer`](super::AgentTracer)'s events go: the [`TraceSink`] trait, an in-memory sink for
//! tests, and the default sink of a tracer. The Kafka sink is `observer::export::KafkaTopicSink`.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::Value;

use super::events::TraceEvent;
use crate::config::KafkaConfig;
use crate::error::{ExporterError, ObserverError};

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

/// The default `sink` of a tracer: Kafka (own config, or `observer::init`'s exporter), else none.
pub(crate) fn default_sink(kafka: Option<&KafkaConfig>) -> Result<Option<Arc<dyn TraceSink>>, ObserverError> {
    #[cfg(feature = "kafka")]
    {
        if let Some(k) = kafka {
            let sink = crate::export::KafkaTopicSink::new(k, &k.trace_topic)?;
            return Ok(Some(Arc::new(sink)));
        }
        Ok(crate::kafka_exporter().map(|e| {
            let topic = e.config().trace_topic.clone();
            Arc::new(crate::export::KafkaTopicSink::from_exporter(e, topic)) as Arc<dyn TraceSink>
        }))
    }
    #[cfg(not(feature = "kafka"))]
    {
        if kafka.is_some() {
            return Err(crate::ConfigurationError::new(
                "kafka",
                "AgentTracer streaming to Kafka needs the `kafka` feature of observer",
            )
            .into());
        }
        Ok(None)
    }
}
