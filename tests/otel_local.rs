//! No endpoint (the guide's `send_to_logfire=False`, "keep data local"): `configure_tracing` succeeds and
//! nothing is exported, not even to the OTLP default endpoint. Invalid settings are refused, naming the field.

mod common;

use std::time::Duration;

use common::otlp::OtlpReceiver;
use observer::trace::{configure_tracing, OtlpProtocol, TracingConfig};
use observer::ObserverError;

fn field(err: ObserverError) -> String {
    match err {
        ObserverError::Configuration(c) => c.field,
        other => panic!("not a configuration error: {other}"),
    }
}

#[test]
fn keep_data_local_exports_nothing() {
    for var in ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL"] {
        assert!(std::env::var_os(var).is_none(), "unset {var} to run this test");
    }
    // Listen on the OTLP default endpoint when it is free, so that a fallback to it would be seen.
    let default_port = OtlpReceiver::start_on(4318).ok();
    let receiver = OtlpReceiver::start();

    // Refused before anything is installed.
    let bad = |c: TracingConfig| field(configure_tracing(c).unwrap_err());
    assert_eq!(
        bad(TracingConfig { otlp_endpoint: Some("collector:4318".into()), ..Default::default() }),
        "otlp_endpoint"
    );
    assert_eq!(
        bad(TracingConfig {
            otlp_endpoint: Some("https://collector:4317".into()),
            protocol: OtlpProtocol::Grpc,
            ..Default::default()
        }),
        "otlp_endpoint"
    );
    assert_eq!(bad(TracingConfig { traces_endpoint: Some("http://".into()), ..Default::default() }), "traces_endpoint");
    if !cfg!(feature = "otel-grpc") {
        assert_eq!(bad(TracingConfig { protocol: OtlpProtocol::Grpc, ..Default::default() }), "protocol");
    }

    let config = TracingConfig { service_name: "local-only".into(), ..Default::default() };
    assert_eq!(config.export_endpoint(), None);
    configure_tracing(config).expect("keeping data local is a valid set-up");
    {
        let _span = tracing::info_span!("process-document", document_id = "doc-123").entered();
        tracing::info!(pages = 10, "Document processed");
        assert_eq!(observer::__private::current_trace_ids(), None, "no OpenTelemetry layer, no trace ids");
    }
    observer::flush(Duration::from_secs(5)).expect("flush");
    observer::flush(Duration::from_secs(5)).expect("nothing to flush");
    std::thread::sleep(Duration::from_millis(700));
    assert!(receiver.requests().is_empty());
    if let Some(d) = &default_port {
        assert!(d.requests().is_empty(), "nothing goes to the default endpoint either: {:?}", d.requests());
    }
    observer::trace::shutdown_tracing().expect("nothing to shut down");
}

/// The console layer (`TracingConfig::console`) prints span and event fields redacted, as exported spans are:
/// stderr is shipped off the host as surely as OTLP is.
#[test]
fn the_console_layer_prints_fields_redacted() {
    let out = common::child_test("console_child").env("OBSERVER_TEST_CONSOLE_CHILD", "1").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stderr}");
    // The child printed its span and event (so the checks below are not vacuous) ...
    assert!(stderr.contains("console-check"), "no console output:\n{stderr}");
    assert!(stderr.contains("visit_count=3"), "a plain field is printed as given:\n{stderr}");
    // ... with no identifier or secret left in it.
    for leaked in ["123-45-6789", "jane.roe@example.com", "hunter2-secret", "sk-proj-"] {
        assert!(!stderr.contains(leaked), "{leaked} printed on the console:\n{stderr}");
    }
    assert!(stderr.contains("[SSN]") && stderr.contains("[EMAIL]"), "the masks are printed:\n{stderr}");
}

#[test]
#[ignore = "run by the_console_layer_prints_fields_redacted as a child process"]
fn console_child() {
    if std::env::var_os("OBSERVER_TEST_CONSOLE_CHILD").is_none() {
        return;
    }
    configure_tracing(TracingConfig { console: true, ..Default::default() }).unwrap();
    let span = tracing::info_span!("visit", patient_email = "jane.roe@example.com", visit_count = 3);
    let _entered = span.enter();
    tracing::info!(
        password = "hunter2-secret",
        api_key = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD",
        "console-check: SSN 123-45-6789 on file"
    );
}
