//! `calculate_cost` now that the price data in effect sits behind an `ArcSwap` (fresh data, overrides), each figure
//! beside the baseline measured in the same run: `bundled_only_before` is the calculation as it was before (the
//! bundled data through a `LazyLock`, no `ArcSwap` load, no override check).
//!
//! * `nothing_configured`: no refresher ever started (one `ArcSwap` load of `None`), target ≤ 1.05× the baseline.
//! * `loaded_data_hit`: fresh data loaded (the 2-model test file) and the model in it.
//! * `loaded_data_miss_bundled`: fresh data loaded, a model only the bundled data has (looked up in both).
//! * `with_overrides_not_matched`: 20 overrides, none for the model (a scan, and a check of the resolved id).
//! * `override_hit`: the model is overridden.
//!
//! `cargo bench --bench cost` (short: `-- --warm-up-time 1 --measurement-time 3`)

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use observer::cost::{PriceRefresher, PriceSource};
use observer::{calculate_cost, PriceConfig, PriceDataSource, PriceOverride};

fn cost(c: &mut Criterion) {
    observer::cost::warm_up();
    let mut g = c.benchmark_group("calculate_cost");
    let (provider, model) = ("anthropic", "claude-3-5-sonnet-20241022");
    g.bench_function("bundled_only_before", |b| {
        b.iter(|| observer::__private::calculate_cost_bundled_only(black_box(provider), black_box(model), 2000, 500))
    });
    g.bench_function("nothing_configured", |b| {
        b.iter(|| calculate_cost(black_box(provider), black_box(model), 2000, 500))
    });

    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/prices/fresh-v1.json");
    let refresher =
        PriceRefresher::start(&PriceConfig { data: Some(PriceDataSource::File(file)), ..Default::default() })
            .expect("test data");
    refresher.refresh_now().expect("test data loads");
    assert_eq!(calculate_cost("openai", "gpt-4o", 1, 1).price_source, PriceSource::Loaded);
    g.bench_function("loaded_data_hit", |b| {
        b.iter(|| calculate_cost(black_box("openai"), black_box("gpt-4o"), 2000, 500))
    });
    g.bench_function("bundled_only_before_same_model", |b| {
        b.iter(|| observer::__private::calculate_cost_bundled_only(black_box("openai"), black_box("gpt-4o"), 2000, 500))
    });
    g.bench_function("loaded_data_miss_bundled", |b| {
        b.iter(|| calculate_cost(black_box(provider), black_box(model), 2000, 500))
    });
    drop(refresher);

    let overrides = (0..20).map(|i| PriceOverride::new("vllm", format!("model-{i}"), 1.0, 2.0)).collect();
    let refresher = PriceRefresher::start(&PriceConfig { overrides, ..Default::default() }).expect("valid overrides");
    g.bench_function("with_overrides_not_matched", |b| {
        b.iter(|| calculate_cost(black_box(provider), black_box(model), 2000, 500))
    });
    g.bench_function("override_hit", |b| {
        b.iter(|| calculate_cost(black_box("vllm"), black_box("model-19"), 2000, 500))
    });
    drop(refresher);
    g.finish();
}

criterion_group!(benches, cost);
criterion_main!(benches);
