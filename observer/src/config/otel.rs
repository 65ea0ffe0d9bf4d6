//! [`TracingConfig`] and [`OtlpProtocol`] (feature `otel`): where spans go, from code and the standard `OTEL_*`
//! environment variables. The OpenTelemetry pipeline built from it lives in `crate::otel`.

use std::str::FromStr;
use std::time::Duration;

use super::env::{self, Env};
use super::sampler::TraceSampler;
use super::ObserverConfig;
use crate::error::ConfigurationError;
#[cfg(doc)]
use crate::trace::{configure_tracing, otel_layer, shutdown_tracing};

/// The default of [`TracingConfig::metric_export_interval`] (the specification's 60 s).
const DEFAULT_METRIC_EXPORT_INTERVAL: Duration = Duration::from_secs(60);

/// The OTLP transport.
#[cfg_attr(docsrs, doc(cfg(feature = "otel")))]
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
}

/// `http/protobuf` or `grpc` (any case), the spellings of `OTEL_EXPORTER_OTLP_PROTOCOL`. `http/json` is refused.
impl FromStr for OtlpProtocol {
    type Err = ConfigurationError;

    fn from_str(value: &str) -> Result<Self, ConfigurationError> {
        const FIELD: &str = "protocol";
        match value.trim().to_ascii_lowercase().as_str() {
            "http/protobuf" => Ok(Self::HttpProtobuf),
            "grpc" => Ok(Self::Grpc),
            "http/json" => {
                Err(ConfigurationError::new(FIELD, "`http/json` is not supported; use `http/protobuf` or `grpc`"))
            }
            other => Err(ConfigurationError::new(
                FIELD,
                format!("unknown protocol `{other}`; expected `http/protobuf` or `grpc`"),
            )),
        }
    }
}

/// Settings of [`configure_tracing`] / [`otel_layer`]: the guide's `configure_logfire(service_name=..,
/// send_to_logfire=..)`. Build it with `..Default::default()`. The guide's `send_to_logfire=False` ("keep data
/// local") is the default: no endpoint, nothing leaves the process; `send_to_logfire=True` names the collector:
/// `otlp_endpoint: Some(OtlpProtocol::HttpProtobuf.default_endpoint().into())` (`http://localhost:4318`). The one
/// `send_to_logfire` switch is `ObserverConfig::send_to_logfire`, for `observer::init`.
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
/// * with an endpoint ([`otlp_endpoint`](Self::otlp_endpoint) / [`traces_endpoint`](Self::traces_endpoint), or
///   the `OTEL_EXPORTER_OTLP_*` variables) → there;
/// * with none (the default, the guide's "keep data local") → nowhere: no OpenTelemetry layer is installed at all
///   (spans only reach the optional console layer). There is no vendor default.
///
/// `observer::init` with `ObserverConfig::send_to_logfire` and no endpoint exports to the OTLP default endpoint of
/// the protocol, `http://localhost:4318` (`http://localhost:4317` for gRPC): a collector next to the service.
///
/// With [`kafka_topic`](Self::kafka_topic) set (feature `otel-kafka`), spans also go to that Kafka topic as
/// OTLP-JSON, whatever the above says (and only there when no endpoint applies).
///
/// Spans are batched (the SDK's batch span processor on its own thread; the `OTEL_BSP_*` variables apply) and sent
/// every 5 s, on [`observer::flush`](crate::flush), on [`shutdown_tracing`] and when the
/// [`ObserverGuard`](crate::ObserverGuard) is dropped.
///
/// Transports: OTLP HTTP/protobuf (uncompressed) always; OTLP gRPC with the `otel-grpc` cargo feature (tonic, run
/// on a small dedicated Tokio runtime, so it works from a plain `fn main` as well as inside Tokio). HTTP endpoints
/// may be `http://` or `https://` (TLS through the system's OpenSSL and its root certificates); gRPC is plaintext,
/// so `https://` with gRPC is refused: send to a collector nearby and let it forward over TLS.
#[derive(Debug, Clone)]
#[cfg_attr(docsrs, doc(cfg(feature = "otel")))]
pub struct TracingConfig {
    /// `service.name` of the resource. Default `"autonomize-service"`. Env `OTEL_SERVICE_NAME`.
    pub service_name: String,
    /// `service.version`. Default `"1.0.0"`.
    pub service_version: String,
    /// `deployment.environment` (and `deployment.environment.name`). Default `"production"`.
    pub environment: String,
    /// The OTLP base endpoint, e.g. `http://127.0.0.1:4318` (HTTP; `/v1/traces` is appended unless present) or
    /// `http://127.0.0.1:4317` (gRPC). Env `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub otlp_endpoint: Option<String>,
    /// The full traces URL, used as is (wins over [`otlp_endpoint`](Self::otlp_endpoint)). Env
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`.
    pub traces_endpoint: Option<String>,
    /// The transport. Default HTTP/protobuf. Env `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, `OTEL_EXPORTER_OTLP_PROTOCOL`.
    pub protocol: OtlpProtocol,
    /// Also print spans and events to stderr (a `tracing_subscriber::fmt` layer, filtered by `RUST_LOG` when set,
    /// else by [`level`](Self::level)), every field redacted by the process's redaction policy as exported spans
    /// are. Only [`configure_tracing`] installs it. Default `false`.
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
    /// configured, else instead of it. The audit and trace stream topics are
    /// refused. Needs the `otel-kafka` cargo feature. Default `None`.
    pub kafka_topic: Option<String>,
    /// Which spans are sampled. Default [`TraceSampler::ParentBasedAlwaysOn`]. Env `OTEL_TRACES_SAMPLER`,
    /// `OTEL_TRACES_SAMPLER_ARG`. Spans only: audit events are written whatever the sampler decides.
    pub sampler: TraceSampler,
    /// Export the SDK's metrics (the GenAI client metrics of LLM calls and the audit pipeline's health) over
    /// OTLP to the same collector as the spans, whenever an endpoint applies (see
    /// [`metrics_export_endpoint`](Self::metrics_export_endpoint)). Default `true`. Env `OTEL_METRICS_EXPORTER`
    /// (`otlp` or `none`).
    pub metrics: bool,
    /// The full metrics URL, used as is (wins over [`otlp_endpoint`](Self::otlp_endpoint), to which
    /// `/v1/metrics` is appended). Env `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`.
    pub metrics_endpoint: Option<String>,
    /// The transport of the metrics; `None`: the one of `OTEL_EXPORTER_OTLP_PROTOCOL` (else
    /// [`protocol`](Self::protocol)). Env `OTEL_EXPORTER_OTLP_METRICS_PROTOCOL`.
    pub metrics_protocol: Option<OtlpProtocol>,
    /// How often metrics are exported (besides [`observer::flush`](crate::flush) and shutdown). Default 60 s.
    /// Env `OTEL_METRIC_EXPORT_INTERVAL` (milliseconds).
    pub metric_export_interval: Duration,
}

impl Default for TracingConfig {
    fn default() -> Self {
        Self::from_observer(&ObserverConfig::default())
    }
}

impl TracingConfig {
    /// The service fields of an [`ObserverConfig`], the rest default, so that audit events and spans name the
    /// same service. (Its `send_to_logfire` is applied by `observer::init`: the protocol's default endpoint when
    /// the environment names none.)
    pub fn from_observer(config: &ObserverConfig) -> Self {
        Self {
            service_name: config.service_name.clone(),
            service_version: config.service_version.clone(),
            environment: config.environment.clone(),
            otlp_endpoint: None,
            traces_endpoint: None,
            protocol: OtlpProtocol::HttpProtobuf,
            console: false,
            level: ::tracing::Level::INFO,
            resource_attributes: Vec::new(),
            kafka_topic: None,
            sampler: TraceSampler::ParentBasedAlwaysOn,
            metrics: true,
            metrics_endpoint: None,
            metrics_protocol: None,
            metric_export_interval: DEFAULT_METRIC_EXPORT_INTERVAL,
        }
    }

    /// What `observer::init` exports with: [`from_observer`](Self::from_observer) with the environment applied,
    /// and, when `config.send_to_logfire` is set and no endpoint is configured (nor `OTEL_SDK_DISABLED=true`), the
    /// OTLP default endpoint of the protocol.
    pub(crate) fn for_init(
        config: &ObserverConfig,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigurationError> {
        let mut tracing = Self::from_observer(config).apply_env_from(lookup)?;
        let disabled = Env::otel(lookup).strict_bool("OTEL_SDK_DISABLED")? == Some(true);
        if config.send_to_logfire && !disabled && tracing.export_endpoint().is_none() {
            tracing.otlp_endpoint = Some(tracing.protocol.default_endpoint().to_owned());
        }
        Ok(tracing)
    }

    /// The defaults with the `OTEL_*` environment variables applied.
    ///
    /// # Errors
    /// As [`apply_env`](Self::apply_env).
    pub fn from_env() -> Result<Self, ConfigurationError> {
        Self::default().apply_env()
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
    /// | `OTEL_SDK_DISABLED=true` | exports nothing: clears the endpoints and `kafka_topic`; `init` ignores `send_to_logfire` |
    ///
    /// The exporter itself also reads `OTEL_EXPORTER_OTLP_HEADERS` (HTTP only), `OTEL_EXPORTER_OTLP_TIMEOUT` and
    /// the batch processor's `OTEL_BSP_*`.
    ///
    /// # Errors
    /// A [`ConfigurationError`] naming the variable.
    pub fn apply_env(self) -> Result<Self, ConfigurationError> {
        self.apply_env_from(&env::process)
    }

    /// [`apply_env`](Self::apply_env) with a custom variable lookup.
    ///
    /// # Errors
    /// As [`apply_env`](Self::apply_env).
    pub fn apply_env_from(mut self, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigurationError> {
        let env = Env::otel(lookup);
        if let Some(attrs) = env.parse_with("OTEL_RESOURCE_ATTRIBUTES", parse_resource_attributes)? {
            let mut env_name = None;
            for (key, value) in attrs {
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
        if let Some(v) = env.string("OTEL_SERVICE_NAME") {
            self.service_name = v.trim().to_owned();
        }
        if let Some(v) = env.parse_with("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)? {
            self.otlp_endpoint = Some(v);
        }
        if let Some(v) = env.parse_with("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint)? {
            self.traces_endpoint = Some(v);
        }
        let general_protocol = env.choice::<OtlpProtocol>("OTEL_EXPORTER_OTLP_PROTOCOL")?;
        if let Some(p) = general_protocol {
            self.protocol = p;
        }
        if let Some(p) = env.choice::<OtlpProtocol>("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")? {
            // The traces' own transport: the metrics keep the general one.
            if self.metrics_protocol.is_none() {
                self.metrics_protocol = Some(general_protocol.unwrap_or(self.protocol));
            }
            self.protocol = p;
        }
        if let Some(p) = env.choice("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL")? {
            self.metrics_protocol = Some(p);
        }
        if let Some(v) = env.parse_with("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", endpoint)? {
            self.metrics_endpoint = Some(v);
        }
        if let Some(on) = env.parse_with("OTEL_METRICS_EXPORTER", |s| match s.to_ascii_lowercase().as_str() {
            "otlp" => Ok(true),
            "none" => Ok(false),
            other => Err(format!("unsupported metrics exporter `{other}`; expected `otlp` or `none`")),
        })? {
            self.metrics = on;
        }
        if let Some(ms) = env.parse_with("OTEL_METRIC_EXPORT_INTERVAL", |s| {
            s.parse::<u64>()
                .ok()
                .filter(|ms| *ms > 0)
                .ok_or_else(|| format!("`{s}` is not a positive number of milliseconds"))
        })? {
            self.metric_export_interval = Duration::from_millis(ms);
        }
        if let Some(sampler) = TraceSampler::from_env(&env)? {
            self.sampler = sampler;
        }
        if env.strict_bool("OTEL_SDK_DISABLED")? == Some(true) {
            // The specification's kill switch: nothing is exported, whatever code and the other variables say.
            self.otlp_endpoint = None;
            self.traces_endpoint = None;
            self.kafka_topic = None;
            self.metrics_endpoint = None;
            self.metrics = false;
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
            check_endpoint(e).map_err(|m| ConfigurationError::new("otlp_endpoint", m))?;
        }
        if let Some(e) = &self.traces_endpoint {
            check_endpoint(e).map_err(|m| ConfigurationError::new("traces_endpoint", m))?;
        }
        if let Some(e) = &self.metrics_endpoint {
            check_endpoint(e).map_err(|m| ConfigurationError::new("metrics_endpoint", m))?;
        }
        self.sampler.validate()?;
        if self.metric_export_interval.is_zero() {
            return Err(ConfigurationError::new("metric_export_interval", "must be greater than zero"));
        }
        if self.metrics_protocol == Some(OtlpProtocol::Grpc) {
            let endpoint = self.metrics_endpoint.as_ref().or(self.otlp_endpoint.as_ref());
            if endpoint.is_some_and(|e| e.trim().starts_with("https://")) {
                return Err(ConfigurationError::new(
                    "metrics_endpoint",
                    "OTLP gRPC over TLS is not built in: use `http/protobuf` for an https endpoint",
                ));
            }
            if !cfg!(feature = "otel-grpc") {
                return Err(ConfigurationError::new(
                    "metrics_protocol",
                    "OTLP gRPC needs the `otel-grpc` cargo feature of observer; or use `http/protobuf` (port 4318)",
                ));
            }
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
    /// endpoint for gRPC, or `None` when no endpoint is set.
    pub fn export_endpoint(&self) -> Option<String> {
        if let Some(url) = &self.traces_endpoint {
            return Some(url.trim().to_owned());
        }
        let base = self.otlp_endpoint.as_deref()?.trim();
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
}

impl TracingConfig {
    /// The transport of the metrics: [`metrics_protocol`](Self::metrics_protocol), else
    /// [`protocol`](Self::protocol).
    pub fn effective_metrics_protocol(&self) -> OtlpProtocol {
        self.metrics_protocol.unwrap_or(self.protocol)
    }

    /// Where metrics are sent, without looking at the environment: `None` when [`metrics`](Self::metrics) is off
    /// or no endpoint is set; else [`metrics_endpoint`](Self::metrics_endpoint) as is, or the metrics URL under
    /// [`otlp_endpoint`](Self::otlp_endpoint) (`…/v1/metrics` for HTTP, the endpoint itself for gRPC). A
    /// [`traces_endpoint`](Self::traces_endpoint) names the traces URL only and sends no metrics.
    pub fn metrics_export_endpoint(&self) -> Option<String> {
        if !self.metrics {
            return None;
        }
        if let Some(url) = &self.metrics_endpoint {
            return Some(url.trim().to_owned());
        }
        let base = self.otlp_endpoint.as_deref()?.trim();
        Some(match self.effective_metrics_protocol() {
            OtlpProtocol::HttpProtobuf => {
                let base = base.trim_end_matches('/');
                // An endpoint written as the traces URL names the collector: its metrics URL is beside it.
                let base = base.strip_suffix("/v1/traces").unwrap_or(base);
                if base.ends_with("/v1/metrics") {
                    base.to_owned()
                } else {
                    format!("{base}/v1/metrics")
                }
            }
            OtlpProtocol::Grpc => base.to_owned(),
        })
    }
}

/// `k=v,k2=v2` with percent-encoded values (the W3C Baggage octet format of `OTEL_RESOURCE_ATTRIBUTES`).
fn parse_resource_attributes(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(format!("`{pair}` is not `key=value`"));
        };
        let k = k.trim();
        if k.is_empty() {
            return Err(format!("`{pair}` has an empty key"));
        }
        let v = v.trim();
        // `percent_decode_str` passes a malformed escape through as is; the format does not allow one.
        let malformed =
            v.split('%').skip(1).any(|rest| !rest.get(..2).is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit())));
        if malformed {
            return Err(format!("bad percent-encoding in `{v}`"));
        }
        let decoded = percent_encoding::percent_decode_str(v)
            .decode_utf8()
            .map_err(|_| format!("`{v}` does not decode to UTF-8"))?;
        out.push((k.to_owned(), decoded.into_owned()));
    }
    Ok(out)
}

/// An endpoint from the environment, checked and trimmed.
fn endpoint(value: &str) -> Result<String, String> {
    check_endpoint(value)?;
    Ok(value.trim().to_owned())
}

/// An `http[s]://host[:port][/path]` URL: no user info, query or fragment, no blank in it, a port other than 0.
fn check_endpoint(value: &str) -> Result<(), String> {
    let value = value.trim();
    let example = "(e.g. http://127.0.0.1:4318)";
    // The URL parser drops tabs and newlines and encodes blanks; here they are mistakes.
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("`{value}` has no valid host"));
    }
    let url = url::Url::parse(value).map_err(|e| format!("`{value}` is not a URL {example}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{value}` is not an http:// or https:// URL {example}"));
    }
    if url.host().is_none() || !url.username().is_empty() || url.password().is_some() {
        return Err(format!("`{value}` has no valid host"));
    }
    if url.port() == Some(0) {
        return Err(format!("`{value}` has an invalid port `0`"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("`{value}` must not have a query or fragment"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::env::tests::table;

    #[test]
    fn env_wins_and_resource_attributes_are_parsed() {
        let c = TracingConfig { service_name: "code".into(), ..Default::default() }
            .apply_env_from(&table(&[
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
        // `deployment.environment.name` wins over the older key, in any order; empty values are unset.
        let c = TracingConfig::default()
            .apply_env_from(&table(&[
                ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=new,deployment.environment=old"),
                ("OTEL_SERVICE_NAME", " "),
            ]))
            .unwrap();
        assert_eq!(c.environment, "new");
        assert_eq!(c.service_name, "autonomize-service");
        let full = TracingConfig::default()
            .apply_env_from(&table(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://gw:8080/custom")]))
            .unwrap();
        assert_eq!(full.export_endpoint().as_deref(), Some("http://gw:8080/custom"));
    }

    #[test]
    fn metrics_follow_the_spans_endpoint_and_their_own_variables() {
        let c = |pairs| TracingConfig::default().apply_env_from(&table(pairs)).unwrap();
        assert_eq!(TracingConfig::default().metrics_export_endpoint(), None, "keep data local");
        let base = c(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")]);
        assert_eq!(base.metrics_export_endpoint().as_deref(), Some("http://collector:4318/v1/metrics"));
        assert_eq!(base.metric_export_interval, Duration::from_secs(60));
        assert_eq!(base.sampler, TraceSampler::ParentBasedAlwaysOn);
        let own = c(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://metrics:9090/otlp/v1/metrics"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "250"),
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.5"),
        ]);
        assert_eq!(own.metrics_export_endpoint().as_deref(), Some("http://metrics:9090/otlp/v1/metrics"));
        assert_eq!(own.export_endpoint().as_deref(), Some("http://collector:4318/v1/traces"));
        assert_eq!(own.metric_export_interval, Duration::from_millis(250));
        assert_eq!(own.sampler, TraceSampler::TraceIdRatio(0.5));
        let off = c(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"), ("OTEL_METRICS_EXPORTER", "none")]);
        assert_eq!(off.metrics_export_endpoint(), None);
        assert!(off.export_endpoint().is_some(), "spans still exported");
        // A traces URL names the traces only; an endpoint written as the traces URL still finds the metrics.
        assert_eq!(c(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://gw/t")]).metrics_export_endpoint(), None);
        let as_traces = TracingConfig { otlp_endpoint: Some("http://c:4318/v1/traces".into()), ..Default::default() };
        assert_eq!(as_traces.metrics_export_endpoint().as_deref(), Some("http://c:4318/v1/metrics"));
        // The traces' own protocol leaves the metrics on the general one; the metrics' own wins.
        let split = c(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
        ]);
        assert_eq!(split.protocol, OtlpProtocol::HttpProtobuf);
        assert_eq!(split.effective_metrics_protocol(), OtlpProtocol::Grpc);
        assert_eq!(split.metrics_export_endpoint().as_deref(), Some("http://collector:4317"));
        let own_protocol = c(&[("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "grpc")]);
        assert_eq!(
            (own_protocol.protocol, own_protocol.effective_metrics_protocol()),
            (OtlpProtocol::HttpProtobuf, OtlpProtocol::Grpc)
        );
        let disabled =
            c(&[("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://m:1/v1/metrics"), ("OTEL_SDK_DISABLED", "true")]);
        assert_eq!(disabled.metrics_export_endpoint(), None);
        // Bad values name the variable.
        let env_err = |pairs| TracingConfig::default().apply_env_from(&table(pairs)).unwrap_err().field;
        assert_eq!(env_err(&[("OTEL_METRICS_EXPORTER", "prometheus")]), "OTEL_METRICS_EXPORTER");
        assert_eq!(env_err(&[("OTEL_METRIC_EXPORT_INTERVAL", "0")]), "OTEL_METRIC_EXPORT_INTERVAL");
        assert_eq!(env_err(&[("OTEL_METRIC_EXPORT_INTERVAL", "5s")]), "OTEL_METRIC_EXPORT_INTERVAL");
        assert_eq!(
            env_err(&[("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "metrics:4318")]),
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"
        );
        assert_eq!(env_err(&[("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "udp")]), "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL");
        let field = |c: TracingConfig| c.validate().unwrap_err().field;
        assert_eq!(
            field(TracingConfig { metric_export_interval: Duration::ZERO, ..Default::default() }),
            "metric_export_interval"
        );
        assert_eq!(field(TracingConfig { sampler: TraceSampler::TraceIdRatio(1.5), ..Default::default() }), "sampler");
        assert_eq!(
            field(TracingConfig { metrics_endpoint: Some("ftp://m".into()), ..Default::default() }),
            "metrics_endpoint"
        );
    }

    #[test]
    fn otel_sdk_disabled_exports_nothing() {
        let config = TracingConfig { otlp_endpoint: Some("http://collector:4318".into()), ..Default::default() };
        let on = config.clone().apply_env_from(&table(&[("OTEL_SDK_DISABLED", "false")])).unwrap();
        assert_eq!(on.export_endpoint().as_deref(), Some("http://collector:4318/v1/traces"));
        let off = config
            .clone()
            .apply_env_from(&table(&[("OTEL_SDK_DISABLED", "TRUE"), ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")]))
            .unwrap();
        assert_eq!(off.export_endpoint(), None);
        let err = config.apply_env_from(&table(&[("OTEL_SDK_DISABLED", "yes")])).unwrap_err();
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
        let env_err = |pairs| TracingConfig::default().apply_env_from(&table(pairs)).unwrap_err().field;
        assert_eq!(env_err(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]), "OTEL_EXPORTER_OTLP_PROTOCOL");
        assert_eq!(env_err(&[("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "udp")]), "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL");
        assert_eq!(env_err(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector")]), "OTEL_EXPORTER_OTLP_ENDPOINT");
        assert_eq!(env_err(&[("OTEL_RESOURCE_ATTRIBUTES", "novalue")]), "OTEL_RESOURCE_ATTRIBUTES");
        assert_eq!(env_err(&[("OTEL_RESOURCE_ATTRIBUTES", "k=%zz")]), "OTEL_RESOURCE_ATTRIBUTES");
        let grpc = TracingConfig { protocol: OtlpProtocol::Grpc, ..Default::default() };
        assert_eq!(grpc.validate().is_ok(), cfg!(feature = "otel-grpc"));
    }

    #[test]
    fn init_follows_send_to_logfire() {
        let init = |send_to_logfire, vars| {
            let observer = ObserverConfig { service_name: "svc".into(), send_to_logfire, ..Default::default() };
            TracingConfig::for_init(&observer, &table(vars)).unwrap()
        };
        assert_eq!(TracingConfig::default().export_endpoint(), None, "keep data local");
        assert_eq!(init(false, &[]).export_endpoint(), None, "keep data local");
        let on = init(true, &[]);
        assert_eq!(on.service_name, "svc");
        assert_eq!(on.export_endpoint().as_deref(), Some("http://localhost:4318/v1/traces"));
        let grpc = init(true, &[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]);
        assert_eq!(grpc.export_endpoint().as_deref(), Some("http://localhost:4317"));
        let named = init(true, &[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://gw:8080/custom")]);
        assert_eq!(named.export_endpoint().as_deref(), Some("http://gw:8080/custom"));
        assert_eq!(init(true, &[("OTEL_SDK_DISABLED", "true")]).export_endpoint(), None);
        let explicit = TracingConfig { otlp_endpoint: Some("http://c:4318/v1/traces".into()), ..Default::default() };
        assert_eq!(explicit.export_endpoint().as_deref(), Some("http://c:4318/v1/traces"));
    }
}
