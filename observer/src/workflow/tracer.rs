//! [`WorkflowTracer`]: the workflow handle and the state its clones and steps share — its attributes, its
//! summary, its end, and where its events stream. Steps are in `step.rs`, the current workflow in `scope.rs`.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use serde_json::{Map, Value};

use super::sink::WorkflowSink;
use super::stream::Stream;
use super::summary::{StepEntry, StepRecord, WorkflowSummary};
#[cfg(doc)]
use super::Step;
use crate::otel::{set_span_attribute, set_span_error};

/// A traced workflow: step-by-step timing of any multi-step process (the guide's "Workflow Tracing"). Cheap to
/// clone (clones share state); `Send + Sync`.
///
/// Create it with [`WorkflowTracer::new`] (or [`trace_workflow`]), time each step with
/// [`run_step`](Self::run_step) (a future) / [`run_step_sync`](Self::run_step_sync) (a closure) — the step's
/// outcome is their `Result` — or with a [`Step`] guard, and end it with [`finish`](Self::finish). Then
/// [`get_summary`](Self::get_summary) gives the guide's summary JSON, [`summary`](Self::summary) the same typed.
/// Dropping the last clone of a workflow that was not finished finishes it (and, when it
/// [streams](Self::stream), sends its `workflow_end`). Where Python writes
/// `with WorkflowTracer("process-order", order_id="123") as tracer:`, Rust writes:
///
/// ```
/// use observer::trace::{StepStatus, WorkflowTracer};
///
/// let wf = WorkflowTracer::new("process-order").attr("order_id", "123");
/// let mut step = wf.step("validate");
/// step.set("items_count", 5);
/// step.finish(); // the step ends (and is timed) here, as a success
///
/// wf.run_step_sync("payment", |step| {
///     step.set("amount", 99.99).set("provider", "stripe");
///     Ok::<_, String>(())
/// })?;
/// wf.step("fulfillment").finish();
/// wf.set("status", "completed");
/// wf.finish();
///
/// let summary = wf.summary();
/// assert_eq!(summary.step_count, 3);
/// assert_eq!(summary.steps[0].name, "validate");
/// assert_eq!(summary.steps[0].status, StepStatus::Ok);
/// assert_eq!(summary.steps[0].attributes["items_count"], 5);
/// assert_eq!(summary.attributes["status"], "completed");
/// println!("Total duration: {:.2}ms", summary.duration_ms);
/// for step in wf.steps() {
///     println!("{}: {:.2}ms", step.name, step.duration_ms);
/// }
/// # Ok::<(), String>(())
/// ```
///
/// In async code, [`run_step`](Self::run_step) times a step across its `.await`s:
///
/// ```
/// use observer::trace::WorkflowTracer;
///
/// # async fn fetch() -> Result<u32, String> { Ok(3) }
/// # async fn run() -> Result<(), String> {
/// let wf = WorkflowTracer::new("sync-inventory");
/// let items = wf
///     .run_step("fetch", |mut step| async move {
///         let items = fetch().await?;
///         step.set("items", items);
///         Ok::<_, String>(items)
///     })
///     .await?;
/// wf.finish();
/// assert_eq!(wf.get_summary()["steps"][0]["attributes"]["items"], items);
/// # Ok(())
/// # }
/// ```
///
/// # A step's outcome
///
/// Each step is recorded with a [`status`](StepRecord::status): `"ok"`, `"error"` (with its `error` message) or
/// `"unconfirmed"`. Unlike Python's `with` block, a guard cannot see an error that leaves its scope (`?`,
/// `return Err(..)`): dropped without [`finish`](Step::finish), [`fail`](Step::fail) or
/// [`finish_with`](Step::finish_with), a step is recorded as `"unconfirmed"` (its time is kept, but neither success
/// nor failure is claimed) and a warning (target `observer`, on stderr without a subscriber; once per process) says
/// so. A guard dropped while its thread panics records the error `"panicked"`. `run_step`, `run_step_sync` and
/// `#[step]` always know the outcome. A guard dropped at once times nothing: the compiler warns about
/// `wf.step("x");`, but not about `let _ = wf.step("x");` (the language's way to discard a value) — such a step is
/// `"unconfirmed"`.
///
/// ```
/// use observer::trace::{StepStatus, WorkflowTracer};
///
/// fn charge(wf: &WorkflowTracer, fail: bool) -> Result<u32, String> {
///     let step = wf.step("payment");
///     let result = if fail { Err("Card declined".to_string()) } else { Ok(42) };
///     step.finish_with(&result); // "ok", or "error" with the message
///     result
/// }
/// let wf = WorkflowTracer::new("checkout");
/// assert!(charge(&wf, true).is_err());
/// wf.step("refund").fail("gateway timeout");
/// let steps = wf.steps();
/// assert_eq!((steps[0].status, steps[0].error.as_deref()), (StepStatus::Error, Some("Card declined")));
/// assert_eq!(steps[1].status, StepStatus::Error);
/// ```
///
/// Workflows and steps support chaining:
///
/// ```
/// use observer::trace::trace_workflow;
///
/// let wf = trace_workflow("order").attr("order_id", "123").attr("customer", "acme");
/// wf.set("priority", "high").set("region", "us-west");
/// let mut step = wf.step("process");
/// step.set("result", "ok").set("items", 5).log("Processing complete");
/// step.finish();
/// let summary = wf.get_summary();
/// assert_eq!(summary["attributes"]["region"], "us-west");
/// assert_eq!(summary["steps"][0]["attributes"]["items"], 5);
/// ```
///
/// Errors in steps are captured and returned unchanged (the guide's "captured but re-raised"):
///
/// ```
/// use observer::trace::WorkflowTracer;
///
/// let wf = WorkflowTracer::new("order-workflow");
/// wf.run_step_sync("validate", |_step| Ok::<_, String>(()))?;
/// let paid = wf.run_step_sync("payment", |_step| Err::<(), _>("Card declined".to_string()));
/// assert!(paid.is_err());
/// for step in wf.steps() {
///     if let Some(error) = &step.error {
///         println!("Step {} failed: {error}", step.name);
///     }
/// }
/// assert_eq!(wf.steps()[1].error.as_deref(), Some("Card declined"));
/// # Ok::<(), String>(())
/// ```
///
/// # Spans
///
/// Each workflow opens a `tracing` span named `workflow` with the fields `otel.name = "workflow:{name}"` (the span
/// name under `tracing-opentelemetry`) and `workflow.name`; each step opens a span named `step`, whose parent is
/// always the workflow span (also when the step starts on another thread or task), with the fields
/// `otel.name = "step:{name}"`, `step.name` and `step.index` (0-based, in start order). Attributes set with `set` /
/// `attr` and errors are also put on the OpenTelemetry span when an OpenTelemetry layer is installed.
/// [`Step`] does not enter its span (a guard that entered a span could not move between threads);
/// [`run_step`](Self::run_step) and [`run_step_sync`](Self::run_step_sync) do, so spans and events created inside
/// them are children of the step span.
///
/// # Concurrency
///
/// A `WorkflowTracer` is a cheap handle (`Clone + Send + Sync`, clones share one workflow) and [`Step`] is `Send`,
/// so steps of one workflow may run concurrently on several threads or tasks. Steps appear in
/// [`steps`](Self::steps) and in the summary once they have ended, in the order they *started*.
///
/// # Event stream
///
/// A workflow can also stream its progress as [`WorkflowEvent`](crate::trace::WorkflowEvent)s (`workflow_start`,
/// `step_start`, `step_end`, `workflow_end`) to a [`WorkflowSink`] — Kafka's `workflow_topic` for the workflows
/// of a [`TracerFactory`](crate::trace::TracerFactory) with Kafka, or any sink given to
/// [`stream`](Self::stream). Events are sent under the workflow's lock, so the events of one workflow reach the
/// sink in order; sending never blocks (the Kafka sink hands the message to the shared producer). Without a
/// stream, a step costs one extra branch.
#[derive(Clone)]
pub struct WorkflowTracer {
    pub(super) inner: Arc<Handle>,
}

/// Owned by the [`WorkflowTracer`] clones only (not by steps): finishes the workflow when the last clone goes.
pub(super) struct Handle {
    pub(super) shared: Arc<Shared>,
}

/// The workflow itself, shared by the tracer handles and the running steps.
pub(super) struct Shared {
    pub(super) name: String,
    start: Instant,
    pub(super) state: Mutex<State>,
}

pub(super) struct State {
    attributes: Map<String, Value>,
    /// One slot per started step, in start order; `None` while the step runs.
    pub(super) steps: Vec<Option<StepEntry>>,
    /// The workflow-level error (the last one recorded).
    error: Option<String>,
    /// The workflow span; taken (and dropped) by `finish`.
    pub(super) span: Option<::tracing::Span>,
    /// The frozen duration, once finished.
    finished_ms: Option<f64>,
    /// The event stream, once [`WorkflowTracer::stream`] (or a streaming factory) started it.
    pub(super) stream: Option<Box<Stream>>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(super) fn millis(since: Instant) -> f64 {
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
            let steps = state.steps.iter().flatten().map(StepEntry::record).collect();
            stream.workflow_end(&self.name, duration_ms, state.error.as_deref(), &state.attributes, steps);
        }
        state.span.take()
    }

    fn summary_locked(&self, state: &State) -> WorkflowSummary {
        let steps: Vec<StepRecord> = state.steps.iter().flatten().map(StepEntry::record).collect();
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

    pub(super) fn shared(&self) -> &Shared {
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
    /// let wf = WorkflowTracer::new("order").attr("order_id", "123").stream(events.clone(), "shop");
    /// wf.step("validate").finish();
    /// wf.finish();
    /// let json = events.json();
    /// assert_eq!(json[0]["event_type"], "workflow_start");
    /// assert_eq!(json[0]["attributes"]["order_id"], "123");
    /// assert_eq!(json[3]["event_type"], "workflow_end");
    /// ```
    pub fn stream(self, sink: impl WorkflowSink, service_name: impl Into<String>) -> Self {
        self.stream_to(Arc::new(sink), service_name.into())
    }

    /// [`stream`](Self::stream) with a shared sink.
    pub(crate) fn stream_to(self, sink: Arc<dyn WorkflowSink>, service_name: String) -> Self {
        let shared = self.shared();
        let mut state = lock(&shared.state);
        if state.stream.is_some() || state.finished_ms.is_some() {
            let why = if state.stream.is_some() { "it already streams" } else { "it has finished" };
            drop(state);
            crate::diag::report!(
                WARN,
                "workflow-stream-ignored",
                "stream({}) on workflow `{}` ignored: {why}",
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
    /// does not [stream](Self::stream).
    pub fn workflow_id(&self) -> Option<String> {
        lock(&self.shared().state).stream.as_ref().map(|s| s.workflow_id().to_owned())
    }

    /// Waits (at most `timeout`) until the events this workflow streamed so far are delivered by its sink
    /// (immediately `Ok` when it does not stream). Not needed for delivery: the shared producer delivers on its
    /// own and `observer::init`'s guard drains it at exit.
    ///
    /// [`observer::flush`](crate::flush) already flushes the SDK's own Kafka producers, which carry the sinks
    /// built from a `KafkaConfig`; this flush is for a sink it cannot reach: a `WorkflowSink` of your own, or a
    /// topic sink over a `KafkaExporter` you created.
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
        ::tracing::info!(parent: &span, "{}", crate::outbound::text(message.as_ref()));
        self
    }

    /// The finished steps so far, in start order.
    pub fn steps(&self) -> Vec<StepRecord> {
        lock(&self.shared().state).steps.iter().flatten().map(StepEntry::record).collect()
    }

    /// Duration so far (or total, once finished), in milliseconds.
    pub fn duration_ms(&self) -> f64 {
        self.shared().duration_ms(&lock(&self.shared().state))
    }

    /// The guide's summary JSON: exactly the keys `name`, `duration_ms`, `step_count`, `steps` (each `name`,
    /// `duration_ms`, `error`, `attributes`) and `attributes` — [`summary`](Self::summary) serialised.
    pub fn get_summary(&self) -> Value {
        serde_json::to_value(self.summary()).unwrap_or(Value::Null)
    }

    /// The summary, typed: the finished steps so far and the duration so far (final once
    /// [finished](Self::finish)). [`get_summary`](Self::get_summary) is its JSON.
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

    /// Ends the workflow (and its span). Idempotent: later calls change nothing (the duration stays the one of
    /// the first call).
    ///
    /// Read the summary afterwards with [`get_summary`](Self::get_summary) (the guide's JSON) or
    /// [`summary`](Self::summary). Steps still running at this point are not in it yet; they are timed and added
    /// to [`steps`](Self::steps) (and later summaries) when they end. The workflow span closes once those steps'
    /// spans have closed too.
    ///
    /// When the workflow [streams](Self::stream), the first call sends `workflow_end`, whose `steps` are the steps
    /// finished at that moment.
    pub fn finish(&self) {
        let shared = self.shared();
        let span = shared.finish_locked(&mut lock(&shared.state));
        // Outside the lock: closing the span may call into the subscriber.
        drop(span);
    }

    /// The workflow's `tracing` span ([`Span::none`](::tracing::Span::none) once finished).
    pub fn span(&self) -> ::tracing::Span {
        lock(&self.shared().state).span.clone().unwrap_or_else(::tracing::Span::none)
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

/// The guide's `trace_workflow("my-task", ..)`: the same as [`WorkflowTracer::new`].
pub fn trace_workflow(name: impl Into<String>) -> WorkflowTracer {
    WorkflowTracer::new(name)
}
