//! OpenTelemetry export of `tracing` spans over OTLP (feature `otel`): the guide's `configure_logfire`.
//! The public items are re-exported from [`crate::trace`]; [`TracingConfig`] documents where spans go.

use std::sync::mpsc;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use opentelemetry::trace::{Status, TraceContextExt, TracerProvider as _};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::config::ObserverConfig;
use crate::error::{ConfigurationError, ExporterError, ObserverError};
use crate::trace::AttrValue;

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OtlpProtocol {
    /// OTLP over HTTP/1.1 with protobuf bodies (`POST {endpoint}/v1/traces`), default port 4318.
    #[default]
    HttpProtobuf,
    /// OTLP over gRPC (HTTP/2), default port 4317. Needs the `otel-grpc` cargo feature.
    Grpc,
}

impl OtlpProtocol {
    /// The name used by `OTEL_EXPORTER_OTLP_PROTOCOL`: `http/protobuf` or `grpc`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HttpProtobuf => "http/protobuf",
            Self::Grpc => "grpc",
        }
    }

    /// The OTLP default endpoint of this transport (a collector on this host).
    pub fn default_endpoint(self) -> &'static str {
        match self {
            Self::HttpProtobuf => "http://localhost:4318",
            Self::Grpc => "http://localhost:4317",
        }
    }

    fn parse(field: &str, value: &str) -> Result<Self, ConfigurationError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "http/protobuf" => Ok(Self::HttpProtobuf),
            "grpc" => Ok(Self::Grpc),
            "http/json" => {
                Err(ConfigurationError::new(field, "`http/json` is not supported; use `http/protobuf` or `grpc`"))
            }
            other => Err(ConfigurationError::new(
                field,
                format!("unknown protocol `{other}`; expected `http/protobuf` or `grpc`"),
            )),
        }
    }
}

/// Settings of [`configure_tracing`] / [`otel_layer`]: the guide's `configure_logfire(service_name=..,
/// send_to_logfire=..)`. Build it with `..Default::default()`.
///
/// ```no_run
/// use observer::trace::{configure_tracing, TracingConfig};
///
/// # fn main() -> Result<(), observer::ObserverError> {
/// let _guard = observer::init(observer::ObserverConfig::default())?;
/// configure_tracing(TracingConfig {
///     service_name: "my-agent".into(),
///     // The guide's OpenTelemetry Collector (see `otel-collector-config.yaml`), OTLP over HTTP/protobuf.
///     otlp_endpoint: Some("http://127.0.0.1:4318".into()),
///     ..Default::default()
/// })?;
/// {
///     let _span = tracing::info_span!("process-document", document_id = "doc-123").entered();
///     tracing::info!(pages = 10, "Document processed");
/// }
/// Ok(())
/// } // the guard's drop flushes the audit events and shuts the span exporter down (bounded)
/// ```
///
/// [`configure_tracing`] applies the [environment](TracingConfig::apply_env) on top of these values. Then spans go:
/// * with an explicit endpoint ([`otlp_endpoint`](Self::otlp_endpoint) / [`traces_endpoint`](Self::traces_endpoint),
///   or the `OTEL_EXPORTER_OTLP_*` variables) → there, whatever `send_to_logfire` says;
/// * with no endpoint and `send_to_logfire == false` (the default, the guide's "keep data local") → nowhere: no
///   OpenTelemetry layer is installed at all (spans only reach the optional console layer);
/// * with no endpoint and `send_to_logfire == true` → the OTLP default endpoint, `http://localhost:4318`
///   (`http://localhost:4317` for gRPC): a collector next to the service. There is no vendor default.
///
/// With [`kafka_topic`](Self::kafka_topic) set (feature `otel-kafka`), spans also go to that Kafka topic as
/// OTLP-JSON, whatever the above says (and only there when no endpoint applies).
///
/// Spans are batched (the SDK's batch span processor on its own thread; the `OTEL_BSP_*` variables apply) and sent
/// every 5 s, on [`observer::flush`](crate::flush) / [`flush_tracing`], on [`shutdown_tracing`] and when the
/// [`ObserverGuard`](crate::ObserverGuard) is dropped.
///
/// Transports: OTLP HTTP/protobuf (uncompressed) always; OTLP gRPC with the `otel-grpc` cargo feature (tonic, run
/// on a small dedicated Tokio runtime, so it works from a plain `fn main` as well as inside Tokio). HTTP endpoints
/// may be `http://` or `https://` (TLS through the system's OpenSSL and its root certificates); gRPC is plaintext,
/// so `https://` with gRPC is refused: send to a collector nearby and let it forward over TLS.
#[derive(Debug, Clone)]
pub struct TracingConfig {
    /// `service.name` of the resource. Default `"autonomize-service"`. Env `OTEL_SERVICE_NAME`.
    pub service_name: String,
    /// `service.version`. Default `"1.0.0"`.
    pub service_version: String,
    /// `deployment.environment` (and `deployment.environment.name`). Default `"production"`.
    pub environment: String,
    /// The guide's switch. `false` (default, "keep data local"): spans are exported only when an endpoint is
    /// configured explicitly. `true`: with no endpoint, spans go to the OTLP default endpoint of
    /// [`protocol`](Self::protocol) (`http://localhost:4318`).
    pub send_to_logfire: bool,
    /// The OTLP base endpoint, e.g. `http://127.0.0.1:4318` (HTTP; `/v1/traces` is appended unless present) or
    /// `http://127.0.0.1:4317` (gRPC). Env `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub otlp_endpoint: Option<String>,
    /// The full traces URL, used as is (wins over [`otlp_endpoint`](Self::otlp_endpoint)). Env
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`.
    pub traces_endpoint: Option<String>,
    /// The transport. Default HTTP/protobuf. Env `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, `OTEL_EXPORTER_OTLP_PROTOCOL`.
    pub protocol: OtlpProtocol,
    /// Also print spans and events to stderr (a `tracing_subscriber::fmt` layer, filtered by `RUST_LOG` when set,
    /// else by [`level`](Self::level)). Only [`configure_tracing`] installs it. Default `false`.
    pub console: bool,
    /// The most verbose level that is exported. Default `INFO` (`info_span!`, `#[instrument]`). Spans of the
    /// exporter's own stack (`h2`, `hyper`, `reqwest`, `tonic`, `tower`, `opentelemetry*`) are never exported.
    pub level: ::tracing::Level,
    /// Further resource attributes (e.g. `("service.namespace", "genesis")`). Env `OTEL_RESOURCE_ATTRIBUTES`.
    pub resource_attributes: Vec<(String, String)>,
    /// Export spans as OTLP-JSON to this Kafka topic through the process's shared Kafka exporter; requires
    /// `observer::init` with Kafka enabled first, or pass an exporter (build a `KafkaSpanExporter` from your own
    /// `KafkaExporter` and add it to your own tracer provider). Each export batch is one message in the format
    /// of the OpenTelemetry Collector's Kafka exporter with `encoding: otlp_json` (`genesis-otel` in the guide's
    /// `otel-collector-config.yaml`), so no collector is needed. In addition to an OTLP endpoint when one is
    /// configured, else instead of it; independent of `send_to_logfire`. The audit and trace stream topics are
    /// refused. Needs the `otel-kafka` cargo feature. Default `None`.
    pub kafka_topic: Option<String>,
}

impl Default for TracingConfig {
    fn default() -> Self {
        Self::from_observer(&ObserverConfig::default())
    }
}

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
type ExportFilter = tracing_subscriber::filter::FilterFn<Box<dyn Fn(&::tracing::Metadata<'_>) -> bool + Send + Sync>>;

impl TracingConfig {
    /// The service fields and `send_to_logfire` of an [`ObserverConfig`], the rest default, so that audit
    /// events and spans name the same service.
    pub fn from_observer(config: &ObserverConfig) -> Self {
        Self {
            service_name: config.service_name.clone(),
            service_version: config.service_version.clone(),
            environment: config.environment.clone(),
            send_to_logfire: config.send_to_logfire,
            otlp_endpoint: None,
            traces_endpoint: None,
            protocol: OtlpProtocol::HttpProtobuf,
            console: false,
            level: ::tracing::Level::INFO,
            resource_attributes: Vec::new(),
            kafka_topic: None,
        }
    }

    /// Applies the standard OpenTelemetry environment variables. As with [`ObserverConfig::apply_env`], the
    /// environment wins over values set in code, so that operators can redirect a deployed service. Empty
    /// values count as unset.
    ///
    /// | variable | field |
    /// |---|---|
    /// | `OTEL_RESOURCE_ATTRIBUTES` (`k=v,k2=v2`, values percent-decoded) | `service.name` → `service_name`, `service.version` → `service_version`, `deployment.environment.name` or `deployment.environment` → `environment`, any other key → `resource_attributes` |
    /// | `OTEL_SERVICE_NAME` (wins over `service.name` above) | `service_name` |
    /// | `OTEL_EXPORTER_OTLP_ENDPOINT` | `otlp_endpoint` |
    /// | `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` | `traces_endpoint` |
    /// | `OTEL_EXPORTER_OTLP_PROTOCOL`, `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` (the latter wins) | `protocol` |
    /// | `OTEL_SDK_DISABLED=true` | exports nothing: clears `otlp_endpoint`, `traces_endpoint`, `kafka_topic`, `send_to_logfire` |
    ///
    /// The exporter itself also reads `OTEL_EXPORTER_OTLP_HEADERS` (HTTP only), `OTEL_EXPORTER_OTLP_TIMEOUT` and
    /// the batch processor's `OTEL_BSP_*`.
    ///
    /// # Errors
    /// A [`ConfigurationError`] naming the variable.
    pub fn apply_env(self) -> Result<Self, ConfigurationError> {
        self.apply_env_from(&|k| std::env::var(k).ok())
    }

    /// [`apply_env`](Self::apply_env) with a custom variable lookup.
    pub fn apply_env_from(mut self, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigurationError> {
        let get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        if let Some(attrs) = get("OTEL_RESOURCE_ATTRIBUTES") {
            let mut env_name = None;
            for (key, value) in parse_resource_attributes(&attrs)? {
                match key.as_str() {
                    "service.name" => self.service_name = value,
                    "service.version" => self.service_version = value,
                    "deployment.environment.name" => env_name = Some(value),
                    "deployment.environment" => {
                        if env_name.is_none() {
                            self.environment = value;
                        }
                    }
                    _ => {
                        self.resource_attributes.retain(|(k, _)| *k != key);
                        self.resource_attributes.push((key, value));
                    }
                }
            }
            if let Some(name) = env_name {
                self.environment = name;
            }
        }
        if let Some(v) = get("OTEL_SERVICE_NAME") {
            self.service_name = v.trim().to_owned();
        }
        if let Some(v) = get("OTEL_EXPORTER_OTLP_ENDPOINT") {
            check_endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", &v)?;
            self.otlp_endpoint = Some(v.trim().to_owned());
        }
        if let Some(v) = get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            check_endpoint("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &v)?;
            self.traces_endpoint = Some(v.trim().to_owned());
        }
        for var in ["OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] {
            if let Some(v) = get(var) {
                self.protocol = OtlpProtocol::parse(var, &v)?;
            }
        }
        if let Some(v) = get("OTEL_SDK_DISABLED") {
            match v.trim().to_ascii_lowercase().as_str() {
                "true" => {
                    // The specification's kill switch: nothing is exported, whatever code and the other variables say.
                    self.otlp_endpoint = None;
                    self.traces_endpoint = None;
                    self.send_to_logfire = false;
                    self.kafka_topic = None;
                }
                "false" => {}
                _ => {
                    return Err(ConfigurationError::new(
                        "OTEL_SDK_DISABLED",
                        format!("`{}` is not `true` or `false`", v.trim()),
                    ))
                }
            }
        }
        Ok(self)
    }

    /// Checks every field; the error names the first invalid one.
    pub fn validate(&self) -> Result<(), ConfigurationError> {
        for (field, v) in [
            ("service_name", &self.service_name),
            ("service_version", &self.service_version),
            ("environment", &self.environment),
        ] {
            if v.trim().is_empty() {
                return Err(ConfigurationError::new(field, "must not be empty"));
            }
        }
        if let Some(e) = &self.otlp_endpoint {
            check_endpoint("otlp_endpoint", e)?;
        }
        if let Some(e) = &self.traces_endpoint {
            check_endpoint("traces_endpoint", e)?;
        }
        if self.protocol == OtlpProtocol::Grpc {
            for (field, e) in [("otlp_endpoint", &self.otlp_endpoint), ("traces_endpoint", &self.traces_endpoint)] {
                if e.as_deref().is_some_and(|e| e.trim().starts_with("https://")) {
                    return Err(ConfigurationError::new(
                        field,
                        "OTLP gRPC over TLS is not built in: use `http/protobuf` for an https endpoint (TLS through \
                         the system's OpenSSL), or a local collector over http://",
                    ));
                }
            }
        }
        if self.protocol == OtlpProtocol::Grpc && !cfg!(feature = "otel-grpc") {
            return Err(ConfigurationError::new(
                "protocol",
                "OTLP gRPC needs the `otel-grpc` cargo feature of observer; or use `http/protobuf` (port 4318)",
            ));
        }
        if let Some((k, _)) = self.resource_attributes.iter().find(|(k, _)| k.trim().is_empty()) {
            return Err(ConfigurationError::new("resource_attributes", format!("empty attribute key `{k}`")));
        }
        if let Some(topic) = &self.kafka_topic {
            #[cfg(feature = "otel-kafka")]
            crate::export::kafka::otlp::check_topic(topic)?;
            #[cfg(not(feature = "otel-kafka"))]
            return Err(ConfigurationError::new(
                "kafka_topic",
                format!("exporting spans to Kafka topic `{topic}` needs the `otel-kafka` cargo feature of observer"),
            ));
        }
        Ok(())
    }

    /// Where spans are sent, without looking at the environment: the traces URL for HTTP (`…/v1/traces`), the
    /// endpoint for gRPC, or `None` when nothing is exported (no endpoint and `send_to_logfire == false`).
    pub fn export_endpoint(&self) -> Option<String> {
        if let Some(url) = &self.traces_endpoint {
            return Some(url.trim().to_owned());
        }
        let base = match &self.otlp_endpoint {
            Some(e) => e.trim(),
            None if self.send_to_logfire => self.protocol.default_endpoint(),
            None => return None,
        };
        Some(match self.protocol {
            OtlpProtocol::HttpProtobuf => {
                let base = base.trim_end_matches('/');
                if base.ends_with("/v1/traces") {
                    base.to_owned()
                } else {
                    format!("{base}/v1/traces")
                }
            }
            OtlpProtocol::Grpc => base.to_owned(),
        })
    }

    fn resource(&self) -> Resource {
        let extra = self.resource_attributes.iter().map(|(k, v)| KeyValue::new(k.clone(), v.clone()));
        Resource::builder_empty()
            .with_detector(Box::new(opentelemetry_sdk::resource::TelemetryResourceDetector))
            .with_attributes(extra)
            .with_attributes([
                KeyValue::new("service.name", self.service_name.clone()),
                KeyValue::new("service.version", self.service_version.clone()),
                KeyValue::new("deployment.environment", self.environment.clone()),
                KeyValue::new("deployment.environment.name", self.environment.clone()),
            ])
            .build()
    }

    fn export_filter(&self) -> ExportFilter {
        let level = self.level;
        let f: Box<dyn Fn(&::tracing::Metadata<'_>) -> bool + Send + Sync> =
            Box::new(move |meta| *meta.level() <= level && !is_exporter_target(meta.target()));
        tracing_subscriber::filter::FilterFn::new(f).with_max_level_hint(level)
    }
}

/// `k=v,k2=v2` with percent-encoded values (the W3C Baggage octet format of `OTEL_RESOURCE_ATTRIBUTES`).
fn parse_resource_attributes(s: &str) -> Result<Vec<(String, String)>, ConfigurationError> {
    const FIELD: &str = "OTEL_RESOURCE_ATTRIBUTES";
    let mut out = Vec::new();
    for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(ConfigurationError::new(FIELD, format!("`{pair}` is not `key=value`")));
        };
        let k = k.trim();
        if k.is_empty() {
            return Err(ConfigurationError::new(FIELD, format!("`{pair}` has an empty key")));
        }
        out.push((k.to_owned(), percent_decode(FIELD, v.trim())?));
    }
    Ok(out)
}

fn percent_decode(field: &str, s: &str) -> Result<String, ConfigurationError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(b) => out.push(b),
                None => return Err(ConfigurationError::new(field, format!("bad percent-encoding in `{s}`"))),
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ConfigurationError::new(field, format!("`{s}` does not decode to UTF-8")))
}

/// An `http://host[:port][/path]` URL.
fn check_endpoint(field: &str, url: &str) -> Result<(), ConfigurationError> {
    let url = url.trim();
    let bad = |msg: String| Err(ConfigurationError::new(field, msg));
    let Some(rest) = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://")) else {
        return bad(format!("`{url}` is not an http:// or https:// URL (e.g. http://127.0.0.1:4318)"));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, "")) => (h, None),
            Some((h, p)) => (h, Some(p.strip_prefix(':').unwrap_or(p))),
            None => ("", None),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) || authority.contains('@') {
        return bad(format!("`{url}` has no valid host"));
    }
    if let Some(p) = port {
        if p.parse::<u16>().map_or(true, |p| p == 0) {
            return bad(format!("`{url}` has an invalid port `{p}`"));
        }
    }
    if rest[authority.len()..].starts_with(['?', '#']) {
        return bad(format!("`{url}` must not have a query or fragment"));
    }
    Ok(())
}

// ----- the installed exporter -----------------------------------------------------------------------------------

/// The tracer provider that [`configure_tracing`] / [`otel_layer`] installed, kept so that flush and shutdown
/// reach its batch processor.
struct Installed {
    provider: SdkTracerProvider,
    #[cfg(feature = "otel-grpc")]
    runtime: Option<tokio::runtime::Runtime>,
}

static INSTALLED: Mutex<Option<Installed>> = Mutex::new(None);
/// Set once [`configure_tracing`] installed the global subscriber (it cannot be replaced in a process).
static CONFIGURED: Mutex<bool> = Mutex::new(false);
/// Whether [`configure_tracing`] has installed the OpenTelemetry pipeline.
pub(crate) fn is_configured() -> bool {
    *CONFIGURED.lock().unwrap_or_else(PoisonError::into_inner)
}

const SCOPE: &str = "observer";

fn exporter_error(e: opentelemetry_otlp::ExporterBuildError) -> ObserverError {
    match e {
        opentelemetry_otlp::ExporterBuildError::InvalidConfiguration(msg) => {
            ConfigurationError::new("otlp exporter", msg).into()
        }
        other => ExporterError::Other(format!("OTLP span exporter: {other}")).into(),
    }
}

/// Whether `config` exports spans anywhere: an OTLP endpoint (resolved) or a Kafka topic.
fn exports(config: &TracingConfig, endpoint: Option<&str>) -> bool {
    endpoint.is_some() || config.kafka_topic.is_some()
}

/// Builds the exporters and tracer provider: OTLP to `endpoint` (already resolved) when set, and Kafka when
/// [`TracingConfig::kafka_topic`] is set.
fn build(config: &TracingConfig, endpoint: Option<&str>) -> Result<Installed, ObserverError> {
    let builder = SdkTracerProvider::builder().with_resource(config.resource());
    #[cfg(feature = "otel-kafka")]
    let builder = if let Some(topic) = &config.kafka_topic {
        let kafka = crate::kafka_exporter().ok_or_else(|| {
            ConfigurationError::new(
                "kafka_topic",
                "no shared Kafka exporter: call observer::init with `kafka_enabled: true` (and a Kafka config) before \
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
                .map_err(exporter_error)?;
            Installed {
                provider: builder.with_batch_exporter(exporter).build(),
                #[cfg(feature = "otel-grpc")]
                runtime: None,
            }
        }
        #[cfg(feature = "otel-grpc")]
        OtlpProtocol::Grpc => {
            let (exporter, runtime) = grpc::exporter(endpoint)?;
            Installed { provider: builder.with_batch_exporter(exporter).build(), runtime: Some(runtime) }
        }
        #[cfg(not(feature = "otel-grpc"))]
        OtlpProtocol::Grpc => {
            return Err(ConfigurationError::new("protocol", "OTLP gRPC needs the `otel-grpc` cargo feature").into())
        }
    };
    Ok(installed)
}

#[cfg(feature = "otel-grpc")]
mod grpc {
    //! tonic needs a Tokio runtime for its connection tasks and timers, but the SDK's batch processor runs
    //! exports on a plain thread. The exporter is built inside a small dedicated runtime, and every export runs
    //! on it (`Handle::block_on` from the processor's thread), so gRPC works from any `main`.
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
            .map_err(|e| ExporterError::Io { sink: "OTLP gRPC runtime".into(), source: e })?;
        let inner = {
            let _enter = runtime.enter();
            opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_protocol(opentelemetry_otlp::Protocol::Grpc)
                .with_endpoint(endpoint)
                .build()
                .map_err(super::exporter_error)?
        };
        Ok((OnRuntime { inner, handle: runtime.handle().clone() }, runtime))
    }
}

fn tracer(provider: &SdkTracerProvider) -> SdkTracer {
    provider.tracer_with_scope(InstrumentationScope::builder(SCOPE).with_version(env!("CARGO_PKG_VERSION")).build())
}

/// The filtered OpenTelemetry layer over `tracer`.
fn layer_for<S>(tracer: SdkTracer, filter: ExportFilter) -> impl Layer<S>
where
    S: ::tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_opentelemetry::layer().with_tracer(tracer).with_filter(filter)
}

fn publish(installed: Installed) {
    opentelemetry::global::set_tracer_provider(installed.provider.clone());
    opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
    *INSTALLED.lock().unwrap_or_else(PoisonError::into_inner) = Some(installed);
}

fn already_exporting() -> bool {
    INSTALLED.lock().unwrap_or_else(PoisonError::into_inner).is_some()
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
/// `send_to_logfire` is set); a later call is then ignored with a warning. Call it before `init` to choose other
/// settings.
///
/// # Errors
/// [`ConfigurationError`] naming the invalid field or variable (endpoint, protocol, …), or naming `tracing`
/// when another global subscriber is already installed; [`ExporterError`] if the exporter cannot be built.
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
    let otel = installed.as_ref().map(|i| layer_for(tracer(&i.provider), config.export_filter()));
    let console = config.console.then(|| {
        let filter = tracing_subscriber::EnvFilter::builder()
            .with_default_directive(LevelFilter::from_level(config.level).into())
            .from_env_lossy();
        tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_filter(filter)
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
            ::tracing::debug!(target: "observer", "tracing configured without export (no endpoint, send_to_logfire = false)");
        }
    }
    Ok(())
}

/// [`init`](crate::init)'s part (the guide's `init(send_to_logfire=..)` sets tracing up in one call): when an
/// endpoint is configured (`OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) or
/// `send_to_logfire` is set, installs what [`configure_tracing`] with [`TracingConfig::from_observer`] installs.
/// Leaves tracing alone when [`configure_tracing`] or [`otel_layer`] already ran, and when the application
/// installed a global subscriber of its own (then says so: add [`otel_layer`] to it).
pub(crate) fn configure_from_init(config: &ObserverConfig) -> Result<(), ObserverError> {
    let tracing_config = TracingConfig::from_observer(config).apply_env()?;
    let endpoint = tracing_config.export_endpoint();
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
    let layer = layer_for(tracer(&installed.provider), config.export_filter());
    publish(installed);
    Ok(Some(layer))
}

/// Exports every span that has ended so far (waits at most `timeout`). A no-op when nothing is exported.
/// [`observer::flush`](crate::flush) calls it.
///
/// # Errors
/// [`ExporterError::FlushTimeout`], or [`ExporterError::Other`] when the export failed (e.g. the collector is
/// unreachable).
pub fn flush_tracing(timeout: Duration) -> Result<(), ExporterError> {
    let Some(provider) = INSTALLED.lock().unwrap_or_else(PoisonError::into_inner).as_ref().map(|i| i.provider.clone())
    else {
        return Ok(());
    };
    // `force_flush` has no timeout parameter (the SDK bounds it at 5 s): wait for it on a helper thread.
    let (tx, rx) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("observer-otel-flush".into())
        .spawn(move || {
            let _ = tx.send(provider.force_flush());
        })
        .map_err(|source| ExporterError::Io { sink: "OpenTelemetry flush thread".into(), source })?;
    match rx.recv_timeout(timeout) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(ExporterError::Other(format!("OpenTelemetry span export: {e}"))),
        Err(_) => Err(ExporterError::FlushTimeout(timeout)),
    }
}

/// Flushes and shuts the span exporter down, waiting at most 10 s. Spans that end later are dropped.
/// The [`ObserverGuard`](crate::ObserverGuard)'s drop does the same (bounded by `flush_timeout`).
///
/// # Errors
/// As [`shutdown_tracing_with_timeout`].
pub fn shutdown_tracing() -> Result<(), ExporterError> {
    shutdown_tracing_with_timeout(Duration::from_secs(10))
}

/// [`shutdown_tracing`] waiting at most `timeout`. A no-op when nothing is exported or it was already shut down.
///
/// # Errors
/// [`ExporterError::Other`] when the last export failed or did not finish in time.
pub fn shutdown_tracing_with_timeout(timeout: Duration) -> Result<(), ExporterError> {
    let Some(installed) = INSTALLED.lock().unwrap_or_else(PoisonError::into_inner).take() else {
        return Ok(());
    };
    let res = installed.provider.shutdown_with_timeout(timeout);
    #[cfg(feature = "otel-grpc")]
    if let Some(rt) = installed.runtime {
        // Never blocks, so it is fine inside an async context too.
        rt.shutdown_background();
    }
    res.map_err(|e| ExporterError::Other(format!("OpenTelemetry span exporter shutdown: {e}")))
}

// ----- span helpers used by the rest of the crate -----------------------------------------------------------------

/// The OTEL value of an attribute: scalars as such, `null` as `None`, arrays and objects as JSON text.
pub(crate) fn otel_value(value: &AttrValue) -> Option<opentelemetry::Value> {
    use serde_json::Value;
    Some(match value {
        Value::Null => return None,
        Value::String(s) => s.clone().into(),
        Value::Bool(b) => (*b).into(),
        Value::Number(n) => match (n.as_i64(), n.is_u64()) {
            (Some(i), _) => i.into(),
            // Beyond i64: keep it exact as text.
            (None, true) => n.to_string().into(),
            (None, false) => n.as_f64().unwrap_or(f64::NAN).into(),
        },
        Value::Array(_) | Value::Object(_) => value.to_string().into(),
    })
}

pub(crate) fn set_span_attribute(span: &::tracing::Span, key: &str, value: &AttrValue) {
    if let Some(v) = otel_value(value) {
        span.set_attribute(key.to_owned(), v);
    }
}

pub(crate) fn set_span_error(span: &::tracing::Span, message: &str) {
    span.set_status(Status::error(message.to_owned()));
}

/// `(trace_id, span_id)` of the current span's OpenTelemetry context, in lower-case hex (32 and 16 digits).
pub(crate) fn current_trace_ids() -> Option<(String, String)> {
    let span = ::tracing::Span::current();
    if span.is_none() {
        return None;
    }
    let cx = span.context();
    let otel_span = cx.span();
    let sc = otel_span.span_context();
    sc.is_valid().then(|| (sc.trace_id().to_string(), sc.span_id().to_string()))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use opentelemetry::trace::Status;
    use opentelemetry::Value as OtelValue;
    use opentelemetry_sdk::error::OTelSdkResult;
    use opentelemetry_sdk::trace::{SpanData, SpanExporter};
    use serde_json::json;

    use super::*;

    /// Collects ended spans (exported synchronously by the simple processor).
    #[derive(Debug, Clone, Default)]
    struct Collect(Arc<Mutex<Vec<SpanData>>>);

    impl SpanExporter for Collect {
        fn export(&self, batch: Vec<SpanData>) -> impl std::future::Future<Output = OTelSdkResult> + Send {
            self.0.lock().unwrap().extend(batch);
            std::future::ready(Ok(()))
        }
    }

    /// Runs `f` under a local subscriber with an OpenTelemetry layer and returns the spans it ended.
    fn with_otel(f: impl FnOnce()) -> Vec<SpanData> {
        let collect = Collect::default();
        let provider = SdkTracerProvider::builder().with_simple_exporter(collect.clone()).build();
        let subscriber =
            tracing_subscriber::registry().with(layer_for(tracer(&provider), TracingConfig::default().export_filter()));
        ::tracing::subscriber::with_default(subscriber, f);
        let spans = collect.0.lock().unwrap().clone();
        spans
    }

    fn attr(span: &SpanData, key: &str) -> Option<OtelValue> {
        span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.clone())
    }

    #[test]
    fn attributes_map_to_otel_values() {
        let spans = with_otel(|| {
            let span = ::tracing::info_span!("step");
            set_span_attribute(&span, "s", &json!("text"));
            set_span_attribute(&span, "b", &json!(true));
            set_span_attribute(&span, "i", &json!(-42));
            set_span_attribute(&span, "f", &json!(2.5));
            set_span_attribute(&span, "big", &json!(u64::MAX));
            set_span_attribute(&span, "arr", &json!([1, "two"]));
            set_span_attribute(&span, "obj", &json!({"k": 1}));
            set_span_attribute(&span, "null", &json!(null));
            let _e = span.enter();
            // Also after the OpenTelemetry span was built (entered).
            set_span_attribute(&span, "late", &json!(7));
        });
        let [span] = spans.as_slice() else { panic!("one span expected: {spans:?}") };
        assert_eq!(span.name, "step");
        assert_eq!(attr(span, "s"), Some(OtelValue::from("text")));
        assert_eq!(attr(span, "b"), Some(OtelValue::Bool(true)));
        assert_eq!(attr(span, "i"), Some(OtelValue::I64(-42)));
        assert_eq!(attr(span, "f"), Some(OtelValue::F64(2.5)));
        assert_eq!(attr(span, "big"), Some(OtelValue::from(u64::MAX.to_string())));
        assert_eq!(attr(span, "arr"), Some(OtelValue::from(r#"[1,"two"]"#)));
        assert_eq!(attr(span, "obj"), Some(OtelValue::from(r#"{"k":1}"#)));
        assert_eq!(attr(span, "null"), None);
        assert_eq!(attr(span, "late"), Some(OtelValue::I64(7)));
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

    #[test]
    fn errors_set_the_status() {
        let spans = with_otel(|| {
            let failed = ::tracing::info_span!("failed");
            set_span_error(&failed, "payment declined");
            let _ok = ::tracing::info_span!("ok");
        });
        let failed = spans.iter().find(|s| s.name == "failed").unwrap();
        assert_eq!(failed.status, Status::error("payment declined"));
        let ok = spans.iter().find(|s| s.name == "ok").unwrap();
        assert_eq!(ok.status, Status::Unset);
    }

    #[test]
    fn current_trace_ids_are_the_current_spans() {
        let mut seen = Vec::new();
        let spans = with_otel(|| {
            assert_eq!(current_trace_ids(), None, "no span");
            let outer = ::tracing::info_span!("outer");
            let _o = outer.enter();
            seen.push(current_trace_ids().unwrap());
            let inner = ::tracing::info_span!("inner");
            let _i = inner.enter();
            seen.push(current_trace_ids().unwrap());
            // Below the exported level: the OpenTelemetry layer does not see it.
            let _d = ::tracing::debug_span!("debug").entered();
        });
        assert_eq!(spans.len(), 2, "{spans:?}");
        for (name, (trace_id, span_id)) in ["outer", "inner"].iter().zip(&seen) {
            let span = spans.iter().find(|s| s.name == *name).unwrap();
            assert_eq!(trace_id.len(), 32);
            assert_eq!(span_id.len(), 16);
            assert_eq!(*trace_id, span.span_context.trace_id().to_string());
            assert_eq!(*span_id, span.span_context.span_id().to_string());
        }
        assert_eq!(seen[0].0, seen[1].0, "same trace");
        // Without any OpenTelemetry layer there are no ids.
        let plain = tracing_subscriber::registry();
        ::tracing::subscriber::with_default(plain, || {
            let _s = ::tracing::info_span!("plain").entered();
            assert_eq!(current_trace_ids(), None);
        });
    }

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn env_wins_and_resource_attributes_are_parsed() {
        let c = TracingConfig { service_name: "code".into(), ..Default::default() }
            .apply_env_from(&env(&[
                (
                    "OTEL_RESOURCE_ATTRIBUTES",
                    "service.name=attrs,service.version=2.0.0,deployment.environment=staging,team=a%2Cb%20c",
                ),
                ("OTEL_SERVICE_NAME", "from-env"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
            ]))
            .unwrap();
        assert_eq!(c.service_name, "from-env");
        assert_eq!(c.service_version, "2.0.0");
        assert_eq!(c.environment, "staging");
        assert_eq!(c.resource_attributes, vec![("team".to_owned(), "a,b c".to_owned())]);
        assert_eq!(c.protocol, OtlpProtocol::HttpProtobuf);
        assert_eq!(c.export_endpoint().as_deref(), Some("http://collector:4318/v1/traces"));
        let r = c.resource();
        assert_eq!(r.get(&"service.name".into()), Some("from-env".into()));
        assert_eq!(r.get(&"deployment.environment".into()), Some("staging".into()));
        assert_eq!(r.get(&"deployment.environment.name".into()), Some("staging".into()));
        assert_eq!(r.get(&"team".into()), Some("a,b c".into()));
        assert!(r.get(&"telemetry.sdk.name".into()).is_some());
        // `deployment.environment.name` wins over the older key, in any order; empty values are unset.
        let c = TracingConfig::default()
            .apply_env_from(&env(&[
                ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=new,deployment.environment=old"),
                ("OTEL_SERVICE_NAME", " "),
            ]))
            .unwrap();
        assert_eq!(c.environment, "new");
        assert_eq!(c.service_name, "autonomize-service");
        let full = TracingConfig::default()
            .apply_env_from(&env(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://gw:8080/custom")]))
            .unwrap();
        assert_eq!(full.export_endpoint().as_deref(), Some("http://gw:8080/custom"));
    }

    #[test]
    fn otel_sdk_disabled_exports_nothing() {
        let config = TracingConfig {
            otlp_endpoint: Some("http://collector:4318".into()),
            send_to_logfire: true,
            ..Default::default()
        };
        let on = config.clone().apply_env_from(&env(&[("OTEL_SDK_DISABLED", "false")])).unwrap();
        assert_eq!(on.export_endpoint().as_deref(), Some("http://collector:4318/v1/traces"));
        let off = config
            .clone()
            .apply_env_from(&env(&[("OTEL_SDK_DISABLED", "TRUE"), ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")]))
            .unwrap();
        assert_eq!(off.export_endpoint(), None);
        let err = config.apply_env_from(&env(&[("OTEL_SDK_DISABLED", "yes")])).unwrap_err();
        assert_eq!(err.field, "OTEL_SDK_DISABLED");
    }

    #[test]
    fn bad_values_name_the_field_or_variable() {
        let field = |c: TracingConfig| c.validate().unwrap_err().field;
        let ep = |e: &str| TracingConfig { otlp_endpoint: Some(e.into()), ..Default::default() };
        assert_eq!(field(ep("localhost:4318")), "otlp_endpoint");
        assert_eq!(field(ep("http://")), "otlp_endpoint");
        assert_eq!(field(ep("http://host:99999")), "otlp_endpoint");
        assert_eq!(field(ep("http://ho st:4318")), "otlp_endpoint");
        ep("https://collector:4318").validate().unwrap();
        let grpc_tls = TracingConfig { protocol: OtlpProtocol::Grpc, ..ep("https://collector:4317") };
        let err = grpc_tls.validate().unwrap_err();
        assert!(err.message.contains("TLS") && err.field == "otlp_endpoint", "{err}");
        assert_eq!(field(ep("ftp://collector:4318")), "otlp_endpoint");
        ep("http://127.0.0.1:4318").validate().unwrap();
        ep("http://[::1]:4318/").validate().unwrap();
        ep("http://[::1]").validate().unwrap();
        assert_eq!(field(ep("http://[::1")), "otlp_endpoint");
        assert_eq!(field(TracingConfig { service_name: " ".into(), ..Default::default() }), "service_name");
        let env_err = |pairs| TracingConfig::default().apply_env_from(&env(pairs)).unwrap_err().field;
        assert_eq!(env_err(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]), "OTEL_EXPORTER_OTLP_PROTOCOL");
        assert_eq!(env_err(&[("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "udp")]), "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL");
        assert_eq!(env_err(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector")]), "OTEL_EXPORTER_OTLP_ENDPOINT");
        assert_eq!(env_err(&[("OTEL_RESOURCE_ATTRIBUTES", "novalue")]), "OTEL_RESOURCE_ATTRIBUTES");
        assert_eq!(env_err(&[("OTEL_RESOURCE_ATTRIBUTES", "k=%zz")]), "OTEL_RESOURCE_ATTRIBUTES");
        let grpc = TracingConfig { protocol: OtlpProtocol::Grpc, ..Default::default() };
        assert_eq!(grpc.validate().is_ok(), cfg!(feature = "otel-grpc"));
    }

    #[test]
    fn export_endpoint_follows_send_to_logfire() {
        assert_eq!(TracingConfig::default().export_endpoint(), None, "keep data local");
        let on = TracingConfig { send_to_logfire: true, ..Default::default() };
        assert_eq!(on.export_endpoint().as_deref(), Some("http://localhost:4318/v1/traces"));
        let grpc = TracingConfig { send_to_logfire: true, protocol: OtlpProtocol::Grpc, ..Default::default() };
        assert_eq!(grpc.export_endpoint().as_deref(), Some("http://localhost:4317"));
        let explicit = TracingConfig { otlp_endpoint: Some("http://c:4318/v1/traces".into()), ..Default::default() };
        assert_eq!(explicit.export_endpoint().as_deref(), Some("http://c:4318/v1/traces"));
        let from_observer = TracingConfig::from_observer(&ObserverConfig {
            service_name: "svc".into(),
            send_to_logfire: true,
            ..Default::default()
        });
        assert_eq!((from_observer.service_name.as_str(), from_observer.send_to_logfire), ("svc", true));
    }
}
