//! Step overhead, each figure beside its baseline in the same run:
//! * `with_subscriber/*`: a `#[step]` call and a `WorkflowTracer` step inside a running workflow, vs a bare
//!   `tracing` span (child of a workflow span, like a step's) entered and exited around the same call, all with a `tracing_subscriber::Registry` installed (target ≤ 2×).
//! * `no_subscriber/*`: a `#[step]`-annotated call with no workflow and no subscriber vs the same plain call
//!   (target ≤ 5 ns over it).
//!
//! `cargo bench --bench step`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use observer::trace::WorkflowTracer;

#[inline(never)]
fn plain(x: u64) -> u64 {
    black_box(x).wrapping_mul(31).wrapping_add(7)
}

#[observer::step]
#[inline(never)]
fn annotated(x: u64) -> u64 {
    black_box(x).wrapping_mul(31).wrapping_add(7)
}

fn timed<R>(n: u64, mut f: impl FnMut() -> R) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        black_box(f());
    }
    start.elapsed()
}

fn chunked(iters: u64, mut run: impl FnMut(&WorkflowTracer, u64) -> Duration) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(10_000);
        let wf = WorkflowTracer::new("bench");
        total += run(&wf, n);
        wf.finish();
        left -= n;
    }
    total
}

fn no_subscriber(c: &mut Criterion) {
    let mut g = c.benchmark_group("no_subscriber");
    g.bench_function("plain_call", |b| b.iter(|| plain(black_box(3))));
    g.bench_function("step_annotated_call", |b| b.iter(|| annotated(black_box(3))));
    g.finish();
}

fn with_subscriber(c: &mut Criterion) {
    use tracing_subscriber::layer::SubscriberExt;
    let subscriber = tracing_subscriber::registry().with(tracing_subscriber::filter::LevelFilter::INFO);
    tracing::subscriber::with_default(subscriber, || {
        let mut g = c.benchmark_group("with_subscriber");
        // The baseline builds the same span tree by hand: a `step` span, child of a workflow span, entered
        // around the call.
        let parent = tracing::info_span!("workflow", otel.name = "workflow:bench");
        g.bench_function("bare_tracing_span", |b| {
            b.iter(|| {
                let span = tracing::info_span!(parent: &parent, "step", otel.name = "step:validate");
                let _e = span.enter();
                plain(black_box(3))
            })
        });
        drop(parent);
        // A fresh workflow every 10,000 steps, so that the recorded steps do not pile up over millions of
        // iterations (creating and finishing the workflow is outside the timed part).
        g.bench_function("step_macro_in_workflow", |b| {
            b.iter_custom(|iters| chunked(iters, |wf, n| wf.scope_sync(|| timed(n, || annotated(black_box(3))))))
        });
        g.bench_function("workflow_tracer_step", |b| {
            b.iter_custom(|iters| {
                chunked(iters, |wf, n| {
                    timed(n, || {
                        wf.run_step_sync("validate", |_s| Ok::<_, std::convert::Infallible>(plain(black_box(3))))
                    })
                })
            })
        });
        g.finish();
    });
}

criterion_group!(benches, no_subscriber, with_subscriber);
criterion_main!(benches);
