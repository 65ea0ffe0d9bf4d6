//! Redaction cost, in one run: the engine's throughput in MB/s on clinical text (the generated corpus's notes,
//! one string per snippet, and one large document); the redaction of one audit event as the dispatcher applies
//! it (`redact_event/*`, in CPU time of the bench thread); and the cost of an audit event with redaction on vs
//! off — on the caller's thread (`emit`, where redaction does not run: it is on the dispatcher) and per event end
//! to end (emit + the dispatcher's redaction, serialisation and file write, measured by flushing), for each of
//! the three events (`emit_to_file_{off,on}` is the update with identifiers).
//!
//! `cargo bench --bench redaction -- --warm-up-time 1 --measurement-time 3`

#[path = "../tests/support/redact_corpus.rs"]
mod corpus;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use observer::export::{self, Pipeline};
use observer::redact::Redactor;
use observer::{
    audit, ActorContext, AuditEvent, AuditSink, ChangeRecord, ObserverConfig, RedactionConfig, ResourceType,
};
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

/// The events measured, as callers emit them (the actor is set on the bench thread): `emit.rs`'s `log_create`
/// (nothing to redact), an update with identifiers in its description and metadata, and an LLM interaction
/// with metadata-rich summaries.
const EVENTS: [&str; 3] = ["create", "update_with_phi", "llm_interaction"];

fn emit_one(kind: &str) -> std::sync::Arc<AuditEvent> {
    let e = match kind {
        "create" => audit::log_create(ResourceType::Document, "doc-123").resource_name("Project Proposal").emit(),
        "update_with_phi" => audit::log_update(ResourceType::Document, "doc-123")
            .resource_name("Discharge summary")
            .description("Updated discharge summary for Patient: Jane Roe, MRN: 00442211")
            .metadata("department", "cardiology")
            .metadata("reason", "follow-up call to (617) 555-0123 scheduled for 03/02/2025")
            .metadata("tokens", json!({"input": 812, "output": 133}))
            .changes([ChangeRecord::new("status", "draft", "final")])
            .emit(),
        _ => audit::log_llm_interaction("openai", "gpt-4o-2024-08-06")
            .flow_id("customer-support-flow")
            .input_tokens(1520)
            .output_tokens(310)
            .cost(0.0125)
            .prompt_summary("Summarise the patient's last visit and list the medications to review")
            .response_summary("The visit covered blood pressure follow-up; three medications to review")
            .metadata("temperature", 0.2)
            .metadata("session_id", "sess-7f3a9c2e")
            .metadata("request_id", "req_01HZX4K9")
            .metadata("finish_reason", "stop")
            .metadata("tools", json!(["search_records", "get_medications"]))
            .metadata("latency_ms", 842)
            .emit(),
    };
    e.expect("queued")
}

fn set_actor() {
    observer::set_actor_context(Some(
        ActorContext::new("user-123").email("user@example.com").roles(["admin", "analyst"]),
    ));
}

fn emit(c: &mut Criterion) {
    set_actor();
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
                            black_box(emit_one("update_with_phi"));
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
    // End to end, per event: the pairs whose ratio is the redaction's cost in throughput.
    for kind in EVENTS {
        for (label, enabled) in [("off", false), ("on", true)] {
            let p = pipeline(dir.path(), &format!("e2e-{kind}-{label}.jsonl"), enabled);
            let name = if kind == "update_with_phi" {
                format!("emit_to_file_{label}")
            } else {
                format!("emit_to_file_{kind}_{label}")
            };
            g.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    export::with_pipeline_sync(&p, || {
                        let mut total = Duration::ZERO;
                        let mut left = iters;
                        while left > 0 {
                            let n = left.min(20_000);
                            let start = Instant::now();
                            for _ in 0..n {
                                black_box(emit_one(kind));
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
    }
    g.finish();
}

/// [`EVENTS`] as the caller built them (the pipeline's redaction is off).
fn events(dir: &std::path::Path) -> Vec<(&'static str, std::sync::Arc<AuditEvent>)> {
    set_actor();
    let p = pipeline(dir, "events.jsonl", false);
    let events = export::with_pipeline_sync(&p, || EVENTS.iter().map(|&kind| (kind, emit_one(kind))).collect());
    p.flush(Duration::from_secs(10)).expect("flush");
    events
}

/// The CPU time of this thread so far (unix), `None` elsewhere.
fn thread_cpu() -> Option<Duration> {
    #[cfg(unix)]
    {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        Some(Duration::new(u64::try_from(t.tv_sec).ok()?, u32::try_from(t.tv_nsec).ok()?))
    }
    #[cfg(not(unix))]
    None
}

/// The redaction of one event as the dispatcher applies it, on this thread. Timed in CPU time of the thread
/// where the system gives it (read once per batch of up to 20,000), so that other work on
/// the machine does not inflate it; wall time otherwise.
fn per_event(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = Redactor::default();
    let mut g = c.benchmark_group("redact_event");
    for (label, event) in events(dir.path()) {
        g.bench_function(label, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let n = left.min(20_000);
                    let (cpu, wall) = (thread_cpu(), Instant::now());
                    for _ in 0..n {
                        black_box(observer::__private::redact_event(&r, black_box(&event)));
                    }
                    total += match (cpu, thread_cpu()) {
                        (Some(a), Some(b)) => b.saturating_sub(a),
                        _ => wall.elapsed(),
                    };
                    left -= n;
                }
                total
            })
        });
    }
    g.finish();
}

criterion_group!(benches, throughput, per_event, emit);
criterion_main!(benches);
