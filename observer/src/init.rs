//! [`init`] / [`configure`], the process-wide pipeline, and the [`ObserverGuard`] that drains it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

use crate::audit::AuditEvent;
use crate::config::ObserverConfig;
use crate::error::{AuditError, ExporterError, ObserverError};
use crate::export::{Core, DispatchStats, ServiceFields, Sink, StdoutSink, Worker};

/// The initialised SDK: the process's pipeline and what is derived from its config.
#[derive(Debug)]
pub(crate) struct Runtime {
    pipeline: Core,
    /// The dispatcher thread, taken by the one shutdown that waits for it.
    worker: Mutex<Option<Worker>>,
    /// The price refresher of `ObserverConfig::prices`, when it asks for one; stopped at shutdown.
    prices: Mutex<Option<crate::cost::PriceRefresher>>,
}

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
    // Unpublish the runtime so that new events take the synchronous path.
    RUNTIME.store(None);
    drop(rt.prices.lock().unwrap_or_else(PoisonError::into_inner).take());
    let Some(mut worker) = rt.worker.lock().unwrap_or_else(PoisonError::into_inner).take() else { return Ok(()) };
    let timeout = rt.pipeline.stop_timeout();
    // First the OpenTelemetry span exporter, if `configure_tracing` installed one (bounded by `flush_timeout`):
    // spans exported to Kafka still find the shared producer alive.
    #[cfg(feature = "otel")]
    let traced = crate::trace::shutdown_tracing_with_timeout(rt.pipeline.config.flush_timeout);
    #[cfg(not(feature = "otel"))]
    let traced = Ok(());
    // Then the sinks: the dispatcher stops once the last handle of the queue is gone (ours here, and those of
    // emitters that loaded the runtime before it was unpublished, once their event is in), after writing
    // everything queued. The sinks get `flush_timeout` to deliver; the grace covers the Kafka sink moving what
    // is left into its spool after that.
    drop(rt);
    let res = worker.wait(timeout).and(traced);
    let stats = worker.stats();
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
            existing.pipeline.config.service_name,
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
    // Fresh prices and overrides: installed now, loaded in the background (never blocks here).
    let prices =
        if config.prices.is_configured() { Some(crate::cost::PriceRefresher::start(&config.prices)?) } else { None };
    let (pipeline, worker) = Core::start(config)?;
    // Decoding the bundled price table takes ~150 ms: do it off the caller's path.
    crate::cost::warm_up_in_background();
    let runtime = Arc::new(Runtime { pipeline, worker: Mutex::new(Some(worker)), prices: Mutex::new(prices) });
    let config = &runtime.pipeline.config;
    fallback::configure(config, &runtime.pipeline.redactor);
    crate::audit::set_config_patient_key(config.redaction.hmac_key.as_ref());
    DROPPED_AT_ONCE_AFTER_INIT.store(false, Ordering::Relaxed);
    RUNTIME.store(Some(runtime.clone()));
    tracing::debug!(target: "observer", service = %config.service_name, sinks = ?runtime.pipeline.sink_names, "observer initialised");
    Ok(ObserverGuard {
        runtime: Some(Arc::downgrade(&runtime)),
        sink_names: runtime.pipeline.sink_names.clone(),
        status: InitStatus::Initialized,
        created: Instant::now(),
    })
}

/// The guide's `configure(config)`: the same as [`init`].
pub fn configure(config: ObserverConfig) -> Result<ObserverGuard, ObserverError> {
    init(config)
}

/// Whether [`init`] has been called (and its guard not yet dropped).
pub fn is_initialized() -> bool {
    RUNTIME.load().is_some()
}

/// Counters of the audit pipeline, or `None` before [`init`].
pub fn stats() -> Option<DispatchStats> {
    RUNTIME.load().as_ref().map(|r| r.pipeline.stats())
}

/// Flushes everything the SDK owns, waiting at most `timeout` in all: the audit pipeline of [`init`] (every
/// audit event emitted so far is written and synced by every sink; with Kafka, acknowledged by the broker or
/// spooled), the Kafka producers shared by the agent and workflow event streams (with the `kafka` feature),
/// and, with the `otel` feature, the spans that have ended (with or without `init`). Before [`init`] events
/// are written synchronously, so there is nothing of theirs to wait for.
///
/// Not needed for delivery: the [`ObserverGuard`] drains the audit pipeline and the spans at exit, and a shared
/// producer is drained when the last tracer using it is dropped. Useful before reading what was written (a file,
/// a topic). What the SDK does not own keeps its own flush: a [`Pipeline`](crate::export::Pipeline) of your
/// own, a `KafkaExporter` you created, and a tracer's or factory's sink of your own (`AgentTracer::flush`,
/// `WorkflowTracer::flush`, `TracerFactory::flush`).
///
/// # Errors
/// The first failure: [`ExporterError::FlushTimeout`], or the error of a sink that failed since the previous
/// flush. Every part is flushed even when an earlier one failed.
pub fn flush(timeout: Duration) -> Result<(), ExporterError> {
    let deadline = Instant::now() + timeout;
    let left = || deadline.saturating_duration_since(Instant::now());
    // Spans first (they may be exported to Kafka), then audit events, then Kafka's acknowledgements of both.
    #[cfg(feature = "otel")]
    let traced = crate::otel::flush_tracing(timeout);
    #[cfg(not(feature = "otel"))]
    let traced: Result<(), ExporterError> = Ok(());
    let audited = match RUNTIME.load_full() {
        Some(rt) => rt.pipeline.flush(left()),
        None => Ok(()),
    };
    #[cfg(feature = "kafka")]
    let streamed = crate::export::kafka::flush_shared_producers(left());
    #[cfg(not(feature = "kafka"))]
    let streamed: Result<(), ExporterError> = Ok(());
    traced.and(audited).and(streamed)
}

/// The process's shared Kafka exporter (one producer per process), when `init` enabled Kafka. Tracers and
/// direct exports should use it instead of creating producers of their own.
#[cfg(feature = "kafka")]
#[cfg_attr(docsrs, doc(cfg(feature = "kafka")))]
pub fn kafka_exporter() -> Option<crate::export::KafkaExporter> {
    RUNTIME.load().as_ref().and_then(|r| r.pipeline.kafka.clone())
}

/// The LLM HTTP instrumentation switches of the running config.
#[cfg(feature = "llm-http")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LlmHttpFlags {
    /// `ObserverConfig::instrument_openai`.
    pub(crate) instrument_openai: bool,
    /// `ObserverConfig::instrument_anthropic`.
    pub(crate) instrument_anthropic: bool,
    /// `ObserverConfig::log_llm_interactions`.
    pub(crate) log_llm_interactions: bool,
}

#[cfg(feature = "llm-http")]
impl Default for LlmHttpFlags {
    /// Before [`init`]: both providers instrumented, no audit events.
    fn default() -> Self {
        Self { instrument_openai: true, instrument_anthropic: true, log_llm_interactions: false }
    }
}

/// The LLM HTTP instrumentation switches of the running config ([the defaults](LlmHttpFlags::default) before
/// [`init`]).
#[cfg(feature = "llm-http")]
pub(crate) fn llm_http_flags() -> LlmHttpFlags {
    RUNTIME.load().as_ref().map_or_else(LlmHttpFlags::default, |r| {
        let c = &r.pipeline.config;
        LlmHttpFlags {
            instrument_openai: c.instrument_openai,
            instrument_anthropic: c.instrument_anthropic,
            log_llm_interactions: c.log_llm_interactions,
        }
    })
}

/// The process's capture level: that of the current [`with_pipeline`](crate::export::with_pipeline) scope's
/// config, else of the running config, else the default ([`Metadata`](crate::CaptureLevel::Metadata)) before
/// [`init`].
pub(crate) fn capture_level() -> crate::CaptureLevel {
    if let Some(scoped) = crate::export::current_pipeline() {
        return scoped.config.capture_level;
    }
    RUNTIME.load().as_ref().map(|r| r.pipeline.config.capture_level).unwrap_or_default()
}

/// The configured Keycloak claim mappings (the defaults before [`init`]).
pub(crate) fn claim_mappings() -> crate::ClaimMappings {
    RUNTIME.load().as_ref().map(|r| r.pipeline.config.keycloak_claim_mappings.clone()).unwrap_or_default()
}

/// Hands a finished event to the pipeline of the current [`with_pipeline`](crate::export::with_pipeline)
/// scope or else the process's (filling in the service fields), or writes it synchronously when the SDK is not
/// initialised. Returns the event as recorded.
pub(crate) fn submit(event: AuditEvent) -> Result<Arc<AuditEvent>, AuditError> {
    if let Some(scoped) = crate::export::current_pipeline() {
        return scoped.submit(event);
    }
    let guard = RUNTIME.load();
    match guard.as_ref() {
        Some(rt) => match rt.pipeline.submit(event) {
            Err(AuditError::WriteFailed { source: ExporterError::ShutDown, event }) => {
                // The dispatcher thread died: write synchronously instead.
                drop(guard);
                fallback::write(Arc::unwrap_or_clone(event))
            }
            res => res,
        },
        None => {
            drop(guard);
            report_guard_dropped_at_once();
            fallback::write(event)
        }
    }
}

/// The redactor of the process's pipeline, while [`init`]'s is running; after its guard is dropped, the one
/// the synchronous writer uses.
pub(crate) fn process_redactor() -> Option<crate::redact::Redactor> {
    if let Some(rt) = RUNTIME.load().as_ref() {
        return Some(rt.pipeline.redactor.clone());
    }
    fallback::configured_redactor()
}

/// Events emitted before [`init`] are written synchronously to the sink the environment names
/// (`OBSERVER_AUDIT_FILE`, `OBSERVER_AUDIT_SINK`; default the file
/// [`AuditSink::DEFAULT_FILE`]); events emitted after the guard is dropped go,
/// synchronously too, to the embedded sink the last [`init`] configured (its file, with its permissions and
/// service fields; with `AuditSink::None`, to the stderr fallback). Each with a one-time warning. Slower, but
/// nothing is lost.
mod fallback {
    use super::*;
    use crate::export::{embedded_sink, Record, RecordKind};

    struct Fallback {
        service: ServiceFields,
        /// The policy of the config the sink came from (the environment's before `init`).
        redactor: crate::redact::Redactor,
        /// `None`: the stderr fallback.
        sink: Option<Arc<dyn Sink>>,
    }

    static FALLBACK: Mutex<Option<Fallback>> = Mutex::new(None);
    /// The config of the last `init`, for events emitted after its guard is dropped.
    static CONFIGURED: Mutex<Option<ObserverConfig>> = Mutex::new(None);
    /// The compiled redaction policy of the last `init`'s config.
    static REDACTOR: Mutex<Option<crate::redact::Redactor>> = Mutex::new(None);

    /// Called by `init`: later fallback writes (after its guard is dropped) go to `config`'s embedded sink.
    pub(super) fn configure(config: &ObserverConfig, redactor: &crate::redact::Redactor) {
        *REDACTOR.lock().unwrap_or_else(PoisonError::into_inner) = Some(redactor.clone());
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
        let configured_redactor = if after_init { configured_redactor() } else { None };
        let redactor = configured_redactor
            .map_or_else(|| crate::redact::Redactor::new(&config.redaction), Ok)
            .unwrap_or_else(|e| {
                eprintln!(
                    "observer: invalid redaction policy for the synchronous audit writer ({e}); the default applies"
                );
                crate::redact::Redactor::default()
            });
        Fallback { service: ServiceFields::new(&config), sink, redactor }
    }

    /// The redaction policy of the last `init`'s config (after its guard is dropped).
    pub(super) fn configured_redactor() -> Option<crate::redact::Redactor> {
        REDACTOR.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub(super) fn write(mut event: AuditEvent) -> Result<Arc<AuditEvent>, AuditError> {
        let mut slot = FALLBACK.lock().unwrap_or_else(PoisonError::into_inner);
        let fb = slot.get_or_insert_with(open);
        fb.service.fill(&mut event);
        // The same policy as the dispatcher's: the sink gets the redacted event, the caller its own.
        let redacted = crate::redact::redact_event(&fb.redactor, &event);
        let written = redacted.as_ref().unwrap_or(&event);
        let json = match serde_json::to_vec(written) {
            Ok(j) => j,
            Err(e) => return Err(AuditError::WriteFailed { source: e.into(), event: Arc::new(event) }),
        };
        let Some(sink) = &fb.sink else {
            crate::export::fallback_to_stderr(&json);
            return Ok(Arc::new(event));
        };
        let mut rendered = Vec::new();
        let output = match sink.format() {
            crate::AuditFormat::Json => &json[..],
            format => match crate::audit::format::render(format, written, &Default::default(), &mut rendered) {
                Ok(()) => &rendered[..],
                Err(e) => return Err(AuditError::WriteFailed { source: e.into(), event: Arc::new(event) }),
            },
        };
        match sink.write(Record { kind: RecordKind::Event(written), json: &json, output }).and_then(|()| sink.flush()) {
            Ok(()) => Ok(Arc::new(event)),
            Err(source) => Err(AuditError::WriteFailed { source, event: Arc::new(event) }),
        }
    }
}
