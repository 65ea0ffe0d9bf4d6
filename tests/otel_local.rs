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
