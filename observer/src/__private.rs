//! Support code for the attribute macros. **Not public API**: anything here may change in any release.

use crate::audit::{AuditAction, ResourceType};

/// The trace and span id of the current OpenTelemetry span, when tracing with OpenTelemetry is set up.
pub fn current_trace_ids() -> Option<(String, String)> {
    None
}

/// Formats a value for an id/name/description argument of `#[audit]`.
pub fn display<T: ::core::fmt::Display + ?Sized>(value: &T) -> String {
    value.to_string()
}

/// What one `#[audit]`-annotated call recorded.
#[derive(Debug)]
pub struct AuditCall {
    /// The action.
    pub action: AuditAction,
    /// The resource type.
    pub resource: ResourceType,
    /// `id = ..`, if given and computable.
    pub id: Option<String>,
    /// `name = ..`.
    pub name: Option<String>,
    /// `description = ..`.
    pub description: Option<String>,
    /// The error message when the fn returned `Err`.
    pub error: Option<String>,
    /// `module_path!()::fn_name`.
    pub function: &'static str,
}

/// Records the audit event of one annotated call. Never panics and never fails the caller: an event that
/// cannot be queued is reported and written to stderr.
pub fn record_audit(call: AuditCall) {
    let mut b = crate::audit::get_audit_logger()
        .log(call.action.default_event_type(), call.action, call.resource, call.id.unwrap_or_default())
        .metadata("function", call.function);
    if let Some(name) = call.name {
        b = b.resource_name(name);
    }
    if let Some(d) = call.description {
        b = b.description(d);
    }
    if let Some(err) = call.error {
        b = b.outcome(crate::AuditOutcome::Failure).metadata("error", err);
    }
    if let Err(e) = b.emit() {
        report_unrecorded(&e);
    }
}

fn report_unrecorded(e: &crate::AuditError) {
    use crate::AuditError;
    tracing::error!(target: "observer", error = %e, "#[audit] event could not be recorded");
    let event = match e {
        AuditError::QueueFull { event, .. } | AuditError::WriteFailed { event, .. } => Some(event),
        _ => None,
    };
    if let Some(json) = event.and_then(|ev| serde_json::to_vec(ev).ok()) {
        crate::export::fallback_to_stderr(&json);
    }
}

/// Runs the body of a sync `#[audit]` fn. Naming `R` (`call::<R, _>(move || body)`) gives `?` and `return` in
/// the body the fn's return type.
#[inline(always)]
pub fn call<R, F: FnOnce() -> R>(body: F) -> R {
    body()
}

/// Types the body of an async `#[audit]` fn as a future of `R` (`typed_future::<R, _>(async move body)`), so
/// that `?` and `return` in it get the fn's return type.
#[inline(always)]
pub fn typed_future<R, F: ::core::future::Future<Output = R>>(body: F) -> F {
    body
}

/// The error of an `Err` returned by an `#[audit]` fn, for its message: `Display` when the error type has it,
/// else `Debug` (`(&&ErrorRef(e)).__observer_error_message()` with both traits in scope).
#[derive(Debug)]
pub struct ErrorRef<'a, T: ?Sized>(pub &'a T);

/// The error message through `Display` (preferred: implemented on `&ErrorRef`).
pub trait ErrorDisplay {
    /// The message.
    fn __observer_error_message(&self) -> String;
}

impl<T: ::core::fmt::Display + ?Sized> ErrorDisplay for &ErrorRef<'_, T> {
    fn __observer_error_message(&self) -> String {
        self.0.to_string()
    }
}

/// The error message through `Debug`, for error types without `Display`.
pub trait ErrorDebug {
    /// The message.
    fn __observer_error_message(&self) -> String;
}

impl<T: ::core::fmt::Debug + ?Sized> ErrorDebug for ErrorRef<'_, T> {
    fn __observer_error_message(&self) -> String {
        format!("{:?}", self.0)
    }
}
