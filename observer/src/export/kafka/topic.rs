//! [`KafkaTopicSink`]: the tracers' event streams (agent trace events and workflow events) on a Kafka topic.

use std::sync::Arc;
use std::time::Duration;

use super::producer::SharedProducer;
use super::KafkaExporter;
use crate::config::KafkaConfig;
use crate::error::ExporterError;
use crate::trace::{TraceEvent, TraceSink, WorkflowEvent, WorkflowSink};

/// Streams tracer events to one Kafka topic: agent trace events (a [`TraceSink`], keyed by trace id) and
/// workflow events (a [`WorkflowSink`], keyed by workflow id), so that one trace or workflow stays in one
/// partition, in order. Headers `event_type` and `content-type: application/json`.
///
/// The messages go through a shared [`KafkaExporter`] (acks and retries as configured, a disk spool for what
/// the broker has not acknowledged): the exporter of `observer::init` when it is connected to the same bootstrap
/// servers, else one exporter per cluster shared by every sink of the process. Sending never blocks.
///
/// ```no_run
/// use observer::export::KafkaTopicSink;
/// use observer::trace::WorkflowTracer;
/// # fn main() -> Result<(), observer::ExporterError> {
/// let kafka = observer::KafkaConfig { bootstrap_servers: "kafka:9092".into(), ..Default::default() };
/// let sink = KafkaTopicSink::new(&kafka, &kafka.workflow_topic)?;
/// let wf = WorkflowTracer::new("process-order").stream(sink, "orders");
/// # drop(wf);
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[cfg_attr(docsrs, doc(cfg(feature = "kafka")))]
pub struct KafkaTopicSink {
    producer: SharedProducer,
    topic: Arc<str>,
}

impl std::fmt::Debug for KafkaTopicSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaTopicSink").field("topic", &self.topic).field("exporter", self.exporter()).finish()
    }
}

impl KafkaTopicSink {
    /// A sink writing to `topic` of `config`'s cluster (e.g. `&config.trace_topic` or `&config.workflow_topic`).
    ///
    /// Uses the exporter of `observer::init` when it is connected to the same bootstrap servers; otherwise one
    /// exporter per cluster is created and shared by every sink of the process, and shut down (flushed, the
    /// rest spooled) when the last one using it is dropped.
    ///
    /// # Errors
    /// The [`KafkaExporter::new`] errors (invalid config, spool directory in use).
    pub fn new(config: &KafkaConfig, topic: &str) -> Result<Self, ExporterError> {
        Ok(Self { producer: SharedProducer::for_cluster(config)?, topic: topic.into() })
    }

    /// A sink writing to `topic` through `exporter`.
    pub fn from_exporter(exporter: KafkaExporter, topic: impl Into<String>) -> Self {
        Self { producer: SharedProducer::Global(exporter), topic: topic.into().into() }
    }

    /// The exporter the events go through.
    pub fn exporter(&self) -> &KafkaExporter {
        self.producer.exporter()
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Hands one event to the exporter; `code` and `what` name it in the report if even the spool failed.
    fn send_event(&self, key: &str, event_type: &str, payload: &[u8], code: &'static str, what: &str) {
        let headers = [("event_type", event_type), ("content-type", "application/json")];
        if let Err(e) = self.exporter().send(&self.topic, Some(key), &headers, payload) {
            // The exporter has already written the event to stderr.
            crate::diag::report!(ERROR, code, "{what} could not be queued for Kafka topic `{}`: {e}", self.topic);
        }
    }
}

impl TraceSink for KafkaTopicSink {
    fn send(&self, event: &TraceEvent, payload: &[u8]) {
        self.send_event(
            &event.trace_id,
            event.event_type.as_str(),
            payload,
            "agent-event-unqueued",
            "agent trace event",
        );
    }

    fn flush(&self, timeout: Duration) -> Result<(), ExporterError> {
        self.exporter().flush(timeout)
    }

    fn describe(&self) -> String {
        format!("kafka {}", self.topic)
    }
}

impl WorkflowSink for KafkaTopicSink {
    fn send(&self, event: &WorkflowEvent, payload: &[u8]) {
        self.send_event(
            &event.workflow_id,
            event.event_type.as_str(),
            payload,
            "workflow-event-unqueued",
            "workflow event",
        );
    }

    fn flush(&self, timeout: Duration) -> Result<(), ExporterError> {
        self.exporter().flush(timeout)
    }

    fn describe(&self) -> String {
        format!("kafka {}", self.topic)
    }
}
