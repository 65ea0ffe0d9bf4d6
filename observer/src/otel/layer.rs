//! The `tracing` layer that hands spans to OpenTelemetry, and its filter (level, and never the exporter's own
//! HTTP/gRPC stack).

use opentelemetry_sdk::trace::SdkTracer;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::config::TracingConfig;

/// Crates whose spans are never exported: the exporter's own HTTP/gRPC stack (their spans would be exported by
/// the exporter, and so on). Matched as whole crate names (`h2`, `h2::…`), not as prefixes.
const EXPORTER_CRATES: &[&str] = &[
    "h2",
    "hyper",
    "hyper_util",
    "reqwest",
    "tonic",
    "tower",
    "tower_http",
    "opentelemetry",
    "opentelemetry_sdk",
    "opentelemetry_otlp",
    "opentelemetry_http",
];

fn is_exporter_target(target: &str) -> bool {
    let krate = target.split("::").next().unwrap_or(target);
    EXPORTER_CRATES.contains(&krate)
}

/// The per-layer filter of the OpenTelemetry layer (evaluated once per callsite, then cached).
pub(super) type ExportFilter =
    tracing_subscriber::filter::FilterFn<Box<dyn Fn(&::tracing::Metadata<'_>) -> bool + Send + Sync>>;

/// The per-layer filter: [`TracingConfig::level`] and above, never the exporter's own crates.
pub(super) fn export_filter(config: &TracingConfig) -> ExportFilter {
    let level = config.level;
    let f: Box<dyn Fn(&::tracing::Metadata<'_>) -> bool + Send + Sync> =
        Box::new(move |meta| *meta.level() <= level && !is_exporter_target(meta.target()));
    tracing_subscriber::filter::FilterFn::new(f).with_max_level_hint(level)
}

/// The filtered OpenTelemetry layer over `tracer`.
pub(super) fn layer_for<S>(tracer: SdkTracer, filter: ExportFilter) -> impl Layer<S>
where
    S: ::tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_opentelemetry::layer().with_tracer(tracer).with_filter(filter)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::{Arc, Mutex};

    use opentelemetry_sdk::error::OTelSdkResult;
    use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;
    use crate::otel::pipeline::tracer;

    /// Collects ended spans (exported synchronously by the simple processor).
    #[derive(Debug, Clone, Default)]
    struct Collect(Arc<Mutex<Vec<SpanData>>>);

    impl SpanExporter for Collect {
        fn export(&self, batch: Vec<SpanData>) -> impl std::future::Future<Output = OTelSdkResult> + Send {
            self.0.lock().unwrap().extend(batch);
            std::future::ready(Ok(()))
        }
    }

    /// Runs `f` under a local subscriber with the OpenTelemetry layer (default config) and returns the spans it
    /// ended.
    pub(crate) fn with_otel(f: impl FnOnce()) -> Vec<SpanData> {
        let collect = Collect::default();
        let provider = SdkTracerProvider::builder().with_simple_exporter(collect.clone()).build();
        let subscriber =
            tracing_subscriber::registry().with(layer_for(tracer(&provider), export_filter(&TracingConfig::default())));
        ::tracing::subscriber::with_default(subscriber, f);
        let spans = collect.0.lock().unwrap().clone();
        spans
    }

    #[test]
    fn the_exporters_own_crates_and_verbose_levels_are_not_exported() {
        let spans = with_otel(|| {
            let _a = ::tracing::info_span!(target: "h2::proto", "h2-internal").entered();
            let _b = ::tracing::info_span!(target: "hyper", "hyper-internal").entered();
            let _c = ::tracing::info_span!(target: "h2o_app", "user-crate").entered();
            let _d = ::tracing::debug_span!("too-verbose").entered();
        });
        let names: Vec<_> = spans.iter().map(|s| s.name.to_string()).collect();
        assert_eq!(names, ["user-crate"]);
    }
}
