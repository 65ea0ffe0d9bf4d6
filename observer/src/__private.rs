//! Support code for the attribute macros. **Not public API**: anything here may change in any release.

use crate::audit::{AuditAction, PurposeOfUse, ResourceType};
pub use crate::cost::price::calculate_cost_bundled_only;

/// The trace and span id of the current OpenTelemetry span, when tracing with OpenTelemetry is set up (feature
/// `otel`): `(trace_id, span_id)` in lower-case hex (32 and 16 digits), `None` outside a span or without the layer.
pub fn current_trace_ids() -> Option<(String, String)> {
    #[cfg(feature = "otel")]
    return crate::otel::current_trace_ids();
    #[cfg(not(feature = "otel"))]
    None
}

/// Formats a value for an id/name/description argument of `#[audit]`.
pub fn display<T: ::core::fmt::Display + ?Sized>(value: &T) -> String {
    value.to_string()
}

/// The disclosure keys of one `#[audit]`-annotated call. `Debug` never shows the patient. (Seven fields: the macro
/// leaves out `..Default::default()` when all seven are given; keep `expand/audit.rs` in step.)
#[derive(Default)]
pub struct AuditFields {
    /// `recipient = ..`.
    pub recipient: Option<String>,
    /// `purpose = ..`.
    pub purpose: Option<PurposeOfUse>,
    /// `data_categories = [..]`.
    pub data_categories: &'static [&'static str],
    /// `patient = ..`, in clear: hashed by [`record_audit`], never recorded as given.
    pub patient: Option<String>,
    /// `retention_days = ..`.
    pub retention_days: Option<u32>,
    /// `compliance_frameworks = [..]`.
    pub compliance_frameworks: &'static [&'static str],
    /// `immutable = ..`.
    pub immutable: Option<bool>,
}

impl ::core::fmt::Debug for AuditFields {
    fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
        f.debug_struct("AuditFields")
            .field("recipient", &self.recipient)
            .field("purpose", &self.purpose)
            .field("data_categories", &self.data_categories)
            .field("patient", &self.patient.as_ref().map(|_| "<redacted>"))
            .field("retention_days", &self.retention_days)
            .field("compliance_frameworks", &self.compliance_frameworks)
            .field("immutable", &self.immutable)
            .finish()
    }
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
    /// The disclosure keys.
    pub fields: AuditFields,
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
    let f = call.fields;
    if let Some(r) = f.recipient {
        b = b.recipient(r);
    }
    if let Some(p) = f.purpose {
        b = b.purpose_of_use(p);
    }
    if let Some(p) = f.patient {
        b = b.patient(p);
    }
    if let Some(d) = f.retention_days {
        b = b.retention_days(d);
    }
    if let Some(i) = f.immutable {
        b = b.immutable(i);
    }
    b = b
        .data_categories(f.data_categories.iter().copied())
        .compliance_frameworks(f.compliance_frameworks.iter().copied());
    crate::export::emit_or_fallback("#[audit]", b.emit());
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

// ---- #[workflow] and #[step] ------------------------------------------------------------------------------

/// `tracing`, for the `info_span!` that `#[step]` builds outside a workflow (the user's crate need not depend on
/// it).
pub use ::tracing;

/// `serde_json`, for the inputs `#[agent_component]` builds.
pub use ::serde_json;

use crate::trace::{current_workflow, WorkflowTracer};

/// Starts the workflow of one `#[workflow]` call; the generated code adds its `fields(..)` with
/// [`WorkflowTracer::attr`].
#[inline]
pub fn workflow(name: &'static str) -> WorkflowTracer {
    WorkflowTracer::new(name)
}

/// A field value of `#[workflow(fields(..))]`, converted with `(&&FieldRef(&expr)).__observer_field_value()`
/// and both [`FieldSerialize`] and [`FieldDisplay`] in scope: through `Serialize` when the type has it
/// (numbers stay numbers, `Option` becomes `null` or its value), else its `Display` string.
#[derive(Debug)]
pub struct FieldRef<'a, T: ?Sized>(pub &'a T);

/// A field value through `serde::Serialize` (preferred: implemented on `&FieldRef`).
pub trait FieldSerialize {
    /// The JSON value; `null` when serialisation fails (e.g. a map with non-string keys).
    fn __observer_field_value(&self) -> serde_json::Value;
}

impl<T: serde::Serialize + ?Sized> FieldSerialize for &FieldRef<'_, T> {
    fn __observer_field_value(&self) -> serde_json::Value {
        serde_json::to_value(self.0).unwrap_or(serde_json::Value::Null)
    }
}

/// A field value through `Display`, for types without `Serialize`.
pub trait FieldDisplay {
    /// The `Display` string.
    fn __observer_field_value(&self) -> serde_json::Value;
}

impl<T: ::core::fmt::Display + ?Sized> FieldDisplay for FieldRef<'_, T> {
    fn __observer_field_value(&self) -> serde_json::Value {
        serde_json::Value::String(self.0.to_string())
    }
}

/// Runs the body of a sync `#[workflow]` fn: with `workflow` as the current workflow (thread-scoped) and inside
/// its span, so that `#[step]`s find it and other spans created in the body are its children.
#[inline]
pub fn workflow_sync<R>(workflow: &WorkflowTracer, body: impl FnOnce() -> R) -> R {
    workflow.span().in_scope(|| workflow.scope_sync(body))
}

/// The body of an async `#[workflow]` fn as a future that runs with `workflow` as the current workflow
/// (task-scoped, across its `.await`s) and is instrumented with its span.
#[inline]
pub fn workflow_async<F: ::core::future::Future>(
    workflow: &WorkflowTracer,
    body: F,
) -> crate::trace::WorkflowScope<::tracing::instrument::Instrumented<F>> {
    use ::tracing::Instrument as _;
    workflow.scope(body.instrument(workflow.span()))
}

/// Ends the workflow of a `#[workflow]` call once its body has returned: records `error` (the `Err` message of
/// a `Result` fn) and finishes it.
#[inline]
pub fn finish_workflow(workflow: &WorkflowTracer, error: Option<String>) {
    if let Some(error) = error {
        workflow.record_error(error);
    }
    workflow.finish();
}

/// Runs the body of a sync `#[step]` fn that does not return a `Result`: as a step of the current workflow, or,
/// outside any workflow, inside the span `span()` builds (`info_span!("step", otel.name = ..)`, disabled and
/// nearly free when no subscriber wants it).
#[inline]
pub fn step_sync<R>(name: &'static str, span: impl FnOnce() -> ::tracing::Span, body: impl FnOnce() -> R) -> R {
    match current_workflow() {
        None => {
            let span = span();
            let _entered = span.enter();
            body()
        }
        Some(workflow) => {
            match workflow.run_step_sync(name, |_| ::core::result::Result::Ok::<R, ::core::convert::Infallible>(body()))
            {
                Ok(value) => value,
                Err(never) => match never {},
            }
        }
    }
}

/// [`step_sync`] for a fn returning `Result<T, E>`: an `Err` is recorded as the step's error, with the message
/// `message` gives (`Display`, else `Debug`), and returned unchanged.
#[inline]
pub fn step_sync_result<T, E>(
    name: &'static str,
    span: impl FnOnce() -> ::tracing::Span,
    body: impl FnOnce() -> Result<T, E>,
    message: impl FnOnce(&E) -> String,
) -> Result<T, E> {
    match current_workflow() {
        None => {
            let span = span();
            let _entered = span.enter();
            body()
        }
        Some(workflow) => {
            let ret = workflow.run_step_sync(name, |step| {
                let ret = body();
                if let Err(e) = &ret {
                    step.record_error(message(e));
                }
                ::core::result::Result::Ok::<_, ::core::convert::Infallible>(ret)
            });
            match ret {
                Ok(ret) => ret,
                Err(never) => match never {},
            }
        }
    }
}

/// Runs the body of an async `#[step]` fn that does not return a `Result`: as a step of the workflow current
/// when it is first polled, timed across its `.await`s, or, outside any workflow, instrumented with the span
/// `span()` builds.
pub async fn step_async<R>(
    name: &'static str,
    span: impl FnOnce() -> ::tracing::Span,
    body: impl ::core::future::Future<Output = R>,
) -> R {
    use ::tracing::Instrument as _;
    match current_workflow() {
        None => body.instrument(span()).await,
        Some(workflow) => {
            let ret =
                workflow.run_step(name, |_| async move { Ok::<R, ::core::convert::Infallible>(body.await) }).await;
            match ret {
                Ok(value) => value,
                Err(never) => match never {},
            }
        }
    }
}

/// [`step_async`] for a fn returning `Result<T, E>`: an `Err` is recorded as the step's error, with the message
/// `message` gives (`Display`, else `Debug`), and returned unchanged.
pub async fn step_async_result<T, E>(
    name: &'static str,
    span: impl FnOnce() -> ::tracing::Span,
    body: impl ::core::future::Future<Output = Result<T, E>>,
    message: impl FnOnce(&E) -> String,
) -> Result<T, E> {
    use ::tracing::Instrument as _;
    match current_workflow() {
        None => body.instrument(span()).await,
        Some(workflow) => {
            let ret = workflow
                .run_step(name, |mut step| async move {
                    let ret = body.await;
                    if let Err(e) = &ret {
                        step.record_error(message(e));
                    }
                    Ok::<_, ::core::convert::Infallible>(ret)
                })
                .await;
            match ret {
                Ok(ret) => ret,
                Err(never) => match never {},
            }
        }
    }
}

/// Types the body of a sync `#[workflow]`/`#[step]` fn as a closure returning `R`
/// (`typed_closure::<R, _>(move || body)`), so that `?` and `return` in it get the fn's return type.
#[inline(always)]
pub fn typed_closure<R, F: FnOnce() -> R>(body: F) -> F {
    body
}

// ---- #[agent_component] -----------------------------------------------------------------------------------

/// The `kind = ".."` of `#[agent_component]`, checked against the same table by the macro.
pub use crate::agent::ComponentKind;
/// The `capture = ".."` of `#[agent_component]`.
pub use crate::CaptureLevel;

/// An argument of an `#[agent_component]` fn, serialised for the component's `input_data`
/// (`agent_input(&arg)`): the argument's type must implement `serde::Serialize`, or be left out with
/// `skip(arg)`.
#[inline]
pub fn agent_input<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_else(|e| serde_json::Value::String(format!("<not serialisable: {e}>")))
}

/// The inputs of one `#[agent_component]` call, built by `inputs` only when an agent trace is current (the
/// arguments are serialised before the body takes them).
#[inline]
pub fn agent_inputs(inputs: impl FnOnce() -> serde_json::Value) -> Option<serde_json::Value> {
    crate::agent::scope::current().map(|_| inputs())
}

/// The return value of an `#[agent_component]` fn as its `output_data`:
/// `(&&OutputRef(&value)).__observer_output()` with [`OutputSerialize`] and [`OutputOpaque`] in scope gives its
/// JSON when the type implements `Serialize`, else `null`.
#[derive(Debug)]
pub struct OutputRef<'a, T: ?Sized>(pub &'a T);

/// Output through `serde::Serialize` (preferred: implemented on `&OutputRef`).
pub trait OutputSerialize {
    /// The JSON value (`null` when serialisation fails).
    fn __observer_output(&self) -> serde_json::Value;
}

impl<T: serde::Serialize + ?Sized> OutputSerialize for &OutputRef<'_, T> {
    fn __observer_output(&self) -> serde_json::Value {
        serde_json::to_value(self.0).unwrap_or(serde_json::Value::Null)
    }
}

/// Output of a type without `Serialize`: `null`.
pub trait OutputOpaque {
    /// `null`.
    fn __observer_output(&self) -> serde_json::Value;
}

impl<T: ?Sized> OutputOpaque for OutputRef<'_, T> {
    fn __observer_output(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
}

/// What an `#[agent_component]` call returned: its outputs, or its error message.
#[derive(Debug)]
pub struct ComponentOutcome {
    /// `output_data`.
    pub outputs: serde_json::Value,
    /// The `Err` message of a `Result` fn.
    pub error: Option<String>,
}

/// One running `#[agent_component]` call inside an agent trace. Ends the component when dropped without
/// `finish` (the body panicked, or the future was dropped before it completed).
#[derive(Debug)]
pub struct ComponentCall {
    tracer: crate::trace::AgentTracer,
    id: std::sync::Arc<str>,
    name: &'static str,
    done: bool,
}

impl ComponentCall {
    fn start(
        name: &'static str,
        kind: Option<ComponentKind>,
        capture: Option<CaptureLevel>,
        inputs: Option<serde_json::Value>,
    ) -> Option<Self> {
        let current = crate::agent::scope::current()?;
        let id: std::sync::Arc<str> = format!("{name}-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]).into();
        current.tracer.start_component(
            id.to_string(),
            name.to_owned(),
            kind.map_or_else(String::new, String::from),
            inputs.unwrap_or(serde_json::Value::Null),
            serde_json::Value::Null,
            current.component.as_deref().map(str::to_owned),
            capture,
        );
        Some(Self { tracer: current.tracer, id, name, done: false })
    }

    fn finish(mut self, outcome: ComponentOutcome) {
        self.done = true;
        self.tracer.end_trace(&self.id, self.name, outcome.outputs, outcome.error.as_deref());
    }
}

impl Drop for ComponentCall {
    fn drop(&mut self) {
        if !self.done {
            let message =
                if std::thread::panicking() { "the component panicked" } else { "the component was cancelled" };
            self.tracer.end_trace(&self.id, self.name, serde_json::Value::Null, Some(message));
        }
    }
}

/// Runs the body of a sync `#[agent_component]` fn: as a component of the current agent trace (nested
/// components become its children), or, outside any agent trace, inside a plain span.
pub fn agent_component_sync<R>(
    name: &'static str,
    kind: Option<ComponentKind>,
    capture: Option<CaptureLevel>,
    inputs: Option<serde_json::Value>,
    body: impl FnOnce() -> R,
    outcome: impl FnOnce(&R) -> ComponentOutcome,
) -> R {
    match ComponentCall::start(name, kind, capture, inputs) {
        None => {
            let span = ::tracing::info_span!("agent_component", otel.name = name);
            let _entered = span.enter();
            body()
        }
        Some(call) => {
            let ret = crate::agent::scope::scope_sync(call.tracer.clone(), Some(call.id.clone()), body);
            call.finish(outcome(&ret));
            ret
        }
    }
}

/// Runs the body of an async `#[agent_component]` fn (see [`agent_component_sync`]); the component lasts from
/// the first poll to completion, across `.await`s.
pub async fn agent_component_async<R>(
    name: &'static str,
    kind: Option<ComponentKind>,
    capture: Option<CaptureLevel>,
    inputs: Option<serde_json::Value>,
    body: impl ::core::future::Future<Output = R>,
    outcome: impl FnOnce(&R) -> ComponentOutcome,
) -> R {
    use ::tracing::Instrument as _;
    match ComponentCall::start(name, kind, capture, inputs) {
        None => body.instrument(::tracing::info_span!("agent_component", otel.name = name)).await,
        Some(call) => {
            let scoped = crate::agent::scope::AgentScope::new(call.tracer.clone(), Some(call.id.clone()), body);
            let ret = scoped.await;
            call.finish(outcome(&ret));
            ret
        }
    }
}

/// The redaction of one audit event as the dispatcher applies it (`None`: nothing changes): the `redaction`
/// bench's per-event figure.
pub fn redact_event(redactor: &crate::redact::Redactor, event: &crate::AuditEvent) -> Option<crate::AuditEvent> {
    crate::redact::redact_event(redactor, event)
}

/// The detectors (kind, index) whose pattern matches `text` although the redaction prefilter rules them out:
/// must be empty (the prefilter's soundness tests).
pub fn redaction_prefilter_misses(redactor: &crate::redact::Redactor, text: &str) -> Vec<(crate::redact::Kind, usize)> {
    redactor.prefilter_misses(text)
}

/// Whether the redaction prefilter skips the scan of `text`.
pub fn redaction_prefilter_skips(redactor: &crate::redact::Redactor, text: &str) -> bool {
    redactor.prefilter_skips(text)
}
