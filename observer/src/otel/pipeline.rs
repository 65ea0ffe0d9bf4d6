//! The export pipeline behind the layer: OTLP (HTTP/protobuf or gRPC) and Kafka span exporters, the tracer
//! provider with its resource, and the one installed provider that flush and shutdown reach.

use std::sync::{Mutex, PoisonError};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;

use crate::config::{OtlpProtocol, TraceSampler, TracingConfig};
use crate::error::{ConfigurationError, ObserverError};
#[cfg(doc)]
use crate::trace::{configure_tracing, otel_layer};

/// The tracer provider that [`configure_tracing`] / [`otel_layer`] installed, kept so that flush and shutdown
/// reach its batch processor.
pub(super) struct Installed {
    pub(super) provider: SdkTracerProvider,
    #[cfg(feature = "otel-grpc")]
    pub(super) runtime: Option<tokio::runtime::Runtime>,
}

static INSTALLED: Mutex<Option<Installed>> = Mutex::new(None);
const SCOPE: &str = "observer";

/// Whether `config` exports spans anywhere: an OTLP endpoint (resolved) or a Kafka topic.
pub(super) fn exports(config: &TracingConfig, endpoint: Option<&str>) -> bool {
    endpoint.is_some() || config.kafka_topic.is_some()
}

/// Builds the exporters and tracer provider: OTLP to `endpoint` (already resolved) when set, and Kafka when
/// [`TracingConfig::kafka_topic`] is set. Every exporter redacts its spans (the OTLP ones through
/// [`RedactingSpanExporter`](super::RedactingSpanExporter), the Kafka one by itself).
pub(super) fn build(config: &TracingConfig, endpoint: Option<&str>) -> Result<Installed, ObserverError> {
    let builder = SdkTracerProvider::builder().with_resource(resource(config)).with_sampler(sampler(config.sampler));
    #[cfg(feature = "otel-kafka")]
    let builder = if let Some(topic) = &config.kafka_topic {
        let kafka = crate::kafka_exporter().ok_or_else(|| {
            ConfigurationError::new(
                "kafka_topic",
                "no shared Kafka exporter: call observer::init with a Kafka config (`kafka: Some(..)`) before \
                 configuring tracing, or add a KafkaSpanExporter built from your own KafkaExporter to your own tracer \
                 provider",
            )
        })?;
        builder.with_batch_exporter(crate::export::kafka::otlp::KafkaSpanExporter::new(kafka, topic.as_str())?)
    } else {
        builder
    };
    let Some(endpoint) = endpoint else {
        return Ok(Installed {
            provider: builder.build(),
            #[cfg(feature = "otel-grpc")]
            runtime: None,
        });
    };
    let installed = match config.protocol {
        OtlpProtocol::HttpProtobuf => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(endpoint)
                .build()
                .map_err(ObserverError::from)?;
            Installed {
                provider: builder.with_batch_exporter(super::RedactingSpanExporter::new(exporter)).build(),
                #[cfg(feature = "otel-grpc")]
                runtime: None,
            }
        }
        #[cfg(feature = "otel-grpc")]
        OtlpProtocol::Grpc => {
            let (exporter, runtime) = super::grpc::exporter(endpoint)?;
            let exporter = super::RedactingSpanExporter::new(exporter);
            Installed { provider: builder.with_batch_exporter(exporter).build(), runtime: Some(runtime) }
        }
        #[cfg(not(feature = "otel-grpc"))]
        OtlpProtocol::Grpc => {
            return Err(ConfigurationError::new("protocol", "OTLP gRPC needs the `otel-grpc` cargo feature").into())
        }
    };
    Ok(installed)
}

/// The resource of every exported span and metric: the service fields, the extra attributes and the SDK's own.
pub(super) fn resource(config: &TracingConfig) -> Resource {
    let extra = config.resource_attributes.iter().map(|(k, v)| KeyValue::new(k.clone(), v.clone()));
    Resource::builder_empty()
        .with_detector(Box::new(opentelemetry_sdk::resource::TelemetryResourceDetector))
        .with_attributes(extra)
        .with_attributes([
            KeyValue::new("service.name", config.service_name.clone()),
            KeyValue::new("service.version", config.service_version.clone()),
            KeyValue::new("deployment.environment", config.environment.clone()),
            KeyValue::new("deployment.environment.name", config.environment.clone()),
        ])
        .build()
}

/// The SDK sampler of a [`TraceSampler`].
fn sampler(s: TraceSampler) -> Sampler {
    match s {
        TraceSampler::AlwaysOn => Sampler::AlwaysOn,
        TraceSampler::AlwaysOff => Sampler::AlwaysOff,
        TraceSampler::TraceIdRatio(r) => Sampler::TraceIdRatioBased(r),
        TraceSampler::ParentBasedAlwaysOn => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
        TraceSampler::ParentBasedAlwaysOff => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
        TraceSampler::ParentBasedTraceIdRatio(r) => Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(r))),
        // `TraceSampler` is non-exhaustive for callers only.
    }
}

/// The tracer of this crate's instrumentation scope.
pub(super) fn tracer(provider: &SdkTracerProvider) -> SdkTracer {
    provider.tracer_with_scope(InstrumentationScope::builder(SCOPE).with_version(env!("CARGO_PKG_VERSION")).build())
}

/// Makes `installed` the global tracer provider (with the W3C trace-context propagator) and keeps it for
/// flush and shutdown.
pub(super) fn publish(installed: Installed) {
    opentelemetry::global::set_tracer_provider(installed.provider.clone());
    opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
    *INSTALLED.lock().unwrap_or_else(PoisonError::into_inner) = Some(installed);
}

/// Whether a tracer provider is installed (and not shut down).
pub(super) fn already_exporting() -> bool {
    INSTALLED.lock().unwrap_or_else(PoisonError::into_inner).is_some()
}

/// Takes the installed provider out (shutdown), leaving none.
pub(super) fn take() -> Option<Installed> {
    INSTALLED.lock().unwrap_or_else(PoisonError::into_inner).take()
}

/// A handle on the installed provider (flush), if any.
pub(super) fn provider() -> Option<SdkTracerProvider> {
    INSTALLED.lock().unwrap_or_else(PoisonError::into_inner).as_ref().map(|i| i.provider.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resource_names_the_service_and_the_extra_attributes() {
        let config = TracingConfig {
            service_name: "svc".into(),
            environment: "staging".into(),
            resource_attributes: vec![("team".into(), "a,b c".into())],
            ..Default::default()
        };
        let r = resource(&config);
        assert_eq!(r.get(&"service.name".into()), Some("svc".into()));
        assert_eq!(r.get(&"deployment.environment".into()), Some("staging".into()));
        assert_eq!(r.get(&"deployment.environment.name".into()), Some("staging".into()));
        assert_eq!(r.get(&"team".into()), Some("a,b c".into()));
        assert!(r.get(&"telemetry.sdk.name".into()).is_some());
    }
}
