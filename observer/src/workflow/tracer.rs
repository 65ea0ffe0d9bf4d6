//! [`WorkflowTracer`]: step-by-step timing of any multi-step process (the guide's "Workflow Tracing").
//!
//! A workflow is a value: create it with [`WorkflowTracer::new`] (or [`trace_workflow`]), time each step with
//! [`run_step`](WorkflowTracer::run_step) / [`run_step_async`](WorkflowTracer::run_step_async) (the step's outcome
//! is the closure's `Result`) or with a [`Step`] guard, and end it with [`finish`](WorkflowTracer::finish), which
//! returns the guide's summary. Where Python writes
//! `with WorkflowTracer("process-order", order_id="123") as tracer:`, Rust writes:
//!
//! ```
//! use observer::trace::{StepStatus, WorkflowTracer};
//!
//! let wf = WorkflowTracer::new("process-order").attr("order_id", "123");
//! let mut step = wf.step("validate");
//! step.set("items_count", 5);
//! step.finish(); // the step ends (and is timed) here, as a success
//!
//! wf.run_step("payment", |step| {
//!     step.set("amount", 99.99).set("provider", "stripe");
//!     Ok::<_, String>(())
//! })?;
//! wf.step("fulfillment").finish();
//! wf.set("status", "completed");
//!
//! let summary = wf.finish();
//! assert_eq!(summary.step_count, 3);
//! assert_eq!(summary.steps[0].name, "validate");
//! assert_eq!(summary.steps[0].status, StepStatus::Ok);
//! assert_eq!(summary.steps[0].attributes["items_count"], 5);
//! assert_eq!(summary.attributes["status"], "completed");
//! println!("Total duration: {:.2}ms", summary.duration_ms);
//! for step in wf.steps() {
//!     println!("{}: {:.2}ms", step.name, step.duration_ms);
//! }
//! # Ok::<(), String>(())
//! ```
//!
//! # A step's outcome
//!
//! Each step is recorded with a [`status`](StepRecord::status): `"ok"`, `"error"` (with its `error` message) or
//! `"unconfirmed"`. Unlike Python's `with` block, a guard cannot see an error that leaves its scope (`?`,
//! `return Err(..)`): dropped without [`finish`](Step::finish), [`fail`](Step::fail) or
//! [`finish_with`](Step::finish_with), a step is recorded as `"unconfirmed"` (its time is kept, but neither success
//! nor failure is claimed) and a warning (target `observer`, on stderr without a subscriber; once per process) says
//! so. A guard dropped while its thread panics records the error `"panicked"`. `run_step`, `run_step_async` and
//! `#[step]` always know the outcome. A guard dropped at once times nothing: the compiler warns about
//! `wf.step("x");`, but not about `let _ = wf.step("x");` (the language's way to discard a value) — such a step is
//! `"unconfirmed"`.
//!
//! ```
//! use observer::trace::{StepStatus, WorkflowTracer};
//!
//! fn charge(wf: &WorkflowTracer, fail: bool) -> Result<u32, String> {
//!     let step = wf.step("payment");
//!     let result = if fail { Err("Card declined".to_string()) } else { Ok(42) };
//!     step.finish_with(&result); // "ok", or "error" with the message
//!     result
//! }
//! let wf = WorkflowTracer::new("checkout");
//! assert!(charge(&wf, true).is_err());
//! wf.step("refund").fail("gateway timeout");
//! let steps = wf.steps();
//! assert_eq!((steps[0].status, steps[0].error.as_deref()), (StepStatus::Error, Some("Card declined")));
//! assert_eq!(steps[1].status, StepStatus::Error);
//! ```
//!
//! Workflows and steps support chaining:
//!
//! ```
//! use observer::trace::trace_workflow;
//!
//! let wf = trace_workflow("order").attr("order_id", "123").attr("customer", "acme");
//! wf.set("priority", "high").set("region", "us-west");
//! let mut step = wf.step("process");
//! step.set("result", "ok").set("items", 5).log("Processing complete");
//! step.finish();
//! let summary = wf.get_summary();
//! assert_eq!(summary["attributes"]["region"], "us-west");
//! assert_eq!(summary["steps"][0]["attributes"]["items"], 5);
//! ```
//!
//! Errors in steps are captured and returned unchanged (the guide's "captured but re-raised"):
//!
//! ```
//! use observer::trace::WorkflowTracer;
//!
//! let wf = WorkflowTracer::new("order-workflow");
//! wf.run_step("validate", |_step| Ok::<_, String>(()))?;
//! let paid = wf.run_step("payment", |_step| Err::<(), _>("Card declined".to_string()));
//! assert!(paid.is_err());
//! for step in wf.steps() {
//!     if let Some(error) = &step.error {
//!         println!("Step {} failed: {error}", step.name);
//!     }
//! }
//! assert_eq!(wf.steps()[1].error.as_deref(), Some("Card declined"));
//! # Ok::<(), String>(())
//! ```
//!
//! # Spans
//!
//! Each workflow opens a `tracing` span named `workflow` with the fields `otel.name = "workflow:{name}"` (the span
//! name under `tracing-opentelemetry`) and `workflow.name`; each step opens a span named `step`, whose parent is
//! always the workflow span (also when the step starts on another thread or task), with the fields
//! `otel.name = "step:{name}"`, `step.name` and `step.index` (0-based, in start order). Attributes set with `set` /
//! `attr` and errors are also put on the OpenTelemetry span when an OpenTelemetry layer is installed.
//! [`Step`] does not enter its span (a guard that entered a span could not move between threads);
//! [`run_step`](WorkflowTracer::run_step) and [`run_step_async`](WorkflowTracer::run_step_async) do, so spans and
//! events created inside them are children of the step span.
//!
//! # Concurrency
//!
//! [`WorkflowTracer`] is a cheap handle (`Clone + Send + Sync`, clones share one workflow) and [`Step`] is `Send`,
//! so steps of one workflow may run concurrently on several threads or tasks. Steps appear in
//! [`steps`](WorkflowTracer::steps) and in the summary once they have ended, in the order they *started*.
//!
//! # Event stream
//!
//! A workflow can also stream its progress as [`WorkflowEvent`](crate::trace::WorkflowEvent)s (`workflow_start`,
//! `step_start`, `step_end`, `workflow_end`) to a [`WorkflowSink`] — Kafka's `workflow_topic` for the workflows
//! of a [`TracerFactory`](crate::trace::TracerFactory) with Kafka, or any sink given to
//! [`with_stream`](WorkflowTracer::with_stream); see [`WorkflowSink`](crate::trace::WorkflowSink). Events are sent
//! under the workflow's lock, so the events of one workflow reach the sink in order; sending never blocks (the
//! Kafka sink hands the message to the shared producer). Without a stream, a step costs one extra branch.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Instant;

use crate::trace::scope::ScopeGuard;
use ::tracing::Instrument;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::stream::{Stream, WorkflowSink};
use crate::otel::{set_span_attribute, set_span_error};

/// The error recorded for a step that panicked.
const PANICKED: &str = "panicked";
/// The error recorded for a [`run_step_async`](WorkflowTracer::run_step_async) future dropped before it completed.
const CANCELLED: &str = "cancelled";

/// A traced workflow. Cheap to clone (clones share state); `Send + Sync`.
///
/// Dropping the last clone of a workflow that was not [`finish`](Self::finish)ed finishes it (and, when it
/// [streams](Self::with_stream), sends its `workflow_end`).
#[derive(Clone)]
pub struct WorkflowTracer {
    inner: Arc<Handle>,
}

/// Owned by the [`WorkflowTracer`] clones only (not by steps): finishes the workflow when the last clone goes.
struct Handle {
    shared: Arc<Shared>,
}

/// The workflow itself, shared by the tracer handles and the running steps.
struct Shared {
    name: String,
    start: Instant,
    state: Mutex<State>,
}

struct State {
    attributes: Map<String, Value>,
    /// One slot per started step, in start order; `None` while the step runs.
    steps: Vec<Option<StepRecord>>,
    /// The workflow-level error (the last one recorded).
    error: Option<String>,
    /// The workflow span; taken (and dropped) by `finish`.
    span: Option<::tracing::Span>,
    /// The frozen duration, once finished.
    finished_ms: Option<f64>,
    /// The event stream, once [`WorkflowTracer::with_stream`] (or a streaming factory) started it.
    stream: Option<Box<Stream>>,
}

/// One step in progress; ends (and is timed) when [`finish`](Step::finish)ed (a success),
/// [`fail`](Step::fail)ed, [`finish_with`](Step::finish_with) a `Result`, or dropped. `Send`.
///
/// Dropped without one of those, the step is recorded with status `"unconfirmed"` (see
/// [the module docs](self#a-steps-outcome)): a guard cannot tell an early return by `?` from success. When the
/// thread is panicking while the step ends, the step records the error `"panicked"` (unless an error was already
/// recorded). A `Step` held inside a future is dropped only after the runtime has caught a panic of that future, so
/// it is then `"unconfirmed"`; [`WorkflowTracer::run_step_async`] records such panics.
#[must_use = "a step ends (and is timed) when this guard is dropped: keep it in a variable (`let step = \
              wf.step(..)`) and end it with `step.finish()`, `step.fail(err)` or `step.finish_with(&result)`, or use \
              `wf.run_step(..)`"]
pub struct Step {
    core: Arc<StepCore>,
}

/// A running step. The step ends when the last reference goes ([`Step`], or the guard of
/// [`WorkflowTracer::run_step_async`]).
struct StepCore {
    workflow: Arc<Shared>,
    slot: usize,
    name: String,
    start: Instant,
    span: ::tracing::Span,
    data: Mutex<StepData>,
}

#[derive(Default)]
struct StepData {
    attributes: Map<String, Value>,
    error: Option<String>,
    /// Ended by `finish` / `finish_with(&Ok)` / a successful `run_step`: the step's success is known.
    confirmed: bool,
}

/// How a step ended, as recorded in [`StepRecord::status`] (JSON `"ok"`, `"error"`, `"unconfirmed"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// The step succeeded: ended by [`Step::finish`], [`Step::finish_with`] an `Ok`, or a `run_step` /
    /// `run_step_async` / `#[step]` returning `Ok`.
    Ok,
    /// The step failed: `error` has the message (an `Err`, [`Step::fail`], [`Step::record_error`], a panic
    /// (`"panicked"`) or a cancelled `run_step_async` (`"cancelled"`)).
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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn millis(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

impl Shared {
    fn duration_ms(&self, state: &State) -> f64 {
        state.finished_ms.unwrap_or_else(|| millis(self.start))
    }

    /// Freezes the duration, sends `workflow_end` when streaming, and takes the span out (to be dropped by the
    /// caller, outside the lock). Does nothing when already finished.
    fn finish_locked(&self, state: &mut State) -> Option<::tracing::Span> {
        if state.finished_ms.is_some() {
            return None;
        }
        let duration_ms = millis(self.start);
        state.finished_ms = Some(duration_ms);
        if let Some(stream) = &state.stream {
            let steps = state.steps.iter().flatten().cloned().collect();
            stream.workflow_end(&self.name, duration_ms, state.error.as_deref(), &state.attributes, steps);
        }
        state.span.take()
    }

    fn summary_locked(&self, state: &State) -> WorkflowSummary {
        let steps: Vec<StepRecord> = state.steps.iter().flatten().cloned().collect();
        WorkflowSummary {
            name: self.name.clone(),
            duration_ms: self.duration_ms(state),
            step_count: steps.len(),
            steps,
            attributes: state.attributes.clone(),
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let span = self.shared.finish_locked(&mut lock(&self.shared.state));
        drop(span);
    }
}

impl WorkflowTracer {
    /// Starts a workflow named `name` (OTEL span `workflow:{name}`).
    pub fn new(name: impl Into<String>) -> Self {
        let start = Instant::now();
        let name = name.into();
        let span = ::tracing::info_span!("workflow", otel.name = %format!("workflow:{name}"), workflow.name = %name);
        let state = State {
            attributes: Map::new(),
            steps: Vec::new(),
            error: None,
            span: Some(span),
            finished_ms: None,
            stream: None,
        };
        let shared = Arc::new(Shared { name, start, state: Mutex::new(state) });
        Self { inner: Arc::new(Handle { shared }) }
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// Streams this workflow's events to `sink`, with `service_name` on every event: sends `workflow_start` now
    /// (with the attributes set so far), then `step_start` / `step_end` for every step started from now on and
    /// `workflow_end` once, on [`finish`](Self::finish) or when the last clone is dropped unfinished. A new
    /// `workflow_id` (a UUID) identifies the run; see [`workflow_id`](Self::workflow_id).
    ///
    /// A workflow streams to one sink: when it already streams, or has already finished, this does nothing
    /// (a `tracing` warning says so). Steps that end after `workflow_end` (still running at `finish`) still send
    /// their `step_end`. [`TracerFactory::create_workflow_tracer`](crate::trace::TracerFactory::create_workflow_tracer)
    /// calls this with the factory's sink and service name.
    ///
    /// ```
    /// use observer::trace::{MemoryWorkflowSink, WorkflowTracer};
    ///
    /// let events = MemoryWorkflowSink::new();
    /// let wf = WorkflowTracer::new("order").attr("order_id", "123").with_stream(events.clone(), "shop");
    /// wf.step("validate").finish();
    /// wf.finish();
    /// let json = events.json();
    /// assert_eq!(json[0]["event_type"], "workflow_start");
    /// assert_eq!(json[0]["attributes"]["order_id"], "123");
    /// assert_eq!(json[3]["event_type"], "workflow_end");
    /// ```
    pub fn with_stream(self, sink: impl WorkflowSink, service_name: impl Into<String>) -> Self {
        self.stream_to(Arc::new(sink), service_name.into())
    }

    /// [`with_stream`](Self::with_stream) with a shared sink.
    pub(crate) fn stream_to(self, sink: Arc<dyn WorkflowSink>, service_name: String) -> Self {
        let shared = self.shared();
        let mut state = lock(&shared.state);
        if state.stream.is_some() || state.finished_ms.is_some() {
            let why = if state.stream.is_some() { "it already streams" } else { "it has finished" };
            drop(state);
            crate::diag::report!(
                WARN,
                "workflow-stream-ignored",
                "with_stream({}) on workflow `{}` ignored: {why}",
                sink.describe(),
                shared.name
            );
            return self;
        }
        let stream = Stream::new(sink, service_name, state.steps.len());
        stream.workflow_start(&shared.name, &state.attributes);
        state.stream = Some(Box::new(stream));
        drop(state);
        self
    }

    /// The id of this workflow run on its event stream (a UUID string, also the Kafka key), or `None` when it
    /// does not [stream](Self::with_stream).
    pub fn workflow_id(&self) -> Option<String> {
        lock(&self.shared().state).stream.as_ref().map(|s| s.workflow_id().to_owned())
    }

    /// Waits (at most `timeout`) until the events this workflow streamed so far are delivered by its sink
    /// (immediately `Ok` when it does not stream). Not needed for delivery: the shared producer delivers on its
    /// own and `observer::init`'s guard drains it at exit.
    ///
    /// # Errors
    /// The sink's flush error, e.g. [`ExporterError::FlushTimeout`](crate::ExporterError::FlushTimeout).
    pub fn flush(&self, timeout: std::time::Duration) -> Result<(), crate::ExporterError> {
        let sink = lock(&self.shared().state).stream.as_ref().map(|s| Arc::clone(s.sink()));
        match sink {
            Some(sink) => sink.flush(timeout),
            None => Ok(()),
        }
    }

    fn insert_attribute(&self, key: String, value: Value) {
        let span = self.span();
        set_span_attribute(&span, &key, &value);
        lock(&self.shared().state).attributes.insert(key, value);
    }

    /// Adds an attribute at creation (builder style).
    pub fn attr(self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.insert_attribute(key.into(), value.into());
        self
    }

    /// Sets an attribute; chainable.
    pub fn set(&self, key: impl Into<String>, value: impl Into<Value>) -> &Self {
        self.insert_attribute(key.into(), value.into());
        self
    }

    /// Logs a message on the workflow span (an `INFO` event); chainable.
    pub fn log(&self, message: impl AsRef<str>) -> &Self {
        let span = self.span();
        ::tracing::info!(parent: &span, "{}", message.as_ref());
        self
    }

    /// Starts a step (OTEL span `step:{name}`, child of the workflow span).
    ///
    /// The step ends when the returned guard is dropped or [`finish`](Step::finish)ed. A step started after the
    /// workflow [finished](Self::finish) is still timed and listed in [`steps`](Self::steps), but has no span.
    pub fn step(&self, name: impl Into<String>) -> Step {
        let name = name.into();
        let shared = &self.inner.shared;
        // Only the parent's id is taken under the lock (no span clone), and the span's fields are lazy
        // `format_args!`, so that a step costs little more than the span itself.
        let (slot, parent) = {
            let mut state = lock(&shared.state);
            state.steps.push(None);
            let slot = state.steps.len() - 1;
            if let Some(stream) = &state.stream {
                stream.step_start(&shared.name, &name, slot);
            }
            (slot, state.span.as_ref().map(|s| s.id()))
        };
        let span = match parent {
            Some(parent) => ::tracing::info_span!(
                parent: parent,
                "step",
                otel.name = %format_args!("step:{name}"),
                step.name = %name,
                step.index = slot
            ),
            None => ::tracing::Span::none(),
        };
        let core = StepCore {
            workflow: Arc::clone(shared),
            slot,
            name,
            start: Instant::now(),
            span,
            data: Mutex::new(StepData::default()),
        };
        Step { core: Arc::new(core) }
    }

    /// Runs `f` as a step, inside the step's span; an `Err` is recorded as the step's error (its `Display` text)
    /// and returned unchanged. A panic in `f` records the error `"panicked"` and propagates.
    pub fn run_step<T, E: std::fmt::Display>(
        &self,
        name: impl Into<String>,
        f: impl FnOnce(&mut Step) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut step = self.step(name);
        let core = Arc::clone(&step.core);
        let result = core.span.in_scope(|| f(&mut step));
        step.finish_with(&result);
        result
    }

    /// Runs the future `f(step)` as a step, timed across its `.await`s; an `Err` is recorded and returned.
    ///
    /// The step starts when the returned future is first polled and ends when it completes (or, if `f`'s future
    /// keeps the [`Step`] beyond that, when the `Step` is dropped). The step span is entered while the future is
    /// polled. A panic while polling records the error `"panicked"`; dropping the future before it completes
    /// records `"cancelled"`. The future is `Send` when `f`, its future and `name` are.
    pub async fn run_step_async<T, E, F, Fut>(&self, name: impl Into<String>, f: F) -> Result<T, E>
    where
        E: std::fmt::Display,
        F: FnOnce(Step) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let step = self.step(name);
        let core = Arc::clone(&step.core);
        let span = core.span.clone();
        StepFuture { inner: f(step).instrument(span), guard: Completion { core: Some(core) } }.await
    }

    /// The finished steps so far, in start order.
    pub fn steps(&self) -> Vec<StepRecord> {
        lock(&self.shared().state).steps.iter().flatten().cloned().collect()
    }

    /// Duration so far (or total, once finished), in milliseconds.
    pub fn duration_ms(&self) -> f64 {
        self.shared().duration_ms(&lock(&self.shared().state))
    }

    /// The guide's summary JSON: exactly the keys `name`, `duration_ms`, `step_count`, `steps` (each `name`,
    /// `duration_ms`, `error`, `attributes`) and `attributes`.
    pub fn get_summary(&self) -> Value {
        serde_json::to_value(self.summary()).unwrap_or(Value::Null)
    }

    /// The typed summary: the finished steps so far and the duration so far (final once finished).
    pub fn summary(&self) -> WorkflowSummary {
        let shared = self.shared();
        shared.summary_locked(&lock(&shared.state))
    }

    /// Records an error of the workflow itself: marks the workflow span as failed and keeps the message for
    /// [`error`](Self::error) (the last one recorded wins). It is not part of the summary.
    pub fn record_error(&self, error: impl std::fmt::Display) {
        let message = error.to_string();
        let span = self.span();
        set_span_error(&span, &message);
        lock(&self.shared().state).error = Some(message);
    }

    /// The workflow-level error recorded with [`record_error`](Self::record_error), if any.
    pub fn error(&self) -> Option<String> {
        lock(&self.shared().state).error.clone()
    }

    /// The workflow's name.
    pub fn name(&self) -> &str {
        &self.shared().name
    }

    /// Whether [`finish`](Self::finish) has been called.
    pub fn is_finished(&self) -> bool {
        lock(&self.shared().state).finished_ms.is_some()
    }

    /// Ends the workflow (and its span) and returns the summary. Idempotent: later calls return the summary with
    /// the same duration.
    ///
    /// Steps still running at this point are not in the returned summary; they are timed and added to
    /// [`steps`](Self::steps) (and later summaries) when they end. The workflow span closes once those steps' spans
    /// have closed too.
    ///
    /// When the workflow [streams](Self::with_stream), the first call sends `workflow_end`, whose `steps` are
    /// exactly the returned summary's.
    pub fn finish(&self) -> WorkflowSummary {
        let shared = self.shared();
        let mut state = lock(&shared.state);
        let span = shared.finish_locked(&mut state);
        let summary = shared.summary_locked(&state);
        drop(state);
        drop(span);
        summary
    }

    /// The workflow's `tracing` span ([`Span::none`](::tracing::Span::none) once finished).
    pub fn span(&self) -> ::tracing::Span {
        lock(&self.shared().state).span.clone().unwrap_or_else(::tracing::Span::none)
    }

    /// Runs `fut` with this workflow as the [current workflow](current_workflow) (task-scoped: visible only while
    /// `fut` is being polled, on whichever thread polls it, never to other tasks).
    pub fn scope<F: Future>(&self, fut: F) -> WorkflowScope<F> {
        WorkflowScope { wf: Some(self.clone()), inner: fut }
    }

    /// Runs `f` with this workflow as the current workflow (thread-scoped, for synchronous code); the previous
    /// current workflow is restored afterwards, also on panic.
    pub fn scope_sync<R>(&self, f: impl FnOnce() -> R) -> R {
        let mut slot = Some(self.clone());
        let _guard = ScopeGuard::enter(&CURRENT, &mut slot);
        f()
    }
}

impl fmt::Debug for WorkflowTracer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = self.shared();
        let state = lock(&shared.state);
        f.debug_struct("WorkflowTracer")
            .field("name", &shared.name)
            .field("duration_ms", &shared.duration_ms(&state))
            .field("steps_started", &state.steps.len())
            .field("finished", &state.finished_ms.is_some())
            .field("stream", &state.stream)
            .finish_non_exhaustive()
    }
}

impl Step {
    /// Sets an attribute; chainable.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<Value>) -> &mut Self {
        let (key, value) = (key.into(), value.into());
        set_span_attribute(&self.core.span, &key, &value);
        lock(&self.core.data).attributes.insert(key, value);
        self
    }

    /// Logs a message on the step span (an `INFO` event); chainable.
    pub fn log(&mut self, message: impl AsRef<str>) -> &mut Self {
        ::tracing::info!(parent: &self.core.span, "{}", message.as_ref());
        self
    }

    /// Records the step's error (its `Display` text; the last one recorded wins); chainable.
    pub fn record_error(&mut self, error: impl std::fmt::Display) -> &mut Self {
        self.core.set_error(error.to_string());
        self
    }

    /// Ends the step now, as a success (status `"ok"`, or `"error"` if an error was
    /// [recorded](Self::record_error)).
    pub fn finish(self) {
        self.core.confirm();
    }

    /// Records `error` (its `Display` text) and ends the step now, as failed.
    pub fn fail(mut self, error: impl std::fmt::Display) {
        self.record_error(error);
    }

    /// Ends the step now with the outcome of `result`: an `Err` is recorded as the step's error (its `Display`
    /// text), an `Ok` makes it a success. For a guarded step whose result the caller then returns with `?`.
    pub fn finish_with<T, E: std::fmt::Display>(self, result: &Result<T, E>) {
        match result {
            Ok(_) => self.finish(),
            Err(e) => self.fail(e),
        }
    }

    /// The step's name.
    pub fn name(&self) -> &str {
        &self.core.name
    }

    /// The step's position in the workflow, 0-based, in start order (the span field `step.index`).
    pub fn index(&self) -> usize {
        self.core.slot
    }

    /// The step's `tracing` span.
    pub fn span(&self) -> ::tracing::Span {
        self.core.span.clone()
    }
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Step")
            .field("name", &self.core.name)
            .field("index", &self.core.slot)
            .field("workflow", &self.core.workflow.name)
            .finish_non_exhaustive()
    }
}

impl StepCore {
    fn confirm(&self) {
        lock(&self.data).confirmed = true;
    }

    fn set_error(&self, message: String) {
        set_span_error(&self.span, &message);
        lock(&self.data).error = Some(message);
    }

    /// Records `message` unless an error was already recorded.
    fn set_error_if_none(&self, message: &str) {
        let mut data = lock(&self.data);
        if data.error.is_none() {
            data.error = Some(message.to_owned());
            drop(data);
            set_span_error(&self.span, message);
        }
    }
}

impl Drop for StepCore {
    fn drop(&mut self) {
        let duration_ms = millis(self.start);
        if std::thread::panicking() {
            self.set_error_if_none(PANICKED);
        }
        let data = std::mem::take(self.data.get_mut().unwrap_or_else(PoisonError::into_inner));
        let status = match (&data.error, data.confirmed) {
            (Some(_), _) => StepStatus::Error,
            (None, true) => StepStatus::Ok,
            (None, false) => {
                warn_unconfirmed_once(&self.workflow.name, &self.name);
                StepStatus::Unconfirmed
            }
        };
        let record = StepRecord {
            name: std::mem::take(&mut self.name),
            duration_ms,
            error: data.error,
            attributes: data.attributes,
            status,
        };
        let mut state = lock(&self.workflow.state);
        if let Some(stream) = &state.stream {
            if self.slot >= stream.first_slot {
                stream.step_end(&self.workflow.name, self.slot, &record);
            }
        }
        if let Some(slot) = state.steps.get_mut(self.slot) {
            *slot = Some(record);
        }
    }
}

/// Says once per process that a step guard was dropped without being finished, and how it was recorded.
fn warn_unconfirmed_once(workflow: &str, step: &str) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        crate::diag::report!(
            WARN,
            "step-unconfirmed",
            "step {step:?} of workflow {workflow:?} ended without finish(), fail(err) or finish_with(&result): \
             recorded with status \"unconfirmed\" (a guard cannot tell an early return by `?` from success). End \
             guarded steps explicitly or use run_step; this is reported once per process"
        );
    }
}

pin_project_lite::pin_project! {
    /// The step of [`WorkflowTracer::run_step_async`]: records an `Err` output, a panic while polling, or
    /// cancellation.
    struct StepFuture<Fut> {
        #[pin]
        inner: ::tracing::instrument::Instrumented<Fut>,
        guard: Completion,
    }
}

/// Holds the step open until the future completes; records `"cancelled"` when dropped before that.
struct Completion {
    core: Option<Arc<StepCore>>,
}

impl Drop for Completion {
    fn drop(&mut self) {
        if let Some(core) = self.core.take() {
            core.set_error_if_none(if std::thread::panicking() { PANICKED } else { CANCELLED });
        }
    }
}

/// Records `"panicked"` if dropped while still armed, i.e. when the inner poll unwound.
struct PanicMark<'a> {
    core: Option<&'a StepCore>,
}

impl Drop for PanicMark<'_> {
    fn drop(&mut self) {
        if let Some(core) = self.core {
            core.set_error_if_none(PANICKED);
        }
    }
}

impl<Fut, T, E> Future for StepFuture<Fut>
where
    Fut: Future<Output = Result<T, E>>,
    E: fmt::Display,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut mark = PanicMark { core: this.guard.core.as_deref() };
        let poll = this.inner.poll(cx);
        mark.core = None;
        drop(mark);
        if let Poll::Ready(result) = &poll {
            if let Some(core) = this.guard.core.take() {
                match result {
                    Err(e) => core.set_error(e.to_string()),
                    Ok(_) => core.confirm(),
                }
                // Dropping the last reference ends the step now (unless the user kept the `Step`).
                drop(core);
            }
        }
        poll
    }
}

// ---------------------------------------------------------------------------------------------
// The current workflow: task scopes (`scope`) and thread scopes (`scope_sync`).

thread_local! {
    static CURRENT: RefCell<Option<WorkflowTracer>> = const { RefCell::new(None) };
}

pin_project_lite::pin_project! {
    /// A future running with a current workflow; see [`WorkflowTracer::scope`].
    #[must_use = "futures do nothing unless polled"]
    pub struct WorkflowScope<F> {
        wf: Option<WorkflowTracer>,
        #[pin]
        inner: F,
    }
}

impl<F: Future> Future for WorkflowScope<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _guard = ScopeGuard::enter(&CURRENT, this.wf);
        this.inner.poll(cx)
    }
}

/// The workflow of the innermost current [`scope`](WorkflowTracer::scope) (of the running task) or
/// [`scope_sync`](WorkflowTracer::scope_sync) (of the thread), if any.
pub fn current_workflow() -> Option<WorkflowTracer> {
    crate::trace::scope::current(&CURRENT)
}

/// The guide's `trace_workflow("my-task", ..)`: the same as [`WorkflowTracer::new`].
pub fn trace_workflow(name: impl Into<String>) -> WorkflowTracer {
    WorkflowTracer::new(name)
}
