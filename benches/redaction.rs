//! Redaction cost, in one run: the engine's throughput in MB/s on clinical text (the generated corpus's notes,
//! one string per snippet, and one large document), and the cost of an audit event with redaction on vs off —
//! on the caller's thread (`emit`, where redaction does not run: it is on the dispatcher) and per event end to
//! end (emit + the dispatcher's redaction, serialisation and file write, measured by flushing).
//!
//! `cargo bench --bench redaction -- --warm-up-time 1 --measurement-time 3`

#[path = "../tests/support/redact_corpus.rs"]
mod corpus;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use observer::export::{self, Pipeline};
use observer::redact::Redactor;
use observer::{audit, AuditSink, ChangeRecord, ObserverConfig, RedactionConfig, ResourceType};
use serde_json::json;

fn throughput(c: &mut Criterion) {
    let r = Redactor::default();
    let notes: Vec<String> = corpus::corpus(0x0B5E_2026, 3000)
        .into_iter()
        .filter(|s| s.source == "note" || s.source == "chat")
        .flat_map(|s| s.leaves.into_iter().map(|l| l.text))
        .collect();
    let bytes: usize = notes.iter().map(String::len).sum();
    let document = notes.join("\n");
    let clean: String = corpus::corpus(0x0B5E_2026, 3000)
        .into_iter()
        .filter(|s| s.source == "clean")
        .flat_map(|s| s.leaves.into_iter().map(|l| l.text))
        .collect::<Vec<_>>()
        .join("\n");

    let mut g = c.benchmark_group("redact");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("clinical_snippets", |b| {
        b.iter(|| {
            for n in &notes {
                black_box(r.redact_str(n));
            }
        })
    });
    g.throughput(Throughput::Bytes(document.len() as u64));
    g.bench_function("clinical_document", |b| b.iter(|| black_box(r.redact_str(&document))));
    g.throughput(Throughput::Bytes(clean.len() as u64));
    g.bench_function("clean_document", |b| b.iter(|| black_box(r.redact_str(&clean))));
    g.finish();
}

fn pipeline(dir: &std::path::Path, name: &str, enabled: bool) -> Pipeline {
    Pipeline::new(ObserverConfig {
        audit_sink: AuditSink::file(dir.join(name)),
        redaction: RedactionConfig { enabled, ..Default::default() },
        ..Default::default()
    })
    .expect("pipeline")
}

/// A typical event: a description, a few metadata fields (one with free text holding identifiers), a change.
fn typical() {
    let e = audit::log_update(ResourceType::Document, "doc-123")
        .resource_name("Discharge summary")
        .description("Updated discharge summary for Patient: Jane Roe, MRN: 00442211")
        .metadata("department", "cardiology")
        .metadata("reason", "follow-up call to (617) 555-0123 scheduled for 03/02/2025")
        .metadata("tokens", json!({"input": 812, "output": 133}))
        .changes([ChangeRecord::new("status", "draft", "final")])
        .emit()
        .expect("queued");
    black_box(e);
}

fn emit(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut g = c.benchmark_group("emit_redaction");
    for (label, enabled) in [("off", false), ("on", true)] {
        let p = pipeline(dir.path(), &format!("caller-{label}.jsonl"), enabled);
        g.bench_function(format!("caller_thread_{label}"), |b| {
            b.iter_custom(|iters| {
                export::with_pipeline_sync(&p, || {
                    let mut total = Duration::ZERO;
                    let mut left = iters;
                    while left > 0 {
                        let n = left.min(20_000);
                        let start = Instant::now();
                        for _ in 0..n {
                            typical();
                        }
                        total += start.elapsed();
                        p.flush(Duration::from_secs(60)).expect("flush");
                        left -= n;
                    }
                    total
                })
            })
        });
    }
    for (label, enabled) in [("off", false), ("on", true)] {
        let p = pipeline(dir.path(), &format!("e2e-{label}.jsonl"), enabled);
        g.bench_function(format!("emit_to_file_{label}"), |b| {
            b.iter_custom(|iters| {
                export::with_pipeline_sync(&p, || {
                    let mut total = Duration::ZERO;
                    let mut left = iters;
                    while left > 0 {
                        let n = left.min(20_000);
                        let start = Instant::now();
                        for _ in 0..n {
                            typical();
                        }
                        p.flush(Duration::from_secs(60)).expect("flush");
                        total += start.elapsed();
                        left -= n;
                    }
                    total
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, throughput, emit);
criterion_main!(benches);
