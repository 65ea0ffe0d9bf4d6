//! The audit output formats, same run: for the guide's JSON (baseline), OCSF and FHIR, a pipeline whose one sink
//! is in that format (a sink that only counts the bytes, so the sink's own I/O is not measured):
//!
//! * `emit_caller/<format>`: the caller-side cost of `audit::log_create(..).emit()` (the dispatcher is drained
//!   untimed between samples): rendering happens on the dispatcher thread, so this should not depend on the format;
//! * `emit_to_bytes/<format>`: emit → the event in the sink's format (emit, then wait until the dispatcher has
//!   serialised the guide JSON, rendered the format and handed it to the sink), per event.
//!
//! `cargo bench --bench formats -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use observer::export::{self, Pipeline, Record, Sink};
use observer::{audit, ActorContext, AuditFormat, AuditSink, ExporterError, ObserverConfig, ResourceType};

/// Counts the bytes of its records in its format.
#[derive(Debug)]
struct Counting {
    format: AuditFormat,
    bytes: AtomicU64,
}

impl Sink for Counting {
    fn name(&self) -> String {
        format!("counting ({})", self.format)
    }
    fn format(&self) -> AuditFormat {
        self.format
    }
    fn write(&self, record: Record<'_>) -> Result<(), ExporterError> {
        self.bytes.fetch_add(record.output.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

fn emit_one() {
    let e = audit::log_create(ResourceType::Document, "doc-123")
        .resource_name("Project Proposal")
        .metadata("department", "cardiology")
        .emit()
        .expect("queued");
    black_box(e);
}

fn formats(c: &mut Criterion) {
    let actor = ActorContext::new("user-123").email("user@example.com").roles(["admin", "analyst"]);
    for format in [AuditFormat::Json, AuditFormat::Ocsf, AuditFormat::Fhir] {
        let sink = Arc::new(Counting { format, bytes: AtomicU64::new(0) });
        let pipeline = Pipeline::new(ObserverConfig {
            service_name: "bench".into(),
            audit_sink: AuditSink::None,
            extra_sinks: vec![sink.clone()],
            ..Default::default()
        })
        .expect("pipeline");
        observer::actor::with_actor_sync(actor.clone(), || {
            export::with_pipeline_sync(&pipeline, || {
                let mut g = c.benchmark_group("emit_caller");
                g.bench_function(format.as_str(), |b| {
                    b.iter_custom(|iters| {
                        let mut total = Duration::ZERO;
                        let mut left = iters;
                        while left > 0 {
                            let n = left.min(50_000);
                            let start = Instant::now();
                            for _ in 0..n {
                                emit_one();
                            }
                            total += start.elapsed();
                            pipeline.flush(Duration::from_secs(30)).expect("flush");
                            left -= n;
                        }
                        total
                    })
                });
                g.finish();
                let mut g = c.benchmark_group("emit_to_bytes");
                g.bench_function(format.as_str(), |b| {
                    b.iter_custom(|iters| {
                        let start = Instant::now();
                        let mut left = iters;
                        while left > 0 {
                            let n = left.min(50_000);
                            for _ in 0..n {
                                emit_one();
                            }
                            pipeline.flush(Duration::from_secs(30)).expect("flush");
                            left -= n;
                        }
                        start.elapsed()
                    })
                });
                g.finish();
            })
        });
        let stats = pipeline.stats();
        assert_eq!(stats.failed, 0, "{stats:?}");
        eprintln!(
            "{format}: {} events, {:.0} bytes per event",
            stats.written,
            sink.bytes.load(Ordering::Relaxed) as f64 / stats.written.max(1) as f64
        );
    }
}

criterion_group!(benches, formats);
criterion_main!(benches);
