//! OTLP over gRPC (feature `otel-grpc`). tonic needs a Tokio runtime for its connection tasks and timers, but the
//! SDK's batch processor runs exports on a plain thread. The exporter is built inside a small dedicated runtime,
//! and every export runs on it (`Handle::block_on` from the processor's thread), so gRPC works from any `main`.

use std::time::Duration;

use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use crate::error::{ExporterError, ObserverError};

#[derive(Debug)]
pub(super) struct OnRuntime {
    inner: opentelemetry_otlp::SpanExporter,
    handle: tokio::runtime::Handle,
}

impl SpanExporter for OnRuntime {
    fn export(&self, batch: Vec<SpanData>) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        // Called on the batch processor's own thread (never inside a Tokio runtime).
        std::future::ready(self.handle.block_on(self.inner.export(batch)))
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.inner.set_resource(resource);
    }
}

pub(super) fn exporter(endpoint: &str) -> Result<(OnRuntime, tokio::runtime::Runtime), ObserverError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("observer-otlp-grpc")
        .enable_all()
        .build()
        .map_err(|e| ExporterError::Io { what: "OTLP gRPC runtime".into(), source: e })?;
    let inner = {
        let _enter = runtime.enter();
        opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_protocol(opentelemetry_otlp::Protocol::Grpc)
            .with_endpoint(endpoint)
            .build()
            .map_err(ObserverError::from)?
    };
    Ok((OnRuntime { inner, handle: runtime.handle().clone() }, runtime))
}

/// The metric exporter on its own runtime, as [`OnRuntime`] for spans: the periodic reader exports from its own
/// thread (never inside a Tokio runtime).
#[derive(Debug)]
pub(super) struct MetricsOnRuntime {
    inner: opentelemetry_otlp::MetricExporter,
    handle: tokio::runtime::Handle,
}

impl opentelemetry_sdk::metrics::exporter::PushMetricExporter for MetricsOnRuntime {
    fn export(
        &self,
        metrics: &opentelemetry_sdk::metrics::data::ResourceMetrics,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        std::future::ready(self.handle.block_on(self.inner.export(metrics)))
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> opentelemetry_sdk::metrics::Temporality {
        self.inner.temporality()
    }
}

pub(super) fn metric_exporter(endpoint: &str) -> Result<(MetricsOnRuntime, tokio::runtime::Runtime), ObserverError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("observer-otlp-grpc-metrics")
        .enable_all()
        .build()
        .map_err(|e| ExporterError::Io { what: "OTLP gRPC metrics runtime".into(), source: e })?;
    let inner = {
        let _enter = runtime.enter();
        opentelemetry_otlp::MetricExporter::builder()
            .with_tonic()
            .with_protocol(opentelemetry_otlp::Protocol::Grpc)
            .with_endpoint(endpoint)
            .build()
            .map_err(ObserverError::from)?
    };
    Ok((MetricsOnRuntime { inner, handle: runtime.handle().clone() }, runtime))
}
