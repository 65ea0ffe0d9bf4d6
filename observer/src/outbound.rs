//! Content that leaves the process outside the audit pipeline — the agent stream, workflow events, span
//! attributes and events, the LLM layer's captured messages — goes through here to be redacted by the process's
//! redaction policy ([`crate::redact::active`]: the current pipeline scope's, else `init`'s, else the
//! environment's) before it is sent. Fails closed, as the engine does: a value it cannot redact within its size
//! and time budget is replaced by a marker, never passed through.

use std::borrow::Cow;

use serde_json::Value;

/// `text` redacted under the process's policy.
pub(crate) fn text(text: &str) -> Cow<'_, str> {
    crate::redact::active().redact_str(text)
}

/// Field `key` with `value` redacted under the process's policy (the key rules for `key`, then the value's strings);
/// `false` when the policy drops the field. (Used by the span exporters, hence only with `otel`.)
#[cfg(feature = "otel")]
pub(crate) fn field(key: &str, value: &mut Value) -> bool {
    crate::redact::active().redact_field(key, value)
}

/// `value` redacted under the process's policy (keys and strings at every depth).
pub(crate) fn value(mut value: Value) -> Value {
    crate::redact::active().redact_value(&mut value);
    value
}
