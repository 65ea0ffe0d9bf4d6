//! `#[observer::workflow]` and `#[observer::step]` at run time: the workflow each annotated call runs as, the
//! steps it records (names, order, errors, attributes), and the plain span a step opens outside any workflow.
//!
//! Each workflow fn takes a `seen: &mut Option<WorkflowTracer>` argument and stores the current workflow in it, so
//! that the test can read the summary after the call returned (also when it returned an `Err`).

use std::sync::{Arc, Mutex};

use observer::trace::{current_workflow, WorkflowTracer};
use observer::{step, workflow};
use serde_json::{json, Value};
use tracing::span::{Attributes, Id};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

// ---- annotated functions ---------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Order {
    id: String,
    items: Vec<u32>,
    coupon: Option<String>,
}

#[derive(Debug, PartialEq)]
struct OrderError(String);

impl std::fmt::Display for OrderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A field value with `Display` but no `Serialize`.
struct Region(&'static str);

impl std::fmt::Display for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "region:{}", self.0)
    }
}

#[workflow(
    name = "process-order",
    fields(order_id = order.id, items = order.items.len(), coupon = order.coupon, region = Region("eu"), "order.kind" = "web")
)]
async fn process_order(order: Order, decline: bool, seen: &mut Option<WorkflowTracer>) -> Result<u32, OrderError> {
    *seen = current_workflow();
    validate(&order)?;
    let total = price(&order).await; // async step, not a `Result`
    charge(total, decline).await?; // a step inside a nested async helper
    Ok(ship(order)) // sync step; moves `order`, whose fields were computed before the body
}

#[step]
fn validate(order: &Order) -> Result<(), OrderError> {
    if order.items.is_empty() {
        return Err(OrderError("no items".into()));
    }
    Ok(())
}

#[step]
async fn price(order: &Order) -> u32 {
    tokio::task::yield_now().await;
    order.items.iter().sum()
}

/// Not a step itself: the step is found through the task-scoped current workflow.
async fn charge(total: u32, decline: bool) -> Result<u32, OrderError> {
    tokio::task::yield_now().await;
    payment(total, decline).await
}

#[step(name = "payment")]
async fn payment(total: u32, decline: bool) -> Result<u32, OrderError> {
    tokio::task::yield_now().await;
    if decline {
        return Err(OrderError("card declined".into()));
    }
    Ok(total)
}

#[step(name = "fulfillment")]
fn ship(order: Order) -> u32 {
    order.items.len() as u32
}

#[workflow(name = "data-pipeline", fields(rows = rows))]
fn pipeline(rows: u64, seen: &mut Option<WorkflowTracer>) -> u64 {
    *seen = current_workflow();
    let data = extract(rows);
    let kept = transform(data);
    load(kept)
}

#[step]
fn extract(rows: u64) -> Vec<u64> {
    (0..rows).collect()
}

/// A step calling another step: both are steps of the same workflow, in start order.
#[step]
fn transform(data: Vec<u64>) -> Vec<u64> {
    let kept: Vec<u64> = data.into_iter().filter(|r| r % 2 == 0).collect();
    count(&kept);
    kept
}

#[step]
fn count(rows: &[u64]) -> usize {
    rows.len()
}

#[step]
fn load(rows: Vec<u64>) -> u64 {
    rows.len() as u64
}

/// An error type with only `Debug`: the recorded message is its `Debug` form.
#[derive(Debug)]
struct Opaque {
    code: u16,
}

#[workflow]
fn opaque_flow(seen: &mut Option<WorkflowTracer>) -> Result<(), Opaque> {
    *seen = current_workflow();
    opaque_step()?;
    Ok(())
}

#[step]
fn opaque_step() -> Result<(), Opaque> {
    Err(Opaque { code: 7 })
}

struct Warehouse {
    name: String,
}

impl Warehouse {
    #[workflow(fields(warehouse = self.name))]
    async fn restock(&self, n: u32, seen: &mut Option<WorkflowTracer>) -> u32 {
        *seen = current_workflow();
        self.order_stock(n).await + self.count_stock()
    }

    #[step]
    async fn order_stock(&self, n: u32) -> u32 {
        n
    }

    #[step(name = "count-stock")]
    fn count_stock(&self) -> u32 {
        self.name.len() as u32
    }
}

// ---- helpers ---------------------------------------------------------------------------------------------

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

fn step_names(wf: &WorkflowTracer) -> Vec<String> {
    wf.steps().into_iter().map(|s| s.name).collect()
}

fn order() -> Order {
    Order { id: "order-123".into(), items: vec![10, 20], coupon: None }
}

// ---- workflows -------------------------------------------------------------------------------------------

#[test]
fn async_workflow_records_its_steps_in_order_with_fields() {
    let mut seen = None;
    let shipped = rt().block_on(process_order(order(), false, &mut seen));
    assert_eq!(shipped, Ok(2));

    let wf = seen.expect("the body ran with a current workflow");
    assert!(wf.is_finished(), "the workflow is finished when the fn returns");
    assert_eq!(wf.error(), None);
    let summary = wf.summary();
    assert_eq!(summary.name, "process-order");
    assert_eq!(summary.step_count, 4);
    assert_eq!(step_names(&wf), ["validate", "price", "payment", "fulfillment"]);
    assert!(summary.steps.iter().all(|s| s.error.is_none()));
    assert_eq!(
        Value::Object(summary.attributes),
        json!({
            "order_id": "order-123",
            "items": 2,
            "coupon": null,
            "region": "region:eu",
            "order.kind": "web",
        })
    );
    assert!(current_workflow().is_none(), "the scope ends with the call");
}

#[test]
fn failing_step_records_and_returns_its_error() {
    let mut seen = None;
    let result = rt().block_on(process_order(order(), true, &mut seen));
    assert_eq!(result, Err(OrderError("card declined".into())), "the `Err` is returned unchanged");

    let wf = seen.expect("current workflow");
    assert!(wf.is_finished());
    assert_eq!(step_names(&wf), ["validate", "price", "payment"], "the workflow stopped at the failing step");
    let steps = wf.steps();
    assert_eq!(steps[0].error, None);
    assert_eq!(steps[2].error.as_deref(), Some("card declined"));
    assert_eq!(wf.error().as_deref(), Some("card declined"), "the workflow's `Err` is recorded too");
}

#[test]
fn early_error_from_a_sync_step_in_an_async_workflow() {
    let mut seen = None;
    let empty = Order { items: Vec::new(), ..order() };
    let result = rt().block_on(process_order(empty, false, &mut seen));
    assert_eq!(result, Err(OrderError("no items".into())));
    let wf = seen.expect("current workflow");
    assert_eq!(step_names(&wf), ["validate"]);
    assert_eq!(wf.steps()[0].error.as_deref(), Some("no items"));
    assert_eq!(wf.summary().attributes["items"], 0);
}

#[test]
fn sync_workflow_with_nested_steps() {
    let mut seen = None;
    assert_eq!(pipeline(5, &mut seen), 3);
    let wf = seen.expect("current workflow");
    assert!(wf.is_finished());
    wf.finish();
    let summary = wf.summary();
    assert_eq!(summary.name, "data-pipeline");
    assert_eq!(summary.attributes["rows"], 5);
    // `count` is called from inside `transform`: it starts after it, so it comes after it.
    assert_eq!(step_names(&wf), ["extract", "transform", "count", "load"]);
    assert!(summary.steps.iter().all(|s| s.duration_ms >= 0.0 && s.error.is_none()));
    assert!(current_workflow().is_none());
}

#[test]
fn debug_only_errors_are_recorded_with_debug() {
    let mut seen = None;
    let err = opaque_flow(&mut seen).expect_err("fails");
    assert_eq!(err.code, 7);
    let wf = seen.expect("current workflow");
    assert_eq!(wf.name(), "opaque_flow", "the name defaults to the fn's name");
    assert_eq!(wf.steps()[0].name, "opaque_step");
    assert_eq!(wf.steps()[0].error.as_deref(), Some("Opaque { code: 7 }"));
    assert_eq!(wf.error().as_deref(), Some("Opaque { code: 7 }"));
}

#[test]
fn async_method_workflow() {
    let w = Warehouse { name: "north".into() };
    let mut seen = None;
    assert_eq!(rt().block_on(w.restock(3, &mut seen)), 8);
    let wf = seen.expect("current workflow");
    assert_eq!(wf.name(), "restock");
    assert_eq!(wf.summary().attributes["warehouse"], "north");
    assert_eq!(step_names(&wf), ["order_stock", "count-stock"]);
}

#[test]
fn concurrent_workflows_keep_their_own_steps() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    let results = runtime.block_on(async {
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                tokio::spawn(async move {
                    let mut seen = None;
                    let o = Order { id: format!("order-{i}"), ..order() };
                    let r = process_order(o, i % 2 == 1, &mut seen).await;
                    (i, r, seen.expect("current workflow"))
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.expect("task"));
        }
        out
    });
    for (i, result, wf) in results {
        assert_eq!(wf.summary().attributes["order_id"], format!("order-{i}"));
        if i % 2 == 1 {
            assert!(result.is_err());
            assert_eq!(step_names(&wf), ["validate", "price", "payment"]);
        } else {
            assert_eq!(result, Ok(2));
            assert_eq!(step_names(&wf), ["validate", "price", "payment", "fulfillment"]);
        }
    }
}

// ---- steps outside a workflow ----------------------------------------------------------------------------

#[test]
fn steps_outside_a_workflow_just_run() {
    assert!(current_workflow().is_none());
    assert_eq!(validate(&order()), Ok(()));
    assert_eq!(validate(&Order { items: Vec::new(), ..order() }), Err(OrderError("no items".into())));
    assert_eq!(ship(order()), 2);
    assert_eq!(count(&[1, 2, 3]), 3);
    assert_eq!(rt().block_on(price(&order())), 30);
    assert_eq!(rt().block_on(payment(5, false)), Ok(5));
    assert_eq!(rt().block_on(payment(5, true)), Err(OrderError("card declined".into())));
}

#[test]
fn a_manual_workflow_scope_is_found_by_steps() {
    let wf = WorkflowTracer::new("manual");
    let n = wf.scope_sync(|| count(&[1, 2]));
    assert_eq!(n, 2);
    let paid = rt().block_on(wf.scope(async { payment(1, true).await }));
    assert!(paid.is_err());
    wf.finish();
    let summary = wf.summary();
    assert_eq!(summary.steps.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["count", "payment"]);
    assert_eq!(summary.steps[1].error.as_deref(), Some("card declined"));
}

// ---- spans -----------------------------------------------------------------------------------------------

/// Keeps one always-interested `tracing` dispatcher alive for the whole binary, created before any test hits a
/// span callsite (see `tests/workflow.rs`: avoids `tracing-core`'s interest-cache race with scoped recorders).
fn init_tracing() {
    static KEEP: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();
    KEEP.get_or_init(|| tracing::Dispatch::new(tracing_subscriber::registry()));
}

/// A new span as recorded: its name, its parent's name and its fields.
#[derive(Debug, Clone, PartialEq)]
struct NewSpan {
    name: String,
    parent: Option<String>,
    fields: Vec<(String, String)>,
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<NewSpan>>>);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        struct Fields(Vec<(String, String)>);
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.push((field.name().to_owned(), format!("{value:?}")));
            }
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                self.0.push((field.name().to_owned(), value.to_owned()));
            }
        }
        let mut fields = Fields(Vec::new());
        attrs.record(&mut fields);
        let span = ctx.span(id).expect("the new span");
        let parent = span.parent().map(|p| p.name().to_owned());
        self.0.lock().expect("lock").push(NewSpan { name: attrs.metadata().name().into(), parent, fields: fields.0 });
    }
}

fn recording<R>(f: impl FnOnce() -> R) -> (R, Vec<NewSpan>) {
    init_tracing();
    let recorder = Recorder::default();
    let subscriber = tracing_subscriber::registry().with(recorder.clone());
    let out = tracing::subscriber::with_default(subscriber, f);
    let spans = recorder.0.lock().expect("lock").clone();
    (out, spans)
}

fn field<'a>(span: &'a NewSpan, key: &str) -> Option<&'a str> {
    span.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

#[test]
fn outside_a_workflow_a_step_is_a_plain_span() {
    let (n, spans) = recording(|| {
        count(&[1, 2, 3]) + {
            let _ = rt().block_on(payment(1, false));
            0
        }
    });
    assert_eq!(n, 3);
    let steps: Vec<&NewSpan> = spans.iter().filter(|s| s.name == "step").collect();
    assert_eq!(steps.len(), 2, "{spans:?}");
    assert_eq!(field(steps[0], "otel.name"), Some("step:count"));
    assert_eq!(field(steps[0], "step.name"), Some("count"));
    assert_eq!(steps[0].parent, None);
    assert_eq!(field(steps[1], "otel.name"), Some("step:payment"));
}

#[test]
fn the_workflow_body_runs_in_the_workflow_span() {
    #[workflow(name = "spanned")]
    fn spanned() {
        let _custom = tracing::info_span!("in-body").entered();
        inner_step();
    }

    #[step]
    fn inner_step() {
        let _custom = tracing::info_span!("in-step").entered();
    }

    let ((), spans) = recording(spanned);
    let find = |name: &str| spans.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("{name}: {spans:?}"));
    assert_eq!(field(find("workflow"), "otel.name"), Some("workflow:spanned"));
    assert_eq!(find("in-body").parent.as_deref(), Some("workflow"));
    assert_eq!(field(find("step"), "otel.name"), Some("step:inner_step"));
    assert_eq!(find("step").parent.as_deref(), Some("workflow"));
    assert_eq!(find("in-step").parent.as_deref(), Some("step"));
}
