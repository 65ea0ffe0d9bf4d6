//! Where a workflow's events go: the [`WorkflowSink`] trait, [`MemoryWorkflowSink`] (tests, reading a workflow
//! back in-process), and the default sink of a [`TracerFactory`](crate::trace::TracerFactory). The Kafka sink
//! (feature `kafka`) is `observer::export::KafkaTopicSink`, through the process's shared producer.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::Value;

use super::events::WorkflowEvent;
use crate::error::ExporterError;

/// A destination for workflow events.
///
/// `send` is called on the thread that started or ended the step (or finished the workflow) while the workflow
/// holds its lock — this is what keeps the events of one workflow in order — so it must neither block (hand the
/// bytes to a queue) nor call back into the workflow, and should not panic (a panic is caught and the event
/// dropped, except while the thread is already unwinding, where it would abort).
pub trait WorkflowSink: Send + Sync + 'static {
    /// Takes one event; `payload` is its JSON and the message key is `event.workflow_id`.
    fn send(&self, event: &WorkflowEvent, payload: &[u8]);

    /// Waits (at most `timeout`) until what was sent is delivered.
    ///
    /// # Errors
    /// When the events could not all be delivered in time.
    fn flush(&self, timeout: Duration) -> Result<(), ExporterError> {
        let _ = timeout;
        Ok(())
    }

    /// A short description for logs and `Debug`, e.g. `kafka workflow-traces`.
    fn describe(&self) -> String;
}

impl<S: WorkflowSink + ?Sized> WorkflowSink for Arc<S> {
    fn send(&self, event: &WorkflowEvent, payload: &[u8]) {
        (**self).send(event, payload);
    }

    fn flush(&self, timeout: Duration) -> Result<(), ExporterError> {
        (**self).flush(timeout)
    }

    fn describe(&self) -> String {
        (**self).describe()
    }
}

/// Keeps every workflow event (and its JSON) in memory, for tests and for reading a workflow back in-process.
/// Clones share the events.
#[derive(Debug, Default, Clone)]
pub struct MemoryWorkflowSink {
    events: Arc<Mutex<Vec<Received>>>,
}

/// One event and the payload it was sent with.
type Received = (WorkflowEvent, Vec<u8>);

impl MemoryWorkflowSink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Received>> {
        self.events.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The events received so far, in order.
    pub fn events(&self) -> Vec<WorkflowEvent> {
        self.lock().iter().map(|(e, _)| e.clone()).collect()
    }

    /// The payloads received so far, parsed (exactly the JSON a Kafka sink would have sent).
    pub fn json(&self) -> Vec<Value> {
        self.lock().iter().map(|(_, p)| serde_json::from_slice(p).unwrap_or(Value::Null)).collect()
    }

    /// Removes and returns the events received so far.
    pub fn take(&self) -> Vec<WorkflowEvent> {
        std::mem::take(&mut *self.lock()).into_iter().map(|(e, _)| e).collect()
    }
}

impl WorkflowSink for MemoryWorkflowSink {
    fn send(&self, event: &WorkflowEvent, payload: &[u8]) {
        self.lock().push((event.clone(), payload.to_vec()));
    }

    fn describe(&self) -> String {
        "memory".into()
    }
}

/// The default workflow sink of a [`TracerFactory`](crate::trace::TracerFactory): Kafka `workflow_topic` (own config, or
/// `observer::init`'s exporter), else none.
pub(crate) fn default_workflow_sink(
    kafka: Option<&crate::config::KafkaConfig>,
) -> Result<Option<Arc<dyn WorkflowSink>>, crate::error::ObserverError> {
    #[cfg(feature = "kafka")]
    {
        if let Some(k) = kafka {
            return Ok(Some(Arc::new(crate::export::KafkaTopicSink::new(k, &k.workflow_topic)?)));
        }
        Ok(crate::kafka_exporter().map(|e| {
            let topic = e.config().workflow_topic.clone();
            Arc::new(crate::export::KafkaTopicSink::from_exporter(e, topic)) as Arc<dyn WorkflowSink>
        }))
    }
    #[cfg(not(feature = "kafka"))]
    {
        if kafka.is_some() {
            return Err(crate::ConfigurationError::new(
                "kafka",
                "WorkflowTracer streaming to Kafka needs the `kafka` feature of observer",
            )
            .into());
        }
        Ok(None)
    }
}
