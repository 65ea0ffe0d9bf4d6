//! Added latency of the LLM HTTP middleware: the same chat-completion request (and the same streamed one) to a
//! local fake OpenAI server over a keep-alive connection, through a `reqwest-middleware` client without and with
//! [`LlmMiddleware`], with a `tracing_subscriber::Registry` installed (spans are real, not exported). Prints the
//! per-call added latency and the ratio after the criterion groups. `with_llm_middleware` runs at the default
//! capture level (`Metadata`), `with_llm_middleware_request_response` captures (and redacts) the messages.
//! Then the same with the GenAI metrics on (a meter provider installed, exporting only at shutdown) against
//! the middleware with metrics off, in the same run.
//!
//! `cargo bench --bench llm_http --features llm-http`

use std::hint::black_box;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use observer::llm::LlmMiddleware;
use reqwest_middleware::ClientWithMiddleware;
use tracing_subscriber::layer::SubscriberExt;

const RESPONSE: &str = r#"{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion","created":1741569952,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I assist you today?","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default"}"#;
const STREAM: &str = concat!(
    "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"},\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
    "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11}}\n\n",
    "data: [DONE]\n\n"
);
const REQUEST: &str = r#"{"model":"gpt-4o","temperature":0.7,"max_tokens":256,"messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Hello!"}]}"#;
const STREAM_REQUEST: &str = r#"{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Hello!"}]}"#;

/// A keep-alive HTTP/1.1 fake OpenAI server on 127.0.0.1, a thread per connection.
fn start_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = serve(stream);
            });
        }
    });
    port
}

fn serve(stream: TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        let (ct, payload) = if body.windows(13).any(|w| w == b"\"stream\":true") {
            ("text/event-stream", STREAM)
        } else {
            ("application/json", RESPONSE)
        };
        write!(out, "HTTP/1.1 200 OK\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n{payload}", payload.len())?;
        out.flush()?;
    }
}

struct Fixture {
    rt: tokio::runtime::Runtime,
    url: String,
    port: u16,
    plain: ClientWithMiddleware,
    traced: ClientWithMiddleware,
    /// The middleware at `CaptureLevel::RequestResponse` (messages parsed, redacted and recorded).
    content: ClientWithMiddleware,
}

fn fixture() -> Fixture {
    // Spans are created and recorded (a Registry is installed) but not exported.
    let _ = tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(tracing_subscriber::filter::LevelFilter::INFO),
    );
    observer::cost::warm_up();
    let port = start_server();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let client = || reqwest::Client::builder().pool_max_idle_per_host(1).build().expect("client");
    Fixture {
        rt,
        url: format!("http://127.0.0.1:{port}/v1/chat/completions"),
        port,
        plain: reqwest_middleware::ClientBuilder::new(client()).build(),
        traced: reqwest_middleware::ClientBuilder::new(client()).with(LlmMiddleware::new()).build(),
        content: reqwest_middleware::ClientBuilder::new(client())
            .with(LlmMiddleware::new().capture(observer::CaptureLevel::RequestResponse))
            .build(),
    }
}

/// Turns the GenAI metrics on: a meter provider exporting to the fake server (which answers any POST with 200), only
/// at shutdown. The span exporter `otel_layer` also installs is never attached to the subscriber: no span goes out.
fn metrics_on(port: u16) {
    let config = observer::trace::TracingConfig {
        otlp_endpoint: Some(format!("http://127.0.0.1:{port}")),
        metric_export_interval: Duration::from_secs(3600),
        ..Default::default()
    };
    drop(observer::trace::otel_layer::<tracing_subscriber::Registry>(&config).expect("metrics on"));
}

/// Turns them off again (the last export goes to the fake server).
fn metrics_off() {
    let _ = observer::trace::shutdown_tracing_with_timeout(Duration::from_secs(5));
}

async fn call(client: &ClientWithMiddleware, url: &str, body: &'static str) -> usize {
    let response = client.post(url).header("content-type", "application/json").body(body).send().await.expect("send");
    response.bytes().await.expect("body").len()
}

fn bench(c: &mut Criterion) {
    let f = fixture();
    for (name, body) in [("chat", REQUEST), ("chat_stream", STREAM_REQUEST)] {
        let mut group = c.benchmark_group(name);
        group.measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1)).sample_size(50);
        group.bench_function("without_middleware", |b| b.iter(|| f.rt.block_on(call(&f.plain, &f.url, body))));
        group.bench_function("with_llm_middleware", |b| b.iter(|| f.rt.block_on(call(&f.traced, &f.url, body))));
        group.bench_function("with_llm_middleware_request_response", |b| {
            b.iter(|| f.rt.block_on(call(&f.content, &f.url, body)))
        });
        metrics_on(f.port);
        group.bench_function("with_llm_middleware_and_metrics", |b| {
            b.iter(|| f.rt.block_on(call(&f.traced, &f.url, body)))
        });
        metrics_off();
        group.finish();
    }
    // The ratio, from interleaved rounds so that drift affects both alike.
    for (name, body) in [("chat", REQUEST), ("chat_stream", STREAM_REQUEST)] {
        let (mut plain, mut traced) = (Duration::ZERO, Duration::ZERO);
        let rounds = 20;
        let per_round = 200;
        for _ in 0..rounds {
            let start = Instant::now();
            for _ in 0..per_round {
                black_box(f.rt.block_on(call(&f.plain, &f.url, body)));
            }
            plain += start.elapsed();
            let start = Instant::now();
            for _ in 0..per_round {
                black_box(f.rt.block_on(call(&f.traced, &f.url, body)));
            }
            traced += start.elapsed();
        }
        let n = f64::from(rounds * per_round);
        let (p, t) = (plain.as_secs_f64() / n * 1e6, traced.as_secs_f64() / n * 1e6);
        println!(
            "{name}: without {p:.1} µs/call, with LlmMiddleware {t:.1} µs/call: +{:.1} µs, ratio {:.3}",
            t - p,
            t / p
        );
    }

    // The recording alone: `record_llm_call` (span, cost, metrics; no network) with metrics off and on.
    let manual = observer::llm::LlmCall {
        provider: "openai".into(),
        model: "gpt-4o".into(),
        usage: observer::llm::TokenUsage::new(1000, 500),
        duration: Duration::from_millis(850),
        server_address: Some("api.openai.com".into()),
        server_port: Some(443),
        ..Default::default()
    };
    {
        let mut group = c.benchmark_group("record_llm_call");
        group.bench_function("metrics_off", |b| b.iter(|| black_box(observer::llm::record_llm_call(&manual))));
        metrics_on(f.port);
        group.bench_function("metrics_on", |b| b.iter(|| black_box(observer::llm::record_llm_call(&manual))));
        metrics_off();
        group.finish();
    }

    // Metrics on vs off, both through the middleware, in interleaved rounds.
    for (name, body) in [("chat", REQUEST), ("chat_stream", STREAM_REQUEST)] {
        let (mut off, mut on) = (Duration::ZERO, Duration::ZERO);
        let rounds = 10;
        let per_round = 200;
        for _ in 0..rounds {
            let start = Instant::now();
            for _ in 0..per_round {
                black_box(f.rt.block_on(call(&f.traced, &f.url, body)));
            }
            off += start.elapsed();
            metrics_on(f.port);
            let start = Instant::now();
            for _ in 0..per_round {
                black_box(f.rt.block_on(call(&f.traced, &f.url, body)));
            }
            on += start.elapsed();
            metrics_off();
        }
        let n = f64::from(rounds * per_round);
        let (a, b) = (off.as_secs_f64() / n * 1e6, on.as_secs_f64() / n * 1e6);
        println!(
            "{name}: LlmMiddleware, metrics off {a:.1} µs/call, metrics on {b:.1} µs/call: +{:.1} µs, ratio {:.3}",
            b - a,
            b / a
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
