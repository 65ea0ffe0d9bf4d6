//! Kafka export, each figure beside its baseline measured in the same run. Needs the test broker:
//!
//! ```sh
//! eval "$(scripts/kafka-broker.sh start)"
//! cargo bench --bench kafka --features kafka
//! ```
//!
//! * `kafka_throughput/*`: N messages of ~1 KB, sent and flushed (all acknowledged), acks=all, idempotent
//!   producer, linger 5 ms, batch.size 16 KiB, for raw `rdkafka` (`BaseProducer` + `flush`, the same settings
//!   and payload) and for observer's exporter (`export_audit` of a prepared event: serialisation, key,
//!   headers) and the full pipeline (`emit` → dispatcher → Kafka sink).
//! * `emit_latency/*`: caller-side cost of one `emit` with the JSON-lines file sink, and with Kafka enabled
//!   while the broker is down.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use observer::export::KafkaExporter;
use observer::{audit, AuditEvent, AuditSink, KafkaConfig, ObserverConfig, ResourceType};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;

const TOPIC: &str = "observer-bench";
const N: u64 = 20_000;

fn bootstrap() -> String {
    std::env::var("KAFKA_BOOTSTRAP_SERVERS").expect("start the broker: eval \"$(scripts/kafka-broker.sh start)\"")
}

fn kafka_config(spool: &std::path::Path) -> KafkaConfig {
    KafkaConfig {
        bootstrap_servers: bootstrap(),
        audit_topic: TOPIC.into(),
        spool_dir: Some(spool.to_owned()),
        ..Default::default()
    }
}

/// An audit event whose JSON is about 1 KB.
fn event_1kb() -> AuditEvent {
    let mut e = AuditEvent::new(
        observer::AuditEventType::DataModification,
        observer::AuditAction::Create,
        ResourceType::Document,
        "doc-123",
    );
    e.service_name = "bench".into();
    e.description = Some("Created DOCUMENT doc-123".into());
    e.metadata.insert("blob".into(), "x".repeat(620).into());
    e
}

fn throughput(c: &mut Criterion) {
    let status = std::process::Command::new("bash")
        .args([concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/kafka-broker.sh"), "create-topic", TOPIC])
        .status()
        .expect("broker script");
    assert!(status.success(), "creating {TOPIC}");
    let prepared = event_1kb();
    let payload = serde_json::to_vec(&prepared).expect("json");
    let event_id = prepared.event_id.clone();
    println!("payload: {} bytes", payload.len());

    let mut g = c.benchmark_group("kafka_throughput");
    g.sample_size(10).measurement_time(Duration::from_secs(20)).throughput(Throughput::Elements(N));

    // Baseline: raw rdkafka with the exporter's default settings.
    let raw: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("acks", "all")
        .set("retries", "3")
        .set("retry.backoff.ms", "100")
        .set("batch.size", "1000000")
        .set("linger.ms", "5")
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "30000")
        .create()
        .expect("raw producer");
    g.bench_function(BenchmarkId::new("raw_rdkafka", N), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                for _ in 0..N {
                    // The exporter's five headers.
                    let headers = OwnedHeaders::new_with_capacity(5)
                        .insert(Header { key: "event_type", value: Some("DATA_MODIFICATION") })
                        .insert(Header { key: "event_id", value: Some(event_id.as_str()) })
                        .insert(Header { key: "schema_version", value: Some("1.0") })
                        .insert(Header { key: "content-type", value: Some("application/json") })
                        .insert(Header { key: "format", value: Some("json") });
                    let mut record = BaseRecord::to(TOPIC).key("DOCUMENT:doc-123").payload(&payload).headers(headers);
                    loop {
                        match raw.send(record) {
                            Ok(()) => break,
                            Err((_, r)) => {
                                record = r;
                                raw.poll(Duration::from_millis(1));
                            }
                        }
                    }
                    raw.poll(Duration::ZERO);
                }
                raw.flush(Duration::from_secs(60)).expect("flush");
                total += start.elapsed();
            }
            total
        })
    });

    let spool = tempfile::tempdir().expect("tempdir");
    let exporter = KafkaExporter::new(kafka_config(spool.path())).expect("exporter");
    let event = event_1kb();
    g.bench_function(BenchmarkId::new("observer_export_audit", N), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                for _ in 0..N {
                    black_box(exporter.export_audit(&event)).expect("accepted");
                }
                exporter.flush(Duration::from_secs(60)).expect("flush");
                total += start.elapsed();
            }
            total
        })
    });
    let s = exporter.stats();
    assert_eq!(s.spooled, 0, "nothing should need the spool with the broker up: {s:?}");
    exporter.shutdown(Duration::from_secs(10)).expect("shutdown");

    let spool2 = tempfile::tempdir().expect("tempdir");
    let guard = observer::init(ObserverConfig {
        service_name: "bench".into(),
        audit_sink: AuditSink::None,
        kafka: Some(kafka_config(spool2.path())),
        ..Default::default()
    })
    .expect("init");
    let blob = "x".repeat(620);
    g.bench_function(BenchmarkId::new("observer_pipeline_emit", N), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                for _ in 0..N {
                    let e = audit::log_create(ResourceType::Document, "doc-123")
                        .metadata("blob", blob.as_str())
                        .emit()
                        .expect("queued");
                    black_box(e);
                }
                observer::flush(Duration::from_secs(60)).expect("flush");
                total += start.elapsed();
            }
            total
        })
    });
    g.finish();
    drop(guard);
}

fn emit_latency(c: &mut Criterion) {
    let mut g = c.benchmark_group("emit_latency");
    g.measurement_time(Duration::from_secs(5));
    let run = |g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>, name: &str| {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let n = left.min(20_000);
                    let start = Instant::now();
                    for _ in 0..n {
                        black_box(audit::log_create(ResourceType::Document, "doc-123").emit().expect("queued"));
                    }
                    total += start.elapsed();
                    // Drain (untimed) so the bounded queue never fills up.
                    let _ = observer::flush(Duration::from_secs(60));
                    left -= n;
                }
                total
            })
        });
    };

    let dir = tempfile::tempdir().expect("tempdir");
    let guard = observer::init(ObserverConfig {
        audit_sink: AuditSink::file(dir.path().join("audit.jsonl")),
        ..Default::default()
    })
    .expect("init");
    run(&mut g, "file_sink");
    drop(guard);

    // Kafka enabled, broker down: nothing listens on the port; events queue in librdkafka, then the spool.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let spool = tempfile::tempdir().expect("tempdir");
    let guard = observer::init(ObserverConfig {
        audit_sink: AuditSink::None,
        kafka: Some(KafkaConfig {
            bootstrap_servers: format!("127.0.0.1:{port}"),
            spool_dir: Some(spool.path().to_owned()),
            ..Default::default()
        }),
        flush_timeout: Duration::from_secs(2),
        ..Default::default()
    })
    .expect("init");
    run(&mut g, "kafka_broker_down");
    g.finish();
    drop(guard);
}

criterion_group!(benches, throughput, emit_latency);
criterion_main!(benches);
