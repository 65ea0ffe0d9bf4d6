//! Metrics over OTLP: the GenAI client metrics of every LLM call (the LLM layer, `record_llm_call`, the
//! `AgentTracer`'s `llm_call_end`) and the SDK's own health (the audit pipeline's and the Kafka exporter's
//! counters), exported like the spans (feature `otel`; without it, [`record_llm`] is a no-op).
//!
//! # Conventions
//!
//! The GenAI client metrics follow the OpenTelemetry semantic conventions **v1.41.0**,
//! `docs/gen-ai/gen-ai-metrics.md` (status *Development*; from v1.42.0 on the GenAI conventions live in the
//! `open-telemetry/semantic-conventions-genai` repository, unchanged for these three metrics):
//!
//! * `gen_ai.client.token.usage` — histogram, `{token}`, one record per token type (`gen_ai.token.type` =
//!   `input` / `output`), buckets `[1, 4, 16, …, 67108864]` (powers of 4);
//! * `gen_ai.client.operation.duration` — histogram, `s`, `error.type` on failures, buckets
//!   `[0.01, 0.02, …, 81.92]` (doubling);
//! * `gen_ai.client.operation.time_to_first_chunk` — histogram, `s`, streamed calls only (the client-side
//!   time to first token; `gen_ai.server.time_to_first_token` is the model server's own measurement), same
//!   buckets as the duration.
//!
//! Attributes: `gen_ai.operation.name`, `gen_ai.provider.name`, `gen_ai.request.model`, `gen_ai.response.model`,
//! `server.address`, `server.port`, and `error.type` (duration only).
//!
//! `gen_ai.client.cost` (counter, `USD`, same attributes without `error.type`) is **not** a convention: the
//! conventions count tokens, not money. It adds the cost of every priced call.
//!
//! The health metrics (`observer.*`) are observable instruments read at each export from
//! [`observer::stats`](crate::stats) and the shared Kafka exporter's `KafkaStats`: see [`HEALTH`].

use std::time::Duration;

/// One finished LLM call, as the metrics see it.
#[derive(Debug, Default, Clone, Copy)]
#[cfg_attr(not(feature = "otel"), allow(dead_code))]
pub(crate) struct LlmMetrics<'a> {
    /// `gen_ai.operation.name`, e.g. `chat`.
    pub(crate) operation: &'a str,
    /// `gen_ai.provider.name`; `None` when unknown (the attribute is left out).
    pub(crate) provider: Option<&'a str>,
    pub(crate) request_model: Option<&'a str>,
    pub(crate) response_model: Option<&'a str>,
    pub(crate) server_address: Option<&'a str>,
    pub(crate) server_port: Option<u16>,
    /// `error.type` when the call failed.
    pub(crate) error_type: Option<&'a str>,
    /// `(input, output)` tokens, when the response said.
    pub(crate) tokens: Option<(u64, u64)>,
    /// The whole call; `None` when it was not measured (then no duration is recorded).
    pub(crate) duration: Option<Duration>,
    /// Streamed calls: request to first chunk.
    pub(crate) time_to_first_chunk: Option<Duration>,
    /// USD, when the model has a price.
    pub(crate) cost_usd: Option<f64>,
}

/// Records one LLM call on the GenAI metrics (nothing when no metric exporter is installed).
pub(crate) fn record_llm(call: &LlmMetrics<'_>) {
    #[cfg(feature = "otel")]
    otel::record(call);
    #[cfg(not(feature = "otel"))]
    let _ = call;
}

/// The health metrics: `(name, unit, kind, what it reads)`, the table of the README.
#[cfg_attr(not(feature = "otel"), allow(dead_code))]
pub(crate) const HEALTH: &[(&str, &str, &str, &str)] = &[
    ("observer.audit.events.accepted", "{event}", "counter", "DispatchStats::accepted"),
    ("observer.audit.events.written", "{event}", "counter", "DispatchStats::written"),
    ("observer.audit.events.failed", "{event}", "counter", "DispatchStats::failed (on the stderr fallback)"),
    ("observer.audit.events.rejected", "{event}", "counter", "DispatchStats::rejected_queue_full"),
    ("observer.audit.events.sync_failed", "{event}", "counter", "DispatchStats::sync_failed"),
    ("observer.audit.sink.errors", "{error}", "counter", "DispatchStats::sink_errors"),
    ("observer.audit.sink.panics", "{panic}", "counter", "DispatchStats::sink_panics"),
    ("observer.audit.queue.depth", "{event}", "gauge", "DispatchStats::pending"),
    ("observer.kafka.messages.produced", "{message}", "counter", "KafkaStats::produced"),
    ("observer.kafka.messages.acknowledged", "{message}", "counter", "KafkaStats::acknowledged"),
    ("observer.kafka.messages.delivery_failures", "{message}", "counter", "KafkaStats::delivery_failures"),
    ("observer.kafka.messages.spooled", "{message}", "counter", "KafkaStats::spooled"),
    ("observer.kafka.messages.replayed", "{message}", "counter", "KafkaStats::replayed"),
    ("observer.kafka.messages.fallback", "{message}", "counter", "KafkaStats::spool_overflow (on stderr)"),
    ("observer.kafka.messages.rejected", "{message}", "counter", "KafkaStats::rejected (too large; on stderr)"),
    ("observer.kafka.messages.in_flight", "{message}", "gauge", "KafkaStats::in_flight"),
    ("observer.kafka.spool.records", "{message}", "gauge", "KafkaStats::spool_records"),
    ("observer.kafka.spool.size", "By", "gauge", "KafkaStats::spool_bytes"),
    ("observer.kafka.spool.quarantined", "{segment}", "counter", "KafkaStats::spool_quarantined"),
];

#[cfg(feature = "otel")]
pub(super) use otel::{flush, install, shutdown};

#[cfg(feature = "otel")]
mod otel {
    use std::sync::{Mutex, PoisonError};
    use std::time::Duration;

    use arc_swap::ArcSwapOption;
    use opentelemetry::metrics::{Counter, Histogram, Meter, MeterProvider as _};
    use opentelemetry::{InstrumentationScope, KeyValue};
    use opentelemetry_otlp::WithExportConfig;
    use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};

    use super::{LlmMetrics, HEALTH};
    use crate::config::{OtlpProtocol, TracingConfig};
    #[cfg(not(feature = "otel-grpc"))]
    use crate::error::ConfigurationError;
    use crate::error::{ExporterError, ObserverError};
    use crate::llm::semconv::{
        GEN_AI_OPERATION_NAME, GEN_AI_PROVIDER_NAME, GEN_AI_REQUEST_MODEL, GEN_AI_RESPONSE_MODEL,
    };

    /// `gen_ai.client.token.usage` (v1.41.0).
    pub(crate) const TOKEN_USAGE: &str = "gen_ai.client.token.usage";
    /// `gen_ai.client.operation.duration` (v1.41.0).
    pub(crate) const OPERATION_DURATION: &str = "gen_ai.client.operation.duration";
    /// `gen_ai.client.operation.time_to_first_chunk` (v1.41.0).
    pub(crate) const TIME_TO_FIRST_CHUNK: &str = "gen_ai.client.operation.time_to_first_chunk";
    /// The cost counter; not a semantic convention.
    pub(crate) const COST: &str = "gen_ai.client.cost";
    /// `gen_ai.token.type`.
    const TOKEN_TYPE: &str = "gen_ai.token.type";
    /// The conventions' bucket boundaries of `gen_ai.client.token.usage`.
    const TOKEN_BUCKETS: [f64; 14] = [
        1.0,
        4.0,
        16.0,
        64.0,
        256.0,
        1024.0,
        4096.0,
        16384.0,
        65536.0,
        262_144.0,
        1_048_576.0,
        4_194_304.0,
        16_777_216.0,
        67_108_864.0,
    ];
    /// The conventions' bucket boundaries of the client durations (duration, time to first chunk).
    const SECONDS_BUCKETS: [f64; 14] =
        [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];

    /// The GenAI instruments, present while a meter provider is installed.
    struct Instruments {
        tokens: Histogram<u64>,
        duration: Histogram<f64>,
        first_chunk: Histogram<f64>,
        cost: Counter<f64>,
    }

    /// The installed meter provider (flush, shutdown).
    struct Installed {
        provider: SdkMeterProvider,
        #[cfg(feature = "otel-grpc")]
        runtime: Option<tokio::runtime::Runtime>,
    }

    static INSTRUMENTS: ArcSwapOption<Instruments> = ArcSwapOption::const_empty();
    static INSTALLED: Mutex<Option<Installed>> = Mutex::new(None);

    pub(in crate::otel) fn record(call: &LlmMetrics<'_>) {
        let guard = INSTRUMENTS.load();
        let Some(m) = guard.as_ref() else { return };
        let mut attrs = Vec::with_capacity(8);
        attrs.push(KeyValue::new(GEN_AI_OPERATION_NAME, call.operation.to_owned()));
        for (key, value) in [
            (GEN_AI_PROVIDER_NAME, call.provider),
            (GEN_AI_REQUEST_MODEL, call.request_model),
            (GEN_AI_RESPONSE_MODEL, call.response_model),
            ("server.address", call.server_address),
        ] {
            if let Some(v) = value.filter(|v| !v.is_empty()) {
                attrs.push(KeyValue::new(key, v.to_owned()));
            }
        }
        if let (Some(port), Some(_)) = (call.server_port, call.server_address) {
            attrs.push(KeyValue::new("server.port", i64::from(port)));
        }
        if let Some(ttfc) = call.time_to_first_chunk {
            m.first_chunk.record(ttfc.as_secs_f64(), &attrs);
        }
        if let Some(cost) = call.cost_usd.filter(|c| c.is_finite() && *c >= 0.0) {
            m.cost.add(cost, &attrs);
        }
        if let Some((input, output)) = call.tokens {
            attrs.push(KeyValue::new(TOKEN_TYPE, "input"));
            m.tokens.record(input, &attrs);
            attrs.pop();
            attrs.push(KeyValue::new(TOKEN_TYPE, "output"));
            m.tokens.record(output, &attrs);
            attrs.pop();
        }
        if let Some(duration) = call.duration {
            if let Some(kind) = call.error_type {
                attrs.push(KeyValue::new("error.type", kind.to_owned()));
            }
            m.duration.record(duration.as_secs_f64(), &attrs);
        }
    }

    /// Installs the meter provider when `config` exports metrics and none is installed yet; a no-op otherwise.
    /// Errors leave nothing installed.
    pub(in crate::otel) fn install(config: &TracingConfig) -> Result<(), ObserverError> {
        let Some(endpoint) = config.metrics_export_endpoint() else { return Ok(()) };
        let mut installed = INSTALLED.lock().unwrap_or_else(PoisonError::into_inner);
        if installed.is_some() {
            return Ok(());
        }
        let builder = SdkMeterProvider::builder().with_resource(super::super::pipeline::resource(config));
        let interval = config.metric_export_interval;
        let new = match config.effective_metrics_protocol() {
            OtlpProtocol::HttpProtobuf => {
                let exporter = opentelemetry_otlp::MetricExporter::builder()
                    .with_http()
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                    .with_endpoint(endpoint)
                    .build()
                    .map_err(ObserverError::from)?;
                let reader = PeriodicReader::builder(exporter).with_interval(interval).build();
                Installed {
                    provider: builder.with_reader(reader).build(),
                    #[cfg(feature = "otel-grpc")]
                    runtime: None,
                }
            }
            #[cfg(feature = "otel-grpc")]
            OtlpProtocol::Grpc => {
                let (exporter, runtime) = super::super::grpc::metric_exporter(&endpoint)?;
                let reader = PeriodicReader::builder(exporter).with_interval(interval).build();
                Installed { provider: builder.with_reader(reader).build(), runtime: Some(runtime) }
            }
            #[cfg(not(feature = "otel-grpc"))]
            OtlpProtocol::Grpc => {
                return Err(ConfigurationError::new(
                    "metrics_protocol",
                    "OTLP gRPC needs the `otel-grpc` cargo feature",
                )
                .into())
            }
        };
        let meter = new.provider.meter_with_scope(
            InstrumentationScope::builder("observer").with_version(env!("CARGO_PKG_VERSION")).build(),
        );
        INSTRUMENTS.store(Some(std::sync::Arc::new(instruments(&meter))));
        register_health(&meter);
        *installed = Some(new);
        Ok(())
    }

    fn instruments(meter: &Meter) -> Instruments {
        Instruments {
            tokens: meter
                .u64_histogram(TOKEN_USAGE)
                .with_unit("{token}")
                .with_description("Number of input and output tokens used.")
                .with_boundaries(TOKEN_BUCKETS.to_vec())
                .build(),
            duration: meter
                .f64_histogram(OPERATION_DURATION)
                .with_unit("s")
                .with_description("GenAI operation duration.")
                .with_boundaries(SECONDS_BUCKETS.to_vec())
                .build(),
            first_chunk: meter
                .f64_histogram(TIME_TO_FIRST_CHUNK)
                .with_unit("s")
                .with_description(
                    "Time to receive the first chunk, measured from when the client issues the generation request \
                     to when the first chunk is received in the response stream.",
                )
                .with_boundaries(SECONDS_BUCKETS.to_vec())
                .build(),
            cost: meter
                .f64_counter(COST)
                .with_unit("USD")
                .with_description("Cost of the priced LLM calls in US dollars (not a semantic convention).")
                .build(),
        }
    }

    /// The observable health instruments of [`HEALTH`], each reading its counter at collection time.
    fn register_health(meter: &Meter) {
        for &(name, unit, kind, what) in HEALTH {
            let read = reader(name);
            let description = format!("observer health: {what}");
            let observe = move |o: &dyn opentelemetry::metrics::AsyncInstrument<u64>| {
                if let Some(v) = read() {
                    o.observe(v, &[]);
                }
            };
            if kind == "gauge" {
                let _ = meter
                    .u64_observable_gauge(name)
                    .with_unit(unit)
                    .with_description(description)
                    .with_callback(observe)
                    .build();
            } else {
                let _ = meter
                    .u64_observable_counter(name)
                    .with_unit(unit)
                    .with_description(description)
                    .with_callback(observe)
                    .build();
            }
        }
    }

    /// The value a health metric observes now, or `None` (nothing observed: not initialised, no Kafka).
    fn reader(name: &'static str) -> impl Fn() -> Option<u64> + Send + Sync + 'static {
        move || {
            if name.starts_with("observer.audit.") {
                return audit_value(name, &crate::stats()?);
            }
            kafka_value(name)
        }
    }

    /// The field of `s` the audit health metric `name` reads.
    fn audit_value(name: &str, s: &crate::export::DispatchStats) -> Option<u64> {
        Some(match name.strip_prefix("observer.audit.")? {
            "events.accepted" => s.accepted,
            "events.written" => s.written,
            "events.failed" => s.failed,
            "events.rejected" => s.rejected_queue_full,
            "events.sync_failed" => s.sync_failed,
            "sink.errors" => s.sink_errors,
            "sink.panics" => s.sink_panics,
            "queue.depth" => s.pending,
            _ => return None,
        })
    }

    #[cfg(feature = "kafka")]
    fn kafka_value(name: &str) -> Option<u64> {
        kafka_field(name, &crate::kafka_exporter()?.stats())
    }

    /// The field of `k` the Kafka health metric `name` reads.
    #[cfg(feature = "kafka")]
    fn kafka_field(name: &str, k: &crate::export::KafkaStats) -> Option<u64> {
        Some(match name.strip_prefix("observer.kafka.")? {
            "messages.produced" => k.produced,
            "messages.acknowledged" => k.acknowledged,
            "messages.delivery_failures" => k.delivery_failures,
            "messages.spooled" => k.spooled,
            "messages.replayed" => k.replayed,
            "messages.fallback" => k.spool_overflow,
            "messages.rejected" => k.rejected,
            "messages.in_flight" => k.in_flight,
            "spool.records" => k.spool_records,
            "spool.size" => k.spool_bytes,
            "spool.quarantined" => k.spool_quarantined,
            _ => return None,
        })
    }

    #[cfg(not(feature = "kafka"))]
    fn kafka_value(_name: &str) -> Option<u64> {
        None
    }

    /// Exports the metrics now (waits at most `timeout`); a no-op when none are exported.
    pub(in crate::otel) fn flush(timeout: Duration) -> Result<(), ExporterError> {
        let provider = INSTALLED.lock().unwrap_or_else(PoisonError::into_inner).as_ref().map(|i| i.provider.clone());
        let Some(provider) = provider else { return Ok(()) };
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("observer-metrics-flush".into())
            .spawn(move || {
                let _ = tx.send(provider.force_flush());
            })
            .map_err(|source| ExporterError::Io { what: "OpenTelemetry metrics flush thread".into(), source })?;
        match rx.recv_timeout(timeout) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ExporterError::MetricExport(e)),
            Err(_) => Err(ExporterError::FlushTimeout(timeout)),
        }
    }

    /// Exports what is left and shuts the metric exporter down; later LLM calls record nothing. A no-op when
    /// none is installed.
    pub(in crate::otel) fn shutdown(timeout: Duration) -> Result<(), ExporterError> {
        INSTRUMENTS.store(None);
        let Some(installed) = INSTALLED.lock().unwrap_or_else(PoisonError::into_inner).take() else { return Ok(()) };
        let provider = installed.provider;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let spawned = std::thread::Builder::new().name("observer-metrics-shutdown".into()).spawn(move || {
            let _ = tx.send(provider.shutdown_with_timeout(timeout));
        });
        let res = match spawned {
            Err(source) => Err(ExporterError::Io { what: "OpenTelemetry metrics shutdown thread".into(), source }),
            Ok(_) => match rx.recv_timeout(timeout) {
                Ok(r) => r.map_err(ExporterError::MetricShutdown),
                Err(_) => Err(ExporterError::FlushTimeout(timeout)),
            },
        };
        #[cfg(feature = "otel-grpc")]
        if let Some(rt) = installed.runtime {
            rt.shutdown_background();
        }
        res
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn the_buckets_are_the_conventions() {
            // Powers of 4 from 1 to 4^13; doubling from 0.01 s to 81.92 s.
            for (i, b) in TOKEN_BUCKETS.iter().enumerate() {
                assert_eq!(*b, 4f64.powi(i32::try_from(i).unwrap()));
            }
            for (i, b) in SECONDS_BUCKETS.iter().enumerate() {
                assert!((b - 0.01 * 2f64.powi(i32::try_from(i).unwrap())).abs() < 1e-9, "{b}");
            }
        }

        #[test]
        fn every_health_metric_reads_its_own_counter() {
            let s = crate::export::DispatchStats {
                accepted: 1,
                written: 2,
                failed: 3,
                sink_panics: 4,
                rejected_queue_full: 5,
                sink_errors: 6,
                pending: 7,
                sync_failed: 8,
                checkpoints: 9,
                checkpoints_failed: 10,
            };
            let mut seen = Vec::new();
            for &(name, _, kind, _) in HEALTH.iter().filter(|h| h.0.starts_with("observer.audit.")) {
                assert!(kind == "gauge" || kind == "counter", "{name}");
                seen.push(audit_value(name, &s).unwrap_or_else(|| panic!("{name} reads nothing")));
            }
            seen.sort_unstable();
            assert_eq!(seen, [1, 2, 3, 4, 5, 6, 7, 8], "each audit counter once");
            assert_eq!(audit_value("observer.audit.unknown", &s), None);
            #[cfg(feature = "kafka")]
            {
                let k = crate::export::KafkaStats {
                    produced: 1,
                    acknowledged: 2,
                    delivery_failures: 3,
                    spooled: 4,
                    replayed: 5,
                    spool_overflow: 6,
                    rejected: 7,
                    in_flight: 8,
                    spool_records: 9,
                    spool_bytes: 10,
                    spool_quarantined: 11,
                };
                let mut seen: Vec<u64> = HEALTH
                    .iter()
                    .filter(|h| h.0.starts_with("observer.kafka."))
                    .map(|h| kafka_field(h.0, &k).unwrap_or_else(|| panic!("{} reads nothing", h.0)))
                    .collect();
                seen.sort_unstable();
                assert_eq!(seen, (1..=11).collect::<Vec<_>>(), "each Kafka counter once");
            }
            assert_eq!(HEALTH.len(), 19);
        }
    }
}
