//! The stream of one workflow run (held in the workflow's state, used under its lock): the fields its events
//! share, building each event, and handing it to the sink without ever panicking.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use serde_json::{Map, Value};
use uuid::Uuid;

use super::events::{WorkflowEvent, WorkflowEventType};
use super::sink::WorkflowSink;
use super::summary::{StepEntry, StepRecord};

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
        event.attributes = redacted_map(attributes);
        self.send(&event);
    }

    pub(crate) fn step_start(&self, workflow_name: &str, step_name: &str, index: usize) {
        let mut event = self.event(WorkflowEventType::StepStart, workflow_name);
        event.step_name = Some(step_name.to_owned());
        event.step_index = Some(index);
        self.send(&event);
    }

    pub(crate) fn step_end(&self, workflow_name: &str, index: usize, step: &StepEntry) {
        let mut event = self.event(WorkflowEventType::StepEnd, workflow_name);
        event.step_name = Some(step.name.clone().into_owned());
        event.step_index = Some(index);
        event.duration_ms = Some(step.duration_ms);
        event.error = step.error.as_deref().map(redacted_text);
        event.status = Some(step.status);
        event.attributes = redacted_map(&step.attributes);
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
        event.error = error.map(redacted_text);
        event.attributes = redacted_map(attributes);
        event.steps = Some(
            steps
                .into_iter()
                .map(|s| StepRecord {
                    error: s.error.as_deref().map(redacted_text),
                    attributes: redacted_map(&s.attributes),
                    ..s
                })
                .collect(),
        );
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

/// Attributes as they leave the process: redacted (keys and values) by the process's policy.
fn redacted_map(attributes: &Map<String, Value>) -> Map<String, Value> {
    match crate::outbound::value(Value::Object(attributes.clone())) {
        Value::Object(m) => m,
        other => Map::from_iter([("value".to_owned(), other)]),
    }
}

/// An error message as it leaves the process: redacted.
fn redacted_text(text: &str) -> String {
    crate::outbound::text(text).into_owned()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{MemoryWorkflowSink, StepStatus};

    fn step(name: &str, duration_ms: f64, error: Option<&str>) -> StepRecord {
        StepRecord {
            name: name.into(),
            duration_ms,
            error: error.map(str::to_owned),
            attributes: Map::new(),
            status: if error.is_some() { StepStatus::Error } else { StepStatus::Ok },
        }
    }

    #[test]
    fn workflow_end_totals_its_steps() {
        let sink = MemoryWorkflowSink::new();
        let stream = Stream::new(Arc::new(sink.clone()), "svc".into(), 0);
        stream.workflow_end("w", 10.0, None, &Map::new(), vec![step("a", 4.0, None), step("b", 8.0, Some("x"))]);
        let event = &sink.events()[0];
        assert_eq!(event.workflow_id, stream.workflow_id());
        assert_eq!((event.step_count, event.failed_step_count), (Some(2), Some(1)));
        assert_eq!(event.total_step_time_ms, Some(12.0), "more than duration_ms when steps overlap");
        assert_eq!(event.error, None);
    }

    #[test]
    fn a_panicking_sink_loses_the_event_but_not_the_caller() {
        struct Panics;
        impl WorkflowSink for Panics {
            fn send(&self, _: &WorkflowEvent, _: &[u8]) {
                panic!("sink bug");
            }
            fn describe(&self) -> String {
                "panics".into()
            }
        }
        let stream = Stream::new(Arc::new(Panics), "svc".into(), 0);
        stream.step_start("w", "a", 0);
    }
}
