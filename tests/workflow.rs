//! `WorkflowTracer`: the guide's "Workflow Tracing" section (summary shape, step timing, errors, async steps,
//! the current workflow, and the `tracing` spans it opens).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use observer::trace::{current_workflow, trace_workflow, Step, StepStatus, WorkflowTracer};
use serde_json::{json, Value};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// Keeps one always-interested `tracing` dispatcher alive for the whole test binary, created before any test hits a
/// span callsite. Without it, a callsite first hit by a test without a subscriber can cache `Interest::never` while
/// another test is installing its scoped recorder (a race in `tracing-core`'s interest cache), and the recorder
/// would miss spans.
fn init() {
    static KEEP: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();
    KEEP.get_or_init(|| tracing::Dispatch::new(tracing_subscriber::registry()));
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().expect("an object").keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

// ---------------------------------------------------------------------------------------------
// Summary

#[test]
fn summary_matches_the_guides_example() {
    init();
    let wf = WorkflowTracer::new("process-order").attr("order_id", "123");
    let mut step = wf.step("validate");
    std::thread::sleep(Duration::from_millis(2));
    step.set("valid", true);
    step.finish();
    let mut step = wf.step("payment");
    std::thread::sleep(Duration::from_millis(2));
    step.set("amount", 99.99);
    step.finish();
    let step = wf.step("fulfillment");
    std::thread::sleep(Duration::from_millis(2));
    step.finish();
    wf.set("status", "completed");
    wf.finish();

    let summary = wf.get_summary();
    assert_eq!(keys(&summary), ["attributes", "duration_ms", "name", "step_count", "steps"]);
    assert_eq!(summary["name"], "process-order");
    assert_eq!(summary["step_count"], 3);
    assert_eq!(summary["attributes"], json!({"order_id": "123", "status": "completed"}));

    let steps = summary["steps"].as_array().expect("steps is an array");
    assert_eq!(steps.len(), 3);
    let expected =
        [("validate", json!({"valid": true})), ("payment", json!({"amount": 99.99})), ("fulfillment", json!({}))];
    let mut sum = 0.0;
    for (step, (name, attributes)) in steps.iter().zip(expected) {
        // the guide's keys, and the step's outcome
        assert_eq!(keys(step), ["attributes", "duration_ms", "error", "name", "status"]);
        assert_eq!(step["name"], name);
        assert_eq!(step["error"], Value::Null);
        assert_eq!(step["status"], "ok");
        assert_eq!(step["attributes"], attributes);
        let d = step["duration_ms"].as_f64().expect("a number");
        assert!(d > 0.0, "{name}: {d}");
        sum += d;
    }
    let total = summary["duration_ms"].as_f64().expect("a number");
    assert!(total > 0.0 && total >= sum, "total {total} < sum of steps {sum}");

    // The typed summary says the same.
    let typed = wf.summary();
    assert_eq!(serde_json::to_value(&typed).unwrap(), summary);
    assert_eq!(typed.steps, wf.steps());
}

#[test]
fn chaining_and_trace_workflow() {
    init();
    let wf = trace_workflow("order").attr("order_id", "123").attr("customer", "acme");
    wf.set("priority", "high").set("region", "us-west");
    {
        let mut step = wf.step("process");
        step.set("result", "ok").set("items", 5).log("Processing complete");
    }
    wf.finish();
    let s = wf.summary();
    assert_eq!(s.name, "order");
    assert_eq!(
        Value::Object(s.attributes),
        json!({"order_id": "123", "customer": "acme", "priority": "high", "region": "us-west"})
    );
    assert_eq!(Value::Object(s.steps[0].attributes.clone()), json!({"result": "ok", "items": 5}));
}

#[test]
fn finish_freezes_the_duration_and_is_idempotent() {
    init();
    let wf = WorkflowTracer::new("w");
    let running = wf.step("still-running");
    wf.step("done").finish();
    std::thread::sleep(Duration::from_millis(5));
    wf.finish();
    let first = wf.summary();
    assert!(wf.is_finished());
    assert_eq!(first.step_count, 1, "a running step is not in the summary");
    std::thread::sleep(Duration::from_millis(5));
    wf.finish();
    let second = wf.summary();
    assert_eq!(first.duration_ms, second.duration_ms);
    assert_eq!(wf.duration_ms(), first.duration_ms);

    // A step still running at finish is recorded when it ends, in start order.
    drop(running);
    let names: Vec<String> = wf.steps().into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["still-running", "done"]);
    assert_eq!(wf.summary().duration_ms, first.duration_ms);
}

#[test]
fn duration_grows_while_running() {
    init();
    let wf = WorkflowTracer::new("w");
    let a = wf.duration_ms();
    std::thread::sleep(Duration::from_millis(5));
    let b = wf.duration_ms();
    assert!(b >= a + 5.0, "{a} then {b}");
    assert!(!wf.is_finished());
}

#[test]
fn odd_input_does_not_panic() {
    init();
    let big = "x".repeat(1 << 20);
    let wf = WorkflowTracer::new("").attr("", big.clone()).attr("nested", json!({"a": [1, 2, {"b": null}]}));
    wf.set("", Value::Null).log("").record_error("");
    {
        let mut s = wf.step("");
        s.set(big.clone(), big.clone()).log(&big).record_error(&big);
    }
    wf.finish();
    let s = wf.summary();
    assert_eq!(s.name, "");
    assert_eq!(s.attributes[""], Value::Null);
    assert_eq!(s.steps[0].error.as_deref(), Some(big.as_str()));
    assert!(s.duration_ms.is_finite() && s.steps[0].duration_ms.is_finite());
    // Usable after finish.
    wf.set("late", 1).log("late");
    wf.step("late-step").finish();
    assert_eq!(wf.steps().len(), 2);
    assert!(wf.span().is_none());
}

// ---------------------------------------------------------------------------------------------
// Timing

#[test]
fn steps_are_timed_against_known_sleeps() {
    init();
    let wf = WorkflowTracer::new("timed");
    for ms in [20u64, 60] {
        let _step = wf.step(format!("sleep-{ms}"));
        std::thread::sleep(Duration::from_millis(ms));
    }
    wf.finish();
    let s = wf.summary();
    for (step, ms) in s.steps.iter().zip([20.0, 60.0]) {
        assert!(step.duration_ms >= ms, "{}: {} < {ms}", step.name, step.duration_ms);
        assert!(step.duration_ms < ms + 200.0, "{}: {} way above {ms}", step.name, step.duration_ms);
    }
    assert!(s.duration_ms >= 80.0);
}

// ---------------------------------------------------------------------------------------------
// Errors

#[derive(Debug)]
struct PaymentError(&'static str);

impl std::fmt::Display for PaymentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

#[test]
fn step_errors_are_captured_and_returned() {
    init();
    let wf = WorkflowTracer::new("order-workflow");
    let ok: Result<u32, PaymentError> = wf.run_step_sync("validate", |step| {
        step.set("valid", true);
        Ok(7)
    });
    assert_eq!(ok.unwrap(), 7);

    let err = wf.run_step_sync("payment", |_| Err::<(), _>(PaymentError("Card declined")));
    assert_eq!(err.unwrap_err().0, "Card declined");

    // A later step still works.
    let later = wf.run_step_sync("notify", |_| Ok::<_, PaymentError>("sent"));
    assert_eq!(later.unwrap(), "sent");

    wf.finish();
    let s = wf.summary();
    let errors: Vec<(&str, Option<&str>)> = s.steps.iter().map(|s| (s.name.as_str(), s.error.as_deref())).collect();
    assert_eq!(errors, [("validate", None), ("payment", Some("Card declined")), ("notify", None)]);
    assert_eq!(wf.get_summary()["steps"][1]["error"], "Card declined");
}

#[test]
fn a_panicking_step_is_recorded_and_the_panic_propagates() {
    init();
    let wf = WorkflowTracer::new("w");
    let wf2 = wf.clone();
    let caught = std::panic::catch_unwind(move || {
        let _ = wf2.run_step_sync("boom", |_| -> Result<(), String> { panic!("kaboom") });
    });
    assert!(caught.is_err());
    let wf3 = wf.clone();
    let caught = std::panic::catch_unwind(move || {
        let mut s = wf3.step("guard");
        s.record_error("own message");
        panic!("again");
    });
    assert!(caught.is_err());
    let steps = wf.steps();
    assert_eq!(steps[0].error.as_deref(), Some("panicked"));
    assert_eq!(steps[1].error.as_deref(), Some("own message"), "an error already recorded is kept");
}

/// A guard dropped by `?` (or at once, `let _ = wf.step(..)`) cannot see the error nor the work: it must not be
/// recorded as a successful step. Only a confirmed step (`finish`, `finish_with(&Ok)`, `run_step_sync` returning
/// `Ok`) is `"ok"`; an unconfirmed one says so; a failing one is `"error"` with its message.
#[test]
fn a_guard_dropped_without_confirmation_is_not_recorded_as_success() {
    init();
    let wf = WorkflowTracer::new("checkout");
    fn pay(wf: &WorkflowTracer) -> Result<(), PaymentError> {
        let _s = wf.step("payment");
        Err(PaymentError("Card declined"))?;
        Ok(())
    }
    assert!(pay(&wf).is_err());
    let _ = wf.step("dropped-at-once");
    wf.run_step_sync("validate", |_| Ok::<_, PaymentError>(())).unwrap();
    let caught = std::panic::catch_unwind(|| {
        let _s = wf.step("boom");
        panic!("kaboom");
    });
    assert!(caught.is_err());
    let s = wf.get_summary();
    let by_name = |n: &str| s["steps"].as_array().unwrap().iter().find(|x| x["name"] == n).unwrap().clone();
    let payment = by_name("payment");
    assert_eq!(payment["status"], "unconfirmed", "a step left by `?` is not a success: {payment}");
    assert_eq!(payment["error"], Value::Null);
    assert_eq!(by_name("dropped-at-once")["status"], "unconfirmed");
    assert_eq!(by_name("validate")["status"], "ok");
    let boom = by_name("boom");
    assert_eq!((boom["status"].as_str(), boom["error"].as_str()), (Some("error"), Some("panicked")));
}

/// The APIs that record a guarded step's outcome: `fail(err)`, `finish_with(&result)` and `finish()`.
#[test]
fn guarded_steps_record_their_outcome() {
    init();
    let wf = WorkflowTracer::new("checkout");
    fn pay(wf: &WorkflowTracer, fail: bool) -> Result<u32, PaymentError> {
        let step = wf.step(if fail { "payment-declined" } else { "payment-ok" });
        let result = if fail { Err(PaymentError("Card declined")) } else { Ok(42) };
        step.finish_with(&result);
        result
    }
    assert!(pay(&wf, true).is_err());
    assert_eq!(pay(&wf, false).unwrap(), 42);
    wf.step("refund").fail("gateway timeout");
    let mut ship = wf.step("ship");
    ship.set("carrier", "ups");
    ship.finish();
    let mut noted = wf.step("noted");
    noted.record_error("partial");
    noted.finish();
    wf.finish();
    let s = wf.summary();
    let got: Vec<(&str, StepStatus, Option<&str>)> =
        s.steps.iter().map(|x| (x.name.as_str(), x.status, x.error.as_deref())).collect();
    assert_eq!(
        got,
        [
            ("payment-declined", StepStatus::Error, Some("Card declined")),
            ("payment-ok", StepStatus::Ok, None),
            ("refund", StepStatus::Error, Some("gateway timeout")),
            ("ship", StepStatus::Ok, None),
            ("noted", StepStatus::Error, Some("partial")),
        ]
    );
}

#[test]
fn workflow_level_error() {
    init();
    let wf = WorkflowTracer::new("w");
    assert_eq!(wf.error(), None);
    wf.record_error(PaymentError("upstream down"));
    assert_eq!(wf.error().as_deref(), Some("upstream down"));
    // Not part of the guide's summary shape.
    assert_eq!(keys(&wf.get_summary()), ["attributes", "duration_ms", "name", "step_count", "steps"]);
}

// ---------------------------------------------------------------------------------------------
// Async

fn assert_send<T: Send>(_: &T) {}
fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn handles_are_send() {
    init();
    assert_send_sync::<WorkflowTracer>();
    fn step_is_send<T: Send>() {}
    step_is_send::<Step>();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_steps_are_timed_across_awaits() {
    init();
    let wf = WorkflowTracer::new("async");
    let wf2 = wf.clone();
    let fut = async move {
        wf2.run_step("fetch", |mut step| async move {
            let before = std::thread::current().id();
            tokio::time::sleep(Duration::from_millis(50)).await;
            tokio::task::yield_now().await;
            let after = std::thread::current().id();
            step.set("hopped", before != after);
            Ok::<_, PaymentError>(42)
        })
        .await
    };
    assert_send(&fut);
    let out = tokio::spawn(fut).await.unwrap();
    assert_eq!(out.unwrap(), 42);

    let err = wf.run_step("charge", |_| async { Err::<(), _>(PaymentError("Card declined")) }).await;
    assert!(err.is_err());

    wf.finish();
    let s = wf.summary();
    assert_eq!(s.steps[0].name, "fetch");
    assert!(s.steps[0].duration_ms >= 50.0, "{}", s.steps[0].duration_ms);
    assert!(s.steps[0].duration_ms < 250.0, "{}", s.steps[0].duration_ms);
    assert!(s.steps[0].attributes["hopped"].is_boolean());
    assert_eq!(s.steps[0].error, None);
    assert_eq!(s.steps[1].error.as_deref(), Some("Card declined"));
    assert_eq!((s.steps[0].status, s.steps[1].status), (StepStatus::Ok, StepStatus::Error));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_steps_keep_start_order() {
    init();
    let wf = WorkflowTracer::new("concurrent");
    // join!: started a, b, c; finish c, b, a.
    let step = |name: &'static str, ms: u64| {
        wf.run_step(name, move |_| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok::<_, PaymentError>(ms)
        })
    };
    let (a, b, c) = tokio::join!(step("a", 60), step("b", 30), step("c", 1));
    assert_eq!((a.unwrap(), b.unwrap(), c.unwrap()), (60, 30, 1));

    // Spawned tasks, each owning its step, on several worker threads.
    let mut handles = Vec::new();
    for (i, ms) in [40u64, 20, 1].into_iter().enumerate() {
        let mut step = wf.step(format!("spawned-{i}"));
        handles.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            step.set("ms", ms);
        }));
    }
    for h in handles {
        h.await.unwrap();
    }

    wf.finish();
    let s = wf.summary();
    let names: Vec<&str> = s.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c", "spawned-0", "spawned-1", "spawned-2"]);
    assert!(s.steps[0].duration_ms >= 60.0);
    assert!(s.steps[3].duration_ms >= 40.0);
}

#[tokio::test]
async fn a_cancelled_async_step_is_recorded() {
    init();
    let wf = WorkflowTracer::new("w");
    let slow = wf.run_step("slow", |_| async {
        tokio::time::sleep(Duration::from_secs(10)).await;
        Ok::<_, PaymentError>(())
    });
    assert!(tokio::time::timeout(Duration::from_millis(10), slow).await.is_err());
    let steps = wf.steps();
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].error.as_deref(), Some("cancelled"));
    assert_eq!(steps[0].status, StepStatus::Error);
}

#[tokio::test]
async fn a_panicking_async_step_is_recorded() {
    init();
    let wf = WorkflowTracer::new("w");
    let wf2 = wf.clone();
    let joined = tokio::spawn(async move {
        wf2.run_step("boom", |_| async {
            tokio::task::yield_now().await;
            if true {
                panic!("kaboom");
            }
            Ok::<_, PaymentError>(())
        })
        .await
    })
    .await;
    assert!(joined.unwrap_err().is_panic());
    assert_eq!(wf.steps()[0].error.as_deref(), Some("panicked"));
}

// ---------------------------------------------------------------------------------------------
// The current workflow

#[tokio::test]
async fn current_workflow_is_task_scoped() {
    init();
    assert!(current_workflow().is_none());
    let wf = WorkflowTracer::new("scoped");
    let inside = wf.scope(async { current_workflow().map(|w| w.name().to_owned()) }).await;
    assert_eq!(inside.as_deref(), Some("scoped"));
    assert!(current_workflow().is_none());

    // Nested scopes: the innermost wins, the outer one is back after.
    let inner = WorkflowTracer::new("inner");
    let names = wf
        .scope(async {
            let a = current_workflow().unwrap().name().to_owned();
            let b = inner.scope(async { current_workflow().unwrap().name().to_owned() }).await;
            tokio::task::yield_now().await;
            let c = current_workflow().unwrap().name().to_owned();
            [a, b, c]
        })
        .await;
    assert_eq!(names, ["scoped", "inner", "scoped"]);

    // Another future polled on the same thread, interleaved with the scoped one, never sees it.
    let (seen_in, seen_out) = tokio::join!(
        wf.scope(async {
            tokio::task::yield_now().await;
            current_workflow().map(|w| w.name().to_owned())
        }),
        async {
            tokio::task::yield_now().await;
            current_workflow().map(|w| w.name().to_owned())
        }
    );
    assert_eq!(seen_in.as_deref(), Some("scoped"));
    assert_eq!(seen_out, None);

    // The current workflow is the same workflow (a clone of the handle).
    wf.scope(async { current_workflow().unwrap().step("via-current").finish() }).await;
    assert_eq!(wf.steps()[0].name, "via-current");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_tasks_each_see_their_own_workflow() {
    init();
    let mut handles = Vec::new();
    for i in 0..100 {
        let wf = WorkflowTracer::new(format!("wf-{i}"));
        let scoped = wf.clone();
        handles.push(tokio::spawn(scoped.scope(async move {
            for _ in 0..5 {
                tokio::task::yield_now().await;
                let cur = current_workflow().expect("inside a scope");
                assert_eq!(cur.name(), format!("wf-{i}"));
                cur.step("tick").finish();
            }
            assert_eq!(wf.steps().len(), 5);
        })));
    }
    for h in handles {
        h.await.unwrap();
    }
    assert!(current_workflow().is_none());
}

#[test]
fn scope_sync_sets_and_restores() {
    init();
    let outer = WorkflowTracer::new("outer");
    let inner = WorkflowTracer::new("inner");
    assert!(current_workflow().is_none());
    let names = outer.scope_sync(|| {
        let a = current_workflow().unwrap().name().to_owned();
        let b = inner.scope_sync(|| current_workflow().unwrap().name().to_owned());
        let c = current_workflow().unwrap().name().to_owned();
        [a, b, c]
    });
    assert_eq!(names, ["outer", "inner", "outer"]);
    assert!(current_workflow().is_none());

    // Restored on unwind too.
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        outer.scope_sync(|| inner.scope_sync(|| panic!("inside")))
    }));
    assert!(caught.is_err());
    assert!(current_workflow().is_none());

    // Another thread does not see this thread's scope.
    outer.scope_sync(|| {
        let other = std::thread::spawn(|| current_workflow().is_none()).join().unwrap();
        assert!(other);
    });
}

// ---------------------------------------------------------------------------------------------
// Spans

#[derive(Debug, Clone, Default)]
struct Fields(HashMap<String, String>);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

#[derive(Debug, Clone)]
struct SpanSeen {
    name: &'static str,
    fields: HashMap<String, String>,
    /// The parent's `otel.name`.
    parent: Option<String>,
    thread: std::thread::ThreadId,
}

#[derive(Debug, Clone)]
struct EventSeen {
    message: String,
    /// The `otel.name` of the span the event belongs to.
    span: Option<String>,
}

#[derive(Clone, Default)]
struct Recorder {
    spans: Arc<Mutex<Vec<SpanSeen>>>,
    events: Arc<Mutex<Vec<EventSeen>>>,
    closed: Arc<Mutex<Vec<String>>>,
}

fn otel_name<S: Subscriber + for<'a> LookupSpan<'a>>(span: &tracing_subscriber::registry::SpanRef<'_, S>) -> String {
    span.extensions().get::<Fields>().and_then(|f| f.0.get("otel.name").cloned()).unwrap_or_default()
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let span = ctx.span(id).expect("the new span");
        let parent = span.parent().map(|p| otel_name(&p));
        self.spans.lock().unwrap().push(SpanSeen {
            name: attrs.metadata().name(),
            fields: fields.0.clone(),
            parent,
            thread: std::thread::current().id(),
        });
        span.extensions_mut().insert(fields);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(fields) = span.extensions_mut().get_mut::<Fields>() {
                values.record(fields);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let span = ctx.event_span(event).map(|s| otel_name(&s));
        let message = fields.0.remove("message").unwrap_or_default();
        self.events.lock().unwrap().push(EventSeen { message, span });
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(&id) {
            self.closed.lock().unwrap().push(otel_name(&span));
        }
    }
}

fn recording() -> (Recorder, tracing::Dispatch) {
    let recorder = Recorder::default();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(recorder.clone()));
    (recorder, dispatch)
}

#[test]
fn spans_have_the_reference_names_and_parents() {
    init();
    let (rec, dispatch) = recording();
    tracing::dispatcher::with_default(&dispatch, || {
        let wf = WorkflowTracer::new("process-order").attr("order_id", "123");
        wf.log("started");
        {
            let mut s = wf.step("validate");
            s.log("Processing complete");
        }
        wf.run_step_sync("payment", |_| {
            tracing::info!("inside payment");
            Ok::<_, PaymentError>(())
        })
        .unwrap();
        // A step started on another thread (with the same subscriber) still has the workflow span as parent.
        let (wf2, d2) = (wf.clone(), dispatch.clone());
        std::thread::spawn(move || {
            tracing::dispatcher::with_default(&d2, || wf2.step("fulfillment").finish());
        })
        .join()
        .unwrap();
        wf.finish();
    });

    let spans = rec.spans.lock().unwrap().clone();
    assert_eq!(spans.len(), 4, "{spans:#?}");
    let workflow = &spans[0];
    assert_eq!(workflow.name, "workflow");
    assert_eq!(workflow.fields["otel.name"], "workflow:process-order");
    assert_eq!(workflow.fields["workflow.name"], "process-order");
    assert_eq!(workflow.parent, None);

    for (i, (span, name)) in spans[1..].iter().zip(["validate", "payment", "fulfillment"]).enumerate() {
        assert_eq!(span.name, "step");
        assert_eq!(span.fields["otel.name"], format!("step:{name}"));
        assert_eq!(span.fields["step.name"], name);
        assert_eq!(span.fields["step.index"], i.to_string());
        assert_eq!(span.parent.as_deref(), Some("workflow:process-order"), "{name}");
    }
    assert_ne!(spans[3].thread, workflow.thread, "fulfillment started on another thread");

    let events = rec.events.lock().unwrap().clone();
    let find = |m: &str| events.iter().find(|e| e.message == m).unwrap_or_else(|| panic!("no event {m}: {events:?}"));
    assert_eq!(find("started").span.as_deref(), Some("workflow:process-order"));
    assert_eq!(find("Processing complete").span.as_deref(), Some("step:validate"));
    // run_step_sync enters the step span.
    assert_eq!(find("inside payment").span.as_deref(), Some("step:payment"));

    // finish ended every span.
    let closed = rec.closed.lock().unwrap().clone();
    for name in ["workflow:process-order", "step:validate", "step:payment", "step:fulfillment"] {
        assert!(closed.iter().any(|c| c == name), "{name} not closed: {closed:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_step_spans_are_entered_while_polled() {
    init();
    let (rec, dispatch) = recording();
    let wf = tracing::dispatcher::with_default(&dispatch, || WorkflowTracer::new("async-spans"));
    let wf2 = wf.clone();
    let d2 = dispatch.clone();
    // The recorder is the default only while the step's future is polled, on whichever worker thread polls it.
    let task = tokio::spawn(async move {
        let fut = wf2.run_step("fetch", |_| async {
            tokio::task::yield_now().await;
            tracing::info!("after await");
            Ok::<_, PaymentError>(())
        });
        tracing::instrument::WithSubscriber::with_subscriber(fut, d2).await
    });
    task.await.unwrap().unwrap();
    drop(wf);

    let spans = rec.spans.lock().unwrap().clone();
    assert_eq!(spans[1].fields["otel.name"], "step:fetch");
    assert_eq!(spans[1].parent.as_deref(), Some("workflow:async-spans"));
    let events = rec.events.lock().unwrap().clone();
    let e = events.iter().find(|e| e.message == "after await").expect("the event");
    assert_eq!(e.span.as_deref(), Some("step:fetch"));
    // Dropping the last handle of an unfinished workflow finishes it and closes its span.
    let closed = rec.closed.lock().unwrap().clone();
    assert!(closed.iter().any(|c| c == "workflow:async-spans"), "{closed:?} {spans:#?}");
}
