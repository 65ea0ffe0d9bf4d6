//! [`Step`]: one timed step of a workflow — the guard, the `run_step` (future) and `run_step_sync` (closure)
//! forms, and how a step's outcome is decided when it ends (finished, failed, dropped, panicked or cancelled).

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use ::tracing::Instrument;
use serde_json::{Map, Value};

use super::summary::{StepEntry, StepStatus};
use super::tracer::{lock, Shared, WorkflowTracer};
use crate::clock::Stopwatch;
use crate::otel::{set_span_attribute, set_span_error};

/// The error recorded for a step that panicked.
const PANICKED: &str = "panicked";
/// The error recorded for a [`run_step`](WorkflowTracer::run_step) future dropped before it completed.
const CANCELLED: &str = "cancelled";

/// One step in progress; ends (and is timed) when [`finish`](Step::finish)ed (a success),
/// [`fail`](Step::fail)ed, [`finish_with`](Step::finish_with) a `Result`, or dropped. `Send`.
///
/// Dropped without one of those, the step is recorded with status `"unconfirmed"` (see
/// [a step's outcome](WorkflowTracer#a-steps-outcome)): a guard cannot tell an early return by `?` from success. When the
/// thread is panicking while the step ends, the step records the error `"panicked"` (unless an error was already
/// recorded). A `Step` held inside a future is dropped only after the runtime has caught a panic of that future, so
/// it is then `"unconfirmed"`; [`WorkflowTracer::run_step`] records such panics.
#[must_use = "a step ends (and is timed) when this guard is dropped: keep it in a variable (`let step = \
              wf.step(..)`) and end it with `step.finish()`, `step.fail(err)` or `step.finish_with(&result)`, or use \
              `wf.run_step(..)` / `wf.run_step_sync(..)`"]
pub struct Step {
    core: Arc<StepCore>,
}

/// A running step. The step ends when the last reference goes ([`Step`], or the guard of
/// [`WorkflowTracer::run_step`]).
struct StepCore {
    workflow: Arc<Shared>,
    slot: usize,
    /// Borrowed for the `&'static str` names `#[step]` passes: no allocation per step.
    name: Cow<'static, str>,
    start: Stopwatch,
    span: ::tracing::Span,
    /// Ended by `finish` / `finish_with(&Ok)` / a successful `run_step(_sync)`: the step's success is known. An
    /// atomic, so that confirming takes no lock.
    confirmed: AtomicBool,
    data: Mutex<StepData>,
}

#[derive(Default)]
struct StepData {
    attributes: Map<String, Value>,
    error: Option<String>,
}

impl StepData {
    /// How the step ended: an error recorded makes it failed (also after a `finish`), else a confirmation makes it
    /// a success, else nobody said.
    fn status(&self, confirmed: bool) -> StepStatus {
        match (&self.error, confirmed) {
            (Some(_), _) => StepStatus::Error,
            (None, true) => StepStatus::Ok,
            (None, false) => StepStatus::Unconfirmed,
        }
    }
}

impl WorkflowTracer {
    /// Starts a step (OTEL span `step:{name}`, child of the workflow span).
    ///
    /// The step ends when the returned guard is dropped or [`finish`](Step::finish)ed. A step started after the
    /// workflow [finished](Self::finish) is still timed and listed in [`steps`](Self::steps), but has no span.
    ///
    /// `name` is a `&'static str` (a literal, as `#[step]` passes: not copied) or a `String`; pass a borrowed
    /// name as `name.to_owned()`.
    pub fn step(&self, name: impl Into<Cow<'static, str>>) -> Step {
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
            start: Stopwatch::start(),
            span,
            confirmed: AtomicBool::new(false),
            data: Mutex::new(StepData::default()),
        };
        Step { core: Arc::new(core) }
    }

    /// Runs the future `f(step)` as a step, timed across its `.await`s; an `Err` is recorded as the step's error
    /// (its `Display` text) and returned unchanged. For a closure, use [`run_step_sync`](Self::run_step_sync).
    ///
    /// The step starts when the returned future is first polled and ends when it completes (or, if `f`'s future
    /// keeps the [`Step`] beyond that, when the `Step` is dropped). The step span is entered while the future is
    /// polled. A panic while polling records the error `"panicked"`; dropping the future before it completes
    /// records `"cancelled"`. The future is `Send` when `f`, its future and `name` are.
    pub async fn run_step<T, E, F, Fut>(&self, name: impl Into<Cow<'static, str>>, f: F) -> Result<T, E>
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

    /// Runs the closure `f` as a step, inside the step's span; an `Err` is recorded as the step's error (its
    /// `Display` text) and returned unchanged. A panic in `f` records the error `"panicked"` and propagates. The
    /// synchronous form of [`run_step`](Self::run_step).
    pub fn run_step_sync<T, E: std::fmt::Display>(
        &self,
        name: impl Into<Cow<'static, str>>,
        f: impl FnOnce(&mut Step) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut step = self.step(name);
        let core = Arc::clone(&step.core);
        let result = core.span.in_scope(|| f(&mut step));
        step.finish_with(&result);
        result
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
        ::tracing::info!(parent: &self.core.span, "{}", crate::outbound::text(message.as_ref()));
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
        self.confirmed.store(true, Ordering::Release);
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
        let duration_ms = self.start.elapsed_ms();
        if std::thread::panicking() {
            self.set_error_if_none(PANICKED);
        }
        let data = std::mem::take(self.data.get_mut().unwrap_or_else(PoisonError::into_inner));
        let status = data.status(*self.confirmed.get_mut());
        if status == StepStatus::Unconfirmed {
            warn_unconfirmed_once(&self.workflow.name, &self.name);
        }
        let record = StepEntry {
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
             guarded steps explicitly or use run_step / run_step_sync; this is reported once per process"
        );
    }
}

pin_project_lite::pin_project! {
    /// The step of [`WorkflowTracer::run_step`]: records an `Err` output, a panic while polling, or
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

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use super::*;

    #[test]
    fn an_error_decides_the_status_before_a_confirmation() {
        let data = |error: Option<&str>| StepData { error: error.map(str::to_owned), ..StepData::default() };
        assert_eq!(data(Some("x")).status(true), StepStatus::Error);
        assert_eq!(data(Some("x")).status(false), StepStatus::Error);
        assert_eq!(data(None).status(true), StepStatus::Ok);
        assert_eq!(data(None).status(false), StepStatus::Unconfirmed);
    }

    #[test]
    fn a_step_future_dropped_while_pending_is_cancelled() {
        let wf = WorkflowTracer::new("w");
        {
            let mut fut = pin!(wf.run_step("wait", |_| std::future::pending::<Result<(), String>>()));
            let mut cx = Context::from_waker(Waker::noop());
            assert!(fut.as_mut().poll(&mut cx).is_pending());
        }
        let steps = wf.steps();
        assert_eq!((steps[0].status, steps[0].error.as_deref()), (StepStatus::Error, Some(CANCELLED)));
    }

    #[test]
    fn a_step_future_confirms_on_ok_even_if_the_step_is_kept() {
        let wf = WorkflowTracer::new("w");
        let mut kept = None;
        {
            let mut fut = pin!(wf.run_step("keep", |step| {
                kept = Some(step);
                std::future::ready(Ok::<_, String>(1))
            }));
            let mut cx = Context::from_waker(Waker::noop());
            assert_eq!(fut.as_mut().poll(&mut cx), Poll::Ready(Ok(1)));
        }
        assert!(wf.steps().is_empty(), "the kept `Step` holds the step open");
        drop(kept);
        assert_eq!(wf.steps()[0].status, StepStatus::Ok);
    }
}
