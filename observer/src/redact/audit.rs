//! The redaction of audit events: the free-text fields (description, resource name), the metadata (where the
//! login reason and LLM summaries live) and the old and new values of change records. The ids (event,
//! resource, trace), the actor, the vocabulary fields and the timestamp are kept: they are the evidence.

use serde_json::Value;

use super::engine::{Clock, Outcome};
use super::Redactor;
use crate::audit::AuditEvent;

/// `event` with its free-text fields redacted under `redactor`, or `None` when nothing in it changes (the
/// common case costs no copy).
pub(crate) fn redact_event(redactor: &Redactor, event: &AuditEvent) -> Option<AuditEvent> {
    if !redactor.is_enabled() {
        return None;
    }
    let mut out: Option<AuditEvent> = None;
    // Each field has its own time budget, as if redacted on its own; one clock for all.
    let clock = Clock::default();
    let text = |s: &Option<String>| s.as_deref().and_then(|s| redactor.changed_text(s, &clock));
    if let Some(new) = text(&event.description) {
        out.get_or_insert_with(|| event.clone()).description = Some(new);
    }
    if let Some(new) = text(&event.resource_name) {
        out.get_or_insert_with(|| event.clone()).resource_name = Some(new);
    }
    if let Some(metadata) = redactor.redacted_map_of(&event.metadata, &clock) {
        if metadata != event.metadata {
            out.get_or_insert_with(|| event.clone()).metadata = metadata;
        }
    }
    for (i, change) in event.changes.iter().enumerate() {
        let value = |v: &Value| match redactor.field_outcome(&change.field, v, &clock) {
            Outcome::Keep => None,
            Outcome::Replace(new) => Some(new),
            Outcome::Drop => Some(Value::Null),
        };
        let old = value(&change.old_value).filter(|v| *v != change.old_value);
        let new = value(&change.new_value).filter(|v| *v != change.new_value);
        if old.is_some() || new.is_some() {
            let e = out.get_or_insert_with(|| event.clone());
            if let Some(old) = old {
                e.changes[i].old_value = old;
            }
            if let Some(new) = new {
                e.changes[i].new_value = new;
            }
        }
    }
    out
}
