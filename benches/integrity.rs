//! The cost of the tamper-evident chain (`IntegrityConfig`), on and off in the same run, each against a JSON-lines
//! file sink of its own (default `FileSync::OnFlush`):
//!
//! * `integrity_emit/{off,on}`: the caller's side of one `emit()` (the chain runs on the dispatcher thread; target
//!   on ≤ 1.1 × off);
//! * `integrity_throughput/{off,on}`: events per second from `emit()` to the file, 20,000 events then a flush that
//!   waits until they are written (target on ≥ 0.8 × off).
//!
//! "on" signs a checkpoint every 1,000 events (the default) with an Ed25519 key. `cargo bench --bench integrity`
//! (add `-- --warm-up-time 1 --measurement-time 3` on a loaded machine).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use observer::export::{self, Pipeline};
use observer::integrity::NoteSigner;
use observer::{
    audit, ActorContext, AuditSink, IntegrityConfig, ObserverConfig, ResourceType, Secret, SigningKeySource,
};

const BATCH: u64 = 20_000;

fn pipeline(dir: &std::path::Path, on: bool) -> Pipeline {
    let key = NoteSigner::generate("bench-key").expect("key");
    Pipeline::new(ObserverConfig {
        service_name: "bench".into(),
        audit_sink: AuditSink::file(dir.join(if on { "on.jsonl" } else { "off.jsonl" })),
        integrity: IntegrityConfig {
            enabled: on,
            signing_key: Some(SigningKeySource::Value(Secret::new(key.private_key_string()))),
            ..Default::default()
        },
        ..Default::default()
    })
    .expect("pipeline")
}

fn emit_one() {
    let e =
        audit::log_create(ResourceType::Document, "doc-123").resource_name("Project Proposal").emit().expect("queued");
    black_box(e);
}

fn integrity(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    observer::set_actor_context(Some(
        ActorContext::new("user-123").email("user@example.com").roles(["admin", "analyst"]),
    ));
    let pipelines = [("off", pipeline(dir.path(), false)), ("on", pipeline(dir.path(), true))];

    let mut g = c.benchmark_group("integrity_emit");
    for (name, p) in &pipelines {
        g.bench_function(*name, |b| {
            // Time only the caller's side; drain between samples (untimed) so that the queue never fills.
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let n = left.min(50_000);
                    export::with_pipeline_sync(p, || {
                        let start = Instant::now();
                        for _ in 0..n {
                            emit_one();
                        }
                        total += start.elapsed();
                    });
                    p.flush(Duration::from_secs(60)).expect("flush");
                    left -= n;
                }
                total
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("integrity_throughput");
    g.throughput(Throughput::Elements(BATCH));
    g.sample_size(10);
    for (name, p) in &pipelines {
        g.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    export::with_pipeline_sync(p, || {
                        for _ in 0..BATCH {
                            emit_one();
                        }
                    });
                    p.flush(Duration::from_secs(60)).expect("flush");
                    total += start.elapsed();
                }
                total
            })
        });
    }
    g.finish();

    for (name, p) in pipelines {
        let stats = p.stats();
        assert_eq!((stats.rejected_queue_full, stats.failed), (0, 0), "{name}: {stats:?}");
        p.shutdown().expect("shutdown");
    }
}

criterion_group!(benches, integrity);
criterion_main!(benches);
