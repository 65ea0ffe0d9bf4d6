//! [`init`] / [`configure`], the process-wide pipeline, and the [`ObserverGuard`] that drains it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

use crate::audit::AuditEvent;
use crate::config::{AuditSink, ObserverConfig};
use crate::error::{AuditError, ExporterError, ObserverError};
use crate::export::{DispatchStats, FileSink, Pipeline, PipelineSettings, Sink, StdoutSink};

/// The initialised SDK: config, pipeline and derived settings.
#[derive(Debug)]
pub(crate) struct Runtime {
    pub(crate) config: ObserverConfig,
    service: ServiceFields,
    pipeline: Pipeline,
    #[cfg(feature = "kafka")]
    kafka: Option<crate::export::KafkaExporter>,
    sink_names: Vec<String>,
}

/// Extra time the guard waits beyond `flush_timeout` for sinks to move undelivered events somewhere durable.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

static RUNTIME: ArcSwapOption<Runtime> = ArcSwapOption::const_empty();
static INIT_LOCK: Mutex<()> = Mutex::new(());

/// Whether [`init`] started the pipeline or found it already running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InitStatus {
    /// This call initialised the SDK; its guard drains the pipeline when dropped.
    Initialized,
    /// The SDK was already initialised; this call's config was ignored and its guard does nothing on drop.
    AlreadyInitialized,
}

/// Returned by [`init`]. Dropping it flushes every pending audit event to the sinks (waiting at most
/// `ObserverConfig::flush_timeout`) and shuts the pipeline down; keep it alive in `main`:
///
/// ```no_run
/// fn main() -> Result<(), observer::ObserverError> {
///     let _guard = observer::init(observer::ObserverConfig::default())?;
///     // ... the application ...
///     Ok(())
/// } // events are flushed here
/// ```
///
/// `let _ = observer::init(..)` drops it at once: the SDK then says so on stderr at the next event. Where `main`
/// does not return normally, use [`observer::exit`](crate::exit) instead of `std::process::exit`, and
/// [`shutdown_on_signals`](crate::shutdown_on_signals) or [`shutdown_signal`](crate::shutdown_signal) for
/// SIGTERM / SIGINT: they drain the same way.
#[must_use = "dropping the guard immediately shuts the audit pipeline down; bind it: `let _guard = observer::init(..)?;`"]
#[derive(Debug)]
pub struct ObserverGuard {
    /// Weak, so that [`shutdown`] can stop the pipeline while the guard lives on in `main`.
    runtime: Option<Weak<Runtime>>,
    sink_names: Vec<String>,
    status: InitStatus,
    created: Instant,
}

/// A guard dropped sooner than this after `init`, with no event emitted, was most likely not bound.
const DROPPED_AT_ONCE: Duration = Duration::from_millis(100);

/// Set when the last guard was dropped that way; the next event emitted without a pipeline reports it.
static DROPPED_AT_ONCE_AFTER_INIT: AtomicBool = AtomicBool::new(false);

fn report_guard_dropped_at_once() {
    if DROPPED_AT_ONCE_AFTER_INIT.swap(false, Ordering::Relaxed) {
        crate::diag::report_loud(
            "guard-dropped",
            format_args!(
                "an audit event was emitted after the ObserverGuard had been dropped right after observer::init, \
                 so the pipeline is shut down: events are written synchronously to the audit file or stdout sink \
                 only (Kafka and extra sinks get nothing). Keep the guard alive in `main`: \
                 `let _guard = observer::init(..)?;` (`let _ = ..` drops it at once)"
            ),
        );
    }
}

impl ObserverGuard {
    /// Whether this guard's [`init`] call initialised the SDK or was ignored.
    pub fn status(&self) -> InitStatus {
        self.status
    }

    /// Where audit events go, e.g. `["file observer-audit.jsonl"]` (empty for an ignored init).
    pub fn sink_names(&self) -> &[String] {
        &self.sink_names
    }

    /// Waits until every event emitted so far has been written and synced (at most `timeout`).
    pub fn flush(&self, timeout: Duration) -> Result<(), ExporterError> {
        flush(timeout)
    }

    /// Drains and stops the pipeline now, returning any error instead of reporting it on drop.
    pub fn shutdown(mut self) -> Result<(), ExporterError> {
        match self.runtime.take() {
            Some(rt) => stop(Some(&rt)),
            None => Ok(()),
        }
    }
}

impl Drop for ObserverGuard {
    fn drop(&mut self) {
        let Some(rt) = self.runtime.take() else { return };
        if self.created.elapsed() < DROPPED_AT_ONCE && rt.upgrade().is_some_and(|r| r.pipeline.stats().accepted == 0) {
            // Most likely `let _ = observer::init(..)`; said loudly at the first event emitted after it (a short
            // program that emits nothing is fine).
            DROPPED_AT_ONCE_AFTER_INIT.store(true, Ordering::Relaxed);
        }
        if let Err(e) = stop(Some(&rt)) {
            crate::diag::report!(ERROR, "shutdown-incomplete", "shutdown did not complete: {e}");
        }
    }
}

/// Drains and stops the audit pipeline now, exactly as dropping the [`ObserverGuard`] does (waiting at most
/// `ObserverConfig::flush_timeout` for the sinks, plus a grace period for moving undelivered Kafka events into
/// the spool; spans are exported first with the `otel` feature). The guard's later drop does nothing. Events
/// emitted afterwards are written synchronously (as before [`init`]). A no-op when the SDK is not initialised.
///
/// For code paths that end the process without returning from `main`; see also [`exit`].
///
/// # Errors
/// [`ExporterError`] when events could not all be delivered in time (they went to the fallbacks the sinks
/// document: stderr, the Kafka spool).
pub fn shutdown() -> Result<(), ExporterError> {
    stop(None)
}

/// [`shutdown`], then [`std::process::exit`]`(code)`: use it instead of `std::process::exit`, which skips the
/// guard's drop and loses the events still queued. A shutdown error is reported on stderr.
pub fn exit(code: i32) -> ! {
    if let Err(e) = shutdown() {
        crate::diag::report!(ERROR, "shutdown-incomplete", "shutdown before exit did not complete: {e}");
    }
    std::process::exit(code)
}

/// Stops the running pipeline: any (`None`), or only the one `ours` belongs to.
fn stop(ours: Option<&Weak<Runtime>>) -> Result<(), ExporterError> {
    // Serialised with `init` and with other stops: a second caller waits until the first finished draining.
    let _lock = INIT_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(rt) = RUNTIME.load_full() else { return Ok(()) };
    if ours.is_some_and(|w| !std::ptr::eq(w.as_ptr(), Arc::as_ptr(&rt))) {
        return Ok(());
    }
    shutdown_runtime(rt)
}

fn shutdown_runtime(rt: Arc<Runtime>) -> Result<(), ExporterError> {
    // Unpublish the runtime so that new events take the synchronous path, then wait until emitters that loaded
    // it before have handed their events over.
    RUNTIME.store(None);
    let deadline = Instant::now() + Duration::from_secs(1);
    while Arc::strong_count(&rt) > 1 && Instant::now() < deadline {
        std::thread::yield_now();
    }
    // First the OpenTelemetry span exporter, if `configure_tracing` installed one (bounded by `flush_timeout`):
    // spans exported to Kafka still find the shared producer alive.
    #[cfg(feature = "otel")]
    let traced = crate::trace::shutdown_tracing_with_timeout(rt.config.flush_timeout);
    #[cfg(not(feature = "otel"))]
    let traced = Ok(());
    // Then the sinks: they get `flush_timeout` to deliver; the grace covers the Kafka sink moving what is left
    // into its spool after that.
    let res = rt.pipeline.shutdown(rt.config.flush_timeout + SHUTDOWN_GRACE).and(traced);
    let stats = rt.pipeline.stats();
    if stats.rejected_queue_full > 0 || stats.sink_errors > 0 || stats.pending > 0 {
        crate::diag::report!(
            WARN,
            "shutdown-problems",
            "shut down with problems: {} events rejected because the queue was full, {} sink errors, {} events \
             still pending",
            stats.rejected_queue_full,
            stats.sink_errors,
            stats.pending
        );
    }
    res
}

/// Initialises the SDK: applies [environment overrides](ObserverConfig::apply_env), validates the config,
/// opens the sinks and starts the background dispatcher.
///
/// Idempotent: while the SDK is initialised, a later call changes nothing, logs a warning and returns a guard
/// whose [`status`](ObserverGuard::status) is [`InitStatus::AlreadyInitialized`]. After the first guard is
/// dropped the SDK may be initialised again.
///
/// With the `otel` feature, `init` also sets up span export when an OTLP endpoint is configured
/// (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, the other standard `OTEL_*` variables
/// apply) or `send_to_logfire` is set: what `observer::trace::configure_tracing` with
/// `TracingConfig::from_observer(&config)` installs (with `send_to_logfire` and no endpoint: the OTLP default
/// endpoint, `http://localhost:4318`), shut down by the guard. It leaves tracing alone when
/// `configure_tracing` / `otel_layer` ran before, and when the application installed a global `tracing`
/// subscriber of its own (a warning then says to add `otel_layer` to it).
///
/// # Errors
/// [`ConfigurationError`](crate::ConfigurationError) naming the invalid field (or `OTEL_*` variable), or
/// [`ExporterError`] if the audit file cannot be opened.
pub fn init(config: ObserverConfig) -> Result<ObserverGuard, ObserverError> {
    let _lock = INIT_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(existing) = RUNTIME.load_full() {
        crate::diag::report!(
            WARN,
            "init-ignored",
            "observer::init called again while already initialised (service `{}`); the new config (service `{}`) \
             is ignored",
            existing.config.service_name,
            config.service_name
        );
        return Ok(ObserverGuard {
            runtime: None,
            sink_names: Vec::new(),
            status: InitStatus::AlreadyInitialized,
            created: Instant::now(),
        });
    }
    let config = config.apply_env()?;
    config.validate()?;
    // With an OTLP endpoint (or `send_to_logfire`), the span exporter too; the guard shuts it down.
    #[cfg(feature = "otel")]
    crate::otel::configure_from_init(&config)?;
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
        exporter.initialize();
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
    let settings = PipelineSettings { capacity: config.queue_capacity, sync_interval: config.sync_interval };
    let pipeline = Pipeline::start(settings, sinks)
        .map_err(|source| ExporterError::Io { sink: "dispatcher thread".into(), source })?;
    // Decoding the bundled price table takes ~150 ms: do it off the caller's path.
    crate::cost::warm_up_in_background();
    let service = ServiceFields::new(&config);
    let runtime = Arc::new(Runtime {
        config,
        service,
        pipeline,
        #[cfg(feature = "kafka")]
        kafka,
        sink_names,
    });
    fallback::configure(&runtime.config);
    DROPPED_AT_ONCE_AFTER_INIT.store(false, Ordering::Relaxed);
    RUNTIME.store(Some(runtime.clone()));
    tracing::debug!(target: "observer", service = %runtime.config.service_name, sinks = ?runtime.sink_names, "observer initialised");
    Ok(ObserverGuard {
        runtime: Some(Arc::downgrade(&runtime)),
        sink_names: runtime.sink_names.clone(),
        status: InitStatus::Initialized,
        created: Instant::now(),
    })
}

/// The guide's `configure(config)`: the same as [`init`].
pub fn configure(config: ObserverConfig) -> Result<ObserverGuard, ObserverError> {
    init(config)
}

fn embedded_sink(config: &ObserverConfig) -> Result<Option<Arc<dyn Sink>>, ExporterError> {
    Ok(match &config.audit_sink {
        AuditSink::File { path, sync } => {
            Some(Arc::new(FileSink::open_with_permissions(path.clone(), *sync, config.file_permissions)?))
        }
        AuditSink::Stdout => Some(Arc::new(StdoutSink::new())),
        AuditSink::Memory(m) => Some(Arc::new(m.clone())),
        AuditSink::None => None,
    })
}

/// Whether [`init`] has been called (and its guard not yet dropped).
pub fn is_initialized() -> bool {
    RUNTIME.load().is_some()
}

/// Counters of the audit pipeline, or `None` before [`init`].
pub fn stats() -> Option<DispatchStats> {
    RUNTIME.load().as_ref().map(|r| r.pipeline.stats())
}

/// Waits until every audit event emitted so far is written and synced by every sink (at most `timeout`).
/// Before [`init`] events are written synchronously, so there is nothing to wait for.
///
/// With Kafka enabled this also waits until the broker acknowledged them (or they were spooled).
///
/// With the `otel` feature this also exports the spans that have ended (see
/// `observer::trace::flush_tracing`), with or without `init`.
pub fn flush(timeout: Duration) -> Result<(), ExporterError> {
    let deadline = Instant::now() + timeout;
    // Spans first (they may be exported to Kafka), then audit events, then Kafka's acknowledgements of both.
    #[cfg(feature = "otel")]
    let traced = crate::trace::flush_tracing(timeout);
    #[cfg(not(feature = "otel"))]
    let traced: Result<(), ExporterError> = Ok(());
    if let Some(rt) = RUNTIME.load_full() {
        rt.pipeline.flush(deadline.saturating_duration_since(Instant::now()))?;
        #[cfg(feature = "kafka")]
        if let Some(k) = &rt.kafka {
            k.flush(deadline.saturating_duration_since(Instant::now()))?;
        }
    }
    traced
}

/// The process's shared Kafka exporter (one producer per process), when `init` enabled Kafka. Tracers and
/// direct exports should use it instead of creating producers of their own.
#[cfg(feature = "kafka")]
#[cfg_attr(docsrs, doc(cfg(feature = "kafka")))]
pub fn kafka_exporter() -> Option<crate::export::KafkaExporter> {
    RUNTIME.load().as_ref().and_then(|r| r.kafka.clone())
}

/// `(instrument_openai, instrument_anthropic, log_llm_interactions)` of the running config, `None` before [`init`].
#[cfg(feature = "llm-http")]
pub(crate) fn llm_http_flags() -> Option<(bool, bool, bool)> {
    let rt = RUNTIME.load();
    rt.as_ref().map(|r| (r.config.instrument_openai, r.config.instrument_anthropic, r.config.log_llm_interactions))
}

/// The configured Keycloak claim mappings (the defaults before [`init`]).
pub(crate) fn claim_mappings() -> crate::ClaimMappings {
    RUNTIME.load().as_ref().map(|r| r.config.keycloak_claim_mappings.clone()).unwrap_or_default()
}

/// Hands a finished event to the pipeline (filling in the service fields), or writes it synchronously when
/// the SDK is not initialised. Returns the event as recorded.
pub(crate) fn submit(mut event: AuditEvent) -> Result<Arc<AuditEvent>, AuditError> {
    let guard = RUNTIME.load();
    match guard.as_ref() {
        Some(rt) => {
            fill_service(&mut event, &rt.service);
            let event = Arc::new(event);
            match rt.pipeline.submit(event.clone()) {
                Ok(()) => Ok(event),
                Err(AuditError::WriteFailed { source: ExporterError::ShutDown, event }) => {
                    drop(guard);
                    fallback::write(Arc::unwrap_or_clone(event))
                }
                Err(e) => Err(e),
            }
        }
        None => {
            drop(guard);
            report_guard_dropped_at_once();
            fallback::write(event)
        }
    }
}

/// The service fields of every event, shared so that filling them in is a reference-count increment.
#[derive(Debug, Clone)]
pub(crate) struct ServiceFields {
    name: Arc<str>,
    version: Arc<str>,
    environment: Arc<str>,
}

impl ServiceFields {
    fn new(config: &ObserverConfig) -> Self {
        Self {
            name: config.service_name.as_str().into(),
            version: config.service_version.as_str().into(),
            environment: config.environment.as_str().into(),
        }
    }
}

fn fill_service(event: &mut AuditEvent, service: &ServiceFields) {
    if event.service_name.is_empty() {
        event.service_name = service.name.clone();
    }
    if event.service_version.is_empty() {
        event.service_version = service.version.clone();
    }
    if event.environment.is_empty() {
        event.environment = service.environment.clone();
    }
}

/// Events emitted before [`init`] are written synchronously to the sink the environment names
/// (`OBSERVER_AUDIT_FILE`, `OBSERVER_AUDIT_SINK`; default the file
/// [`AuditSink::DEFAULT_FILE`]); events emitted after the guard is dropped go,
/// synchronously too, to the embedded sink the last [`init`] configured (its file, with its permissions and
/// service fields; with `AuditSink::None`, to the stderr fallback). Each with a one-time warning. Slower, but
/// nothing is lost.
mod fallback {
    use super::*;
    use crate::export::Record;

    struct Fallback {
        service: ServiceFields,
        /// `None`: the stderr fallback.
        sink: Option<Arc<dyn Sink>>,
    }

    static FALLBACK: Mutex<Option<Fallback>> = Mutex::new(None);
    /// The config of the last `init`, for events emitted after its guard is dropped.
    static CONFIGURED: Mutex<Option<ObserverConfig>> = Mutex::new(None);

    /// Called by `init`: later fallback writes (after its guard is dropped) go to `config`'s embedded sink.
    pub(super) fn configure(config: &ObserverConfig) {
        let config = ObserverConfig { extra_sinks: Vec::new(), kafka: None, ..config.clone() };
        *CONFIGURED.lock().unwrap_or_else(PoisonError::into_inner) = Some(config);
        // Opened again on first use, so that a pre-init writer does not keep its file open.
        *FALLBACK.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    fn open() -> Fallback {
        let configured = CONFIGURED.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let after_init = configured.is_some();
        let config = configured.unwrap_or_else(|| {
            ObserverConfig::from_env().unwrap_or_else(|e| {
                eprintln!("observer: ignoring invalid environment for the pre-init audit writer: {e}");
                ObserverConfig::default()
            })
        });
        let sink: Option<Arc<dyn Sink>> = match embedded_sink(&config) {
            Ok(Some(s)) => Some(s),
            // `AuditSink::None` after `init`: the stderr fallback; before `init`: stdout, as always.
            Ok(None) if after_init => None,
            Ok(None) => Some(Arc::new(StdoutSink::new())),
            Err(e) => {
                eprintln!("observer: {e}; these audit events go to the stderr fallback");
                None
            }
        };
        let name = sink.as_ref().map_or_else(|| "stderr (observer-audit-fallback: lines)".to_owned(), |s| s.name());
        let when = if after_init { "after the observer guard was dropped" } else { "without observer::init" };
        crate::diag::report_loud(
            "sync-writer",
            format_args!("audit event emitted {when}; writing synchronously to {name}"),
        );
        Fallback { service: ServiceFields::new(&config), sink }
    }

    pub(super) fn write(mut event: AuditEvent) -> Result<Arc<AuditEvent>, AuditError> {
        let mut slot = FALLBACK.lock().unwrap_or_else(PoisonError::into_inner);
        let fb = slot.get_or_insert_with(open);
        fill_service(&mut event, &fb.service);
        let json = match serde_json::to_vec(&event) {
            Ok(j) => j,
            Err(e) => return Err(AuditError::WriteFailed { source: e.into(), event: Arc::new(event) }),
        };
        let Some(sink) = &fb.sink else {
            crate::export::fallback_to_stderr(&json);
            return Ok(Arc::new(event));
        };
        match sink.write(Record { event: &event, json: &json }).and_then(|()| sink.flush()) {
            Ok(()) => Ok(Arc::new(event)),
            Err(source) => Err(AuditError::WriteFailed { source, event: Arc::new(event) }),
        }
    }
}
