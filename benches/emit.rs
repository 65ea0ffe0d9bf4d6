//! Caller-side cost of emitting one audit event into the default (JSON-lines file) sink, measured beside a
//! bare `tracing` event (no subscriber, and a JSON `fmt` subscriber writing to `io::sink`) and plain
//! `serde_json::to_vec` of the same event, in the same run.
//!
//! `cargo bench --bench emit` (system allocator) and `cargo bench --bench emit --features bench-mimalloc`.
//! The caller allocates each event and the dispatcher frees it (see the README on the devices measured and
//! removed). `floor_alloc_and_hand_over` is what any emit of this API costs on this allocator: the event and its
//! four strings allocated on the caller's thread and handed through a bounded channel to a thread that frees them.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use observer::{audit, ActorContext, AuditSink, ObserverConfig, ResourceType};

#[cfg(feature = "bench-mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn emit(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let guard = observer::init(ObserverConfig {
        service_name: "bench".into(),
        audit_sink: AuditSink::file(dir.path().join("bench.jsonl")),
        ..Default::default()
    })
    .expect("init");
    observer::set_actor_context(Some(
        ActorContext::new("user-123").email("user@example.com").roles(["admin", "analyst"]),
    ));

    let mut g = c.benchmark_group("emit");
    g.measurement_time(Duration::from_secs(5));

    g.bench_function("observer_log_create", |b| {
        // Time only the caller's side; drain the queue between samples (untimed) so that the bounded queue
        // never fills up and every emit is a real one.
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(50_000);
                let start = Instant::now();
                for _ in 0..n {
                    let e = audit::log_create(ResourceType::Document, "doc-123")
                        .resource_name("Project Proposal")
                        .emit()
                        .expect("queued");
                    black_box(e);
                }
                total += start.elapsed();
                observer::flush(Duration::from_secs(30)).expect("flush");
                left -= n;
            }
            total
        })
    });

    g.bench_function("tracing_event_no_subscriber", |b| {
        b.iter(|| {
            tracing::info!(
                audit_type = "DATA_MODIFICATION",
                action = "CREATE",
                resource_type = "DOCUMENT",
                resource_id = black_box("doc-123"),
                resource_name = "Project Proposal",
                "audit"
            )
        })
    });

    let subscriber = tracing_subscriber::fmt().json().with_writer(std::io::sink).finish();
    tracing::subscriber::with_default(subscriber, || {
        g.bench_function("tracing_event_fmt_json", |b| {
            b.iter(|| {
                tracing::info!(
                    audit_type = "DATA_MODIFICATION",
                    action = "CREATE",
                    resource_type = "DOCUMENT",
                    resource_id = black_box("doc-123"),
                    resource_name = "Project Proposal",
                    "audit"
                )
            })
        });
    });

    // The floor of this API's shape on this allocator: what every emit must do whatever the SDK does — the
    // event's four strings (id, resource id, resource name, description) and the shared event allocated on the
    // caller's thread, handed through a bounded channel to another thread that frees them — with nothing else.
    g.bench_function("floor_alloc_and_hand_over", |b| {
        type Parts = (std::sync::Arc<[u8; std::mem::size_of::<observer::AuditEvent>()]>, [String; 4]);
        let (tx, rx) = crossbeam_channel::bounded::<Parts>(131_072);
        let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(1);
        let freer = std::thread::spawn(move || {
            for msg in rx {
                drop(msg);
                let _ = done_tx.try_send(());
            }
        });
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(50_000);
                let start = Instant::now();
                for _ in 0..n {
                    let event = std::sync::Arc::new([0u8; std::mem::size_of::<observer::AuditEvent>()]);
                    let strings = [
                        String::from(black_box("evt_0192f7a2-6b1c-7cc3-9c1e-2a7e6f1d2b3c")),
                        String::from(black_box("doc-123")),
                        String::from(black_box("Project Proposal")),
                        String::from(black_box("Created DOCUMENT doc-123")),
                    ];
                    tx.send((event.clone(), strings)).expect("freer");
                    black_box(event);
                }
                total += start.elapsed();
                // Untimed: wait until the other thread has freed everything.
                while !tx.is_empty() {
                    let _ = done_rx.recv_timeout(Duration::from_millis(1));
                }
                left -= n;
            }
            total
        });
        drop(tx);
        freer.join().expect("freer thread");
    });

    let event =
        audit::log_create(ResourceType::Document, "doc-123").resource_name("Project Proposal").emit().expect("emit");
    g.bench_function("serde_json_to_vec", |b| b.iter(|| serde_json::to_vec(black_box(&event)).expect("json")));
    g.finish();

    let stats = observer::stats().expect("stats");
    assert_eq!(stats.rejected_queue_full, 0, "{stats:?}");
    drop(guard);
}

criterion_group!(benches, emit);
criterion_main!(benches);
