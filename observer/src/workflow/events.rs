//! The workflow stream's message format: [`WorkflowEvent`] and its [`WorkflowEventType`] (the reference Python
//! SDK's workflow stream).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::summary::{StepRecord, StepStatus};

/// The `event_type` of a workflow event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WorkflowEventType {
    /// The workflow started streaming (created by a streaming factory, or
    /// [`stream`](crate::trace::WorkflowTracer::stream)).
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
/// A streaming workflow (see [`WorkflowTracer::stream`](crate::trace::WorkflowTracer::stream)) sends
/// `workflow_start` when streaming begins, `step_start` / `step_end` for every step (however it runs and however it
/// ends: [`Step`](crate::trace::Step) guard, `run_step`, `run_step_sync`, `#[step]`, drop, panic, cancellation) and
/// `workflow_end` once, on [`finish`](crate::trace::WorkflowTracer::finish) or when the last clone of the tracer is
/// dropped. Every event carries `event_type`, `workflow_id` (a UUID string per workflow run, also the Kafka
/// message key), `workflow_name`, `service_name` and `timestamp`.
///
/// ```
/// use observer::trace::{MemoryWorkflowSink, WorkflowEventType, WorkflowTracer};
///
/// let events = MemoryWorkflowSink::new();
/// let wf = WorkflowTracer::new("process-order").attr("order_id", "123").stream(events.clone(), "orders");
/// wf.run_step_sync("validate", |_step| Ok::<_, String>(()))?;
/// wf.finish();
///
/// let types: Vec<WorkflowEventType> = events.events().iter().map(|e| e.event_type).collect();
/// use WorkflowEventType::*;
/// assert_eq!(types, [WorkflowStart, StepStart, StepEnd, WorkflowEnd]);
/// let end = &events.json()[3];
/// assert_eq!(end["workflow_id"], wf.workflow_id().unwrap());
/// assert_eq!(end["service_name"], "orders");
/// assert_eq!(end["step_count"], 1);
/// assert_eq!(end["steps"], serde_json::to_value(wf.summary().steps).unwrap());
/// # Ok::<(), String>(())
/// ```
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
    /// [`StepStatus`](StepStatus)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StepStatus>,
    /// The workflow's attributes (`workflow_start`, `workflow_end`) or the step's (step events).
    #[serde(default)]
    pub attributes: Map<String, Value>,
    /// The finished steps, in start order, exactly as in the [summary](crate::trace::WorkflowSummary) (`workflow_end`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<StepRecord>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn event_types_spell_as_their_json() {
        for t in [
            WorkflowEventType::WorkflowStart,
            WorkflowEventType::StepStart,
            WorkflowEventType::StepEnd,
            WorkflowEventType::WorkflowEnd,
        ] {
            assert_eq!(serde_json::to_value(t).unwrap(), json!(t.as_str()));
            assert_eq!(t.to_string(), t.as_str());
        }
    }

    #[test]
    fn fields_that_do_not_apply_are_left_out() {
        let event: WorkflowEvent = serde_json::from_value(json!({
            "event_type": "workflow_start", "workflow_id": "id", "workflow_name": "w", "service_name": "s",
            "timestamp": "2026-01-01T00:00:00.000000Z"
        }))
        .unwrap();
        assert!(event.attributes.is_empty());
        let json = serde_json::to_value(&event).unwrap();
        let mut keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["attributes", "event_type", "service_name", "timestamp", "workflow_id", "workflow_name"]);
    }
}
