//! The agent trace stream's events: [`TraceEvent`] (one message, in the Langflow/AI Studio format) and its
//! [`TraceEventType`]; the context every event of a trace carries, and the `trace_end` metadata.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::pricing::AgentTotals;

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

/// What every event of a trace carries (so that each message can be read on its own).
#[derive(Debug, Default)]
pub(super) struct TraceContext {
    /// A UUID string; also the Kafka message key.
    pub(super) trace_id: String,
    /// The flow name (the trace name without Langflow's id suffix).
    pub(super) flow_name: String,
    pub(super) flow_id: String,
    pub(super) user_id: Option<String>,
    pub(super) session_id: Option<String>,
    pub(super) project_name: String,
}

impl TraceContext {
    /// A new event of this trace (a fresh time-ordered id, the current time), without event-specific fields.
    pub(super) fn event(&self, event_type: TraceEventType) -> TraceEvent {
        TraceEvent {
            event_id: Uuid::now_v7().hyphenated().to_string(),
            event_type,
            timestamp: now_rfc3339(),
            trace_id: self.trace_id.clone(),
            span_id: None,
            parent_span_id: None,
            flow_id: Some(self.flow_id.clone()),
            flow_name: Some(self.flow_name.clone()),
            component_name: None,
            component_type: None,
            component_index: None,
            duration_ms: None,
            input_data: None,
            output_data: None,
            error: None,
            user_id: self.user_id.clone(),
            session_id: self.session_id.clone(),
            project_name: self.project_name.clone(),
            metadata: Map::new(),
        }
    }
}

/// What `trace_end`'s metadata is built from, besides the trace's context.
pub(super) struct TraceEnd<'a> {
    pub(super) tags: &'a Map<String, Value>,
    pub(super) params: &'a Map<String, Value>,
    pub(super) metrics: &'a Map<String, Value>,
    /// The caller's `metadata` argument of `end`.
    pub(super) metadata: Option<Value>,
    pub(super) failed: bool,
    pub(super) totals: &'a AgentTotals,
    /// The warnings kept, and how many there were in all.
    pub(super) warnings: &'a [String],
    pub(super) warnings_total: u64,
}

/// `trace_end`'s `metadata`, as the Python package writes it: tags, params and metrics flattened (a later kind wins
/// on a clash), then the caller's metadata, then the trace's own keys, which win over all of them.
pub(super) fn trace_end_metadata(ctx: &TraceContext, end: TraceEnd<'_>) -> Map<String, Value> {
    let mut m = end.tags.clone();
    m.extend(end.params.clone());
    m.extend(end.metrics.clone());
    if let Some(v) = end.metadata {
        m.extend(into_map(v));
    }
    // The caller's parts are redacted; the trace's own keys below are the SDK's.
    let mut m = into_map(crate::outbound::value(Value::Object(m)));
    let totals = end.totals;
    let status = if end.failed { "error" } else { "success" };
    m.insert("flow_id".into(), ctx.flow_id.clone().into());
    m.insert("flow_name".into(), ctx.flow_name.clone().into());
    m.insert("total_spans".into(), totals.spans.into());
    m.insert("failed_spans".into(), totals.failed_spans.into());
    m.insert("status".into(), status.into());
    m.insert("project_name".into(), ctx.project_name.clone().into());
    m.insert("total_input_tokens".into(), totals.input_tokens.into());
    m.insert("total_output_tokens".into(), totals.output_tokens.into());
    m.insert("total_cached_tokens".into(), totals.cached_tokens.into());
    m.insert("total_reasoning_tokens".into(), totals.reasoning_tokens.into());
    m.insert("total_cost".into(), totals.total_cost.into());
    if totals.untrusted_costs > 0 {
        m.insert("cost_trusted".into(), Value::Bool(false));
    }
    if !end.warnings.is_empty() {
        m.insert("warnings".into(), end.warnings.to_vec().into());
    }
    if end.warnings_total > end.warnings.len() as u64 {
        m.insert("warnings_total".into(), end.warnings_total.into());
    }
    m
}

/// A JSON object as a map: `null` is empty, another value is `{"value": v}`.
pub(super) fn into_map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        Value::Null => Map::new(),
        other => Map::from_iter([("value".to_owned(), other)]),
    }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> TraceContext {
        TraceContext {
            trace_id: "t-1".into(),
            flow_name: "Support".into(),
            flow_id: "flow-1".into(),
            user_id: Some("u".into()),
            session_id: None,
            project_name: "P".into(),
        }
    }

    fn map(v: Value) -> Map<String, Value> {
        into_map(v)
    }

    #[test]
    fn every_event_carries_the_trace_context_and_leaves_out_what_does_not_apply() {
        let e = ctx().event(TraceEventType::TraceStart);
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["event_type"], "trace_start");
        assert_eq!((json["trace_id"].clone(), json["flow_id"].clone()), (json!("t-1"), json!("flow-1")));
        assert_eq!((json["flow_name"].clone(), json["user_id"].clone()), (json!("Support"), json!("u")));
        assert_eq!(json["project_name"], "P");
        for absent in ["session_id", "span_id", "duration_ms", "input_data", "error", "metadata"] {
            assert!(json.get(absent).is_none(), "{absent} in {json}");
        }
        assert!(e.timestamp.ends_with('Z') && e.timestamp.len() == "2026-01-01T00:00:00.000000Z".len());
        let later = ctx().event(TraceEventType::TraceEnd);
        assert!(later.event_id > e.event_id, "time-ordered ids");
    }

    #[test]
    fn event_types_are_written_in_snake_case() {
        for (t, s) in [
            (TraceEventType::TraceStart, "trace_start"),
            (TraceEventType::SpanStart, "span_start"),
            (TraceEventType::SpanEnd, "span_end"),
            (TraceEventType::TraceEnd, "trace_end"),
            (TraceEventType::LlmCallStart, "llm_call_start"),
            (TraceEventType::LlmCallEnd, "llm_call_end"),
            (TraceEventType::Custom, "custom"),
        ] {
            assert_eq!(serde_json::to_value(t).unwrap(), json!(s));
            assert_eq!(t.to_string(), s);
        }
    }

    #[test]
    fn trace_end_metadata_layers_tags_params_metrics_caller_then_ours() {
        let tags = map(json!({"a": "tag", "b": "tag", "status": "tag"}));
        let params = map(json!({"b": "param", "c": "param"}));
        let metrics = map(json!({"c": 1.5}));
        let totals =
            AgentTotals { spans: 2, failed_spans: 1, input_tokens: 10, total_cost: 0.25, ..Default::default() };
        let m = trace_end_metadata(
            &ctx(),
            TraceEnd {
                tags: &tags,
                params: &params,
                metrics: &metrics,
                metadata: Some(json!({"c": "caller", "d": "caller", "flow_id": "theirs"})),
                failed: false,
                totals: &totals,
                warnings: &[],
                warnings_total: 0,
            },
        );
        assert_eq!(
            (m["a"].clone(), m["b"].clone(), m["c"].clone(), m["d"].clone()),
            (json!("tag"), json!("param"), json!("caller"), json!("caller"))
        );
        // The trace's own keys win.
        assert_eq!((m["flow_id"].clone(), m["status"].clone()), (json!("flow-1"), json!("success")));
        assert_eq!((m["total_spans"].clone(), m["failed_spans"].clone()), (json!(2), json!(1)));
        assert_eq!((m["total_input_tokens"].clone(), m["total_cost"].clone()), (json!(10), json!(0.25)));
        for absent in ["cost_trusted", "warnings", "warnings_total"] {
            assert!(m.get(absent).is_none(), "{absent}");
        }
    }

    #[test]
    fn trace_end_metadata_reports_errors_untrusted_costs_and_warnings() {
        let empty = Map::new();
        let totals = AgentTotals { untrusted_costs: 1, ..Default::default() };
        let warnings = vec!["w1".to_owned(), "w2".to_owned()];
        let m = trace_end_metadata(
            &ctx(),
            TraceEnd {
                tags: &empty,
                params: &empty,
                metrics: &empty,
                metadata: Some(json!("plain")),
                failed: true,
                totals: &totals,
                warnings: &warnings,
                warnings_total: 5,
            },
        );
        assert_eq!(m["status"], "error");
        assert_eq!(m["value"], "plain", "a non-object metadata is kept under `value`");
        assert_eq!(m["cost_trusted"], json!(false));
        assert_eq!((m["warnings"].clone(), m["warnings_total"].clone()), (json!(["w1", "w2"]), json!(5)));
    }
}
