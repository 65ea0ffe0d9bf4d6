//! The configuration: [`ObserverConfig`] (with [`AuditSink`], [`FilePermissions`], [`Secret`]) here,
//! [`KafkaConfig`] in `kafka`, `TracingConfig` in `otel` (feature `otel`); every config reads the environment
//! through the one lookup of `env`.

mod capture;
mod env;
pub(crate) mod format;
mod integrity;
mod kafka;
#[cfg(feature = "otel")]
mod otel;
mod prices;
mod redaction;
#[cfg(feature = "otel")]
mod sampler;
pub(crate) mod secret;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use self::capture::CaptureLevel;
pub(crate) use self::env::process as process_env;
use self::env::Env;
pub use self::format::AuditFormat;
pub use self::integrity::{IntegrityConfig, SigningKeySource};
#[cfg(feature = "otel-kafka")]
pub(crate) use self::kafka::validate_topic;
pub use self::kafka::{Compression, KafkaConfig, SaslMechanism, SecurityProtocol};
#[cfg(feature = "otel")]
pub use self::otel::{OtlpProtocol, TracingConfig};
pub(crate) use self::prices::redact_url;
pub use self::prices::{PriceConfig, PriceDataSource, PriceOverride};
pub use self::redaction::RedactionConfig;
#[cfg(feature = "otel")]
pub use self::sampler::TraceSampler;
pub use self::secret::Secret;
use crate::error::ConfigurationError;
use crate::export::{MemorySink, Sink};

/// Everything [`init`](crate::init) needs. Build it with struct update syntax:
///
/// ```
/// let config = observer::ObserverConfig {
///     service_name: "my-service".into(),
///     environment: "staging".into(),
///     ..Default::default()
/// };
/// assert!(config.validate().is_ok());
/// ```
///
/// `init` applies [environment overrides](ObserverConfig::apply_env) on top of the values given here.
#[derive(Debug, Clone)]
pub struct ObserverConfig {
    /// Name of this service, on every event. Default `"autonomize-service"`. Env `OBSERVER_SERVICE_NAME`.
    pub service_name: String,
    /// Version of this service. Default `"1.0.0"`. Env `OBSERVER_SERVICE_VERSION`.
    pub service_version: String,
    /// Deployment environment. Default `"production"`. Env `OBSERVER_ENVIRONMENT`.
    pub environment: String,
    /// Whether traces may be sent to a remote backend (the guide's Logfire switch). Default `false`: keep data
    /// local, spans are exported only to an endpoint configured explicitly (`OTEL_EXPORTER_OTLP_ENDPOINT`). `true`:
    /// with the `otel` feature, `init` exports spans (to the OTLP default endpoint `http://localhost:4318` when none
    /// is configured); see `observer::trace::TracingConfig`. The SDK's one copy of this switch: `TracingConfig` has
    /// none (for `configure_tracing`, name the endpoint); a `TracerFactory` takes it as the default of
    /// `enable_otel`.
    pub send_to_logfire: bool,
    /// Trace OpenAI-compatible calls through the LLM HTTP middleware (feature `llm-http`). Default `true`:
    /// installing the middleware is the opt-in; set `false` to switch it off. Env `OBSERVER_INSTRUMENT_OPENAI`.
    pub instrument_openai: bool,
    /// Trace Anthropic calls through the LLM HTTP middleware (feature `llm-http`). Default `true`; set `false` to
    /// switch it off. Env `OBSERVER_INSTRUMENT_ANTHROPIC`.
    pub instrument_anthropic: bool,
    /// Record an LLM interaction audit event (model, provider, tokens, cost) for every call traced by the LLM HTTP
    /// instrumentation (feature `llm-http`). Default `false`. Env `OBSERVER_LOG_LLM_INTERACTIONS`.
    pub log_llm_interactions: bool,
    /// Kafka export (feature `kafka`): `Some` sends every audit event to Kafka as well (the guide's
    /// `kafka_enabled=True` with its `kafka_config`), `None` (default) does not. `Some(KafkaConfig::default())`
    /// takes the settings from the `KAFKA_*` variables. Env `OBSERVER_KAFKA_ENABLED=true` turns it on with the
    /// defaults when it is `None`, `=false` turns it off (sets `None`).
    pub kafka: Option<KafkaConfig>,
    /// Which Keycloak claim feeds which [`ActorContext`](crate::ActorContext) field. Default: Keycloak's layout;
    /// override fields with [`ClaimMappings::from_pairs`](crate::ClaimMappings::from_pairs) (the guide's
    /// `{"roles": "permissions"}`) or [`ClaimMappings::map`](crate::ClaimMappings::map).
    pub keycloak_claim_mappings: crate::ClaimMappings,
    /// Where audit events are written (besides Kafka). Default: the JSON-lines file [`AuditSink::DEFAULT_FILE`].
    pub audit_sink: AuditSink,
    /// The format of the embedded sink ([`audit_sink`](Self::audit_sink)): the guide's JSON (default), OCSF or FHIR
    /// R4 `AuditEvent` (see [`AuditFormat`]). Kafka has its own ([`KafkaConfig::audit_format`]), extra sinks say theirs
    /// ([`Sink::format`]). Env `OBSERVER_AUDIT_FORMAT` (`json`, `ocsf`, `fhir`).
    pub audit_format: AuditFormat,
    /// Additional sinks that receive every event.
    pub extra_sinks: Vec<Arc<dyn Sink>>,
    /// Capacity of the queue between callers and the background dispatcher. Default 131,072 events.
    /// When it is full, `emit` returns [`AuditError::QueueFull`](crate::AuditError::QueueFull) with the event
    /// instead of blocking. Env `OBSERVER_QUEUE_CAPACITY`.
    pub queue_capacity: usize,
    /// How long dropping the [`ObserverGuard`](crate::ObserverGuard) waits for pending events. Default 30 s.
    /// Env `OBSERVER_FLUSH_TIMEOUT_MS`.
    pub flush_timeout: Duration,
    /// Longest time between an event reaching the sinks and their `sync` (`fdatasync` of the audit file with
    /// [`FileSync::OnFlush`]) while events keep arriving: the most a machine crash can lose. Default 1 s; zero
    /// syncs after every batch. Env `OBSERVER_SYNC_INTERVAL_MS`.
    pub sync_interval: Duration,
    /// Permissions of the audit file and of the directories the SDK creates for it. Default owner-only
    /// (`0600` / `0700`). Env `OBSERVER_FILE_MODE`, `OBSERVER_DIR_MODE` (octal, e.g. `640`).
    pub file_permissions: FilePermissions,
    /// How much content of LLM calls and agent components is recorded (spans, the agent stream, the LLM layer's
    /// audit summaries). Default [`CaptureLevel::Metadata`]: no message or component content at all, only counts,
    /// models, ids and timings. Per middleware, tracer, component or call it can be set otherwise. Env
    /// `OBSERVER_CAPTURE_LEVEL` (`none`, `metadata`, `request`, `request_response`).
    pub capture_level: CaptureLevel,
    /// Fresh LLM price data (a file or URL, refreshed in the background) and your own models' prices; default:
    /// the bundled data only. Env `OBSERVER_PRICES_*`, see [`PriceConfig::apply_env`].
    pub prices: PriceConfig,
    /// What is masked in audit events before they leave the process (see [`RedactionConfig`]). On by default:
    /// the built-in detectors mask identifiers and secrets in descriptions, resource names, metadata and change
    /// values. Env `OBSERVER_REDACTION*`, see [`RedactionConfig::apply_env`].
    pub redaction: RedactionConfig,
    /// The tamper-evident chain and signed checkpoints of the audit trail. Default off; see [`IntegrityConfig`]
    /// (env `OBSERVER_INTEGRITY*`).
    pub integrity: IntegrityConfig,
}

impl Default for ObserverConfig {
    fn default() -> Self {
        Self {
            service_name: "autonomize-service".into(),
            service_version: "1.0.0".into(),
            environment: "production".into(),
            send_to_logfire: false,
            instrument_openai: true,
            instrument_anthropic: true,
            log_llm_interactions: false,
            kafka: None,
            keycloak_claim_mappings: crate::ClaimMappings::default(),
            audit_sink: AuditSink::default(),
            audit_format: AuditFormat::Json,
            extra_sinks: Vec::new(),
            queue_capacity: 131_072,
            flush_timeout: Duration::from_secs(30),
            sync_interval: Duration::from_secs(1),
            file_permissions: FilePermissions::default(),
            capture_level: CaptureLevel::default(),
            prices: PriceConfig::default(),
            redaction: RedactionConfig::default(),
            integrity: IntegrityConfig::default(),
        }
    }
}

/// Unix permission bits for the files and directories the SDK creates (the process's umask still applies).
/// Existing files and directories keep theirs. Ignored on other platforms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilePermissions {
    /// Mode of a new file. Default `0o600` (owner read/write): audit events may hold personal data.
    pub file_mode: u32,
    /// Mode of a new directory. Default `0o700`.
    pub dir_mode: u32,
}

impl Default for FilePermissions {
    fn default() -> Self {
        Self { file_mode: 0o600, dir_mode: 0o700 }
    }
}

impl FilePermissions {
    /// Checks that both are permission modes (at most `7777`) that leave the owner read/write on files and full
    /// access to directories; errors name `field`.
    pub(crate) fn validate(&self, field: &str) -> Result<(), ConfigurationError> {
        for mode in [self.file_mode, self.dir_mode] {
            if mode > 0o7777 {
                return Err(ConfigurationError::new(
                    field,
                    format!("{mode:o} is not a permission mode (at most 7777)"),
                ));
            }
        }
        if self.file_mode & 0o600 != 0o600 || self.dir_mode & 0o700 != 0o700 {
            return Err(ConfigurationError::new(
                field,
                "the owner needs read and write on the files (0600) and full access to directories (0700)",
            ));
        }
        Ok(())
    }
}

/// The embedded audit sink.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AuditSink {
    /// Append JSON lines to a file (created with its parent directories). Env `OBSERVER_AUDIT_FILE=path`.
    File {
        /// The file.
        path: PathBuf,
        /// When to `fsync`.
        sync: FileSync,
    },
    /// Write JSON lines to standard output. Env `OBSERVER_AUDIT_SINK=stdout`.
    Stdout,
    /// Keep events in memory, for tests (see [`MemorySink`]).
    Memory(MemorySink),
    /// Only the extra sinks and Kafka; rejected when there are none, so events never go nowhere.
    /// Env `OBSERVER_AUDIT_SINK=none`.
    None,
}

impl Default for AuditSink {
    fn default() -> Self {
        Self::File { path: PathBuf::from(Self::DEFAULT_FILE), sync: FileSync::default() }
    }
}

impl AuditSink {
    /// The default JSON-lines audit file, `observer-audit.jsonl`, relative to the working directory.
    pub const DEFAULT_FILE: &str = "observer-audit.jsonl";

    /// A JSON-lines file sink with the default fsync policy.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self::File { path: path.into(), sync: FileSync::default() }
    }
}

/// When the file sink calls `fsync`. Every batch is always handed to the operating system (`write`) before
/// the dispatcher takes the next one, so a crash of the process loses nothing already written; `fsync`
/// additionally protects against a crash of the machine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileSync {
    /// Never fsync; the OS writes back in its own time.
    Never,
    /// fsync on every flush: the guard's drop, [`flush`](crate::flush), when the dispatcher goes idle, and while
    /// events keep arriving at least every [`ObserverConfig::sync_interval`] (1 s). (Default.)
    #[default]
    OnFlush,
    /// fsync after every batch (slowest, strongest).
    EveryBatch,
}

impl ObserverConfig {
    /// The defaults with every environment override applied.
    ///
    /// # Errors
    /// As [`apply_env`](Self::apply_env).
    pub fn from_env() -> Result<Self, ConfigurationError> {
        Self::default().apply_env()
    }

    /// Applies the environment overrides (they win over values set in code, so operators can redirect a
    /// deployed service):
    ///
    /// | variable | field |
    /// |---|---|
    /// | `OBSERVER_SERVICE_NAME` | `service_name` |
    /// | `OBSERVER_SERVICE_VERSION` | `service_version` |
    /// | `OBSERVER_ENVIRONMENT` | `environment` |
    /// | `OBSERVER_KAFKA_ENABLED` | `kafka`: `true` = `Some` (the defaults when it was `None`), `false` = `None` |
    /// | `OBSERVER_INSTRUMENT_OPENAI` | `instrument_openai` (`true`/`false`) |
    /// | `OBSERVER_INSTRUMENT_ANTHROPIC` | `instrument_anthropic` (`true`/`false`) |
    /// | `OBSERVER_LOG_LLM_INTERACTIONS` | `log_llm_interactions` (`true`/`false`) |
    /// | `OBSERVER_AUDIT_FILE` | `audit_sink` = that JSON-lines file |
    /// | `OBSERVER_AUDIT_SINK` | `audit_sink` = `file`, `stdout` or `none` |
    /// | `OBSERVER_AUDIT_FORMAT` | `audit_format` = `json`, `ocsf` or `fhir` |
    /// | `OBSERVER_QUEUE_CAPACITY` | `queue_capacity` |
    /// | `OBSERVER_FLUSH_TIMEOUT_MS` | `flush_timeout` |
    /// | `OBSERVER_SYNC_INTERVAL_MS` | `sync_interval` |
    /// | `OBSERVER_FILE_MODE`, `OBSERVER_DIR_MODE` | `file_permissions` (octal, e.g. `640`) |
    /// | `OBSERVER_CAPTURE_LEVEL` | `capture_level` (`none`, `metadata`, `request`, `request_response`) |
    /// | `OBSERVER_REDACTION*` | the [`RedactionConfig`] fields, see [`RedactionConfig::apply_env`] |
    /// | `OBSERVER_INTEGRITY*` | `integrity`, see [`IntegrityConfig::apply_env`] |
    /// | `KAFKA_*` | the [`KafkaConfig`] fields, see [`KafkaConfig::apply_env`] |
    /// | `OBSERVER_PRICES_*`, `OBSERVER_PRICE_OVERRIDES_FILE` | `prices`, see [`PriceConfig::apply_env`] |
    pub fn apply_env(self) -> Result<Self, ConfigurationError> {
        self.apply_env_from(&env::process)
    }

    /// [`apply_env`](Self::apply_env) with a custom variable lookup.
    ///
    /// # Errors
    /// As [`apply_env`](Self::apply_env).
    pub fn apply_env_from(mut self, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigurationError> {
        let env = Env::new(lookup);
        if let Some(v) = env.string("OBSERVER_SERVICE_NAME") {
            self.service_name = v;
        }
        if let Some(v) = env.string("OBSERVER_SERVICE_VERSION") {
            self.service_version = v;
        }
        if let Some(v) = env.string("OBSERVER_ENVIRONMENT") {
            self.environment = v;
        }
        if let Some(v) = env.bool("OBSERVER_KAFKA_ENABLED")? {
            self.kafka = v.then(|| self.kafka.take().unwrap_or_default());
        }
        if let Some(v) = env.bool("OBSERVER_INSTRUMENT_OPENAI")? {
            self.instrument_openai = v;
        }
        if let Some(v) = env.bool("OBSERVER_INSTRUMENT_ANTHROPIC")? {
            self.instrument_anthropic = v;
        }
        if let Some(v) = env.bool("OBSERVER_LOG_LLM_INTERACTIONS")? {
            self.log_llm_interactions = v;
        }
        let sink = env.parse_with("OBSERVER_AUDIT_SINK", |s| match s.to_ascii_lowercase().as_str() {
            kind @ ("file" | "stdout" | "none") => Ok(kind.to_owned()),
            other => Err(format!("unknown sink `{other}`; expected file, stdout or none")),
        })?;
        if let Some(kind) = sink {
            self.audit_sink = match kind.as_str() {
                "stdout" => AuditSink::Stdout,
                "none" => AuditSink::None,
                _ => match self.audit_sink {
                    s @ AuditSink::File { .. } => s,
                    _ => AuditSink::default(),
                },
            };
        }
        if let Some(path) = env.path("OBSERVER_AUDIT_FILE") {
            let sync = match self.audit_sink {
                AuditSink::File { sync, .. } => sync,
                _ => FileSync::default(),
            };
            self.audit_sink = AuditSink::File { path, sync };
        }
        if let Some(f) = env.choice("OBSERVER_AUDIT_FORMAT")? {
            self.audit_format = f;
        }
        if let Some(n) = env.parse("OBSERVER_QUEUE_CAPACITY")? {
            self.queue_capacity = n;
        }
        if let Some(d) = env.millis("OBSERVER_FLUSH_TIMEOUT_MS")? {
            self.flush_timeout = d;
        }
        if let Some(d) = env.millis("OBSERVER_SYNC_INTERVAL_MS")? {
            self.sync_interval = d;
        }
        if let Some(mode) = env.octal_mode("OBSERVER_FILE_MODE")? {
            self.file_permissions.file_mode = mode;
        }
        if let Some(mode) = env.octal_mode("OBSERVER_DIR_MODE")? {
            self.file_permissions.dir_mode = mode;
        }
        if let Some(level) = env.choice("OBSERVER_CAPTURE_LEVEL")? {
            self.capture_level = level;
        }
        self.integrity = std::mem::take(&mut self.integrity).apply_env_from(lookup)?;
        if let Some(kafka) = self.kafka.take() {
            self.kafka = Some(kafka.apply_env_from(lookup)?);
        }
        self.prices = self.prices.apply_env_from(lookup)?;
        self.redaction = self.redaction.apply_env_from(lookup)?;
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
        if self.queue_capacity == 0 || self.queue_capacity > 16_777_216 {
            return Err(ConfigurationError::new("queue_capacity", "must be between 1 and 16777216"));
        }
        if self.flush_timeout.is_zero() {
            return Err(ConfigurationError::new("flush_timeout", "must be greater than zero"));
        }
        self.file_permissions.validate("file_permissions")?;
        if let AuditSink::File { path, .. } = &self.audit_sink {
            if path.as_os_str().is_empty() || path.is_dir() {
                return Err(ConfigurationError::new("audit_sink", format!("`{}` is not a file path", path.display())));
            }
        }
        if matches!(self.audit_sink, AuditSink::None) && self.extra_sinks.is_empty() && self.kafka.is_none() {
            return Err(ConfigurationError::new(
                "audit_sink",
                "`none` needs Kafka or an extra sink: audit events must go somewhere",
            ));
        }
        if let Some(k) = &self.kafka {
            k.validate()?;
        }
        self.prices.validate()?;
        self.redaction.validate()?;
        self.integrity.validate()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::env::tests::table;
    use super::*;

    #[test]
    fn defaults_are_the_reference_ones_and_valid() {
        let c = ObserverConfig::default();
        assert_eq!(c.service_name, "autonomize-service");
        assert_eq!(c.environment, "production");
        assert!(c.kafka.is_none());
        c.validate().unwrap();
    }

    #[test]
    fn env_overrides_win_and_bad_values_name_the_variable() {
        let c = ObserverConfig { service_name: "code".into(), ..Default::default() }
            .apply_env_from(&table(&[
                ("OBSERVER_SERVICE_NAME", "from-env"),
                ("OBSERVER_ENVIRONMENT", "staging"),
                ("OBSERVER_AUDIT_FILE", "/tmp/x.jsonl"),
                ("OBSERVER_KAFKA_ENABLED", "true"),
                ("KAFKA_BOOTSTRAP_SERVERS", "k1:9092,k2:9093"),
                ("KAFKA_SASL_PASSWORD", "hunter2"),
            ]))
            .unwrap();
        assert_eq!(c.service_name, "from-env");
        assert_eq!(c.environment, "staging");
        assert!(matches!(&c.audit_sink, AuditSink::File { path, .. } if path == std::path::Path::new("/tmp/x.jsonl")));
        let k = c.kafka.as_ref().unwrap();
        assert_eq!(k.bootstrap_servers, "k1:9092,k2:9093");
        let c = ObserverConfig::default()
            .apply_env_from(&table(&[
                ("OBSERVER_FILE_MODE", "640"),
                ("OBSERVER_DIR_MODE", "0o750"),
                ("OBSERVER_SYNC_INTERVAL_MS", "250"),
            ]))
            .unwrap();
        assert_eq!(c.file_permissions, FilePermissions { file_mode: 0o640, dir_mode: 0o750 });
        assert_eq!(c.sync_interval, Duration::from_millis(250));
        assert_eq!(c.capture_level, CaptureLevel::Metadata, "content is off by default");
        let c = ObserverConfig::default().apply_env_from(&table(&[("OBSERVER_CAPTURE_LEVEL", "request")])).unwrap();
        assert_eq!(c.capture_level, CaptureLevel::Request);
        let err = ObserverConfig::default().apply_env_from(&table(&[("OBSERVER_CAPTURE_LEVEL", "all")])).unwrap_err();
        assert_eq!(err.field, "OBSERVER_CAPTURE_LEVEL");
        assert_eq!(ObserverConfig::default().file_permissions, FilePermissions { file_mode: 0o600, dir_mode: 0o700 });
        let err = ObserverConfig::default().apply_env_from(&table(&[("OBSERVER_FILE_MODE", "rw-r--r--")])).unwrap_err();
        assert_eq!(err.field, "OBSERVER_FILE_MODE");
        let err = ObserverConfig::default().apply_env_from(&table(&[("OBSERVER_DIR_MODE", "99")])).unwrap_err();
        assert_eq!(err.field, "OBSERVER_DIR_MODE");
        let unreadable = FilePermissions { file_mode: 0o200, dir_mode: 0o700 };
        let err = ObserverConfig { file_permissions: unreadable, ..Default::default() }.validate().unwrap_err();
        assert_eq!(err.field, "file_permissions");
        let err = ObserverConfig::default().apply_env_from(&table(&[("OBSERVER_QUEUE_CAPACITY", "lots")])).unwrap_err();
        assert_eq!(err.field, "OBSERVER_QUEUE_CAPACITY");
        let err = ObserverConfig { kafka: Some(KafkaConfig::default()), ..Default::default() }
            .apply_env_from(&table(&[("KAFKA_SECURITY_PROTOCOL", "TLS")]))
            .unwrap_err();
        assert_eq!(err.field, "KAFKA_SECURITY_PROTOCOL");
        assert!(err.message.contains("SASL_SSL"), "{err}");
    }

    #[test]
    fn observer_validation() {
        let err = ObserverConfig { service_name: "".into(), ..Default::default() }.validate().unwrap_err();
        assert_eq!(err.field, "service_name");
        let err = ObserverConfig { queue_capacity: 0, ..Default::default() }.validate().unwrap_err();
        assert_eq!(err.field, "queue_capacity");
        let err = ObserverConfig { audit_sink: AuditSink::None, ..Default::default() }.validate().unwrap_err();
        assert_eq!(err.field, "audit_sink");
        let err = ObserverConfig {
            kafka: Some(KafkaConfig { audit_topic: "".into(), ..Default::default() }),
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(err.field, "kafka.audit_topic");
    }
}
