//! LLM HTTP instrumentation against a local fake OpenAI/Anthropic API (recorded response bodies from the providers'
//! API references, under `tests/data/llm_http/`): spans with the GenAI attributes exported to a real OTLP receiver,
//! cost, byte-identical bodies, unbuffered streams, errors, pass-through of other paths, and the audit switch.
//!
//! One process, one global subscriber and one `init` (memory sink, both providers instrumented, LLM interactions
//! audited); every test starts its own fake API server and finds its spans under a parent span of its own.
#![cfg(feature = "llm-http")]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use common::otlp::{OtlpReceiver, ReceivedSpan};
use observer::export::MemorySink;
use observer::llm::{record_llm_call, LlmCall, LlmLayer, LlmMiddleware, TokenUsage};
use observer::trace::{configure_tracing, TracingConfig};
use observer::{AuditSink, CaptureLevel, ObserverConfig, ObserverGuard};
use tower::{Layer, Service, ServiceExt};

const WAIT: Duration = Duration::from_secs(15);

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/data/llm_http/{name}", env!("CARGO_MANIFEST_DIR"))).expect("fixture")
}

struct Setup {
    receiver: OtlpReceiver,
    sink: MemorySink,
    _guard: ObserverGuard,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        for var in ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL"]
        {
            assert!(std::env::var_os(var).is_none(), "unset {var} to run these tests");
        }
        let receiver = OtlpReceiver::start();
        let sink = MemorySink::new();
        let guard = observer::init(ObserverConfig {
            service_name: "llm-http-test".into(),
            audit_sink: AuditSink::Memory(sink.clone()),
            instrument_openai: true,
            instrument_anthropic: true,
            log_llm_interactions: true,
            ..Default::default()
        })
        .expect("init");
        configure_tracing(TracingConfig {
            service_name: "llm-http-test".into(),
            otlp_endpoint: Some(receiver.endpoint()),
            ..Default::default()
        })
        .expect("configure_tracing");
        Setup { receiver, sink, _guard: guard }
    })
}

/// The spans whose parent is the test's span `test-{name}` (waits until the parent and `n` children arrived).
fn children(name: &str, n: usize) -> Vec<ReceivedSpan> {
    let receiver = &setup().receiver;
    observer::flush(Duration::from_secs(10)).expect("flush");
    let parent_name = format!("test-{name}");
    let find = |spans: &[ReceivedSpan]| -> Option<Vec<ReceivedSpan>> {
        let parent = spans.iter().find(|s| s.name == parent_name)?;
        let kids: Vec<ReceivedSpan> =
            spans.iter().filter(|s| s.parent_span_id.as_deref() == Some(parent.span_id.as_str())).cloned().collect();
        (kids.len() >= n).then_some(kids)
    };
    let spans = receiver.wait_for(WAIT, |s| find(s).is_some()).unwrap_or_else(|| panic!("spans of {name}"));
    find(&spans).unwrap_or_default()
}

fn int(span: &ReceivedSpan, key: &str) -> Option<i64> {
    span.attributes.get(key).and_then(serde_json::Value::as_i64)
}

fn float(span: &ReceivedSpan, key: &str) -> Option<f64> {
    span.attributes.get(key).and_then(serde_json::Value::as_f64)
}

// ----- the fake API --------------------------------------------------------------------------------------------------

/// `(path, request body)` of every request the fake API received.
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A fake OpenAI/Anthropic API on 127.0.0.1: a thread per connection, `Connection: close`.
struct FakeApi {
    port: u16,
    /// Released by the test: streams send their first event, then wait for it (at most 10 s).
    gate: Arc<(Mutex<bool>, Condvar)>,
    /// `(path, request body)` of every request.
    received: Received,
}

impl FakeApi {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let received: Received = Arc::default();
        let (g, r) = (gate.clone(), received.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (g, r) = (g.clone(), r.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &g, &r);
                });
            }
        });
        Self { port, gate, received }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn release(&self) {
        *self.gate.0.lock().unwrap() = true;
        self.gate.1.notify_all();
    }

    fn received_body(&self, path: &str) -> Vec<u8> {
        let received = self.received.lock().unwrap();
        received.iter().find(|(p, _)| p == path).map(|(_, b)| b.clone()).expect("request received")
    }
}

fn serve(
    stream: TcpStream,
    gate: &(Mutex<bool>, Condvar),
    received: &Mutex<Vec<(String, Vec<u8>)>>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or("").to_owned());
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; len.min(1 << 20)];
    reader.read_exact(&mut body)?;
    received.lock().unwrap().push((path.clone(), body.clone()));
    let stream_requested = String::from_utf8_lossy(&body).replace(' ', "").contains("\"stream\":true");
    let mut out = stream;
    let plain = |out: &mut TcpStream, status: &str, ct: &str, body: &[u8]| -> std::io::Result<()> {
        write!(
            out,
            "HTTP/1.1 {status}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )?;
        out.write_all(body)?;
        out.flush()
    };
    if path.contains("/err429/") {
        return plain(&mut out, "429 Too Many Requests", "application/json", &fixture("error_429.json"));
    }
    if path.contains("/err500/") {
        return plain(&mut out, "500 Internal Server Error", "application/json", &fixture("error_500.json"));
    }
    if method != "POST" {
        return plain(&mut out, "200 OK", "application/json", br#"{"object":"list","data":[]}"#);
    }
    let sse = if path.ends_with("/chat/completions") && stream_requested {
        Some(fixture("chat_stream.sse"))
    } else if path.ends_with("/v1/messages") && stream_requested {
        Some(fixture("anthropic_stream.sse"))
    } else {
        None
    };
    if let Some(events) = sse {
        let first_end = events.windows(2).position(|w| w == b"\n\n").map_or(events.len(), |p| p + 2);
        if path.contains("/broken/") {
            // Chunked encoding, cut in the middle of the second chunk: the client's body fails.
            write!(out, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")?;
            write!(out, "{:x}\r\n", first_end)?;
            out.write_all(&events[..first_end])?;
            write!(out, "\r\nff\r\ndata: {{\"trunc")?;
            out.flush()?;
            return out.shutdown(std::net::Shutdown::Both);
        }
        write!(out, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n")?;
        out.write_all(&events[..first_end])?;
        out.flush()?;
        let (lock, cvar) = gate;
        let released = lock.lock().unwrap();
        let _released = cvar.wait_timeout_while(released, Duration::from_secs(10), |r| !*r).unwrap();
        out.write_all(&events[first_end..])?;
        return out.flush();
    }
    let name = if path.ends_with("/chat/completions") {
        "chat_completion.json"
    } else if path.ends_with("/responses") {
        "responses.json"
    } else if path.ends_with("/embeddings") {
        "embeddings.json"
    } else if path.ends_with("/v1/messages") {
        "anthropic_message.json"
    } else {
        return plain(&mut out, "200 OK", "application/json", br#"{"ok":true}"#);
    };
    plain(&mut out, "200 OK", "application/json", &fixture(name))
}

fn client(middleware: LlmMiddleware) -> reqwest_middleware::ClientWithMiddleware {
    reqwest_middleware::ClientBuilder::new(reqwest::Client::new()).with(middleware).build()
}

const CHAT_REQUEST: &str = r#"{"model":"gpt-4o","temperature":0.7,"max_tokens":256,"top_p":0.9,"messages":[{"role":"user","content":"Hello!"}]}"#;

async fn post(client: &reqwest_middleware::ClientWithMiddleware, url: &str, body: &str) -> (u16, Vec<u8>) {
    let response =
        client.post(url).header("content-type", "application/json").body(body.to_owned()).send().await.expect("send");
    let status = response.status().as_u16();
    (status, response.bytes().await.expect("body").to_vec())
}

// ----- tests ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn chat_completion_span_attributes_cost_and_identical_bodies() {
    setup();
    let api = FakeApi::start();
    let client = client(LlmMiddleware::new());
    let parent = tracing::info_span!("test-chat");
    let (status, body) =
        tracing::Instrument::instrument(post(&client, &api.url("/v1/chat/completions"), CHAT_REQUEST), parent).await;
    assert_eq!(status, 200);
    assert_eq!(body, fixture("chat_completion.json"), "the caller gets the body byte for byte");
    assert_eq!(api.received_body("/v1/chat/completions"), CHAT_REQUEST.as_bytes(), "the request is unchanged");

    let spans = children("chat", 1);
    let span = &spans[0];
    assert_eq!(span.name, "chat gpt-4o");
    assert_eq!(span.attr_str("gen_ai.operation.name"), Some("chat"));
    assert_eq!(span.attr_str("gen_ai.provider.name"), Some("openai"));
    assert_eq!(span.attr_str("gen_ai.system"), Some("openai"));
    assert_eq!(span.attr_str("gen_ai.request.model"), Some("gpt-4o"));
    assert_eq!(float(span, "gen_ai.request.temperature"), Some(0.7));
    assert_eq!(int(span, "gen_ai.request.max_tokens"), Some(256));
    assert_eq!(float(span, "gen_ai.request.top_p"), Some(0.9));
    assert_eq!(span.attr_str("gen_ai.response.model"), Some("gpt-4o-2024-08-06"));
    assert_eq!(span.attr_str("gen_ai.response.id"), Some("chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT"));
    assert_eq!(span.attributes["gen_ai.response.finish_reasons"], serde_json::json!(["stop"]));
    assert_eq!(int(span, "gen_ai.usage.input_tokens"), Some(2019));
    assert_eq!(int(span, "gen_ai.usage.output_tokens"), Some(10));
    assert_eq!(int(span, "gen_ai.usage.cache_read.input_tokens"), Some(1920));
    assert_eq!(span.attr_str("server.address"), Some("127.0.0.1"));
    assert_eq!(int(span, "server.port"), Some(i64::from(api.port)));
    assert_eq!(int(span, "http.response.status_code"), Some(200));
    assert_eq!(span.status_code, 0, "unset");
    let expected = observer::calculate_cost_cached("openai", "gpt-4o-2024-08-06", 2019, 10, 1920);
    assert!(expected.price_found);
    assert_eq!(float(span, "gen_ai.cost"), Some(expected.total_cost));
    assert!(expected.total_cost < observer::calculate_cost("openai", "gpt-4o-2024-08-06", 2019, 10).total_cost);
    assert!(!span.attributes.contains_key("gen_ai.response.time_to_first_chunk"), "not streamed");
}

#[tokio::test]
async fn responses_and_embeddings() {
    setup();
    let api = FakeApi::start();
    let client = client(LlmMiddleware::new());
    let parent = tracing::info_span!("test-responses");
    let calls = async {
        let r = post(&client, &api.url("/v1/responses"), r#"{"model":"o3-mini","input":"Tell me a story"}"#).await;
        let e = post(&client, &api.url("/v1/embeddings"), r#"{"model":"text-embedding-3-small","input":"hi"}"#).await;
        (r, e)
    };
    let ((s1, b1), (s2, b2)) = tracing::Instrument::instrument(calls, parent).await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(b1, fixture("responses.json"));
    assert_eq!(b2, fixture("embeddings.json"));

    let spans = children("responses", 2);
    let responses = spans.iter().find(|s| s.name == "chat o3-mini").expect("responses span");
    assert_eq!(responses.attr_str("gen_ai.response.model"), Some("o3-mini-2025-01-31"));
    assert_eq!(responses.attributes["gen_ai.response.finish_reasons"], serde_json::json!(["completed"]));
    assert_eq!(int(responses, "gen_ai.usage.input_tokens"), Some(36));
    assert_eq!(int(responses, "gen_ai.usage.output_tokens"), Some(87));
    assert_eq!(int(responses, "gen_ai.usage.reasoning.output_tokens"), Some(64));
    let cost = observer::calculate_cost_cached("openai", "o3-mini-2025-01-31", 36, 87, 0);
    assert_eq!(float(responses, "gen_ai.cost"), Some(cost.total_cost));

    let embeddings = spans.iter().find(|s| s.name == "embeddings text-embedding-3-small").expect("embeddings span");
    assert_eq!(embeddings.attr_str("gen_ai.operation.name"), Some("embeddings"));
    assert_eq!(int(embeddings, "gen_ai.usage.input_tokens"), Some(8));
    assert_eq!(int(embeddings, "gen_ai.usage.output_tokens"), Some(0));
}

/// An `http::Request<reqwest::Body>` → `http::Response<reqwest::Body>` service backed by a reqwest client.
fn http_service() -> impl Service<
    http::Request<reqwest::Body>,
    Response = http::Response<reqwest::Body>,
    Error = reqwest::Error,
    Future: Send,
> + Clone
       + Send
       + 'static {
    let client = reqwest::Client::new();
    tower::service_fn(move |req: http::Request<reqwest::Body>| {
        let client = client.clone();
        async move {
            let req = reqwest::Request::try_from(req)?;
            Ok(http::Response::from(client.execute(req).await?))
        }
    })
}

async fn read_http_body<B>(body: B) -> Vec<u8>
where
    B: http_body::Body,
    B::Data: AsRef<[u8]>,
    B::Error: std::fmt::Debug,
{
    let mut body = std::pin::pin!(body);
    let mut out = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        if let Ok(data) = frame.expect("frame").into_data() {
            out.extend_from_slice(data.as_ref());
        }
    }
    out
}

const ANTHROPIC_REQUEST: &str = r#"{"model":"claude-3-5-sonnet-20241022","max_tokens":1024,"messages":[{"role":"user","content":"Hello, Claude"}]}"#;

#[tokio::test]
async fn anthropic_message_through_the_tower_layer_over_http_and_reqwest_services() {
    setup();
    let api = FakeApi::start();
    let parent = tracing::info_span!("test-anthropic");
    let calls = async {
        // An `http` service: the request body is read and rebuilt.
        let service = LlmLayer::new().layer(http_service());
        let req = http::Request::post(api.url("/v1/messages"))
            .header("content-type", "application/json")
            .body(reqwest::Body::from(ANTHROPIC_REQUEST))
            .unwrap();
        let response = service.oneshot(req).await.expect("call");
        assert_eq!(response.status(), 200);
        let first = read_http_body(response.into_body()).await;
        // A `reqwest::Client` service.
        let service = LlmLayer::new().layer(reqwest::Client::new());
        let req = reqwest::Client::new().post(api.url("/proxy/v1/messages")).body(ANTHROPIC_REQUEST).build().unwrap();
        let response = service.oneshot(req).await.expect("call");
        let second = response.bytes().await.expect("body").to_vec();
        (first, second)
    };
    let (first, second) = tracing::Instrument::instrument(calls, parent).await;
    assert_eq!(first, fixture("anthropic_message.json"));
    assert_eq!(second, fixture("anthropic_message.json"));
    assert_eq!(api.received_body("/v1/messages"), ANTHROPIC_REQUEST.as_bytes(), "the rebuilt request is unchanged");
    assert_eq!(api.received_body("/proxy/v1/messages"), ANTHROPIC_REQUEST.as_bytes());

    let spans = children("anthropic", 2);
    let expected = observer::calculate_cost_cached("anthropic", "claude-3-5-sonnet-20241022", 2000, 500, 1500);
    for span in &spans {
        assert_eq!(span.name, "chat claude-3-5-sonnet-20241022");
        assert_eq!(span.attr_str("gen_ai.provider.name"), Some("anthropic"));
        assert_eq!(int(span, "gen_ai.request.max_tokens"), Some(1024));
        assert_eq!(span.attr_str("gen_ai.response.id"), Some("msg_013Zva2CMHLNnXjNJJKqJ2EF"));
        assert_eq!(span.attributes["gen_ai.response.finish_reasons"], serde_json::json!(["end_turn"]));
        // Anthropic's 500 uncached + 1,500 cache reads: 2,000 input tokens, the cache reads counted once.
        assert_eq!(int(span, "gen_ai.usage.input_tokens"), Some(2000));
        assert_eq!(int(span, "gen_ai.usage.output_tokens"), Some(500));
        assert_eq!(int(span, "gen_ai.usage.cache_read.input_tokens"), Some(1500));
        assert_eq!(float(span, "gen_ai.cost"), Some(expected.total_cost));
        assert_eq!(int(span, "server.port"), Some(i64::from(api.port)));
    }
    assert!((expected.input_cost - 0.00195).abs() < 1e-12, "{expected:?}");
}

#[tokio::test]
async fn openai_stream_passes_through_unbuffered_with_usage_and_time_to_first_chunk() {
    setup();
    let api = FakeApi::start();
    let client = client(LlmMiddleware::new().capture(CaptureLevel::RequestResponse));
    let parent = tracing::info_span!("test-stream-openai");
    let request = r#"{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Hi"}]}"#;
    let call = async {
        let mut response = client.post(api.url("/v1/chat/completions")).body(request).send().await.expect("send");
        assert_eq!(response.status(), 200);
        // The server holds the rest of the stream back until it is released: the first event must arrive alone.
        let first = tokio::time::timeout(Duration::from_secs(5), response.chunk())
            .await
            .expect("the first event arrives while the server holds the rest back")
            .expect("chunk")
            .expect("some bytes");
        api.release();
        let mut all = first.to_vec();
        while let Some(chunk) =
            tokio::time::timeout(Duration::from_secs(10), response.chunk()).await.expect("no stall").expect("chunk")
        {
            all.extend_from_slice(&chunk);
        }
        (first.to_vec(), all)
    };
    let (first, all) = tracing::Instrument::instrument(call, parent).await;
    let events = fixture("chat_stream.sse");
    assert!(
        events.starts_with(&first) && first.len() < events.len(),
        "first chunk: {:?}",
        String::from_utf8_lossy(&first)
    );
    assert_eq!(all, events, "the stream is byte-identical");

    let spans = children("stream-openai", 1);
    let span = &spans[0];
    assert_eq!(span.name, "chat gpt-4o-mini");
    assert_eq!(span.attr_str("gen_ai.response.model"), Some("gpt-4o-mini-2024-07-18"));
    assert_eq!(span.attr_str("gen_ai.response.id"), Some("chatcmpl-123"));
    assert_eq!(span.attributes["gen_ai.response.finish_reasons"], serde_json::json!(["stop"]));
    assert_eq!(int(span, "gen_ai.usage.input_tokens"), Some(9));
    assert_eq!(int(span, "gen_ai.usage.output_tokens"), Some(2));
    let ttfc = float(span, "gen_ai.response.time_to_first_chunk").expect("time to first chunk");
    let duration = (span.end_time_unix_nano - span.start_time_unix_nano) as f64 / 1e9;
    assert!(ttfc > 0.0 && ttfc <= duration, "{ttfc} within {duration}");
    let cost = observer::calculate_cost_cached("openai", "gpt-4o-mini-2024-07-18", 9, 2, 0);
    assert_eq!(float(span, "gen_ai.cost"), Some(cost.total_cost));
    // At RequestResponse the streamed deltas make the output message.
    let output: serde_json::Value = serde_json::from_str(span.attr_str("gen_ai.output.messages").unwrap()).unwrap();
    assert_eq!(output[0]["parts"][0]["content"], "Hello!");
    assert_eq!(output[0]["finish_reason"], "stop");
}

#[tokio::test]
async fn anthropic_stream_through_the_http_layer() {
    setup();
    let api = FakeApi::start();
    api.release();
    let parent = tracing::info_span!("test-stream-anthropic");
    let request = r#"{"model":"claude-3-5-sonnet-20241022","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Hi"}]}"#;
    let call = async {
        let service = LlmLayer::new().layer(http_service());
        let req = http::Request::post(api.url("/v1/messages")).body(reqwest::Body::from(request)).unwrap();
        let response = service.oneshot(req).await.expect("call");
        read_http_body(response.into_body()).await
    };
    let body = tracing::Instrument::instrument(call, parent).await;
    assert_eq!(body, fixture("anthropic_stream.sse"));

    let spans = children("stream-anthropic", 1);
    let span = &spans[0];
    assert_eq!(span.attr_str("gen_ai.response.id"), Some("msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY"));
    assert_eq!(span.attributes["gen_ai.response.finish_reasons"], serde_json::json!(["end_turn"]));
    // 25 uncached + 400 cache reads + 100 cache writes; output from `message_delta`.
    assert_eq!(int(span, "gen_ai.usage.input_tokens"), Some(525));
    assert_eq!(int(span, "gen_ai.usage.output_tokens"), Some(15));
    assert_eq!(int(span, "gen_ai.usage.cache_read.input_tokens"), Some(400));
    assert_eq!(int(span, "gen_ai.usage.cache_creation.input_tokens"), Some(100));
    assert!(float(span, "gen_ai.response.time_to_first_chunk").is_some());
    // The 100 cache-creation tokens at the cache-write rate, the 400 cache reads at the cache-read rate.
    let usage = TokenUsage {
        input_tokens: 525,
        output_tokens: 15,
        cached_tokens: 400,
        cache_creation_tokens: 100,
        ..Default::default()
    };
    let cost = observer::calculate_cost_usage("anthropic", "claude-3-5-sonnet-20241022", &usage);
    assert_eq!(float(span, "gen_ai.cost"), Some(cost.total_cost));
}

#[tokio::test]
async fn errors_set_error_status_and_the_caller_still_gets_the_response() {
    setup();
    let api = FakeApi::start();
    let client = client(LlmMiddleware::new());
    let parent = tracing::info_span!("test-errors");
    let calls = async {
        let a = post(&client, &api.url("/err429/v1/chat/completions"), CHAT_REQUEST).await;
        let service = LlmLayer::new().layer(reqwest::Client::new());
        let req = reqwest::Client::new().post(api.url("/err500/v1/messages")).body(ANTHROPIC_REQUEST).build().unwrap();
        let response = service.oneshot(req).await.expect("call");
        let b = (response.status().as_u16(), response.bytes().await.expect("body").to_vec());
        // A stream cut mid-way: the caller sees the body error, the span records it.
        let response = client
            .post(api.url("/broken/v1/chat/completions"))
            .body(r#"{"model":"gpt-4o-mini","stream":true}"#)
            .send()
            .await
            .expect("send");
        let c = response.bytes().await.is_err();
        (a, b, c)
    };
    let ((s429, b429), (s500, b500), broken) = tracing::Instrument::instrument(calls, parent).await;
    assert_eq!((s429, b429), (429, fixture("error_429.json")));
    assert_eq!((s500, b500), (500, fixture("error_500.json")));
    assert!(broken, "the cut stream fails for the caller");

    let spans = children("errors", 3);
    let rate_limited = spans.iter().find(|s| s.name == "chat gpt-4o").expect("429 span");
    assert_eq!(rate_limited.status_code, 2, "{rate_limited:?}");
    assert_eq!(rate_limited.attr_str("error.type"), Some("429"));
    assert!(rate_limited.status_message.contains("Rate limit reached"), "{}", rate_limited.status_message);
    assert_eq!(int(rate_limited, "http.response.status_code"), Some(429));
    let server_error = spans.iter().find(|s| s.name.starts_with("chat claude")).expect("500 span");
    assert_eq!(server_error.status_code, 2);
    assert_eq!(server_error.attr_str("error.type"), Some("500"));
    assert_eq!(server_error.status_message, "Internal server error");
    let broken = spans.iter().find(|s| s.name == "chat gpt-4o-mini").expect("broken stream span");
    assert_eq!(broken.status_code, 2);
    assert_eq!(broken.attr_str("error.type"), Some("stream_error"));
}

#[tokio::test]
async fn other_paths_and_switched_off_providers_pass_through_without_a_span() {
    setup();
    let api = FakeApi::start();
    let parent = tracing::info_span!("test-passthrough");
    let calls = async {
        let client = client(LlmMiddleware::new());
        let models = client.get(api.url("/v1/models")).send().await.expect("send").bytes().await.expect("body");
        let (status, other) = post(&client, &api.url("/v1/threads/t1/messages"), "{}").await;
        let off = crate::client(LlmMiddleware::new().instrument_anthropic(false));
        let (_, message) = post(&off, &api.url("/v1/messages"), ANTHROPIC_REQUEST).await;
        let marker = tracing::info_span!("marker");
        drop(marker.entered());
        (models.to_vec(), status, other, message)
    };
    let (models, status, other, message) = tracing::Instrument::instrument(calls, parent).await;
    assert_eq!(models, br#"{"object":"list","data":[]}"#);
    assert_eq!((status, other), (200, br#"{"ok":true}"#.to_vec()));
    assert_eq!(message, fixture("anthropic_message.json"));
    let spans = children("passthrough", 1);
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, vec!["marker"], "only the marker span, no LLM span");
}

#[tokio::test]
async fn audit_events_follow_the_switch() {
    let setup = setup();
    let api = FakeApi::start();
    let on = client(LlmMiddleware::new().content_summaries(40).capture(CaptureLevel::RequestResponse));
    let off = client(
        LlmMiddleware::new().content_summaries(40).capture(CaptureLevel::RequestResponse).log_llm_interactions(false),
    );
    let request = |marker: &str| {
        format!(r#"{{"model":"gpt-4o","messages":[{{"role":"user","content":"{marker}: what is my balance?"}}]}}"#)
    };
    let (status, _) = post(&on, &api.url("/v1/chat/completions"), &request("audit-on-marker")).await;
    assert_eq!(status, 200);
    let (status, _) = post(&off, &api.url("/v1/chat/completions"), &request("audit-off-marker")).await;
    assert_eq!(status, 200);
    observer::flush(Duration::from_secs(10)).expect("flush");
    let summary =
        |e: &observer::AuditEvent| e.metadata.get("prompt_summary").and_then(|v| v.as_str()).map(str::to_owned);
    let event = setup
        .sink
        .wait_for(WAIT, |e| summary(e).is_some_and(|s| s.starts_with("audit-on-marker")))
        .expect("the LLM interaction audit event");
    let m = &event.metadata;
    assert_eq!(m["model"], "gpt-4o-2024-08-06");
    assert_eq!(m["provider"], "openai");
    assert_eq!(m["input_tokens"], 2019);
    assert_eq!(m["output_tokens"], 10);
    assert_eq!(m["cached_tokens"], 1920);
    assert_eq!(m["total_tokens"], 2029);
    let cost = observer::calculate_cost_cached("openai", "gpt-4o-2024-08-06", 2019, 10, 1920);
    assert_eq!(m["cost_usd"].as_f64(), Some(cost.total_cost));
    assert_eq!(m["prompt_summary"], "audit-on-marker: what is my balance?");
    assert_eq!(m["response_summary"], "Hello! How can I assist you today?");
    assert_eq!(m["prompt_chars"], 36);
    assert_eq!(m["http_status"], 200);
    assert_eq!(event.resource_id, "gpt-4o-2024-08-06");
    assert!(
        !setup.sink.events().iter().any(|e| summary(e).is_some_and(|s| s.contains("audit-off-marker"))),
        "no event when the switch is off"
    );
}

/// Everything a span says, as one text: name, attributes, event names, status message.
fn span_text(span: &ReceivedSpan) -> String {
    format!("{} {:?} {:?} {}", span.name, span.attributes, span.events, span.status_message)
}

/// The request of a capture test: a user message holding `marker`.
fn marked_request(marker: &str) -> String {
    format!(
        r#"{{"model":"gpt-4o","messages":[{{"role":"system","content":"sys-{marker}"}},{{"role":"user","content":"{marker}: my balance?"}}]}}"#
    )
}

const CHAT_REPLY: &str = "Hello! How can I assist you today?";

/// Capture levels on the LLM layer: the default (`Metadata`, from `ObserverConfig::capture_level`) puts no
/// message text on the span or in the audit event even with `content_summaries`; `Request` adds the input
/// messages, `RequestResponse` the output messages; `None` records no span and no audit event.
#[tokio::test]
async fn capture_levels_gate_message_content() {
    let setup = setup();
    let api = FakeApi::start();
    let url = api.url("/v1/chat/completions");
    let cases: [(&str, LlmMiddleware); 4] = [
        ("metadata", LlmMiddleware::new().content_summaries(40)), // the global default
        ("request", LlmMiddleware::new().content_summaries(40).capture(CaptureLevel::Request)),
        ("reqresp", LlmMiddleware::new().content_summaries(40).capture(CaptureLevel::RequestResponse)),
        ("none", LlmMiddleware::new().content_summaries(40).capture(CaptureLevel::None)),
    ];
    for (name, middleware) in cases {
        let client = client(middleware);
        let marker = format!("capture-marker-{name}");
        let parent = tracing::info_span!("capture", otel.name = format!("test-capture-{name}"));
        let (status, body) =
            tracing::Instrument::instrument(post(&client, &url, &marked_request(&marker)), parent).await;
        assert_eq!((status, body), (200, fixture("chat_completion.json")), "{name}: the call is unchanged");
    }
    let metadata = children("capture-metadata", 1);
    let request = children("capture-request", 1);
    let reqresp = children("capture-reqresp", 1);
    assert!(children("capture-none", 0).is_empty(), "no span at None");

    // Metadata: counts and models, never text.
    let span = &metadata[0];
    assert_eq!(int(span, "gen_ai.usage.input_tokens"), Some(2019));
    assert_eq!(span.attr_str("gen_ai.request.model"), Some("gpt-4o"));
    for key in ["gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions"] {
        assert!(!span.attributes.contains_key(key), "{key} at Metadata");
    }
    let all = setup.receiver.spans();
    for s in &all {
        let text = span_text(s);
        assert!(!text.contains("capture-marker-metadata") && !text.contains("capture-marker-none"), "{text}");
    }

    // Request: the input messages (system messages stay in the chat history), no output.
    let span = &request[0];
    let input: serde_json::Value = serde_json::from_str(span.attr_str("gen_ai.input.messages").unwrap()).unwrap();
    assert_eq!(
        input,
        serde_json::json!([
            {"role": "system", "parts": [{"type": "text", "content": "sys-capture-marker-request"}]},
            {"role": "user", "parts": [{"type": "text", "content": "capture-marker-request: my balance?"}]}
        ])
    );
    assert!(!span.attributes.contains_key("gen_ai.output.messages"));
    assert!(!span_text(span).contains(CHAT_REPLY), "no response text at Request");

    // RequestResponse: both.
    let span = &reqresp[0];
    assert!(span.attr_str("gen_ai.input.messages").unwrap().contains("capture-marker-reqresp: my balance?"));
    let output: serde_json::Value = serde_json::from_str(span.attr_str("gen_ai.output.messages").unwrap()).unwrap();
    assert_eq!(
        output,
        serde_json::json!([{"role": "assistant", "parts": [{"type": "text", "content": CHAT_REPLY}], "finish_reason": "stop"}])
    );

    // The audit events: summaries only as far as the level allows; nothing at None.
    observer::flush(Duration::from_secs(10)).expect("flush");
    let events = setup.sink.events();
    let find = |marker: &str| {
        events
            .iter()
            .find(|e| e.metadata.get("prompt_chars").is_some() && serde_json::to_string(e).unwrap().contains(marker))
    };
    let text_of = |name: &str| -> Vec<String> {
        events
            .iter()
            .map(|e| serde_json::to_string(e).unwrap())
            .filter(|t| t.contains(&format!("capture-marker-{name}")))
            .collect()
    };
    assert!(text_of("metadata").is_empty(), "no prompt text in any audit event at Metadata");
    assert!(text_of("none").is_empty());
    let request_event = find("capture-marker-request").expect("the Request event");
    assert!(request_event.metadata.get("response_summary").is_none(), "no response text at Request");
    let reqresp_event = find("capture-marker-reqresp").expect("the RequestResponse event");
    assert_eq!(reqresp_event.metadata["response_summary"], CHAT_REPLY);
}

/// Captured content leaves redacted: identifiers and secrets in the prompt never reach the span (nor the audit
/// event's summary), while the text around them does.
#[tokio::test]
async fn captured_content_is_redacted() {
    let setup = setup();
    let api = FakeApi::start();
    let client = client(LlmMiddleware::new().content_summaries(400).capture(CaptureLevel::RequestResponse));
    let leaks = [
        "123-45-6789",
        "617-555-0123",
        "jane.roe@example.org",
        "00442211",
        "sk-proj-abcDEF1234567890abcdEFGH",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ];
    let prompt = "redact-llm-marker: SSN 123-45-6789, call 617-555-0123, mail jane.roe@example.org, MRN: 00442211, \
        key sk-proj-abcDEF1234567890abcdEFGH, token eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
    let body = serde_json::json!({"model": "gpt-4o", "messages": [{"role": "system", "content": prompt}, {"role": "user", "content": prompt}]})
        .to_string();
    let parent = tracing::info_span!("test-redact-llm");
    let (status, _) =
        tracing::Instrument::instrument(post(&client, &api.url("/v1/chat/completions"), &body), parent).await;
    assert_eq!(status, 200);
    assert_eq!(api.received_body("/v1/chat/completions"), body.as_bytes(), "the provider gets the prompt unchanged");
    let span = &children("redact-llm", 1)[0];
    let input = span.attr_str("gen_ai.input.messages").expect("content at RequestResponse");
    assert!(input.contains("redact-llm-marker"), "{input}");
    for leak in leaks {
        assert!(!span_text(span).contains(leak), "the span leaks {leak}: {}", span_text(span));
    }
    observer::flush(Duration::from_secs(10)).expect("flush");
    let event = setup
        .sink
        .wait_for(WAIT, |e| {
            e.metadata.get("prompt_summary").is_some_and(|s| s.to_string().contains("redact-llm-marker"))
        })
        .expect("the audit event");
    let text = serde_json::to_string(&event).unwrap();
    for leak in leaks {
        assert!(!text.contains(leak), "the audit event leaks {leak}: {text}");
    }
}

/// The manual API: messages given on the call are recorded only at the levels that allow them.
#[test]
fn manual_record_llm_call_content_follows_the_capture_level() {
    setup();
    let call = |level: Option<CaptureLevel>, name: &str| {
        let _parent = tracing::info_span!("manual", otel.name = format!("test-manual-capture-{name}")).entered();
        record_llm_call(&LlmCall {
            provider: "openai".into(),
            model: "gpt-4o".into(),
            usage: TokenUsage::new(10, 5),
            log_interaction: Some(false),
            capture: level,
            system_instructions: Some(serde_json::json!([{"type": "text", "content": format!("sys-{name}")}])),
            input_messages: Some(
                serde_json::json!([{"role": "user", "parts": [{"type": "text", "content": format!("in-{name}")}]}]),
            ),
            output_messages: Some(
                serde_json::json!([{"role": "assistant", "parts": [{"type": "text", "content": format!("out-{name}")}]}]),
            ),
            ..Default::default()
        })
    };
    let cost = call(None, "default");
    assert!(cost.price_found);
    assert_eq!(call(Some(CaptureLevel::None), "none"), cost, "the cost is returned at None too");
    call(Some(CaptureLevel::Request), "request");
    call(Some(CaptureLevel::RequestResponse), "reqresp");
    let default = &children("manual-capture-default", 1)[0];
    assert!(!span_text(default).contains("-default"), "{}", span_text(default));
    assert!(children("manual-capture-none", 0).is_empty());
    let request = &children("manual-capture-request", 1)[0];
    assert!(request.attr_str("gen_ai.input.messages").unwrap().contains("in-request"));
    assert!(request.attr_str("gen_ai.system_instructions").unwrap().contains("sys-request"));
    assert!(!request.attributes.contains_key("gen_ai.output.messages"));
    let reqresp = &children("manual-capture-reqresp", 1)[0];
    assert!(reqresp.attr_str("gen_ai.output.messages").unwrap().contains("out-reqresp"));
}

#[test]
fn manual_record_llm_call() {
    setup();
    let usage = TokenUsage { input_tokens: 2000, output_tokens: 500, cached_tokens: 1500, ..Default::default() };
    let cost = {
        let _parent = tracing::info_span!("test-manual").entered();
        record_llm_call(&LlmCall {
            provider: "anthropic".into(),
            model: "claude-3-5-sonnet-20241022".into(),
            usage,
            finish_reasons: vec!["end_turn".into()],
            duration: Duration::from_millis(1500),
            log_interaction: Some(false),
            ..Default::default()
        })
    };
    let expected = observer::calculate_cost_cached("anthropic", "claude-3-5-sonnet-20241022", 2000, 500, 1500);
    assert_eq!(cost, expected);
    let spans = children("manual", 1);
    let span = &spans[0];
    assert_eq!(span.name, "chat claude-3-5-sonnet-20241022");
    assert_eq!(int(span, "gen_ai.usage.input_tokens"), Some(2000));
    assert_eq!(int(span, "gen_ai.usage.cache_read.input_tokens"), Some(1500));
    assert_eq!(float(span, "gen_ai.cost"), Some(expected.total_cost));
    assert_eq!(float(span, "gen_ai.client.operation.duration"), Some(1.5));
}

/// The guide's `instrument_openai` with a real client library: `async-openai` sends its requests through
/// `LlmLayer` (its `with_http_service` hook), parses the answer, and the call is traced with tokens and cost.
#[tokio::test]
async fn async_openai_client_through_the_layer() {
    use async_openai::config::OpenAIConfig;
    use async_openai::error::OpenAIError;
    use async_openai::middleware::HttpRequestFactory;
    use async_openai::types::chat::{ChatCompletionRequestUserMessage, CreateChatCompletionRequestArgs};

    setup();
    let api = FakeApi::start();
    let traced = LlmLayer::new().layer(reqwest::Client::new());
    let service = tower::service_fn(move |factory: HttpRequestFactory| {
        let traced = traced.clone();
        async move {
            let request = factory.build().await?;
            traced.oneshot(request).await.map_err(OpenAIError::Reqwest)
        }
    });
    let config = OpenAIConfig::new().with_api_base(api.url("/v1")).with_api_key("test-key");
    let client = async_openai::Client::with_config(config).with_http_service(service);
    let request = CreateChatCompletionRequestArgs::default()
        .model("gpt-4o")
        .temperature(0.7)
        .messages([ChatCompletionRequestUserMessage::from("Hello!").into()])
        .build()
        .expect("request");
    let parent = tracing::info_span!("test-async-openai");
    let response = tracing::Instrument::instrument(client.chat().create(request), parent).await.expect("response");
    assert_eq!(response.model, "gpt-4o-2024-08-06", "async-openai parsed the body that passed through");
    assert_eq!(response.usage.as_ref().map(|u| u.prompt_tokens), Some(2019));
    let sent: serde_json::Value = serde_json::from_slice(&api.received_body("/v1/chat/completions")).unwrap();
    assert_eq!(sent["model"], "gpt-4o");

    let spans = children("async-openai", 1);
    let span = &spans[0];
    assert_eq!(span.name, "chat gpt-4o");
    assert_eq!(float(span, "gen_ai.request.temperature"), Some(0.7));
    assert_eq!(int(span, "gen_ai.usage.input_tokens"), Some(2019));
    assert_eq!(int(span, "gen_ai.usage.cache_read.input_tokens"), Some(1920));
    let expected = observer::calculate_cost_cached("openai", "gpt-4o-2024-08-06", 2019, 10, 1920);
    assert_eq!(float(span, "gen_ai.cost"), Some(expected.total_cost));
}

/// Runs only in a child process (started by `default_init_keeps_installed_middleware_tracing`): a process whose
/// only `init` is `ObserverConfig::default()` plus the audit switch.
#[test]
#[ignore = "run by default_init_keeps_installed_middleware_tracing"]
fn child_default_init_with_middleware() {
    let Ok(file) = std::env::var("OBSERVER_LLM_CHILD_FILE") else { return };
    let _guard = observer::init(ObserverConfig {
        audit_sink: AuditSink::file(&file),
        log_llm_interactions: true,
        ..Default::default()
    })
    .expect("init");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let api = FakeApi::start();
        let client = client(LlmMiddleware::new());
        let body = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"default-init-marker"}]}"#;
        let (status, _) = post(&client, &api.url("/v1/chat/completions"), body).await;
        assert_eq!(status, 200);
        let service = LlmLayer::new().layer(http_service());
        let request = http::Request::post(api.url("/v1/messages"))
            .header("content-type", "application/json")
            .body(reqwest::Body::from(ANTHROPIC_REQUEST))
            .expect("request");
        let response = service.oneshot(request).await.expect("anthropic call");
        assert_eq!(response.status(), 200);
        read_http_body(response.into_body()).await;
    });
}

/// Installed middleware traces after a default `init` (the instrument switches default to on): both providers'
/// calls are recorded as `LLM_INTERACTION` audit events.
#[test]
fn default_init_keeps_installed_middleware_tracing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("audit.jsonl");
    let output = common::child_test("child_default_init_with_middleware")
        .env("OBSERVER_LLM_CHILD_FILE", &file)
        .env_remove("OBSERVER_INSTRUMENT_OPENAI")
        .env_remove("OBSERVER_INSTRUMENT_ANTHROPIC")
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success() && stdout.contains("1 passed"), "child failed: {stdout}");
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    let providers: Vec<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["audit_type"] == "AI_INTERACTION")
        .filter_map(|e| e["metadata"]["provider"].as_str().map(str::to_owned))
        .collect();
    assert!(providers.iter().any(|p| p == "openai"), "OpenAI call recorded after a default init: {providers:?}");
    assert!(providers.iter().any(|p| p == "anthropic"), "Anthropic call recorded after a default init: {providers:?}");
}

#[test]
fn cache_writes_are_priced_at_the_cache_write_rate() {
    setup();
    // Anthropic: 500 uncached input tokens, 1,000 written to the cache, 500 read from it.
    let usage = TokenUsage {
        input_tokens: 2000,
        output_tokens: 500,
        cached_tokens: 500,
        cache_creation_tokens: 1000,
        ..Default::default()
    };
    let cost = {
        let _parent = tracing::info_span!("test-cache-write").entered();
        record_llm_call(&LlmCall {
            provider: "anthropic".into(),
            model: "claude-3-5-sonnet-20241022".into(),
            usage,
            log_interaction: Some(false),
            ..Default::default()
        })
    };
    // $3/M uncached, $3.75/M cache writes, $0.30/M cache reads (genai-prices' claude-3-5-sonnet).
    let expected_input = (500.0 * 3.0 + 1000.0 * 3.75 + 500.0 * 0.30) / 1e6;
    assert!((cost.input_cost - expected_input).abs() < 1e-12, "{cost:?}");
    let spans = children("cache-write", 1);
    assert_eq!(float(&spans[0], "gen_ai.cost"), Some(cost.total_cost));
}

#[tokio::test]
async fn transport_errors_never_record_query_strings_or_credentials() {
    let setup = setup();
    // A port nobody listens on: the connection is refused.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://alice:hunter2pw@127.0.0.1:{port}/openai/deployments/x/chat/completions?api-key=SECRETKEY123&api-version=1");
    let client = client(LlmMiddleware::new());
    let parent = tracing::info_span!("test-transport-secret");
    let result = tracing::Instrument::instrument(client.post(&url).body(CHAT_REQUEST).send(), parent).await;
    assert!(result.is_err(), "nobody listens on {port}");
    let spans = children("transport-secret", 1);
    let span = &spans[0];
    assert_eq!(span.attr_str("error.type"), Some("transport"));
    let everything = format!("{} {:?}", span.status_message, span.attributes);
    for secret in ["SECRETKEY123", "hunter2pw", "api-version", "alice"] {
        assert!(!everything.contains(secret), "{secret} recorded: {everything}");
    }
    observer::flush(Duration::from_secs(10)).expect("flush");
    for event in setup.sink.events() {
        let json = serde_json::to_string(&event).unwrap();
        assert!(!json.contains("SECRETKEY123") && !json.contains("hunter2pw"), "{json}");
    }
}

#[allow(dead_code)]
#[path = "../examples/rag_agent.rs"]
mod rag_agent_example;

/// Runs only in a child process: the `rag_agent` example's `main`, as `cargo run --example` would.
#[test]
#[ignore = "run by the_rag_agent_example_exports_its_spans_when_an_endpoint_is_set"]
fn child_rag_agent_example() {
    if std::env::var_os("OBSERVER_LLM_CHILD_EXAMPLE").is_none() {
        return;
    }
    rag_agent_example::main().expect("the example runs");
}

/// `examples/rag_agent.rs` says its spans go to an OTLP collector when `OTEL_EXPORTER_OTLP_ENDPOINT` is set: run it
/// that way against the fake API and a receiver, and decode what arrives.
#[test]
fn the_rag_agent_example_exports_its_spans_when_an_endpoint_is_set() {
    let api = FakeApi::start();
    let receiver = OtlpReceiver::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let output = common::child_test("child_rag_agent_example")
        .env("OBSERVER_LLM_CHILD_EXAMPLE", "1")
        .env("OPENAI_BASE_URL", api.url("/v1"))
        .env("OPENAI_API_KEY", "test-key")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_SDK_DISABLED")
        .env_remove("OBSERVER_INSTRUMENT_OPENAI")
        .current_dir(dir.path())
        .output()
        .expect("run the example");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success() && stdout.contains("1 passed"), "the example failed: {stdout}");
    let has = |spans: &[ReceivedSpan], name: &str| spans.iter().any(|s| s.name == name);
    let spans = receiver
        .wait_for(Duration::from_secs(5), |s| has(s, "rag-query") && s.iter().any(|s| s.name.starts_with("chat ")))
        .unwrap_or_else(|| {
            let names: Vec<String> = receiver.spans().iter().map(|s| s.name.clone()).collect();
            panic!("the example's spans are exported; received {names:?}")
        });
    let rag = spans.iter().find(|s| s.name == "rag-query").expect("rag-query");
    assert_eq!(rag.resource_str("service.name"), Some("rag-agent"));
    let chat = spans.iter().find(|s| s.name.starts_with("chat ")).expect("the LLM call's span");
    assert_eq!(chat.trace_id, rag.trace_id, "the LLM call is part of the RAG query's trace");
    assert!(int(chat, "gen_ai.usage.input_tokens").is_some_and(|n| n > 0), "tokens recorded: {:?}", chat.attributes);
}
