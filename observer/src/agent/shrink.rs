//! Size limits of the trace stream: an event larger than a Kafka message may be is still sent, with its data
//! fields replaced by a preview (see [`AgentTracer`](super::AgentTracer), "Large data").

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::events::TraceEvent;

/// The JSON of `event` as it is sent: as is when it fits in [`MAX_EVENT_BYTES`], else [shrunk](shrink) (reported
/// once as a warning); an event that cannot be serialised (a non-string map key inside user data) is sent without
/// its input/output data. `None` only if even that fails.
#[cfg(test)]
pub(super) fn encode(event: &TraceEvent) -> Option<(Cow<'_, TraceEvent>, Vec<u8>)> {
    let mut payload = Vec::new();
    encode_into(event, &mut payload).map(|sent| (sent, payload))
}

/// [`encode`] into `payload` (cleared first, reused from one event to the next): the event as sent, its JSON in
/// `payload`.
pub(super) fn encode_into<'e>(event: &'e TraceEvent, payload: &mut Vec<u8>) -> Option<Cow<'e, TraceEvent>> {
    payload.clear();
    match serde_json::to_writer(&mut *payload, event) {
        Ok(()) if payload.len() <= MAX_EVENT_BYTES => Some(Cow::Borrowed(event)),
        Ok(()) => {
            // Larger than a Kafka message may be: the data fields give way, the event itself is kept.
            let bytes = payload.len();
            let mut small = event.clone();
            let replaced = shrink(&mut small, bytes);
            crate::diag::report!(
                WARN,
                "agent-event-too-large",
                "agent trace event `{}` of {} bytes is larger than {MAX_EVENT_BYTES} bytes; data fields \
                 {replaced:?} replaced by a preview",
                event.event_type,
                bytes
            );
            payload.clear();
            serde_json::to_writer(&mut *payload, &small).ok()?;
            Some(Cow::Owned(small))
        }
        Err(e) => {
            // Only a non-string map key inside user data can do this; send the event without that data.
            crate::diag::report!(
                ERROR,
                "agent-event-unserialisable",
                "agent trace event not serialisable ({e}); sent without its input/output data"
            );
            let mut plain = event.clone();
            plain.input_data = None;
            plain.output_data = None;
            plain.metadata.insert("serialization_error".into(), e.to_string().into());
            payload.clear();
            serde_json::to_writer(&mut *payload, &plain).ok()?;
            Some(Cow::Owned(plain))
        }
    }
}

/// The largest event sent as is: below librdkafka's default `message.max.bytes` (1,000,000) with room for the key
/// and headers. Larger events have their data fields replaced by a preview (see [`AgentTracer`](super::AgentTracer), "Large data").
pub const MAX_EVENT_BYTES: usize = 900_000;

/// Characters of a replaced data field kept as its preview.
const PREVIEW_CHARS: usize = 2_000;

/// Replaces `input_data`, then `output_data`, then user metadata of an event that serialised to `bytes` bytes by
/// `{"_truncated": true, "original_bytes": N, "preview": "<first characters of its JSON>"}` until it fits in
/// [`MAX_EVENT_BYTES`]; returns the names of the replaced fields. Totals, tokens and cost are computed before
/// and are never affected.
pub(super) fn shrink(event: &mut TraceEvent, bytes: usize) -> Vec<&'static str> {
    fn preview(v: &Value) -> Value {
        let json = serde_json::to_string(v).unwrap_or_default();
        let cut: String = json.chars().take(PREVIEW_CHARS).collect();
        serde_json::json!({"_truncated": true, "original_bytes": json.len(), "preview": cut})
    }
    let size = |e: &TraceEvent| serde_json::to_vec(e).map_or(usize::MAX, |v| v.len());
    let mut replaced = Vec::new();
    let mut current = bytes;
    for field in ["input_data", "output_data"] {
        if current <= MAX_EVENT_BYTES {
            break;
        }
        let slot = if field == "input_data" { &mut event.input_data } else { &mut event.output_data };
        if let Some(v) = slot.as_mut() {
            *v = preview(v);
            replaced.push(field);
            current = size(event);
        }
    }
    if current > MAX_EVENT_BYTES {
        // User metadata (ours is small: status, model, tokens, totals): keep our keys, preview the rest.
        const OURS: &[&str] = &[
            "component_name",
            "status",
            "component_type",
            "model",
            "provider",
            "input_tokens",
            "output_tokens",
            "cached_tokens",
            "reasoning_tokens",
            "cost",
            "flow_id",
            "flow_name",
            "total_spans",
            "failed_spans",
            "project_name",
            "total_input_tokens",
            "total_output_tokens",
            "total_cached_tokens",
            "total_reasoning_tokens",
            "total_cost",
            "cost_trusted",
            "environment",
            "name",
        ];
        let (ours, theirs): (Map<String, Value>, Map<String, Value>) =
            std::mem::take(&mut event.metadata).into_iter().partition(|(k, _)| OURS.contains(&k.as_str()));
        event.metadata = ours;
        event.metadata.insert("user_metadata".into(), preview(&Value::Object(theirs)));
        replaced.push("metadata");
    }
    event.metadata.insert("data_truncated".into(), Value::Bool(true));
    replaced
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::events::TraceEventType;
    use serde_json::json;

    fn event(input: Value, output: Value, metadata: Value) -> TraceEvent {
        TraceEvent {
            event_id: "e".into(),
            event_type: TraceEventType::SpanEnd,
            timestamp: "t".into(),
            trace_id: "trace".into(),
            span_id: Some("comp-1".into()),
            parent_span_id: None,
            flow_id: None,
            flow_name: None,
            component_name: None,
            component_type: None,
            component_index: None,
            duration_ms: None,
            input_data: Some(input),
            output_data: Some(output),
            error: None,
            user_id: None,
            session_id: None,
            project_name: "p".into(),
            metadata: match metadata {
                Value::Object(m) => m,
                _ => Map::new(),
            },
        }
    }

    fn big(n: usize) -> Value {
        Value::String("x".repeat(n))
    }

    #[test]
    fn a_small_event_is_sent_as_is() {
        let e = event(json!({"q": 1}), json!({"a": 2}), json!({"status": "success"}));
        let (sent, payload) = encode(&e).unwrap();
        assert!(matches!(sent, Cow::Borrowed(_)));
        assert_eq!(payload, serde_json::to_vec(&e).unwrap());
    }

    #[test]
    fn the_input_gives_way_first_and_alone_when_that_is_enough() {
        let mut e = event(big(MAX_EVENT_BYTES), json!({"a": 2}), json!({"status": "success"}));
        let bytes = serde_json::to_vec(&e).unwrap().len();
        assert_eq!(shrink(&mut e, bytes), vec!["input_data"]);
        let input = e.input_data.as_ref().unwrap();
        assert_eq!(input["_truncated"], json!(true));
        assert_eq!(input["original_bytes"], json!(MAX_EVENT_BYTES + 2)); // the JSON string's quotes
        assert_eq!(input["preview"].as_str().unwrap().chars().count(), PREVIEW_CHARS);
        assert_eq!(e.output_data, Some(json!({"a": 2})));
        assert_eq!(e.metadata["data_truncated"], json!(true));
        assert_eq!(e.metadata["status"], json!("success"));
    }

    #[test]
    fn then_the_output_then_user_metadata_keeping_ours() {
        let half = MAX_EVENT_BYTES / 2 + 10;
        let metadata = json!({"status": "error", "model": "gpt-4o", "cost": 0.5, "notes": big(MAX_EVENT_BYTES)});
        let mut e = event(big(half), big(half), metadata);
        let bytes = serde_json::to_vec(&e).unwrap().len();
        assert_eq!(shrink(&mut e, bytes), vec!["input_data", "output_data", "metadata"]);
        let m = &e.metadata;
        assert_eq!(
            (m["status"].clone(), m["model"].clone(), m["cost"].clone()),
            (json!("error"), json!("gpt-4o"), json!(0.5))
        );
        assert!(m.get("notes").is_none());
        assert_eq!(m["user_metadata"]["_truncated"], json!(true));
        assert_eq!(m["data_truncated"], json!(true));
        assert!(serde_json::to_vec(&e).unwrap().len() <= MAX_EVENT_BYTES);
    }

    #[test]
    fn encode_shrinks_a_large_event_to_the_limit() {
        let e = event(big(MAX_EVENT_BYTES * 2), Value::Null, json!({}));
        let (sent, payload) = encode(&e).unwrap();
        assert!(payload.len() <= MAX_EVENT_BYTES);
        assert_eq!(serde_json::to_vec(sent.as_ref()).unwrap(), payload);
        assert_eq!(sent.metadata["data_truncated"], json!(true));
    }

    #[test]
    fn a_preview_counts_characters_not_bytes() {
        let mut e = event(Value::String("é".repeat(MAX_EVENT_BYTES)), Value::Null, json!({}));
        let bytes = serde_json::to_vec(&e).unwrap().len();
        shrink(&mut e, bytes);
        let preview = e.input_data.unwrap()["preview"].as_str().unwrap().to_owned();
        assert_eq!(preview.chars().count(), PREVIEW_CHARS);
        assert!(preview.starts_with("\"é"));
    }
}
