//! Where a [`WorkflowTracer`](crate::trace::WorkflowTracer)'s events go when it streams: the [`WorkflowEvent`] format
//! (the reference Python SDK's workflow stream), the [`WorkflowSink`] trait, an in-memory sink for tests. The Kafka
//! sink (feature `kafka`) is `observer::export::KafkaTopicSink`, through the process's shared producer.
//!
//! A streaming workflow sends `workflow_start` when streaming begins, `step_start` / `step_end` for every step
//! (however it runs and however it ends: [`Step`](crate::trace::Step) guard, `run_step`, `run_step_async`, `#[step]`,
//! drop, panic, cancellation) and `workflow_end` once, on [`finish`](crate::trace::WorkflowTracer::finish) or when the
//! last clone of the tracer is dropped. Every event carries `event_type`, `workflow_id` (a UUID string per
//! workflow run, also the Kafka message key), `workflow_name`, `service_name` and `timestamp`.
//!
//! ```
//! use observer::trace::{MemoryWorkflowSink, WorkflowEventType, WorkflowTracer};
//!
//! let events = MemoryWorkflowSink::new();
//! let wf = WorkflowTracer::new("process-order").attr("order_id", "123").with_stream(events.clone(), "orders");
//! wf.run_step("validate", |_step| Ok::<_, String>(()))?;
//! let summary = wf.finish();
//!
//! let types: Vec<WorkflowEventType> = events.events().iter().map(|e| e.event_type).collect();
//! use WorkflowEventType::*;
//! assert_eq!(types, [WorkflowStart, StepStart, StepEnd, WorkflowEnd]);
//! let end = &events.json()[3];
//! assert_eq!(end["workflow_id"], wf.workflow_id().unwrap());
//! assert_eq!(end["service_name"], "orders");
//! assert_eq!(end["step_count"], 1);
//! assert_eq!(end["steps"], serde_json::to_value(&summary.steps).unwrap());
//! # Ok::<(), String>(())
//! ```

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::tracer::StepRecord;
use crate::error::ExporterError;

/// The `event_type` of a workflow event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WorkflowEventType {
    /// The workflow started streaming (created by a streaming factory, or
    /// [`with_stream`](crate::trace::WorkflowTracer::with_stream)).
    WorkflowStart,
    /// A step started.
    StepStart,
    /// A step ended (finished, dropped, failed, panicked or cancelled).
    StepEnd,
    /// The workflow [finished](crate::trace::WorkflowTracer::finish) (or its last handle was dropped).
    WorkflowEnd,
}

impl WorkflowEventType {
    /// The JSON spelling, e.g. `"step_end"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WorkflowStart => "workflow_start",
            Self::StepStart => "step_start",
            Self::StepEnd => "step_end",
            Self::WorkflowEnd => "workflow_end",
        }
    }
}

impl fmt::Display for WorkflowEventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One message of the workflow stream (topic `KafkaConfig::workflow_topic`, default `workflow-traces`).
///
/// Fields that do not apply to an event type are left out of the JSON:
///
/// | event_type       | fields besides the common ones                                                        |
/// |------------------|---------------------------------------------------------------------------------------|
/// | `workflow_start` | `attributes`                                                                          |
/// | `step_start`     | `step_name`, `step_index`, `attributes` (empty: set while the step runs)              |
/// | `step_end`       | `step_name`, `step_index`, `attributes`, `duration_ms`, `status`, `error` (only if it |
/// |                  | failed)                                                                               |
/// | `workflow_end`   | `duration_ms`, `step_count`, `total_step_time_ms`, `failed_step_count`, `error` (only |
/// |                  | if [recorded](crate::trace::WorkflowTracer::record_error)), `attributes`, `steps`            |
///
/// The common fields are `event_type`, `workflow_id`, `workflow_name`, `service_name` and `timestamp`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowEvent {
    /// What happened.
    pub event_type: WorkflowEventType,
    /// The workflow run's id: a UUID string; also the Kafka message key.
    pub workflow_id: String,
    /// The workflow's name.
    pub workflow_name: String,
    /// The emitting service.
    pub service_name: String,
    /// When the event happened: RFC 3339, microseconds, UTC (`Z`).
    pub timestamp: String,
    /// The step's name (step events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_name: Option<String>,
    /// The step's position, 0-based, in start order (step events; the span field `step.index`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_index: Option<usize>,
    /// Duration in milliseconds (`step_end`, `workflow_end`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    /// The number of steps in `steps` (`workflow_end`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_count: Option<usize>,
    /// The sum of the durations of `steps`, in milliseconds (`workflow_end`; more than `duration_ms` when steps
    /// ran concurrently).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_step_time_ms: Option<f64>,
    /// How many of `steps` have an error (`workflow_end`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_step_count: Option<usize>,
    /// The step's error (`step_end`) or the workflow's error (`workflow_end`), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How the step ended (`step_end`): `"ok"`, `"error"` or `"unconfirmed"` (see
    /// [`StepStatus`](crate::trace::StepStatus)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<super::tracer::StepStatus>,
    /// The workflow's attributes (`workflow_start`, `workflow_end`) or the step's (step events).
    #[serde(default)]
    pub attributes: Map<String, Value>,
    /// The finished steps, in start order, exactly as in the [summary](crate::trace::WorkflowSummary) (`workflow_end`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<StepRecord>>,
}

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

// ---------------------------------------------------------------------------------------------
// The stream of one workflow (held in the workflow's state, used under its lock).

/// The stream of one workflow run: where its events go and the fields they all share.
pub(crate) struct Stream {
    sink: Arc<dyn WorkflowSink>,
    workflow_id: String,
    service_name: String,
    /// The first step slot that streams: steps started before streaming began send nothing.
    pub(crate) first_slot: usize,
}

impl Stream {
    pub(crate) fn new(sink: Arc<dyn WorkflowSink>, service_name: String, first_slot: usize) -> Self {
        Self { sink, workflow_id: Uuid::new_v4().hyphenated().to_string(), service_name, first_slot }
    }

    pub(crate) fn workflow_id(&self) -> &str {
        &self.workflow_id
    }

    pub(crate) fn sink(&self) -> &Arc<dyn WorkflowSink> {
        &self.sink
    }

    fn event(&self, event_type: WorkflowEventType, workflow_name: &str) -> WorkflowEvent {
        WorkflowEvent {
            event_type,
            workflow_id: self.workflow_id.clone(),
            workflow_name: workflow_name.to_owned(),
            service_name: self.service_name.clone(),
            timestamp: now_rfc3339(),
            step_name: None,
            step_index: None,
            duration_ms: None,
            step_count: None,
            total_step_time_ms: None,
            failed_step_count: None,
            error: None,
            status: None,
            attributes: Map::new(),
            steps: None,
        }
    }

    pub(crate) fn workflow_start(&self, workflow_name: &str, attributes: &Map<String, Value>) {
        let mut event = self.event(WorkflowEventType::WorkflowStart, workflow_name);
        event.attributes = attributes.clone();
        self.send(&event);
    }

    pub(crate) fn step_start(&self, workflow_name: &str, step_name: &str, index: usize) {
        let mut event = self.event(WorkflowEventType::StepStart, workflow_name);
        event.step_name = Some(step_name.to_owned());
        event.step_index = Some(index);
        self.send(&event);
    }

    pub(crate) fn step_end(&self, workflow_name: &str, index: usize, step: &StepRecord) {
        let mut event = self.event(WorkflowEventType::StepEnd, workflow_name);
        event.step_name = Some(step.name.clone());
        event.step_index = Some(index);
        event.duration_ms = Some(step.duration_ms);
        event.error = step.error.clone();
        event.status = Some(step.status);
        event.attributes = step.attributes.clone();
        self.send(&event);
    }

    pub(crate) fn workflow_end(
        &self,
        workflow_name: &str,
        duration_ms: f64,
        error: Option<&str>,
        attributes: &Map<String, Value>,
        steps: Vec<StepRecord>,
    ) {
        let mut event = self.event(WorkflowEventType::WorkflowEnd, workflow_name);
        event.duration_ms = Some(duration_ms);
        event.step_count = Some(steps.len());
        event.total_step_time_ms = Some(steps.iter().map(|s| s.duration_ms).sum());
        event.failed_step_count = Some(steps.iter().filter(|s| s.error.is_some()).count());
        event.error = error.map(str::to_owned);
        event.attributes = attributes.clone();
        event.steps = Some(steps);
        self.send(&event);
    }

    /// Serialises `event` and hands it to the sink; never panics (a panicking sink loses the event).
    fn send(&self, event: &WorkflowEvent) {
        let payload = match serde_json::to_vec(event) {
            Ok(payload) => payload,
            Err(e) => {
                crate::diag::report!(
                    ERROR,
                    "workflow-event-unserialisable",
                    "workflow event `{}` not serialisable ({e}); dropped",
                    event.event_type
                );
                return;
            }
        };
        if catch_unwind(AssertUnwindSafe(|| self.sink.send(event, &payload))).is_err() {
            crate::diag::report!(
                ERROR,
                "workflow-sink-panicked",
                "workflow sink {} panicked; event `{}` dropped",
                self.sink.describe(),
                event.event_type
            );
        }
    }
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stream")
            .field("workflow_id", &self.workflow_id)
            .field("service_name", &self.service_name)
            .field("sink", &self.sink.describe())
            .finish()
    }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
