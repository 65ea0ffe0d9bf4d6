//! What a workflow reports: the summary (the guide's `get_summary()` shape) and the record of each finished
//! step, which is also what a `workflow_end` event lists.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[cfg(doc)]
use super::Step;

/// How a step ended, as recorded in [`StepRecord::status`] (JSON `"ok"`, `"error"`, `"unconfirmed"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// The step succeeded: ended by [`Step::finish`], [`Step::finish_with`] an `Ok`, or a `run_step` /
    /// `run_step_sync` / `#[step]` returning `Ok`.
    Ok,
    /// The step failed: `error` has the message (an `Err`, [`Step::fail`], [`Step::record_error`], a panic
    /// (`"panicked"`) or a cancelled `run_step` (`"cancelled"`)).
    Error,
    /// The guard was dropped without being finished: the SDK does not know whether the step succeeded (e.g. an
    /// early return by `?`, or a guard dropped at once). Its duration is still the guard's lifetime.
    #[default]
    Unconfirmed,
}

/// A finished step as it appears in the summary (and in the `steps` of a `workflow_end` event).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Step name.
    pub name: String,
    /// Duration in milliseconds.
    pub duration_ms: f64,
    /// The error message, if the step failed.
    pub error: Option<String>,
    /// The step's attributes.
    pub attributes: Map<String, Value>,
    /// How the step ended: `"ok"`, `"error"` (then `error` is set) or `"unconfirmed"` (a guard dropped without
    /// being finished; see [`StepStatus`]).
    #[serde(default)]
    pub status: StepStatus,
}

/// A finished step as the workflow keeps it: a [`StepRecord`] whose name is borrowed when it is a `&'static str`
/// (the name `#[step]` gives), so that recording a step allocates no name; the record is built when asked for.
#[derive(Debug, Clone)]
pub(super) struct StepEntry {
    pub(super) name: Cow<'static, str>,
    pub(super) duration_ms: f64,
    pub(super) error: Option<String>,
    pub(super) attributes: Map<String, Value>,
    pub(super) status: StepStatus,
}

impl StepEntry {
    /// The public record of this step.
    pub(super) fn record(&self) -> StepRecord {
        StepRecord {
            name: self.name.clone().into_owned(),
            duration_ms: self.duration_ms,
            error: self.error.clone(),
            attributes: self.attributes.clone(),
            status: self.status,
        }
    }
}

/// The guide's `get_summary()` shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkflowSummary {
    /// Workflow name.
    pub name: String,
    /// Duration in milliseconds (so far, while running).
    pub duration_ms: f64,
    /// Number of steps.
    pub step_count: usize,
    /// The steps, in start order.
    pub steps: Vec<StepRecord>,
    /// The workflow's attributes.
    pub attributes: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn step_status_spells_as_the_stream_does() {
        let spelled: Vec<Value> = [StepStatus::Ok, StepStatus::Error, StepStatus::Unconfirmed]
            .iter()
            .map(|s| serde_json::to_value(s).unwrap())
            .collect();
        assert_eq!(spelled, [json!("ok"), json!("error"), json!("unconfirmed")]);
        assert_eq!(StepStatus::default(), StepStatus::Unconfirmed);
    }

    #[test]
    fn a_step_record_without_status_reads_back_as_unconfirmed() {
        let record: StepRecord =
            serde_json::from_value(json!({"name": "a", "duration_ms": 1.5, "error": null, "attributes": {}})).unwrap();
        assert_eq!(record.status, StepStatus::Unconfirmed);
        assert_eq!(serde_json::to_value(&record).unwrap()["status"], "unconfirmed");
    }

    #[test]
    fn the_summary_has_the_guides_keys() {
        let summary = WorkflowSummary {
            name: "order".into(),
            duration_ms: 2.0,
            step_count: 0,
            steps: Vec::new(),
            attributes: Map::new(),
        };
        let json = serde_json::to_value(summary).unwrap();
        let mut keys: Vec<&String> = json.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["attributes", "duration_ms", "name", "step_count", "steps"]);
    }
}
