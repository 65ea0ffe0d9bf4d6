//! The redaction of audit events: the free-text fields (description, resource name), the metadata (where the
//! login reason and LLM summaries live) and the old and new values of change records. The ids (event,
//! resource, trace), the actor, the vocabulary fields and the timestamp are kept: they are the evidence.

use std::borrow::Cow;

use serde_json::Value;

use super::Redactor;
use crate::audit::AuditEvent;

/// `event` with its free-text fields redacted under `redactor`, or `None` when nothing in it changes (the
/// common case costs no copy).
pub(crate) fn redact_event(redactor: &Redactor, event: &AuditEvent) -> Option<AuditEvent> {
    if !redactor.is_enabled() {
        return None;
    }
    let mut out: Option<AuditEvent> = None;
    let text = |s: &Option<String>| match s.as_deref().map(|s| redactor.redact_str(s)) {
        Some(Cow::Owned(new)) => Some(new),
        _ => None,
    };
    if let Some(new) = text(&event.description) {
        out.get_or_insert_with(|| event.clone()).description = Some(new);
    }
    if let Some(new) = text(&event.resource_name) {
        out.get_or_insert_with(|| event.clone()).resource_name = Some(new);
    }
    if !event.metadata.is_empty() {
        let mut metadata = event.metadata.clone();
        redactor.redact_map(&mut metadata);
        if metadata != event.metadata {
            out.get_or_insert_with(|| event.clone()).metadata = metadata;
        }
    }
    for (i, change) in event.changes.iter().enumerate() {
        let mut old = change.old_value.clone();
        let mut new = change.new_value.clone();
        if !redactor.redact_field(&change.field, &mut old) {
            old = Value::Null;
        }
        if !redactor.redact_field(&change.field, &mut new) {
            new = Value::Null;
        }
        if old != change.old_value || new != change.new_value {
            let e = out.get_or_insert_with(|| event.clone());
            e.changes[i].old_value = old;
            e.changes[i].new_value = new;
        }
    }
    out
}
