//! A real OTLP/HTTP receiver for the tests: an HTTP/1.1 server on 127.0.0.1 (std `TcpListener`, a thread per
//! connection) that accepts `POST /v1/traces` with a protobuf `ExportTraceServiceRequest` and `POST /v1/metrics`
//! with an `ExportMetricsServiceRequest`, answers 200 with an empty response and keeps the decoded spans and
//! metric data points. With `otel-grpc`, [`OtlpReceiver::start_grpc`]
//! starts the gRPC twin (a tonic `TraceService` server on its own Tokio runtime thread).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use prost::Message;
use serde_json::Value;

/// Largest request body accepted (the exporter's own limit is far below).
const MAX_BODY: usize = 64 << 20;

/// One span as received.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    /// Span name.
    pub name: String,
    /// Lower-case hex, 32 digits.
    pub trace_id: String,
    /// Lower-case hex, 16 digits.
    pub span_id: String,
    /// Lower-case hex, `None` for a root span.
    pub parent_span_id: Option<String>,
    /// Attributes: strings, booleans, integers and doubles as JSON scalars, arrays and maps as JSON.
    pub attributes: BTreeMap<String, Value>,
    /// 0 unset, 1 ok, 2 error.
    pub status_code: i32,
    /// The status message.
    pub status_message: String,
    /// Start, Unix nanoseconds.
    pub start_time_unix_nano: u64,
    /// End, Unix nanoseconds.
    pub end_time_unix_nano: u64,
    /// Names of the span events.
    pub events: Vec<String>,
    /// Attributes of the span events, in the order of `events`.
    pub event_attributes: Vec<BTreeMap<String, Value>>,
    /// The resource attributes of the batch the span came in.
    pub resource: BTreeMap<String, Value>,
    /// The instrumentation scope name.
    pub scope: String,
}

impl ReceivedSpan {
    /// The string attribute `key`.
    pub fn attr_str(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).and_then(Value::as_str)
    }

    /// The string resource attribute `key`.
    pub fn resource_str(&self, key: &str) -> Option<&str> {
        self.resource.get(key).and_then(Value::as_str)
    }
}

/// One metric data point as received (cumulative: the latest point of a series holds its totals).
#[derive(Debug, Clone)]
pub struct ReceivedPoint {
    /// Metric name.
    pub name: String,
    /// Metric unit.
    pub unit: String,
    /// `histogram`, `sum` or `gauge`.
    pub kind: &'static str,
    /// Sums only: monotonic (a counter).
    pub monotonic: bool,
    /// The data point's attributes.
    pub attributes: BTreeMap<String, Value>,
    /// Histograms: the number of values recorded.
    pub count: u64,
    /// Histograms: the sum of the values; sums and gauges: the value.
    pub value: f64,
    /// Histograms: the explicit bucket boundaries.
    pub bounds: Vec<f64>,
    /// Histograms: the count per bucket.
    pub bucket_counts: Vec<u64>,
    /// The resource attributes of the request.
    pub resource: BTreeMap<String, Value>,
    /// The instrumentation scope name.
    pub scope: String,
}

impl ReceivedPoint {
    /// The string attribute `key`.
    pub fn attr_str(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).and_then(Value::as_str)
    }
}

/// One HTTP request as received.
#[derive(Debug, Clone)]
pub struct ReceivedRequest {
    /// `POST`, …
    pub method: String,
    /// `/v1/traces`, …
    pub path: String,
    /// Lower-case header names.
    pub headers: BTreeMap<String, String>,
    /// The status the receiver answered.
    pub status: u16,
}

#[derive(Default)]
struct State {
    spans: Vec<ReceivedSpan>,
    /// Per metrics request, its data points.
    metrics: Vec<Vec<ReceivedPoint>>,
    requests: Vec<ReceivedRequest>,
}

/// The receiver; it stops accepting when dropped.
pub struct OtlpReceiver {
    port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl OtlpReceiver {
    /// Starts a receiver on an ephemeral port of 127.0.0.1.
    pub fn start() -> Self {
        Self::start_on(0).expect("bind 127.0.0.1:0")
    }

    /// Starts a receiver on `port` of 127.0.0.1 (0: any free port).
    pub fn start_on(port: u16) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        std::thread::Builder::new().name(format!("otlp-receiver-{port}")).spawn(move || {
            // Polls so that the loop ends when the receiver is dropped.
            while !sp.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let st = st.clone();
                        let _ = std::thread::Builder::new().name("otlp-conn".into()).spawn(move || serve(stream, &st));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        })?;
        Ok(Self { port, state, stop })
    }

    /// Starts an OTLP/gRPC receiver on an ephemeral port of 127.0.0.1 (`TraceService/Export`).
    #[cfg(feature = "otel-grpc")]
    pub fn start_grpc() -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("local addr").port();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        std::thread::Builder::new()
            .name(format!("otlp-grpc-receiver-{port}"))
            .spawn(move || grpc::serve(listener, st, sp))
            .expect("spawn the gRPC receiver");
        Self { port, state, stop }
    }

    /// `http://127.0.0.1:PORT`, the OTLP base endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.state.lock().unwrap().spans.clone()
    }

    /// The data points of every metrics request received so far, one `Vec` per request, oldest first.
    pub fn metric_requests(&self) -> Vec<Vec<ReceivedPoint>> {
        self.state.lock().unwrap().metrics.clone()
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Polls until `done(spans)` holds (then returns the spans) or `timeout` passes (then `None`).
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&[ReceivedSpan]) -> bool) -> Option<Vec<ReceivedSpan>> {
        let deadline = Instant::now() + timeout;
        loop {
            let spans = self.spans();
            if done(&spans) {
                return Some(spans);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Serves the requests of one keep-alive connection until it closes, fails or idles for 30 s.
fn serve(stream: TcpStream, state: &Mutex<State>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(mut writer) = stream.try_clone() else { return };
    let mut reader = BufReader::new(stream);
    // Bounded: each round reads one request; a connection carries at most this many.
    for _ in 0..100_000 {
        let Some((method, path, headers, body)) = read_request(&mut reader) else { return };
        let (status, reason) = if method != "POST" || (path != "/v1/traces" && path != "/v1/metrics") {
            (404, "Not Found")
        } else if headers.get("content-type").map(String::as_str) != Some("application/x-protobuf") {
            (415, "Unsupported Media Type")
        } else if path == "/v1/metrics" {
            match ExportMetricsServiceRequest::decode(body.as_slice()) {
                Ok(req) => {
                    state.lock().unwrap().metrics.push(flatten_metrics(req));
                    (200, "OK")
                }
                Err(_) => (400, "Bad Request"),
            }
        } else {
            match ExportTraceServiceRequest::decode(body.as_slice()) {
                Ok(req) => {
                    state.lock().unwrap().spans.extend(flatten(req));
                    (200, "OK")
                }
                Err(_) => (400, "Bad Request"),
            }
        };
        state.lock().unwrap().requests.push(ReceivedRequest { method, path, headers, status });
        // An empty body is a valid (empty) ExportTraceServiceResponse.
        let head =
            format!("HTTP/1.1 {status} {reason}\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n");
        if writer.write_all(head.as_bytes()).and_then(|()| writer.flush()).is_err() {
            return;
        }
    }
}

type Request = (String, String, BTreeMap<String, String>, Vec<u8>);

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = BTreeMap::new();
    for _ in 0..200 {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
    }
    let body = if headers.get("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        read_chunked(reader)?
    } else {
        let len: usize = headers.get("content-length").map_or(Some(0), |l| l.parse().ok())?;
        if len > MAX_BODY {
            return None;
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body).ok()?;
        body
    };
    Some((method, path, headers, body))
}

fn read_chunked(reader: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    for _ in 0..1_000_000 {
        let mut size = String::new();
        reader.read_line(&mut size).ok()?;
        let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
        if body.len() + size > MAX_BODY {
            return None;
        }
        let start = body.len();
        body.resize(start + size + 2, 0);
        reader.read_exact(&mut body[start..]).ok()?;
        body.truncate(start + size);
        if size == 0 {
            return Some(body);
        }
    }
    None
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn any_to_json(v: Option<&AnyValue>) -> Value {
    match v.and_then(|v| v.value.as_ref()) {
        None => Value::Null,
        Some(Any::StringValue(s)) => Value::from(s.as_str()),
        Some(Any::BoolValue(b)) => Value::from(*b),
        Some(Any::IntValue(i)) => Value::from(*i),
        Some(Any::DoubleValue(d)) => Value::from(*d),
        Some(Any::ArrayValue(a)) => Value::Array(a.values.iter().map(|v| any_to_json(Some(v))).collect()),
        Some(Any::KvlistValue(kv)) => Value::Object(attrs(&kv.values).into_iter().collect()),
        Some(Any::BytesValue(b)) => Value::from(hex(b)),
        #[allow(unreachable_patterns)]
        Some(_) => Value::Null,
    }
}

fn attrs(kvs: &[KeyValue]) -> BTreeMap<String, Value> {
    kvs.iter().map(|kv| (kv.key.clone(), any_to_json(kv.value.as_ref()))).collect()
}

fn flatten(req: ExportTraceServiceRequest) -> Vec<ReceivedSpan> {
    let mut out = Vec::new();
    for rs in req.resource_spans {
        let resource = rs.resource.as_ref().map(|r| attrs(&r.attributes)).unwrap_or_default();
        for ss in rs.scope_spans {
            let scope = ss.scope.as_ref().map(|s| s.name.clone()).unwrap_or_default();
            for s in ss.spans {
                let status = s.status.unwrap_or_default();
                out.push(ReceivedSpan {
                    name: s.name,
                    trace_id: hex(&s.trace_id),
                    span_id: hex(&s.span_id),
                    parent_span_id: (!s.parent_span_id.is_empty()).then(|| hex(&s.parent_span_id)),
                    attributes: attrs(&s.attributes),
                    status_code: status.code,
                    status_message: status.message,
                    start_time_unix_nano: s.start_time_unix_nano,
                    end_time_unix_nano: s.end_time_unix_nano,
                    event_attributes: s.events.iter().map(|e| attrs(&e.attributes)).collect(),
                    events: s.events.into_iter().map(|e| e.name).collect(),
                    resource: resource.clone(),
                    scope: scope.clone(),
                });
            }
        }
    }
    out
}

/// The data points of a metrics request.
fn flatten_metrics(req: ExportMetricsServiceRequest) -> Vec<ReceivedPoint> {
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as Number;
    let number = |v: Option<Number>| match v {
        Some(Number::AsDouble(d)) => d,
        #[allow(clippy::cast_precision_loss)]
        Some(Number::AsInt(i)) => i as f64,
        None => f64::NAN,
    };
    let mut out = Vec::new();
    for rm in req.resource_metrics {
        let resource = rm.resource.as_ref().map(|r| attrs(&r.attributes)).unwrap_or_default();
        for sm in rm.scope_metrics {
            let scope = sm.scope.as_ref().map(|s| s.name.clone()).unwrap_or_default();
            for m in sm.metrics {
                let point = |kind, monotonic, attributes: &[KeyValue]| ReceivedPoint {
                    name: m.name.clone(),
                    unit: m.unit.clone(),
                    kind,
                    monotonic,
                    attributes: attrs(attributes),
                    count: 0,
                    value: 0.0,
                    bounds: Vec::new(),
                    bucket_counts: Vec::new(),
                    resource: resource.clone(),
                    scope: scope.clone(),
                };
                match &m.data {
                    Some(Data::Histogram(h)) => {
                        for dp in &h.data_points {
                            out.push(ReceivedPoint {
                                count: dp.count,
                                value: dp.sum.unwrap_or(f64::NAN),
                                bounds: dp.explicit_bounds.clone(),
                                bucket_counts: dp.bucket_counts.clone(),
                                ..point("histogram", false, &dp.attributes)
                            });
                        }
                    }
                    Some(Data::Sum(sum)) => {
                        for dp in &sum.data_points {
                            out.push(ReceivedPoint {
                                value: number(dp.value),
                                ..point("sum", sum.is_monotonic, &dp.attributes)
                            });
                        }
                    }
                    Some(Data::Gauge(g)) => {
                        for dp in &g.data_points {
                            out.push(ReceivedPoint {
                                value: number(dp.value),
                                ..point("gauge", false, &dp.attributes)
                            });
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    out
}

#[cfg(feature = "otel-grpc")]
mod grpc {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
    use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};

    use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
        MetricsService, MetricsServiceServer,
    };
    use opentelemetry_proto::tonic::collector::metrics::v1::{
        ExportMetricsServiceRequest, ExportMetricsServiceResponse,
    };

    use super::{flatten, flatten_metrics, ReceivedRequest, State};

    struct Receiver(Arc<Mutex<State>>);

    /// The gRPC request's metadata as HTTP headers.
    fn headers_of<T>(request: &tonic::Request<T>) -> BTreeMap<String, String> {
        request
            .metadata()
            .clone()
            .into_headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
            .collect()
    }

    /// An accepted `Export` call to `path`.
    fn export_request(path: &str, headers: BTreeMap<String, String>) -> ReceivedRequest {
        ReceivedRequest { method: "POST".into(), path: path.into(), headers, status: 200 }
    }

    #[tonic::async_trait]
    impl MetricsService for Receiver {
        async fn export(
            &self,
            request: tonic::Request<ExportMetricsServiceRequest>,
        ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
            let headers = headers_of(&request);
            let points = flatten_metrics(request.into_inner());
            let mut state = self.0.lock().unwrap();
            state.metrics.push(points);
            state
                .requests
                .push(export_request("/opentelemetry.proto.collector.metrics.v1.MetricsService/Export", headers));
            Ok(tonic::Response::new(ExportMetricsServiceResponse { partial_success: None }))
        }
    }

    #[tonic::async_trait]
    impl TraceService for Receiver {
        async fn export(
            &self,
            request: tonic::Request<ExportTraceServiceRequest>,
        ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
            let headers = headers_of(&request);
            let spans = flatten(request.into_inner());
            let mut state = self.0.lock().unwrap();
            state.spans.extend(spans);
            state.requests.push(export_request("/opentelemetry.proto.collector.trace.v1.TraceService/Export", headers));
            Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
        }
    }

    pub(super) fn serve(listener: std::net::TcpListener, state: Arc<Mutex<State>>, stop: Arc<AtomicBool>) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            let stopped = async move {
                // Polls so that the server ends when the receiver is dropped.
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            };
            let _ = tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(Receiver(state.clone())))
                .add_service(MetricsServiceServer::new(Receiver(state)))
                .serve_with_incoming_shutdown(incoming, stopped)
                .await;
        });
    }
}
