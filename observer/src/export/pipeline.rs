//! An audit pipeline as a value: the sinks an [`ObserverConfig`] names, the bounded queue and its dispatcher
//! thread. [`init`](crate::init) starts one for the process; a [`Pipeline`] is one of your own, made the
//! current one for a scope with [`with_pipeline`] / [`with_pipeline_sync`] (as `tracing`'s
//! `subscriber::with_default`).

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::dispatcher::{PipelineSettings, Queue, Refused, Worker};
use super::{DispatchStats, FileSink, Sink, StdoutSink};
use crate::audit::AuditEvent;
use crate::config::{AuditSink, ObserverConfig};
use crate::error::{AuditError, ExporterError, ObserverError};
use crate::scope::guard::{current, ScopeGuard};

/// Extra time a shutdown waits beyond `flush_timeout` for sinks to move undelivered events somewhere durable
/// (the Kafka sink into its spool).
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The service fields of every event, shared so that filling them in is a reference-count increment.
#[derive(Debug, Clone)]
pub(crate) struct ServiceFields {
    name: Arc<str>,
    version: Arc<str>,
    environment: Arc<str>,
}

impl ServiceFields {
    pub(crate) fn new(config: &ObserverConfig) -> Self {
        Self {
            name: config.service_name.as_str().into(),
            version: config.service_version.as_str().into(),
            environment: config.environment.as_str().into(),
        }
    }

    /// Fills in the fields the event does not set itself.
    pub(crate) fn fill(&self, event: &mut AuditEvent) {
        if event.service_name.is_empty() {
            event.service_name = self.name.clone();
        }
        if event.service_version.is_empty() {
            event.service_version = self.version.clone();
        }
        if event.environment.is_empty() {
            event.environment = self.environment.clone();
        }
    }
}

/// The sink `config.audit_sink` names, in `config.audit_format` (`None` for `AuditSink::None`).
pub(crate) fn embedded_sink(config: &ObserverConfig) -> Result<Option<Arc<dyn Sink>>, ExporterError> {
    let format = config.audit_format;
    Ok(match &config.audit_sink {
        AuditSink::File { path, sync } => Some(Arc::new(
            FileSink::open_with_permissions(path.clone(), *sync, config.file_permissions)?.in_format(format),
        )),
        AuditSink::Stdout => Some(Arc::new(StdoutSink::new().in_format(format))),
        AuditSink::Memory(m) => Some(Arc::new(m.clone().in_format(format))),
        AuditSink::None => None,
    })
}

/// What emitters use of a running pipeline: its config, the service fields, the queue, the Kafka exporter.
/// The dispatcher stops once every `Core` is dropped (see [`Queue`]).
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) config: ObserverConfig,
    service: ServiceFields,
    queue: Queue,
    #[cfg(feature = "kafka")]
    pub(crate) kafka: Option<crate::export::KafkaExporter>,
    pub(crate) sink_names: Vec<String>,
    /// The compiled `config.redaction`, applied by the dispatcher and the caller-side fallbacks.
    pub(crate) redactor: crate::redact::Redactor,
}

impl Core {
    /// Opens the sinks `config` names (the embedded sink, `extra_sinks`, Kafka when enabled) and starts the
    /// dispatcher. `config` is used as it is (no environment overrides).
    pub(crate) fn start(config: ObserverConfig) -> Result<(Self, Worker), ObserverError> {
        let redactor = crate::redact::Redactor::new(&config.redaction)?;
        // Before the sinks: a state directory held by another process must not leave files or producers behind.
        let chain = if config.integrity.enabled { Some(crate::integrity::Chain::open(&config)?) } else { None };
        let mut sinks: Vec<Arc<dyn Sink>> = Vec::new();
        if let Some(sink) = embedded_sink(&config)? {
            sinks.push(sink);
        }
        sinks.extend(config.extra_sinks.iter().cloned());
        #[cfg(feature = "kafka")]
        let kafka = if let Some(kafka_config) = &config.kafka {
            let mut kafka_config = kafka_config.clone();
            kafka_config.spool_permissions.get_or_insert(config.file_permissions);
            let exporter = crate::export::KafkaExporter::new(kafka_config)?;
            sinks.push(Arc::new(crate::export::KafkaSink::new(exporter.clone(), config.flush_timeout)));
            Some(exporter)
        } else {
            None
        };
        #[cfg(not(feature = "kafka"))]
        if config.kafka.is_some() {
            return Err(crate::ConfigurationError::new(
                "kafka",
                "this build of observer has no Kafka support; enable the `kafka` cargo feature",
            )
            .into());
        }
        let sink_names = sinks.iter().map(|s| s.name()).collect();
        let settings = PipelineSettings {
            capacity: config.queue_capacity,
            sync_interval: config.sync_interval,
            redactor: redactor.clone(),
        };
        let (queue, worker) = Queue::start(settings, sinks, chain)
            .map_err(|source| ExporterError::Io { what: "dispatcher thread".into(), source })?;
        let service = ServiceFields::new(&config);
        let core = Self {
            config,
            service,
            queue,
            #[cfg(feature = "kafka")]
            kafka,
            sink_names,
            redactor,
        };
        Ok((core, worker))
    }

    /// Fills in the service fields and hands the event to the queue. Returns the event as recorded.
    pub(crate) fn submit(&self, mut event: AuditEvent) -> Result<Arc<AuditEvent>, AuditError> {
        self.service.fill(&mut event);
        let event = Arc::new(event);
        match self.queue.submit(event.clone()) {
            Ok(()) => Ok(event),
            Err(Refused::Full) => Err(AuditError::QueueFull { capacity: self.queue.capacity(), event }),
            Err(Refused::Stopped) => Err(AuditError::WriteFailed { source: ExporterError::ShutDown, event }),
        }
    }

    /// Waits (at most `timeout`) until every event queued so far is written and synced by every sink, and
    /// with Kafka acknowledged by the broker (or spooled).
    pub(crate) fn flush(&self, timeout: Duration) -> Result<(), ExporterError> {
        #[cfg_attr(not(feature = "kafka"), allow(unused_variables))]
        let deadline = Instant::now() + timeout;
        self.queue.flush(timeout)?;
        #[cfg(feature = "kafka")]
        if let Some(k) = &self.kafka {
            k.flush(deadline.saturating_duration_since(Instant::now()))?;
        }
        Ok(())
    }

    pub(crate) fn stats(&self) -> DispatchStats {
        self.queue.stats()
    }

    /// How long stopping this pipeline may take: `flush_timeout` for the sinks plus the grace for spooling.
    pub(crate) fn stop_timeout(&self) -> Duration {
        self.config.flush_timeout + SHUTDOWN_GRACE
    }
}

/// An audit pipeline of your own: the sinks an [`ObserverConfig`] names (`audit_sink`, `extra_sinks`, Kafka
/// when enabled), a bounded queue and a dispatcher thread, exactly as [`observer::init`](crate::init) starts
/// for the process, but not global. Audit events emitted inside [`with_pipeline`] / [`with_pipeline_sync`]
/// go to it instead of the process's pipeline.
///
/// Made for tests: each test gets its own sinks, counters and failures, so tests that configure the pipeline
/// differently run in parallel in one test binary.
///
/// ```
/// use std::time::Duration;
/// use observer::export::{self, MemorySink, Pipeline};
/// use observer::{audit, AuditSink, ObserverConfig, ResourceType};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let sink = MemorySink::new();
/// let pipeline = Pipeline::new(ObserverConfig {
///     service_name: "under-test".into(),
///     audit_sink: AuditSink::Memory(sink.clone()),
///     ..Default::default()
/// })?;
/// export::with_pipeline_sync(&pipeline, || audit::log_read(ResourceType::Document, "doc-1").emit())?;
/// pipeline.flush(Duration::from_secs(5))?;
/// assert_eq!(sink.events()[0].service_name.as_ref(), "under-test");
/// assert_eq!(pipeline.stats().written, 1);
/// # Ok(())
/// # }
/// ```
///
/// Dropping it drains it like the [`ObserverGuard`](crate::ObserverGuard): what is queued is written and the
/// sinks are shut down (waiting at most `flush_timeout` plus a grace period for Kafka's spool).
/// Environment variables do not apply to it, and it does not set up OpenTelemetry export (that stays with
/// `init`).
#[derive(Debug)]
pub struct Pipeline {
    // Declared before `stop`: dropped first, so that the dispatcher sees its queue closed.
    core: Arc<Core>,
    stop: Stop,
}

/// Waits for the dispatcher when its [`Pipeline`] is dropped.
#[derive(Debug)]
struct Stop {
    worker: Worker,
    timeout: Duration,
}

impl Drop for Stop {
    fn drop(&mut self) {
        if let Err(e) = self.worker.wait(self.timeout) {
            crate::diag::report!(ERROR, "shutdown-incomplete", "audit pipeline shutdown did not complete: {e}");
        }
    }
}

impl Pipeline {
    /// Validates `config`, opens its sinks and starts the dispatcher.
    ///
    /// # Errors
    /// [`ConfigurationError`](crate::ConfigurationError) naming the invalid field, or [`ExporterError`] when
    /// a sink cannot be opened.
    pub fn new(config: ObserverConfig) -> Result<Self, ObserverError> {
        config.validate()?;
        let (core, worker) = Core::start(config)?;
        let timeout = core.stop_timeout();
        Ok(Self { core: Arc::new(core), stop: Stop { worker, timeout } })
    }

    /// Where its events go, e.g. `["memory"]`.
    pub fn sink_names(&self) -> &[String] {
        &self.core.sink_names
    }

    /// Its counters.
    pub fn stats(&self) -> DispatchStats {
        self.core.stats()
    }

    /// Waits (at most `timeout`) until every event emitted into it so far is written and synced by every
    /// sink (with Kafka: acknowledged or spooled).
    ///
    /// # Errors
    /// The first sink failure since the previous flush, or [`ExporterError::FlushTimeout`].
    pub fn flush(&self, timeout: Duration) -> Result<(), ExporterError> {
        self.core.flush(timeout)
    }

    /// Drains it and shuts the sinks down now, returning any error instead of reporting it on drop. Waits
    /// until scopes still using it (a [`with_pipeline`] future not yet dropped) have ended, at most
    /// `flush_timeout` plus a grace period.
    ///
    /// # Errors
    /// The first sink failure since the previous flush, or [`ExporterError::FlushTimeout`].
    pub fn shutdown(self) -> Result<(), ExporterError> {
        let Pipeline { core, mut stop } = self;
        drop(core);
        stop.worker.wait(stop.timeout)
    }
}

thread_local! {
    /// The pipeline of the innermost [`with_pipeline`] / [`with_pipeline_sync`] scope on this thread.
    pub(crate) static CURRENT: RefCell<Option<Arc<Core>>> = const { RefCell::new(None) };
}

/// The pipeline of the current scope, if any.
pub(crate) fn current_pipeline() -> Option<Arc<Core>> {
    current(&CURRENT)
}

/// Runs `fut` with `pipeline` as the current audit pipeline of the task: audit events emitted while it is
/// polled go to `pipeline`, not to the process's. The future form; [`with_pipeline_sync`] takes a closure.
/// A task spawned inside gets it with [`in_current_scope`](crate::ScopeExt::in_current_scope).
pub fn with_pipeline<F: Future>(pipeline: &Pipeline, fut: F) -> WithPipeline<F> {
    WithPipeline { slot: Some(Arc::clone(&pipeline.core)), fut }
}

/// Runs `f` with `pipeline` as the current audit pipeline of the thread (see [`with_pipeline`]).
pub fn with_pipeline_sync<R>(pipeline: &Pipeline, f: impl FnOnce() -> R) -> R {
    let mut slot = Some(Arc::clone(&pipeline.core));
    let _guard = ScopeGuard::enter(&CURRENT, &mut slot);
    f()
}

pin_project_lite::pin_project! {
    /// The future of [`with_pipeline`].
    #[must_use = "futures do nothing unless polled"]
    #[derive(Debug)]
    pub struct WithPipeline<F> {
        slot: Option<Arc<Core>>,
        #[pin]
        fut: F,
    }
}

impl<F: Future> Future for WithPipeline<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _guard = ScopeGuard::enter(&CURRENT, this.slot);
        this.fut.poll(cx)
    }
}
