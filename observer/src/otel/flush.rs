//! Flush and shutdown of the installed span exporter (used by `observer::flush`, the guard's drop and
//! `observer::shutdown`).

use std::sync::mpsc;
use std::time::Duration;

use super::pipeline;
use crate::error::ExporterError;

/// Exports every span that has ended so far, then the metrics (waits at most `timeout` in all). A no-op when
/// nothing is exported.
/// [`observer::flush`](crate::flush) calls it (the one public flush of the spans).
///
/// # Errors
/// [`ExporterError::FlushTimeout`], or [`ExporterError::SpanExport`] / [`ExporterError::MetricExport`] when the
/// export failed (e.g. the collector is unreachable).
pub(crate) fn flush_tracing(timeout: Duration) -> Result<(), ExporterError> {
    let deadline = std::time::Instant::now() + timeout;
    let spans = flush_spans(timeout);
    // Then the metrics (GenAI and health), in what is left of `timeout`.
    let metrics = super::metrics::flush(deadline.saturating_duration_since(std::time::Instant::now()));
    spans.and(metrics)
}

fn flush_spans(timeout: Duration) -> Result<(), ExporterError> {
    let Some(provider) = pipeline::provider() else {
        return Ok(());
    };
    // `force_flush` has no timeout parameter (the SDK bounds it at 5 s): wait for it on a helper thread.
    let (tx, rx) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("observer-otel-flush".into())
        .spawn(move || {
            let _ = tx.send(provider.force_flush());
        })
        .map_err(|source| ExporterError::Io { what: "OpenTelemetry flush thread".into(), source })?;
    match rx.recv_timeout(timeout) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(ExporterError::SpanExport(e)),
        Err(_) => Err(ExporterError::FlushTimeout(timeout)),
    }
}

/// Flushes and shuts the span exporter and the metric exporter down, waiting at most 10 s. Spans that end later
/// are dropped, and LLM calls made later are not counted in the metrics.
/// The [`ObserverGuard`](crate::ObserverGuard)'s drop does the same (bounded by `flush_timeout`).
///
/// # Errors
/// As [`shutdown_tracing_with_timeout`].
#[cfg_attr(docsrs, doc(cfg(feature = "otel")))]
pub fn shutdown_tracing() -> Result<(), ExporterError> {
    shutdown_tracing_with_timeout(Duration::from_secs(10))
}

/// [`shutdown_tracing`] waiting at most `timeout`. A no-op when nothing is exported or it was already shut down.
///
/// # Errors
/// [`ExporterError::SpanShutdown`] (or [`ExporterError::MetricShutdown`]) when the last export failed or did not
/// finish in time.
#[cfg_attr(docsrs, doc(cfg(feature = "otel")))]
pub fn shutdown_tracing_with_timeout(timeout: Duration) -> Result<(), ExporterError> {
    // The metric exporter too (its last export; health metrics are observed only while `init`'s pipeline runs).
    let metrics = super::metrics::shutdown(timeout);
    let Some(installed) = pipeline::take() else {
        return metrics;
    };
    let res = installed.provider.shutdown_with_timeout(timeout);
    #[cfg(feature = "otel-grpc")]
    if let Some(rt) = installed.runtime {
        // Never blocks, so it is fine inside an async context too.
        rt.shutdown_background();
    }
    res.map_err(ExporterError::SpanShutdown).and(metrics)
}
