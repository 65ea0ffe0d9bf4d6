//! OpenTelemetry export to a real OTLP/HTTP receiver: `configure_tracing` with an endpoint, spans with a parent
//! link, attributes and the service resource; audit events carry the current span's ids.
//!
//! One process, one global subscriber: every test shares the set-up of [`setup`].

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use common::otlp::{OtlpReceiver, ReceivedSpan};
use observer::trace::{configure_tracing, TracingConfig};
use observer::{audit, ResourceType};

const WAIT: Duration = Duration::from_secs(15);

/// The receiver every test exports to; the first call also initialises observer (memory sink) and tracing.
fn setup() -> &'static OtlpReceiver {
    static RECEIVER: OnceLock<OtlpReceiver> = OnceLock::new();
    RECEIVER.get_or_init(|| {
        for var in ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL"]
        {
            assert!(std::env::var_os(var).is_none(), "unset {var} to run these tests");
        }
        let receiver = OtlpReceiver::start();
        common::memory_sink();
        configure_tracing(TracingConfig {
            service_name: "otel-test-service".into(),
            service_version: "2.3.4".into(),
            environment: "test".into(),
            otlp_endpoint: Some(receiver.endpoint()),
            ..Default::default()
        })
        .expect("configure_tracing");
        receiver
    })
}

fn flush() {
    observer::flush(Duration::from_secs(10)).expect("observer::flush exports the spans");
}

fn find<'a>(spans: &'a [ReceivedSpan], name: &str, test: &str) -> Option<&'a ReceivedSpan> {
    spans.iter().find(|s| s.name == name && s.attr_str("test") == Some(test))
}

#[test]
fn spans_reach_the_receiver_with_parent_link_attributes_and_resource() {
    let receiver = setup();
    const T: &str = "parent-child";
    {
        let parent = tracing::info_span!("process-document", document_id = "doc-123", test = T);
        let _p = parent.enter();
        let child = tracing::info_span!("extract-pages", pages = 10_i64, ratio = 0.5, ok = true, test = T);
        let _c = child.enter();
        tracing::info!(pages = 10, "Document processed");
        // Below the exported level (INFO): not exported, and it does not break the parent link.
        let _d = tracing::debug_span!("debug-detail", test = T).entered();
    }
    flush();
    let spans = receiver
        .wait_for(WAIT, |s| find(s, "process-document", T).is_some() && find(s, "extract-pages", T).is_some())
        .expect("both spans reach the receiver");
    let parent = find(&spans, "process-document", T).unwrap();
    let child = find(&spans, "extract-pages", T).unwrap();
    assert!(find(&spans, "debug-detail", T).is_none(), "debug spans are not exported");

    assert_eq!(parent.trace_id.len(), 32);
    assert_ne!(parent.trace_id, "0".repeat(32));
    assert_eq!(child.trace_id, parent.trace_id, "one trace");
    assert_eq!(child.parent_span_id.as_deref(), Some(parent.span_id.as_str()), "child → parent link");
    assert_eq!(parent.parent_span_id, None, "root span");
    assert_ne!(child.span_id, parent.span_id);

    assert_eq!(parent.attr_str("document_id"), Some("doc-123"));
    assert_eq!(child.attributes["pages"], 10);
    assert_eq!(child.attributes["ratio"], 0.5);
    assert_eq!(child.attributes["ok"], true);
    assert_eq!(child.events, vec!["Document processed".to_owned()]);
    assert!(parent.start_time_unix_nano <= child.start_time_unix_nano);
    assert!(child.end_time_unix_nano <= parent.end_time_unix_nano);
    assert!(parent.start_time_unix_nano > 0);

    for span in [parent, child] {
        assert_eq!(span.resource_str("service.name"), Some("otel-test-service"));
        assert_eq!(span.resource_str("service.version"), Some("2.3.4"));
        assert_eq!(span.resource_str("deployment.environment"), Some("test"));
        assert_eq!(span.resource_str("deployment.environment.name"), Some("test"));
        assert_eq!(span.scope, "observer");
        assert_eq!(span.status_code, 0, "unset");
    }
    let requests = receiver.requests();
    assert!(!requests.is_empty());
    assert!(requests.iter().any(|r| r.path == "/v1/traces"), "{requests:?}");
    for r in &requests {
        // The metrics go to the same collector (`/v1/metrics`, see tests/otel_metrics.rs).
        let path = if r.path == "/v1/metrics" { "/v1/metrics" } else { "/v1/traces" };
        assert_eq!((r.method.as_str(), r.path.as_str(), r.status), ("POST", path, 200), "{r:?}");
        assert_eq!(r.headers.get("content-type").map(String::as_str), Some("application/x-protobuf"));
        assert!(!r.headers.contains_key("content-encoding"), "uncompressed: {r:?}");
    }
}

#[test]
fn error_events_mark_the_span_failed() {
    let receiver = setup();
    const T: &str = "error-status";
    {
        let _s = tracing::info_span!("charge-card", test = T).entered();
        tracing::error!("payment declined");
    }
    flush();
    let spans = receiver.wait_for(WAIT, |s| find(s, "charge-card", T).is_some()).expect("span exported");
    let span = find(&spans, "charge-card", T).unwrap();
    assert_eq!(span.status_code, 2, "error: {span:?}");
}

#[test]
fn audit_events_inside_a_span_carry_its_trace_and_span_ids() {
    let receiver = setup();
    const T: &str = "audit-correlation";
    let (outer_event, inner_event) = {
        let _outer = tracing::info_span!("handle-request", test = T).entered();
        let outer_event = audit::log_read(ResourceType::Document, "doc-outer").emit().expect("emit");
        let _inner = tracing::info_span!("load-document", test = T).entered();
        let inner_event = audit::log_read(ResourceType::Document, "doc-inner").emit().expect("emit");
        (outer_event, inner_event)
    };
    let outside = audit::log_read(ResourceType::Document, "doc-outside").emit().expect("emit");
    assert_eq!((outside.trace_id.as_deref(), outside.span_id.as_deref()), (None, None), "no span, no ids");

    flush();
    let spans = receiver
        .wait_for(WAIT, |s| find(s, "handle-request", T).is_some() && find(s, "load-document", T).is_some())
        .expect("spans exported");
    let outer = find(&spans, "handle-request", T).unwrap();
    let inner = find(&spans, "load-document", T).unwrap();
    assert_eq!(outer_event.trace_id.as_deref(), Some(outer.trace_id.as_str()));
    assert_eq!(outer_event.span_id.as_deref(), Some(outer.span_id.as_str()));
    assert_eq!(inner_event.trace_id.as_deref(), Some(inner.trace_id.as_str()));
    assert_eq!(inner_event.span_id.as_deref(), Some(inner.span_id.as_str()));

    // And the recorded JSON (what the sinks write) carries them too.
    let json = common::recorded_json(&inner_event);
    assert_eq!(json["trace_id"], inner.trace_id.as_str());
    assert_eq!(json["span_id"], inner.span_id.as_str());
}

#[test]
fn a_second_configure_is_ignored_and_a_second_exporter_refused() {
    let receiver = setup();
    let other = OtlpReceiver::start();
    configure_tracing(TracingConfig { otlp_endpoint: Some(other.endpoint()), ..Default::default() })
        .expect("a second configure_tracing is reported, not an error");
    const T: &str = "second-configure";
    drop(tracing::info_span!("after-second-configure", test = T).entered());
    flush();
    receiver.wait_for(WAIT, |s| find(s, "after-second-configure", T).is_some()).expect("still the first receiver");
    assert!(other.requests().is_empty(), "the second config was ignored");

    let err = observer::trace::otel_layer::<tracing_subscriber::Registry>(&TracingConfig {
        otlp_endpoint: Some(other.endpoint()),
        ..Default::default()
    })
    .err()
    .expect("only one exporter per process");
    assert!(matches!(&err, observer::ObserverError::Configuration(c) if c.field == "tracing"), "{err}");
}

/// `otel_layer` with nothing to export is a layer that exports nothing (and leaves the installed exporter alone);
/// an invalid endpoint is refused with the error that names the field.
#[test]
fn otel_layer_without_an_endpoint_exports_nothing_and_refuses_an_invalid_one() {
    use tracing_subscriber::layer::SubscriberExt;

    let receiver = setup();
    const T: &str = "no-op-layer";
    let layer = observer::trace::otel_layer::<tracing_subscriber::Registry>(&TracingConfig::default())
        .expect("nothing to export is a valid set-up");
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let _span = tracing::info_span!("under-the-no-op-layer", test = T).entered();
        assert_eq!(observer::__private::current_trace_ids(), None, "no OpenTelemetry span behind it");
    });
    drop(tracing::info_span!("after-the-no-op-layer", test = T).entered());
    flush();
    let spans = receiver
        .wait_for(WAIT, |s| find(s, "after-the-no-op-layer", T).is_some())
        .expect("the installed exporter still exports");
    assert!(find(&spans, "under-the-no-op-layer", T).is_none(), "the no-op layer exported a span");

    let err = observer::trace::otel_layer::<tracing_subscriber::Registry>(&TracingConfig {
        otlp_endpoint: Some("localhost:4318".into()),
        ..Default::default()
    })
    .err()
    .expect("an endpoint without a scheme is refused");
    assert!(
        matches!(&err, observer::ObserverError::Configuration(c) if c.field == "otlp_endpoint"
            && c.message.contains("http://")),
        "{err}"
    );
}

#[test]
fn workflow_attributes_and_errors_reach_the_receiver() {
    let receiver = setup();
    let wf = observer::trace::WorkflowTracer::new("otel-process-order").attr("order_id", "123");
    {
        let mut step = wf.step("validate");
        step.set("items_count", 5).set("tags", serde_json::json!(["a", "b"]));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    {
        let mut step = wf.step("payment");
        step.record_error("card declined");
    }
    wf.set("status", "completed").set("total", 9.5).set("rush", true);
    wf.record_error("order failed");
    wf.finish();
    flush();
    let is_wf = |s: &ReceivedSpan| s.name == "workflow:otel-process-order";
    let spans = receiver
        .wait_for(WAIT, |spans| {
            spans.iter().find(|s| is_wf(s)).is_some_and(|w| {
                spans.iter().filter(|s| s.parent_span_id.as_deref() == Some(w.span_id.as_str())).count() == 2
            })
        })
        .expect("workflow and steps exported");
    let workflow = spans.iter().find(|s| is_wf(s)).unwrap();
    let step = |name: &str| {
        spans.iter().find(|s| s.name == name && s.parent_span_id.as_deref() == Some(workflow.span_id.as_str())).unwrap()
    };
    // set_span_attribute: strings, numbers, booleans as OTEL scalars; arrays as JSON text.
    assert_eq!(workflow.attr_str("order_id"), Some("123"));
    assert_eq!(workflow.attr_str("status"), Some("completed"));
    assert_eq!(workflow.attributes["total"], 9.5);
    assert_eq!(workflow.attributes["rush"], true);
    let validate = step("step:validate");
    assert_eq!(validate.attributes["items_count"], 5);
    assert_eq!(validate.attr_str("tags"), Some(r#"["a","b"]"#));
    assert_eq!(validate.status_code, 0);
    // set_span_error: status error with the message.
    // Durations: the step's span covers its 20 ms sleep and lies within the workflow's span, which matches
    // the summary's duration (with tolerance).
    let nanos = |s: &ReceivedSpan| s.end_time_unix_nano.saturating_sub(s.start_time_unix_nano);
    assert!(nanos(validate) >= 20_000_000, "{} ns", nanos(validate));
    assert!(validate.start_time_unix_nano >= workflow.start_time_unix_nano);
    assert!(validate.end_time_unix_nano <= workflow.end_time_unix_nano);
    let summary_ns = (wf.summary().duration_ms * 1e6) as u64;
    assert!(nanos(workflow).abs_diff(summary_ns) < 5_000_000, "span {} ns vs summary {summary_ns} ns", nanos(workflow));
    let payment = step("step:payment");
    assert_eq!((payment.status_code, payment.status_message.as_str()), (2, "card declined"));
    assert_eq!((workflow.status_code, workflow.status_message.as_str()), (2, "order failed"));
}

// ----- The examples' export claims ----------------------------------------------------------------------------------

#[allow(dead_code)]
#[path = "../examples/workflow_tracing.rs"]
mod workflow_tracing_example;

/// Runs only in a child process: the `workflow_tracing` example's `main`, as `cargo run --example` would.
#[test]
#[ignore = "run by the_workflow_tracing_example_exports_its_spans_when_an_endpoint_is_set"]
fn child_workflow_tracing_example() {
    if std::env::var_os("OBSERVER_EXAMPLE_CHILD").is_none() {
        return;
    }
    workflow_tracing_example::main().expect("the example runs");
}

/// `examples/workflow_tracing.rs` says that with `OTEL_EXPORTER_OTLP_ENDPOINT` set its spans are exported over
/// OTLP: run it that way against a receiver and decode what arrives.
#[test]
fn the_workflow_tracing_example_exports_its_spans_when_an_endpoint_is_set() {
    let receiver = OtlpReceiver::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let output = common::child_test("child_workflow_tracing_example")
        .env("OBSERVER_EXAMPLE_CHILD", "1")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_PROTOCOL")
        .env_remove("OTEL_SERVICE_NAME")
        .env_remove("OTEL_SDK_DISABLED")
        .current_dir(dir.path())
        .output()
        .expect("run the example");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success() && stdout.contains("1 passed"), "the example failed: {stdout}");
    let workflows =
        ["workflow:process-order", "workflow:data-pipeline", "workflow:api-request", "workflow:batch-process"];
    // The guard's drop exported everything before the child exited: no waiting for a batch interval.
    let spans = receiver
        .wait_for(Duration::from_secs(2), |s| workflows.iter().all(|w| s.iter().any(|span| span.name == *w)))
        .unwrap_or_else(|| {
            let names: Vec<String> = receiver.spans().iter().map(|s| s.name.clone()).collect();
            panic!("every workflow of the example is exported; received {names:?}")
        });
    let order = spans.iter().find(|s| s.name == "workflow:process-order").expect("process-order");
    assert_eq!(order.resource_str("service.name"), Some("workflow-tracing-example"));
    let payment = spans
        .iter()
        .find(|s| s.name == "step:payment" && s.parent_span_id.as_deref() == Some(order.span_id.as_str()))
        .expect("the payment step, a child of its workflow span");
    assert_eq!(payment.attr_str("step.name"), Some("payment"));
}

/// Runs only in a child process: the application's own subscriber first, then `init` with an endpoint set.
#[test]
#[ignore = "run by init_leaves_a_subscriber_the_application_installed_alone"]
fn child_own_subscriber_then_init() {
    if std::env::var_os("OBSERVER_EXAMPLE_CHILD").is_none() {
        return;
    }
    tracing_subscriber::fmt().with_writer(std::io::stdout).with_ansi(false).init();
    let guard = observer::init(observer::ObserverConfig {
        audit_sink: observer::AuditSink::Memory(observer::export::MemorySink::new()),
        ..Default::default()
    })
    .expect("init");
    tracing::info!("still the application's subscriber");
    drop(tracing::info_span!("not-exported").entered());
    drop(guard);
}

/// Runs the child test `name` with `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at `receiver`; asserts it passed and
/// returns its stdout and stderr.
fn run_child_exporting_to(name: &str, receiver: &OtlpReceiver) -> (String, String) {
    let output = common::child_test(name)
        .env("OBSERVER_EXAMPLE_CHILD", "1")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success() && stdout.contains("1 passed"), "the child failed: {stdout}");
    (stdout, String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn init_leaves_a_subscriber_the_application_installed_alone() {
    let receiver = OtlpReceiver::start();
    let (stdout, _) = run_child_exporting_to("child_own_subscriber_then_init", &receiver);
    assert!(stdout.contains("still the application's subscriber"), "the application's subscriber stays: {stdout}");
    assert!(
        stdout.contains("does not export spans to") && stdout.contains("otel_layer"),
        "the application's subscriber is told why nothing is exported: {stdout}"
    );
    assert!(receiver.spans().is_empty(), "nothing exported behind the application's back");
}

/// Runs only in a child process: `init` with an endpoint set (so it installs the export-only subscriber), then a
/// second `init`.
#[test]
#[ignore = "run by warnings_still_reach_stderr_when_init_installed_the_exporter"]
fn child_init_twice_with_an_endpoint() {
    if std::env::var_os("OBSERVER_EXAMPLE_CHILD").is_none() {
        return;
    }
    let memory = || observer::AuditSink::Memory(observer::export::MemorySink::new());
    let _guard = observer::init(observer::ObserverConfig { audit_sink: memory(), ..Default::default() }).expect("init");
    let second = observer::init(observer::ObserverConfig { audit_sink: memory(), ..Default::default() });
    assert_eq!(second.expect("init").status(), observer::InitStatus::AlreadyInitialized);
}

/// The subscriber `init` installs for OTLP export prints nothing: the SDK's warnings must still reach stderr.
#[test]
fn warnings_still_reach_stderr_when_init_installed_the_exporter() {
    let receiver = OtlpReceiver::start();
    let (_, stderr) = run_child_exporting_to("child_init_twice_with_an_endpoint", &receiver);
    assert!(
        stderr.lines().any(|l| l.starts_with("observer: warning:") && l.contains("init called again")),
        "the ignored init is on stderr: {stderr}"
    );
}
