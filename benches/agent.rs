//! AgentTracer costs, each beside a baseline measured in the same run. Needs the test broker:
//!
//! ```sh
//! eval "$(scripts/kafka-broker.sh start)"
//! cargo bench --bench agent --features kafka
//! ```
//!
//! * `agent_stream/*`: one flow streaming N components (span_start + span_end each, outputs with usage and a
//!   model: extraction and pricing included) to the trace topic, flushed (all acknowledged) — events/s of a single
//!   flow — against the raw exporter sending the same number of messages of the same size, key and headers.
//! * `agent_end/*`: the time `end()` takes for a trace of 10 components (Kafka sink; not waiting for the
//!   broker), against serialising the same `trace_end` JSON.
//! * `agent_component/*`: one component (add_trace + end_trace) with no sink, against a bare child `tracing`
//!   span entered and closed.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use observer::export::{KafkaExporter, KafkaTopicSink};
use observer::trace::{AgentTrace, AgentTracer, TraceSink};
use observer::KafkaConfig;
use serde_json::{json, Value};

const TOPIC: &str = "genesis-traces-streaming";
const N: u64 = 5_000;
/// The headers the trace sink sends with every event (the raw baseline sends the same messages).
const HEADERS: &[(&str, &str)] = &[("event_type", "span_end"), ("content-type", "application/json")];

fn bootstrap() -> String {
    std::env::var("KAFKA_BOOTSTRAP_SERVERS").expect("start the broker: eval \"$(scripts/kafka-broker.sh start)\"")
}

fn outputs() -> Value {
    json!({"classification": "account", "model": "gpt-4o",
           "usage": {"prompt_tokens": 100, "completion_tokens": 50, "prompt_tokens_details": {"cached_tokens": 20}}})
}

fn stream(c: &mut Criterion) {
    observer::cost::warm_up();
    let spool = tempfile::tempdir().unwrap();
    let kafka = KafkaConfig {
        bootstrap_servers: bootstrap(),
        trace_topic: TOPIC.into(),
        spool_dir: Some(spool.path().to_owned()),
        ..Default::default()
    };
    let sink = KafkaTopicSink::new(&kafka, &kafka.trace_topic).unwrap();
    let exporter: KafkaExporter = sink.exporter().clone();
    // A representative message: a span_end of the flow below.
    let probe = observer::trace::MemoryTraceSink::new();
    let t =
        AgentTracer::new(AgentTrace { trace_name: "bench".into(), ..Default::default() }).unwrap().sink(probe.clone());
    t.add_trace("c0", "Classifier", "llm", json!({"query": "How do I reset my password?"}));
    t.end_trace("c0", "Classifier", outputs(), None);
    let payload = serde_json::to_vec(&probe.events()[2]).unwrap();
    let key = t.trace_id().to_owned();

    let mut g = c.benchmark_group("agent_stream");
    g.throughput(Throughput::Elements(2 * N));
    g.sample_size(10);
    g.bench_function("raw_exporter_send", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                for _ in 0..2 * N {
                    exporter.send(TOPIC, Some(&key), HEADERS, &payload).expect("accepted");
                }
                exporter.flush(Duration::from_secs(60)).unwrap();
                total += start.elapsed();
            }
            total
        })
    });
    g.bench_function("agent_tracer_flow", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let tracer = AgentTracer::new(AgentTrace { trace_name: "bench".into(), ..Default::default() })
                    .unwrap()
                    .sink(sink.clone());
                let ids: Vec<String> = (0..N).map(|i| format!("c{i}")).collect();
                let start = Instant::now();
                for id in &ids {
                    tracer.add_trace(id, "Classifier", "llm", json!({"query": "How do I reset my password?"}));
                    tracer.end_trace(id, "Classifier", outputs(), None);
                }
                tracer.flush(Duration::from_secs(60)).unwrap();
                total += start.elapsed();
                tracer.end(Value::Null, Value::Null, None, None);
            }
            total
        })
    });
    g.finish();

    let mut g = c.benchmark_group("agent_end");
    g.bench_function("serialize_trace_end_json", |b| {
        let tracer = AgentTracer::new(AgentTrace { trace_name: "bench".into(), ..Default::default() })
            .unwrap()
            .sink(probe.clone());
        tracer.end(json!({"query": "q"}), json!({"answer": "a"}), None, None);
        let end = probe.events().pop().unwrap();
        b.iter(|| black_box(serde_json::to_vec(black_box(&end)).unwrap()))
    });
    g.bench_function("end_10_components_kafka", |b| {
        b.iter_batched(
            || {
                let tracer = AgentTracer::new(AgentTrace { trace_name: "bench".into(), ..Default::default() })
                    .unwrap()
                    .sink(sink.clone());
                tracer.start_trace();
                for i in 0..10 {
                    let id = format!("c{i}");
                    tracer.add_trace(&id, "Classifier", "llm", json!({}));
                    tracer.end_trace(&id, "Classifier", outputs(), None);
                }
                tracer
            },
            |tracer| {
                tracer.end(json!({"query": "q"}), json!({"answer": "a"}), None, None);
                tracer
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
    sink.flush(Duration::from_secs(60)).unwrap();
}

fn component(c: &mut Criterion) {
    // The Registry records spans, as in an application with a subscriber (the step bench's baseline).
    let _sub = tracing::subscriber::set_default(tracing_subscriber::registry());
    let mut g = c.benchmark_group("agent_component");
    g.bench_function("bare_child_span", |b| {
        let root = tracing::info_span!("flow");
        b.iter(|| {
            let span = tracing::info_span!(parent: &root, "component", otel.name = "Classifier");
            let _e = span.enter();
            black_box(outputs())
        })
    });
    g.bench_function("add_trace_end_trace_no_sink", |b| {
        let tracer = AgentTracer::new(AgentTrace { trace_name: "bench".into(), ..Default::default() }).unwrap();
        tracer.start_trace();
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            let id = i.to_string();
            tracer.add_trace(&id, "Classifier", "llm", Value::Null);
            tracer.end_trace(&id, "Classifier", outputs(), None);
        })
    });
    g.finish();
}

criterion_group!(benches, stream, component);
criterion_main!(benches);
