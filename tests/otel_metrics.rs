//! The GenAI client metrics and the SDK's health metrics on a real OTLP/HTTP receiver decoding
//! `ExportMetricsServiceRequest`: a scripted sequence of LLM calls (the LLM layer against a local fake API, streamed
//! and not, a failure; `record_llm_call`; the `AgentTracer`'s `llm_call_end`) arrives with the conventions' names,
//! units, bucket boundaries, attributes and values; the health metrics equal `observer::stats()`; spans follow the
//! sampler (here `always_off`) while audit events are still written.
//!
//! One process, one `init` (memory sink) and one `configure_tracing` for every test. Each test's calls use models of
//! their own, so that its series are its own.
#![cfg(feature = "llm-http")]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use common::otlp::{OtlpReceiver, ReceivedPoint};
use observer::export::MemorySink;
use observer::llm::{record_llm_call, LlmCall, LlmMiddleware, TokenUsage};
use observer::trace::{configure_tracing, AgentTrace, AgentTracer, MemoryTraceSink, TraceSampler, TracingConfig};
use observer::{audit, AuditSink, ObserverConfig, ObserverGuard, ResourceType};

const TOKEN_BUCKETS: [f64; 14] = [
    1.0,
    4.0,
    16.0,
    64.0,
    256.0,
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
    67_108_864.0,
];
const SECONDS_BUCKETS: [f64; 14] =
    [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];
/// How long the fake API waits between the first streamed event and the rest.
const STREAM_PAUSE: Duration = Duration::from_millis(150);

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
        for var in [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            "OTEL_METRICS_EXPORTER",
            "OTEL_TRACES_SAMPLER",
        ] {
            assert!(std::env::var_os(var).is_none(), "unset {var} to run these tests");
        }
        let receiver = OtlpReceiver::start();
        let sink = MemorySink::new();
        let guard = observer::init(ObserverConfig {
            service_name: "metrics-test".into(),
            audit_sink: AuditSink::Memory(sink.clone()),
            log_llm_interactions: false,
            ..Default::default()
        })
        .expect("init");
        configure_tracing(TracingConfig {
            service_name: "metrics-test".into(),
            otlp_endpoint: Some(receiver.endpoint()),
            // Exported on `observer::flush` only (the periodic export would not come during the tests).
            metric_export_interval: Duration::from_secs(600),
            sampler: TraceSampler::AlwaysOff,
            ..Default::default()
        })
        .expect("configure_tracing");
        Setup { receiver, sink, _guard: guard }
    })
}

/// Exports the metrics now and returns the data points of the newest metrics request.
fn export() -> Vec<ReceivedPoint> {
    // Flushes are serialised: a test's flush must not be answered by another test's export.
    static FLUSH: Mutex<()> = Mutex::new(());
    let _one = FLUSH.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let receiver = &setup().receiver;
    let before = receiver.metric_requests().len();
    observer::flush(Duration::from_secs(10)).expect("flush exports the metrics");
    let requests = receiver.metric_requests();
    assert!(requests.len() > before, "a metrics request per flush");
    requests.last().cloned().unwrap_or_default()
}

/// The points of metric `name` whose attributes include every pair of `attrs`.
fn points<'a>(all: &'a [ReceivedPoint], name: &str, attrs: &[(&str, &str)]) -> Vec<&'a ReceivedPoint> {
    all.iter().filter(|p| p.name == name && attrs.iter().all(|(k, v)| p.attr_str(k) == Some(*v))).collect()
}

/// The one point of `name` with `attrs`.
fn point<'a>(all: &'a [ReceivedPoint], name: &str, attrs: &[(&str, &str)]) -> &'a ReceivedPoint {
    let found = points(all, name, attrs);
    assert_eq!(found.len(), 1, "one {name} point with {attrs:?}: {found:#?}");
    found[0]
}

// ----- a fake OpenAI/Anthropic API -----------------------------------------------------------------------------------

/// Serves on 127.0.0.1: `…/err500/…` → 500; streams (`"stream":true`) as SSE with a pause after the first event;
/// else the recorded JSON. Returns the port.
fn fake_api() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
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
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
    let mut len = 0;
    for _ in 0..100 {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; len.min(1 << 20)];
    reader.read_exact(&mut body)?;
    let streamed = String::from_utf8_lossy(&body).replace(' ', "").contains("\"stream\":true");
    let mut out = stream;
    let plain = |out: &mut TcpStream, status: &str, body: &[u8]| -> std::io::Result<()> {
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        out.write_all(head.as_bytes())?;
        out.write_all(body)?;
        out.flush()
    };
    if path.contains("/err500/") {
        return plain(&mut out, "500 Internal Server Error", &fixture("error_500.json"));
    }
    let anthropic = path.ends_with("/v1/messages");
    if streamed {
        let events = fixture(if anthropic { "anthropic_stream.sse" } else { "chat_stream.sse" });
        let first_end = events.windows(2).position(|w| w == b"\n\n").map_or(events.len(), |p| p + 2);
        out.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")?;
        out.write_all(&events[..first_end])?;
        out.flush()?;
        std::thread::sleep(STREAM_PAUSE);
        out.write_all(&events[first_end..])?;
        return out.flush();
    }
    plain(&mut out, "200 OK", &fixture(if anthropic { "anthropic_message.json" } else { "chat_completion.json" }))
}

async fn post(url: &str, body: &str) -> u16 {
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new()).with(LlmMiddleware::new()).build();
    let response =
        client.post(url).header("content-type", "application/json").body(body.to_owned()).send().await.expect("send");
    let status = response.status().as_u16();
    response.bytes().await.expect("body");
    status
}

// ----- tests ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn llm_layer_calls_are_measured_with_the_conventions_names_units_attributes_and_values() {
    setup();
    let port = fake_api();
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");
    let port_s = i64::from(port);
    // 1. A chat completion (not streamed): tokens, duration, cost; no time to first chunk.
    assert_eq!(post(&url("/v1/chat/completions"), r#"{"model":"gpt-4o","messages":[]}"#).await, 200);
    // 2. A streamed chat completion (usage in the last chunk), twice.
    let stream_req = r#"{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[]}"#;
    for _ in 0..2 {
        assert_eq!(post(&url("/v1/chat/completions"), stream_req).await, 200);
    }
    // 3. A streamed Anthropic message (cache reads and writes count as input).
    let anthropic = r#"{"model":"claude-3-5-sonnet-latest","stream":true,"max_tokens":64,"messages":[]}"#;
    assert_eq!(post(&url("/v1/messages"), anthropic).await, 200);
    // 4. A failure (HTTP 500).
    assert_eq!(post(&url("/err500/v1/chat/completions"), r#"{"model":"gpt-4.1","messages":[]}"#).await, 500);

    let all = export();
    let host = [("server.address", "127.0.0.1")];

    // Names, units, kinds and bucket boundaries.
    let ours =
        |p: &&ReceivedPoint| p.name.starts_with("gen_ai.client.") && p.attr_str("server.address") == Some("127.0.0.1");
    assert!(all.iter().filter(ours).count() >= 14, "{all:#?}");
    for p in all.iter().filter(ours) {
        let (kind, unit, bounds): (&str, &str, &[f64]) = match p.name.as_str() {
            "gen_ai.client.token.usage" => ("histogram", "{token}", &TOKEN_BUCKETS),
            "gen_ai.client.operation.duration" => ("histogram", "s", &SECONDS_BUCKETS),
            "gen_ai.client.operation.time_to_first_chunk" => ("histogram", "s", &SECONDS_BUCKETS),
            "gen_ai.client.cost" => ("sum", "USD", &[]),
            other => panic!("unexpected metric {other}"),
        };
        assert_eq!((p.kind, p.unit.as_str(), p.bounds.as_slice()), (kind, unit, bounds), "{p:#?}");
        assert_eq!(p.scope, "observer");
        assert_eq!(p.resource.get("service.name").and_then(|v| v.as_str()), Some("metrics-test"));
        assert_eq!(p.attributes.get("server.port").and_then(serde_json::Value::as_i64), Some(port_s), "{p:#?}");
        if p.kind == "sum" {
            assert!(p.monotonic, "the cost is a counter");
        }
    }

    // 1. Non-streamed chat: attributes and values.
    let chat = [
        ("gen_ai.operation.name", "chat"),
        ("gen_ai.provider.name", "openai"),
        ("gen_ai.request.model", "gpt-4o"),
        ("gen_ai.response.model", "gpt-4o-2024-08-06"),
        host[0],
    ];
    let input =
        point(&all, "gen_ai.client.token.usage", &[chat.as_slice(), &[("gen_ai.token.type", "input")]].concat());
    assert_eq!((input.count, input.value), (1, 2019.0));
    let output =
        point(&all, "gen_ai.client.token.usage", &[chat.as_slice(), &[("gen_ai.token.type", "output")]].concat());
    assert_eq!((output.count, output.value), (1, 10.0));
    // 10 tokens fall in the bucket (4, 16]: index 2.
    assert_eq!(output.bucket_counts.iter().position(|c| *c == 1), Some(2));
    let duration = point(&all, "gen_ai.client.operation.duration", &chat);
    assert_eq!(duration.count, 1);
    assert!(duration.value > 0.0 && duration.value < 10.0, "{duration:#?}");
    assert!(!duration.attributes.contains_key("error.type"));
    assert!(!duration.attributes.contains_key("gen_ai.token.type"));
    let cost = point(&all, "gen_ai.client.cost", &chat);
    let expected = observer::calculate_cost_cached("openai", "gpt-4o-2024-08-06", 2019, 10, 1920);
    assert!(expected.price_found);
    assert!((cost.value - expected.total_cost).abs() < 1e-12, "{} vs {}", cost.value, expected.total_cost);
    assert!(points(&all, "gen_ai.client.operation.time_to_first_chunk", &chat).is_empty(), "not streamed");

    // 2. Streamed chat, twice: histograms count both; time to first chunk below the pause, duration above it.
    let stream = [("gen_ai.request.model", "gpt-4o-mini"), ("gen_ai.response.model", "gpt-4o-mini-2024-07-18")];
    let input =
        point(&all, "gen_ai.client.token.usage", &[stream.as_slice(), &[("gen_ai.token.type", "input")]].concat());
    assert_eq!((input.count, input.value), (2, 18.0));
    let output =
        point(&all, "gen_ai.client.token.usage", &[stream.as_slice(), &[("gen_ai.token.type", "output")]].concat());
    assert_eq!((output.count, output.value), (2, 4.0));
    let ttfc = point(&all, "gen_ai.client.operation.time_to_first_chunk", &stream);
    let duration = point(&all, "gen_ai.client.operation.duration", &stream);
    assert_eq!((ttfc.count, duration.count), (2, 2));
    assert!(ttfc.value < duration.value, "first chunk before the end: {ttfc:#?} {duration:#?}");
    assert!(duration.value >= 2.0 * STREAM_PAUSE.as_secs_f64(), "each stream paused: {duration:#?}");
    assert!(!ttfc.attributes.contains_key("error.type") && !ttfc.attributes.contains_key("gen_ai.token.type"));
    let cost = point(&all, "gen_ai.client.cost", &stream);
    let one = observer::calculate_cost_cached("openai", "gpt-4o-mini-2024-07-18", 9, 2, 0).total_cost;
    assert!((cost.value - 2.0 * one).abs() < 1e-12, "{} vs 2 × {one}", cost.value);

    // 3. Anthropic stream: input = 25 + 100 cache writes + 400 cache reads.
    let claude = [("gen_ai.provider.name", "anthropic"), ("gen_ai.request.model", "claude-3-5-sonnet-latest")];
    let claude_in =
        point(&all, "gen_ai.client.token.usage", &[claude.as_slice(), &[("gen_ai.token.type", "input")]].concat());
    assert_eq!(claude_in.value, 525.0);
    assert_eq!(claude_in.attr_str("gen_ai.response.model"), Some("claude-3-5-sonnet-20241022"));
    let claude_out =
        point(&all, "gen_ai.client.token.usage", &[claude.as_slice(), &[("gen_ai.token.type", "output")]].concat());
    assert_eq!(claude_out.value, 15.0);
    assert_eq!(point(&all, "gen_ai.client.operation.time_to_first_chunk", &claude).count, 1);

    // 4. The failure: a duration with `error.type`, no token usage and no cost.
    let failed = [("gen_ai.request.model", "gpt-4.1")];
    let duration = point(&all, "gen_ai.client.operation.duration", &failed);
    assert_eq!((duration.attr_str("error.type"), duration.count), (Some("500"), 1));
    assert!(points(&all, "gen_ai.client.token.usage", &failed).is_empty(), "no usage reported for the failure");
    assert!(points(&all, "gen_ai.client.cost", &failed).is_empty());
}

#[test]
fn record_llm_call_and_the_agent_tracer_are_measured_too() {
    setup();
    // record_llm_call: a success with its real duration, and a failure without usage.
    let cost = record_llm_call(&LlmCall {
        provider: "openai".into(),
        model: "gpt-4o-manual".into(),
        response_model: Some("gpt-4o-2024-08-06".into()),
        usage: TokenUsage { input_tokens: 1000, output_tokens: 500, ..Default::default() },
        duration: Duration::from_millis(850),
        time_to_first_chunk: Some(Duration::from_millis(120)),
        server_address: Some("api.openai.com".into()),
        server_port: Some(443),
        ..Default::default()
    });
    assert!(cost.price_found);
    record_llm_call(&LlmCall {
        provider: "openai".into(),
        model: "gpt-4o-manual-failed".into(),
        duration: Duration::from_millis(40),
        error: Some("timeout".into()),
        ..Default::default()
    });
    // The agent tracer's LLM call: model from llm_call_start, tokens and cost from the outputs.
    let tracer = AgentTracer::new(AgentTrace {
        trace_name: "metrics-flow".into(),
        flow_id: "flow-metrics".into(),
        ..Default::default()
    })
    .expect("tracer")
    .sink(MemoryTraceSink::new());
    tracer.start_trace();
    tracer.llm_call_start("llm-1", "claude-agent-request", serde_json::json!({"q": "hi"}));
    tracer.llm_call_end(
        "llm-1",
        serde_json::json!({"model": "claude-3-5-sonnet-20241022", "usage": {"input_tokens": 70, "output_tokens": 30}}),
        None,
    );
    tracer.llm_call_start("llm-2", "claude-agent-failing", serde_json::json!({}));
    tracer.llm_call_end("llm-2", serde_json::json!({}), Some("upstream refused"));
    tracer.end(serde_json::json!({}), serde_json::json!({}), None, None);

    let all = export();
    let manual = [
        ("gen_ai.operation.name", "chat"),
        ("gen_ai.provider.name", "openai"),
        ("gen_ai.request.model", "gpt-4o-manual"),
        ("gen_ai.response.model", "gpt-4o-2024-08-06"),
        ("server.address", "api.openai.com"),
    ];
    let duration = point(&all, "gen_ai.client.operation.duration", &manual);
    assert_eq!((duration.count, duration.value), (1, 0.85));
    assert_eq!(duration.attributes.get("server.port").and_then(serde_json::Value::as_i64), Some(443));
    let ttfc = point(&all, "gen_ai.client.operation.time_to_first_chunk", &manual);
    assert_eq!((ttfc.count, ttfc.value), (1, 0.12));
    let input =
        point(&all, "gen_ai.client.token.usage", &[manual.as_slice(), &[("gen_ai.token.type", "input")]].concat());
    assert_eq!(input.value, 1000.0);
    let output =
        point(&all, "gen_ai.client.token.usage", &[manual.as_slice(), &[("gen_ai.token.type", "output")]].concat());
    assert_eq!(output.value, 500.0);
    assert!((point(&all, "gen_ai.client.cost", &manual).value - cost.total_cost).abs() < 1e-12);
    let failed = [("gen_ai.request.model", "gpt-4o-manual-failed")];
    let duration = point(&all, "gen_ai.client.operation.duration", &failed);
    assert_eq!((duration.attr_str("error.type"), duration.value), (Some("timeout"), 0.04));
    assert!(points(&all, "gen_ai.client.token.usage", &failed).is_empty());

    let agent = [
        ("gen_ai.operation.name", "chat"),
        ("gen_ai.provider.name", "anthropic"),
        ("gen_ai.request.model", "claude-agent-request"),
        ("gen_ai.response.model", "claude-3-5-sonnet-20241022"),
    ];
    let input =
        point(&all, "gen_ai.client.token.usage", &[agent.as_slice(), &[("gen_ai.token.type", "input")]].concat());
    assert_eq!(input.value, 70.0);
    assert_eq!(point(&all, "gen_ai.client.operation.duration", &agent).count, 1);
    let expected = observer::calculate_cost("anthropic", "claude-3-5-sonnet-20241022", 70, 30).total_cost;
    assert!((point(&all, "gen_ai.client.cost", &agent).value - expected).abs() < 1e-12);
    let failing = point(&all, "gen_ai.client.operation.duration", &[("gen_ai.request.model", "claude-agent-failing")]);
    assert_eq!(failing.attr_str("error.type"), Some("_OTHER"));
}

#[test]
fn health_metrics_equal_the_pipeline_counters_and_unsampled_spans_still_have_audit_events() {
    let setup = setup();
    // Audit events inside spans the sampler (`always_off`) drops: every event is written.
    let mut ids = Vec::new();
    for i in 0..5 {
        let _span = tracing::info_span!("unsampled-request", i).entered();
        let event = audit::log_read(ResourceType::Document, format!("doc-health-{i}")).emit().expect("emit");
        ids.push(event.event_id.clone());
    }
    observer::flush(Duration::from_secs(10)).expect("flush");
    for id in &ids {
        setup.sink.wait_for(Duration::from_secs(10), |e| &e.event_id == id).expect("the event is written");
    }
    assert!(setup.receiver.spans().iter().all(|s| s.name != "unsampled-request"), "no span is sampled");

    // The health metrics read the same counters as observer::stats() (no event is emitted meanwhile: retried
    // until two reads agree).
    for attempt in 0..20 {
        let before = observer::stats().expect("initialised");
        let all = export();
        let after = observer::stats().expect("initialised");
        if before != after {
            assert!(attempt < 19, "the counters kept moving");
            continue;
        }
        let value = |name: &str| {
            let p = point(&all, name, &[]);
            assert!(p.resource.contains_key("service.name"));
            p.value
        };
        #[allow(clippy::cast_precision_loss)]
        let expected = [
            ("observer.audit.events.accepted", after.accepted),
            ("observer.audit.events.written", after.written),
            ("observer.audit.events.failed", after.failed),
            ("observer.audit.events.rejected", after.rejected_queue_full),
            ("observer.audit.events.sync_failed", after.sync_failed),
            ("observer.audit.sink.errors", after.sink_errors),
            ("observer.audit.sink.panics", after.sink_panics),
            ("observer.audit.queue.depth", after.pending),
        ];
        for (name, v) in expected {
            #[allow(clippy::cast_precision_loss)]
            let v = v as f64;
            assert_eq!(value(name), v, "{name}");
        }
        assert!(after.written >= 5, "{after:?}");
        let accepted = point(&all, "observer.audit.events.accepted", &[]);
        assert_eq!((accepted.kind, accepted.monotonic, accepted.unit.as_str()), ("sum", true, "{event}"));
        let depth = point(&all, "observer.audit.queue.depth", &[]);
        assert_eq!((depth.kind, depth.unit.as_str()), ("gauge", "{event}"));
        // Without Kafka, no Kafka health metric.
        assert!(all.iter().all(|p| !p.name.starts_with("observer.kafka.")));
        return;
    }
}
