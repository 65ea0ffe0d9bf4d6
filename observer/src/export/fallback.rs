//! The last resort for audit events no sink could take: their JSON lines on stderr, prefixed
//! `observer-audit-fallback: `, so that none is lost silently.

use std::io::Write;
use std::sync::Arc;

use crate::audit::AuditEvent;
use crate::error::{AuditError, ExporterError};

/// The last resort for events a sink could not take: one line each on stderr, prefixed
/// `observer-audit-fallback: `, so they are never lost silently. `lines` holds one or more JSON lines.
pub(crate) fn fallback_to_stderr(lines: &[u8]) {
    let mut err = std::io::stderr().lock();
    for line in lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let _ = err.write_all(b"observer-audit-fallback: ");
        let _ = err.write_all(line);
        let _ = err.write_all(b"\n");
    }
}

/// The one way the SDK's own audit events (`#[audit]`, LLM interactions, authentication failures) handle an
/// event `emit` could not record: the queue was full or the synchronous writer failed. The failure is reported
/// (as an error naming `origin`) and the event's JSON line is written to the stderr fallback, so that it is never
/// lost silently; so is an event refused for want of a patient key or of a required field.
pub(crate) fn emit_or_fallback(origin: &str, result: Result<Arc<AuditEvent>, AuditError>) {
    let Err(e) = result else { return };
    crate::diag::report!(
        ERROR,
        "event-unrecorded",
        "{origin} audit event could not be recorded ({e}); written to stderr"
    );
    let event = match &e {
        AuditError::QueueFull { event, .. } => Some(event),
        // The synchronous writer's file sink already put the line on the fallback.
        AuditError::WriteFailed { source: ExporterError::PartialFlush { .. }, .. } => None,
        AuditError::WriteFailed { event, .. } => Some(event),
        // Not recorded for want of a patient key or a required field: on the fallback, so it is not lost.
        AuditError::PatientKey { event, .. } | AuditError::MissingField { event, .. } => Some(event),
    };
    // Redacted as the pipeline would have (the policy of the pipeline the event was meant for).
    let event =
        event.map(|ev| crate::redact::redact_event(&crate::redact::active(), ev).unwrap_or_else(|| (**ev).clone()));
    if let Some(json) = event.and_then(|ev| serde_json::to_vec(&ev).ok()) {
        fallback_to_stderr(&json);
    }
}
