//! OTLP over https: an `https://` endpoint is accepted and the exporter speaks TLS to it (the first bytes the
//! receiver gets are a TLS handshake record, not an HTTP request line).

use std::io::Read;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use observer::trace::{configure_tracing, TracingConfig};

#[test]
fn https_endpoints_are_exported_over_tls() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    configure_tracing(TracingConfig {
        service_name: "otel-tls-test".into(),
        otlp_endpoint: Some(format!("https://127.0.0.1:{port}")),
        ..Default::default()
    })
    .expect("an https endpoint is a valid set-up");
    drop(tracing::info_span!("over-tls").entered());
    // The handshake cannot complete (this listener is not a TLS server): the flush reports a failed export.
    let exporter = std::thread::spawn(|| observer::flush(Duration::from_secs(2)));

    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut first = [0u8; 3];
    loop {
        match listener.accept() {
            Ok((mut conn, _)) => {
                conn.set_nonblocking(false).unwrap();
                conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                conn.read_exact(&mut first).expect("the client's first bytes");
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("no connection from the exporter: {e}"),
        }
    }
    assert_eq!(first[0], 0x16, "a TLS handshake record, not `POST` ({first:?})");
    assert_eq!(first[1], 0x03, "TLS major version 3 ({first:?})");
    let flushed = exporter.join().expect("the flush thread");
    assert!(
        matches!(flushed, Err(observer::ExporterError::SpanExport(_) | observer::ExporterError::FlushTimeout(_))),
        "the failed export is reported: {flushed:?}"
    );
}
