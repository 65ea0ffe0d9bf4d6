//! Installing the OpenTelemetry export: [`configure_tracing`] (the process-wide subscriber), [`otel_layer`] (for
//! an application's own subscriber) and what `observer::init` sets up by itself.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use super::layer::{export_filter, layer_for};
use super::pipeline::{already_exporting, build, exports, publish, tracer};
use crate::config::{ObserverConfig, TracingConfig};
#[cfg(doc)]
use crate::error::ExporterError;
use crate::error::{ConfigurationError, ObserverError};
#[cfg(doc)]
use crate::trace::shutdown_tracing;

/// Set once [`configure_tracing`] installed the global subscriber (it cannot be replaced in a process).
static CONFIGURED: Mutex<bool> = Mutex::new(false);
/// Whether [`configure_tracing`] has installed the OpenTelemetry pipeline.
pub(crate) fn is_configured() -> bool {
    *CONFIGURED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Installs the process-wide `tracing` subscriber: a `Registry`, the OpenTelemetry layer exporting spans over
/// OTLP when an endpoint is configured (see [`TracingConfig`] for when that is), and a console layer when
/// [`TracingConfig::console`] is set. The guide's `configure_logfire(service_name=.., send_to_logfire=False)`.
///
/// Applies the [environment](TracingConfig::apply_env) first (it wins over `config`), then validates.
///
/// Idempotent: a second call in the same process changes nothing, logs a warning and returns `Ok(())` (the
/// global subscriber can be set once per process, so this holds after [`shutdown_tracing`] too).
///
/// Already have a subscriber? Add [`otel_layer`] to it instead.
///
/// [`observer::init`](crate::init) calls this itself when an OTLP endpoint is configured in the environment (or
/// `ObserverConfig::send_to_logfire` is set); a later call is then ignored with a warning. Call it before `init`
/// to choose other settings.
///
/// # Errors
/// [`ConfigurationError`] naming the invalid field or variable (endpoint, protocol, …), or naming `tracing`
/// when another global subscriber is already installed; [`ExporterError`] if the exporter cannot be built.
#[cfg_attr(docsrs, doc(cfg(feature = "otel")))]
pub fn configure_tracing(config: TracingConfig) -> Result<(), ObserverError> {
    let mut configured = CONFIGURED.lock().unwrap_or_else(PoisonError::into_inner);
    if *configured {
        crate::diag::report!(
            WARN,
            "tracing-ignored",
            "observer::trace::configure_tracing called again; already configured, the new config (service `{}`) \
             is ignored",
            config.service_name
        );
        return Ok(());
    }
    let config = config.apply_env()?;
    config.validate()?;
    let endpoint = config.export_endpoint();
    let exporting = exports(&config, endpoint.as_deref());
    if exporting && already_exporting() {
        return Err(ConfigurationError::new(
            "tracing",
            "an OpenTelemetry exporter is already installed (observer::trace::otel_layer); call shutdown_tracing first",
        )
        .into());
    }
    let installed = exporting.then(|| build(&config, endpoint.as_deref())).transpose()?;
    let otel = installed.as_ref().map(|i| layer_for(tracer(&i.provider), export_filter(&config)));
    let console = config.console.then(|| {
        let filter = tracing_subscriber::EnvFilter::builder()
            .with_default_directive(LevelFilter::from_level(config.level).into())
            .from_env_lossy();
        tracing_subscriber::fmt::layer()
            .fmt_fields(super::redacting::RedactingFields)
            .with_writer(std::io::stderr)
            .with_filter(filter)
    });
    let subscriber = tracing_subscriber::registry().with(otel).with(console);
    if ::tracing::subscriber::set_global_default(subscriber).is_err() {
        if let Some(i) = installed {
            let _ = i.provider.shutdown_with_timeout(Duration::from_secs(1));
        }
        return Err(ConfigurationError::new(
            "tracing",
            "a global `tracing` subscriber is already installed; add observer::trace::otel_layer(..) to it instead",
        )
        .into());
    }
    *configured = true;
    // The metrics go where the spans go (a no-op when no metrics endpoint applies or they are installed).
    super::metrics::install(&config)?;
    // Without its console layer the subscriber exports spans but prints no events: the SDK's warnings must
    // still reach stderr.
    crate::diag::set_global_subscriber_prints_nothing(!config.console);
    match installed {
        Some(i) => {
            publish(i);
            ::tracing::debug!(target: "observer", endpoint = endpoint.as_deref().unwrap_or_default(),
                kafka_topic = config.kafka_topic.as_deref().unwrap_or_default(), protocol = config.protocol.as_str(),
                service = %config.service_name, "OpenTelemetry export configured");
        }
        None => {
            ::tracing::debug!(target: "observer", "tracing configured without export (no endpoint)");
        }
    }
    Ok(())
}

/// [`init`](crate::init)'s part (the guide's `init(send_to_logfire=..)` sets tracing up in one call): when an
/// endpoint is configured (`OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) or
/// `send_to_logfire` is set, installs what [`configure_tracing`] with [`TracingConfig::from_observer`] installs,
/// with the OTLP default endpoint when `send_to_logfire` is set and no endpoint is configured.
/// Leaves tracing alone when [`configure_tracing`] or [`otel_layer`] already ran, and when the application
/// installed a global subscriber of its own (then says so: add [`otel_layer`] to it).
pub(crate) fn configure_from_init(config: &ObserverConfig) -> Result<(), ObserverError> {
    let tracing_config = TracingConfig::for_init(config, &crate::config::process_env)?;
    let endpoint = tracing_config.export_endpoint();
    // Metrics need no subscriber: installed whenever an endpoint applies to them (unless already).
    super::metrics::install(&tracing_config)?;
    if !exports(&tracing_config, endpoint.as_deref()) || is_configured() || already_exporting() {
        return Ok(());
    }
    if ::tracing::dispatcher::has_been_set() {
        crate::diag::report!(
            WARN,
            "tracing-own-subscriber",
            "a global `tracing` subscriber is already installed, so observer::init leaves it alone and does not \
             export spans to {}; add observer::trace::otel_layer(..) to that subscriber",
            endpoint.as_deref().unwrap_or_default()
        );
        return Ok(());
    }
    configure_tracing(tracing_config)
}

/// The OpenTelemetry layer alone, for applications that build their own subscriber. It exports like
/// [`configure_tracing`] does (same config, environment applied, same endpoint rules) and registers its tracer
/// provider for [`observer::flush`](crate::flush), [`shutdown_tracing`] and the guard's drop. When nothing is to
/// be exported it is a no-op layer. [`TracingConfig::console`] is ignored: add your own fmt layer.
///
/// ```no_run
/// use tracing_subscriber::layer::SubscriberExt;
/// use tracing_subscriber::util::SubscriberInitExt;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = observer::trace::TracingConfig {
///     service_name: "my-service".into(),
///     otlp_endpoint: Some("http://127.0.0.1:4318".into()),
///     ..Default::default()
/// };
/// tracing_subscriber::registry()
///     .with(observer::trace::otel_layer(&config)?)
///     .with(tracing_subscriber::fmt::layer())
///     .init();
/// # Ok(()) }
/// ```
///
/// # Errors
/// As [`configure_tracing`]; also a [`ConfigurationError`] naming `tracing` when an exporter is already
/// installed (call [`shutdown_tracing`] first).
#[cfg_attr(docsrs, doc(cfg(feature = "otel")))]
pub fn otel_layer<S>(config: &TracingConfig) -> Result<impl Layer<S>, ObserverError>
where
    S: ::tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    let config = config.clone().apply_env()?;
    config.validate()?;
    let endpoint = config.export_endpoint();
    if !exports(&config, endpoint.as_deref()) {
        return Ok(None);
    }
    let _configured = CONFIGURED.lock().unwrap_or_else(PoisonError::into_inner);
    if already_exporting() {
        return Err(ConfigurationError::new(
            "tracing",
            "an OpenTelemetry exporter is already installed in this process; call shutdown_tracing first",
        )
        .into());
    }
    let installed = build(&config, endpoint.as_deref())?;
    super::metrics::install(&config)?;
    let layer = layer_for(tracer(&installed.provider), export_filter(&config));
    publish(installed);
    Ok(Some(layer))
}
