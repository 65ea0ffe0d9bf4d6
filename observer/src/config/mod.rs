//! [`ObserverConfig`] and [`KafkaConfig`], their defaults, environment overrides and validation.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::error::ConfigurationError;
use crate::export::{MemorySink, Sink};

/// The default JSON-lines audit file, relative to the working directory.
pub const DEFAULT_AUDIT_FILE: &str = "observer-audit.jsonl";

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
    /// is configured); see `observer::trace::TracingConfig`.
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
    /// Kafka settings. `None` with `kafka_enabled` takes them from the `KAFKA_*` environment variables.
    pub kafka: Option<KafkaConfig>,
    /// Export audit events to Kafka. Default `false`. Env `OBSERVER_KAFKA_ENABLED`.
    pub kafka_enabled: bool,
    /// Custom Keycloak claim mappings, ActorContext field → dotted claim path (e.g. `"roles" →
    /// "realm_access.roles"`); fields not listed keep the default mapping.
    pub keycloak_claim_mappings: BTreeMap<String, String>,
    /// Where audit events are written (besides Kafka). Default: the JSON-lines file [`DEFAULT_AUDIT_FILE`].
    pub audit_sink: AuditSink,
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
            kafka_enabled: false,
            keycloak_claim_mappings: BTreeMap::new(),
            audit_sink: AuditSink::default(),
            extra_sinks: Vec::new(),
            queue_capacity: 131_072,
            flush_timeout: Duration::from_secs(30),
            sync_interval: Duration::from_secs(1),
            file_permissions: FilePermissions::default(),
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
    fn validate(&self, field: &str) -> Result<(), ConfigurationError> {
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
        Self::File { path: PathBuf::from(DEFAULT_AUDIT_FILE), sync: FileSync::default() }
    }
}

impl AuditSink {
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

/// A secret string (e.g. the SASL password): never shown by `Debug` or `Display`, never serialised.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value, for handing to the client library that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self(s)
    }
}

/// Kafka security protocol.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecurityProtocol {
    /// No TLS, no SASL (default).
    #[default]
    Plaintext,
    /// TLS.
    Ssl,
    /// SASL without TLS.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

/// SASL mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SaslMechanism {
    /// PLAIN.
    Plain,
    /// SCRAM-SHA-256.
    ScramSha256,
    /// SCRAM-SHA-512.
    ScramSha512,
}

/// Producer compression codec.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// None (default).
    #[default]
    None,
    /// gzip.
    Gzip,
    /// snappy.
    Snappy,
    /// lz4.
    Lz4,
    /// zstd.
    Zstd,
}

macro_rules! spelled {
    ($ty:ident, $field:literal { $($variant:ident = $s:literal),* $(,)? }) => {
        impl $ty {
            /// The spelling librdkafka and the guide use.
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $s,)* }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
        impl FromStr for $ty {
            type Err = ConfigurationError;
            fn from_str(s: &str) -> Result<Self, ConfigurationError> {
                let t = s.trim();
                $( if t.eq_ignore_ascii_case($s) { return Ok(Self::$variant); } )*
                Err(ConfigurationError::new($field, format!(
                    "unknown value `{t}`; expected one of: {}", [$($s),*].join(", "))))
            }
        }
    };
}

spelled!(SecurityProtocol, "kafka.security_protocol" {
    Plaintext = "PLAINTEXT", Ssl = "SSL", SaslPlaintext = "SASL_PLAINTEXT", SaslSsl = "SASL_SSL",
});
spelled!(SaslMechanism, "kafka.sasl_mechanism" {
    Plain = "PLAIN", ScramSha256 = "SCRAM-SHA-256", ScramSha512 = "SCRAM-SHA-512",
});
spelled!(Compression, "kafka.compression" {
    None = "none", Gzip = "gzip", Snappy = "snappy", Lz4 = "lz4", Zstd = "zstd",
});

/// Kafka connection and producer settings (the guide's `KafkaConfig`). Every setting is honoured by the
/// exporter; validation errors name the field.
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaConfig {
    /// Comma-separated `host:port` list. Default `"localhost:9092"`. Env `KAFKA_BOOTSTRAP_SERVERS`.
    pub bootstrap_servers: String,
    /// Client id. Default `"autonomize-observer"`. Env `KAFKA_CLIENT_ID`.
    pub client_id: String,
    /// Topic for audit events. Default `"genesis-audit-events"`. Env `KAFKA_AUDIT_TOPIC`.
    pub audit_topic: String,
    /// Topic for the agent trace stream. Default `"genesis-traces-streaming"`. Env `KAFKA_TRACE_TOPIC`.
    pub trace_topic: String,
    /// Topic for workflow events. Default `"workflow-traces"`. Env `KAFKA_WORKFLOW_TOPIC`.
    pub workflow_topic: String,
    /// Security protocol. Default PLAINTEXT; PLAINTEXT together with a SASL username or password means
    /// SASL_SSL, as in the reference SDK (set `SaslPlaintext` for SASL without TLS). See
    /// [`effective_security_protocol`](Self::effective_security_protocol). Env `KAFKA_SECURITY_PROTOCOL`.
    pub security_protocol: SecurityProtocol,
    /// SASL mechanism used with a SASL protocol; `None` means PLAIN (as in the reference SDK). See
    /// [`effective_sasl_mechanism`](Self::effective_sasl_mechanism). Env `KAFKA_SASL_MECHANISM`.
    pub sasl_mechanism: Option<SaslMechanism>,
    /// SASL user name. Env `KAFKA_SASL_USERNAME`.
    pub sasl_username: Option<String>,
    /// SASL password (never shown in `Debug`, logs or errors). Env `KAFKA_SASL_PASSWORD`.
    pub sasl_password: Option<Secret>,
    /// `"all"` (default), `"-1"`, `"0"` or `"1"`. Env `KAFKA_ACKS`.
    pub acks: String,
    /// Producer retries. Default 3.
    pub retries: u32,
    /// Backoff between retries in milliseconds. Default 100.
    pub retry_backoff_ms: u64,
    /// Maximum batch size in bytes. Default 1,000,000 (librdkafka's; the guide's example sets 16,384, which
    /// caps a batch at ~16 events of 1 KB and costs throughput).
    pub batch_size: usize,
    /// Linger before sending a batch, in milliseconds. Default 5.
    pub linger_ms: u64,
    /// Compression codec. Default none.
    pub compression: Compression,
    /// Idempotent producer (no duplicates from producer retries). Default `true`.
    pub enable_idempotence: bool,
    /// How long librdkafka keeps trying to deliver a message before reporting it failed (it then goes to the
    /// spool). Default 30,000 ms. Env `KAFKA_MESSAGE_TIMEOUT_MS`.
    pub message_timeout_ms: u64,
    /// CA certificate file for SSL / SASL_SSL (PEM). Env `KAFKA_SSL_CA_LOCATION`.
    pub ssl_ca_location: Option<PathBuf>,
    /// Directory of the durable spool for events the broker has not acknowledged. Default `observer-spool`
    /// in the working directory. One process per directory (it is locked). Env `OBSERVER_SPOOL_DIR`.
    pub spool_dir: Option<PathBuf>,
    /// Size limit of the spool in bytes. Default 1 GiB. When reached, further undeliverable events are
    /// written to stderr (`observer-kafka-fallback: …`), counted and reported as errors. Env `OBSERVER_SPOOL_MAX_BYTES`.
    pub spool_max_bytes: u64,
    /// Permissions of the spool's files (segments, lock file) and of the directories it creates (the spool
    /// directory, `quarantine/`). `None` (default): [`ObserverConfig::file_permissions`] when the exporter is
    /// created by `init` or a `TracerFactory`, owner-only (`0600` / `0700`) otherwise. Existing directories keep
    /// their permissions.
    pub spool_permissions: Option<FilePermissions>,
}

/// The spool directory used when `KafkaConfig::spool_dir` is not set.
pub const DEFAULT_SPOOL_DIR: &str = "observer-spool";

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            bootstrap_servers: "localhost:9092".into(),
            client_id: "autonomize-observer".into(),
            audit_topic: "genesis-audit-events".into(),
            trace_topic: "genesis-traces-streaming".into(),
            workflow_topic: "workflow-traces".into(),
            security_protocol: SecurityProtocol::Plaintext,
            sasl_mechanism: None,
            sasl_username: None,
            sasl_password: None,
            acks: "all".into(),
            retries: 3,
            retry_backoff_ms: 100,
            batch_size: 1_000_000,
            linger_ms: 5,
            compression: Compression::None,
            enable_idempotence: true,
            message_timeout_ms: 30_000,
            ssl_ca_location: None,
            spool_dir: None,
            spool_max_bytes: 1 << 30,
            spool_permissions: None,
        }
    }
}

/// The `KAFKA_*` variables [`KafkaConfig::apply_env_from`] reads.
const KAFKA_ENV_VARS: [&str; 14] = [
    "KAFKA_MESSAGE_TIMEOUT_MS",
    "KAFKA_SSL_CA_LOCATION",
    "OBSERVER_SPOOL_DIR",
    "OBSERVER_SPOOL_MAX_BYTES",
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_CLIENT_ID",
    "KAFKA_AUDIT_TOPIC",
    "KAFKA_TRACE_TOPIC",
    "KAFKA_WORKFLOW_TOPIC",
    "KAFKA_ACKS",
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
];

/// Reads one variable; a lookup function instead of `std::env` keeps this testable.
type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

fn env_parse<T: FromStr>(lookup: Lookup<'_>, var: &str) -> Result<Option<T>, ConfigurationError>
where
    T::Err: fmt::Display,
{
    match lookup(var) {
        None => Ok(None),
        Some(raw) => raw
            .trim()
            .parse::<T>()
            .map(Some)
            .map_err(|e| ConfigurationError::new(var, format!("cannot parse `{}`: {e}", raw.trim()))),
    }
}

fn env_bool(lookup: Lookup<'_>, var: &str) -> Result<Option<bool>, ConfigurationError> {
    match lookup(var) {
        None => Ok(None),
        Some(raw) => match raw.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(Some(true)),
            "0" | "false" | "no" | "off" => Ok(Some(false)),
            other => Err(ConfigurationError::new(var, format!("expected true or false, got `{other}`"))),
        },
    }
}

/// An octal permission mode such as `640` or `0o640`.
fn env_mode(lookup: Lookup<'_>, var: &str) -> Result<Option<u32>, ConfigurationError> {
    match lookup(var) {
        None => Ok(None),
        Some(raw) => {
            let t = raw.trim();
            let digits = t.strip_prefix("0o").unwrap_or(t);
            u32::from_str_radix(digits, 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .map(Some)
                .ok_or_else(|| ConfigurationError::new(var, format!("expected an octal mode such as 600, got `{t}`")))
        }
    }
}

impl KafkaConfig {
    /// The defaults with the `KAFKA_*` environment variables applied.
    pub fn from_env() -> Result<Self, ConfigurationError> {
        let mut c = Self::default();
        c.apply_env_from(&|k| std::env::var(k).ok())?;
        Ok(c)
    }

    /// Applies `KAFKA_BOOTSTRAP_SERVERS`, `KAFKA_CLIENT_ID`, `KAFKA_AUDIT_TOPIC`, `KAFKA_TRACE_TOPIC`,
    /// `KAFKA_WORKFLOW_TOPIC`, `KAFKA_SECURITY_PROTOCOL`, `KAFKA_SASL_MECHANISM`, `KAFKA_SASL_USERNAME`,
    /// `KAFKA_SASL_PASSWORD`, `KAFKA_ACKS`, `KAFKA_MESSAGE_TIMEOUT_MS`, `KAFKA_SSL_CA_LOCATION`,
    /// `OBSERVER_SPOOL_DIR` and `OBSERVER_SPOOL_MAX_BYTES` from `lookup`.
    pub fn apply_env_from(&mut self, lookup: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigurationError> {
        let strings: [(&str, &mut String); 6] = [
            ("KAFKA_BOOTSTRAP_SERVERS", &mut self.bootstrap_servers),
            ("KAFKA_CLIENT_ID", &mut self.client_id),
            ("KAFKA_AUDIT_TOPIC", &mut self.audit_topic),
            ("KAFKA_TRACE_TOPIC", &mut self.trace_topic),
            ("KAFKA_WORKFLOW_TOPIC", &mut self.workflow_topic),
            ("KAFKA_ACKS", &mut self.acks),
        ];
        for (var, field) in strings {
            if let Some(v) = lookup(var) {
                *field = v;
            }
        }
        if let Some(p) = lookup("KAFKA_SECURITY_PROTOCOL") {
            self.security_protocol = p
                .parse()
                .map_err(|e: ConfigurationError| ConfigurationError::new("KAFKA_SECURITY_PROTOCOL", e.message))?;
        }
        if let Some(m) = lookup("KAFKA_SASL_MECHANISM") {
            self.sasl_mechanism = Some(
                m.parse()
                    .map_err(|e: ConfigurationError| ConfigurationError::new("KAFKA_SASL_MECHANISM", e.message))?,
            );
        }
        if let Some(u) = lookup("KAFKA_SASL_USERNAME") {
            self.sasl_username = Some(u);
        }
        if let Some(p) = lookup("KAFKA_SASL_PASSWORD") {
            self.sasl_password = Some(Secret::new(p));
        }
        if let Some(ms) = env_parse::<u64>(lookup, "KAFKA_MESSAGE_TIMEOUT_MS")? {
            self.message_timeout_ms = ms;
        }
        if let Some(p) = lookup("KAFKA_SSL_CA_LOCATION") {
            self.ssl_ca_location = Some(p.into());
        }
        if let Some(p) = lookup("OBSERVER_SPOOL_DIR") {
            self.spool_dir = Some(p.into());
        }
        if let Some(n) = env_parse::<u64>(lookup, "OBSERVER_SPOOL_MAX_BYTES")? {
            self.spool_max_bytes = n;
        }
        Ok(())
    }

    /// The protocol the producer uses: [`security_protocol`](Self::security_protocol), except that PLAINTEXT
    /// (the default) with a SASL username or password set becomes SASL_SSL, as in the reference SDK: credentials
    /// are never sent in clear text, and the guide's settings (username and password only) work as written.
    pub fn effective_security_protocol(&self) -> SecurityProtocol {
        let credentials = self.sasl_username.is_some() || self.sasl_password.is_some();
        match self.security_protocol {
            SecurityProtocol::Plaintext if credentials => SecurityProtocol::SaslSsl,
            p => p,
        }
    }

    /// The SASL mechanism the producer uses: `None` when the
    /// [effective protocol](Self::effective_security_protocol) is not a SASL one; otherwise
    /// [`sasl_mechanism`](Self::sasl_mechanism), PLAIN when it is not set (as in the reference SDK).
    pub fn effective_sasl_mechanism(&self) -> Option<SaslMechanism> {
        match self.effective_security_protocol() {
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl => {
                Some(self.sasl_mechanism.unwrap_or(SaslMechanism::Plain))
            }
            _ => None,
        }
    }

    /// Checks every field; the error names the first invalid one (`kafka.<field>`). The SASL settings are
    /// checked as the producer uses them ([`effective_security_protocol`](Self::effective_security_protocol),
    /// [`effective_sasl_mechanism`](Self::effective_sasl_mechanism)).
    pub fn validate(&self) -> Result<(), ConfigurationError> {
        let servers: Vec<&str> = self.bootstrap_servers.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
        if servers.is_empty() {
            return Err(ConfigurationError::new("kafka.bootstrap_servers", "must list at least one host:port"));
        }
        for s in &servers {
            let ok = s
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
            if !ok {
                return Err(ConfigurationError::new("kafka.bootstrap_servers", format!("`{s}` is not host:port")));
            }
        }
        if self.client_id.trim().is_empty() {
            return Err(ConfigurationError::new("kafka.client_id", "must not be empty"));
        }
        for (field, topic) in [
            ("kafka.audit_topic", &self.audit_topic),
            ("kafka.trace_topic", &self.trace_topic),
            ("kafka.workflow_topic", &self.workflow_topic),
        ] {
            validate_topic(field, topic)?;
        }
        if !matches!(self.acks.as_str(), "all" | "-1" | "0" | "1") {
            return Err(ConfigurationError::new("kafka.acks", format!("`{}` is not one of all, -1, 0, 1", self.acks)));
        }
        if self.enable_idempotence && !matches!(self.acks.as_str(), "all" | "-1") {
            return Err(ConfigurationError::new("kafka.acks", "the idempotent producer needs acks=all"));
        }
        if self.batch_size == 0 {
            return Err(ConfigurationError::new("kafka.batch_size", "must be greater than zero"));
        }
        if self.enable_idempotence && self.retries == 0 {
            return Err(ConfigurationError::new("kafka.retries", "the idempotent producer needs retries > 0"));
        }
        if !(1_000..=3_600_000).contains(&self.message_timeout_ms) {
            return Err(ConfigurationError::new("kafka.message_timeout_ms", "must be between 1000 and 3600000"));
        }
        if self.spool_max_bytes < 1 << 20 {
            return Err(ConfigurationError::new("kafka.spool_max_bytes", "must be at least 1 MiB"));
        }
        if let Some(p) = self.spool_permissions {
            p.validate("kafka.spool_permissions")?;
        }
        if self.linger_ms > 900_000 {
            return Err(ConfigurationError::new("kafka.linger_ms", "must be at most 900000"));
        }
        let protocol = self.effective_security_protocol();
        if self.effective_sasl_mechanism().is_some() {
            if self.sasl_username.as_deref().is_none_or(|u| u.is_empty()) {
                return Err(ConfigurationError::new("kafka.sasl_username", format!("required with {protocol}")));
            }
            if self.sasl_password.as_ref().is_none_or(|p| p.expose().is_empty()) {
                return Err(ConfigurationError::new("kafka.sasl_password", format!("required with {protocol}")));
            }
        } else if self.sasl_mechanism.is_some() || self.sasl_username.is_some() || self.sasl_password.is_some() {
            return Err(ConfigurationError::new(
                "kafka.security_protocol",
                format!("SASL settings are set but the protocol is {protocol}; use SASL_PLAINTEXT or SASL_SSL"),
            ));
        }
        Ok(())
    }
}

fn validate_topic(field: &str, topic: &str) -> Result<(), ConfigurationError> {
    if topic.is_empty() || topic.len() > 249 {
        return Err(ConfigurationError::new(field, "a topic name has 1 to 249 characters"));
    }
    if topic == "." || topic == ".." {
        return Err(ConfigurationError::new(field, "`.` and `..` are not topic names"));
    }
    if let Some(c) = topic.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(ConfigurationError::new(
            field,
            format!("`{c}` is not allowed in a topic name (use a-z, A-Z, 0-9, `.`, `_`, `-`)"),
        ));
    }
    Ok(())
}

impl ObserverConfig {
    /// The defaults with every environment override applied.
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
    /// | `OBSERVER_KAFKA_ENABLED` | `kafka_enabled` (`true`/`false`) |
    /// | `OBSERVER_INSTRUMENT_OPENAI` | `instrument_openai` (`true`/`false`) |
    /// | `OBSERVER_INSTRUMENT_ANTHROPIC` | `instrument_anthropic` (`true`/`false`) |
    /// | `OBSERVER_LOG_LLM_INTERACTIONS` | `log_llm_interactions` (`true`/`false`) |
    /// | `OBSERVER_AUDIT_FILE` | `audit_sink` = that JSON-lines file |
    /// | `OBSERVER_AUDIT_SINK` | `audit_sink` = `file`, `stdout` or `none` |
    /// | `OBSERVER_QUEUE_CAPACITY` | `queue_capacity` |
    /// | `OBSERVER_FLUSH_TIMEOUT_MS` | `flush_timeout` |
    /// | `OBSERVER_SYNC_INTERVAL_MS` | `sync_interval` |
    /// | `OBSERVER_FILE_MODE`, `OBSERVER_DIR_MODE` | `file_permissions` (octal, e.g. `640`) |
    /// | `KAFKA_*` | the [`KafkaConfig`] fields, see [`KafkaConfig::apply_env_from`] |
    pub fn apply_env(self) -> Result<Self, ConfigurationError> {
        self.apply_env_from(&|k| std::env::var(k).ok())
    }

    /// [`apply_env`](Self::apply_env) with a custom variable lookup.
    pub fn apply_env_from(mut self, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigurationError> {
        if let Some(v) = lookup("OBSERVER_SERVICE_NAME") {
            self.service_name = v;
        }
        if let Some(v) = lookup("OBSERVER_SERVICE_VERSION") {
            self.service_version = v;
        }
        if let Some(v) = lookup("OBSERVER_ENVIRONMENT") {
            self.environment = v;
        }
        if let Some(v) = env_bool(lookup, "OBSERVER_KAFKA_ENABLED")? {
            self.kafka_enabled = v;
        }
        if let Some(v) = env_bool(lookup, "OBSERVER_INSTRUMENT_OPENAI")? {
            self.instrument_openai = v;
        }
        if let Some(v) = env_bool(lookup, "OBSERVER_INSTRUMENT_ANTHROPIC")? {
            self.instrument_anthropic = v;
        }
        if let Some(v) = env_bool(lookup, "OBSERVER_LOG_LLM_INTERACTIONS")? {
            self.log_llm_interactions = v;
        }
        if let Some(kind) = lookup("OBSERVER_AUDIT_SINK") {
            self.audit_sink = match kind.trim().to_ascii_lowercase().as_str() {
                "file" => match self.audit_sink {
                    s @ AuditSink::File { .. } => s,
                    _ => AuditSink::default(),
                },
                "stdout" => AuditSink::Stdout,
                "none" => AuditSink::None,
                other => {
                    return Err(ConfigurationError::new(
                        "OBSERVER_AUDIT_SINK",
                        format!("unknown sink `{other}`; expected file, stdout or none"),
                    ))
                }
            };
        }
        if let Some(path) = lookup("OBSERVER_AUDIT_FILE") {
            let sync = match self.audit_sink {
                AuditSink::File { sync, .. } => sync,
                _ => FileSync::default(),
            };
            self.audit_sink = AuditSink::File { path: path.into(), sync };
        }
        if let Some(n) = env_parse::<usize>(lookup, "OBSERVER_QUEUE_CAPACITY")? {
            self.queue_capacity = n;
        }
        if let Some(ms) = env_parse::<u64>(lookup, "OBSERVER_FLUSH_TIMEOUT_MS")? {
            self.flush_timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = env_parse::<u64>(lookup, "OBSERVER_SYNC_INTERVAL_MS")? {
            self.sync_interval = Duration::from_millis(ms);
        }
        if let Some(mode) = env_mode(lookup, "OBSERVER_FILE_MODE")? {
            self.file_permissions.file_mode = mode;
        }
        if let Some(mode) = env_mode(lookup, "OBSERVER_DIR_MODE")? {
            self.file_permissions.dir_mode = mode;
        }
        let kafka_env = KAFKA_ENV_VARS.iter().any(|v| lookup(v).is_some());
        if self.kafka.is_some() || self.kafka_enabled || kafka_env {
            let mut kafka = self.kafka.take().unwrap_or_default();
            kafka.apply_env_from(lookup)?;
            self.kafka = Some(kafka);
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
        if matches!(self.audit_sink, AuditSink::None) && self.extra_sinks.is_empty() && !self.kafka_enabled {
            return Err(ConfigurationError::new(
                "audit_sink",
                "`none` needs Kafka or an extra sink: audit events must go somewhere",
            ));
        }
        if self.kafka_enabled {
            match &self.kafka {
                Some(k) => k.validate()?,
                None => KafkaConfig::default().validate()?,
            }
        } else if let Some(k) = &self.kafka {
            k.validate()?;
        }
        crate::actor::ClaimMappings::from_config(&self.keycloak_claim_mappings)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn defaults_are_the_reference_ones_and_valid() {
        let c = ObserverConfig::default();
        assert_eq!(c.service_name, "autonomize-service");
        assert_eq!(c.environment, "production");
        assert!(!c.kafka_enabled);
        c.validate().unwrap();
        let k = KafkaConfig::default();
        assert_eq!(k.audit_topic, "genesis-audit-events");
        assert_eq!(k.trace_topic, "genesis-traces-streaming");
        assert_eq!(k.acks, "all");
        k.validate().unwrap();
    }

    #[test]
    fn env_overrides_win_and_bad_values_name_the_variable() {
        let c = ObserverConfig { service_name: "code".into(), ..Default::default() }
            .apply_env_from(&env(&[
                ("OBSERVER_SERVICE_NAME", "from-env"),
                ("OBSERVER_ENVIRONMENT", "staging"),
                ("OBSERVER_AUDIT_FILE", "/tmp/x.jsonl"),
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
            .apply_env_from(&env(&[
                ("OBSERVER_FILE_MODE", "640"),
                ("OBSERVER_DIR_MODE", "0o750"),
                ("OBSERVER_SYNC_INTERVAL_MS", "250"),
            ]))
            .unwrap();
        assert_eq!(c.file_permissions, FilePermissions { file_mode: 0o640, dir_mode: 0o750 });
        assert_eq!(c.sync_interval, Duration::from_millis(250));
        assert_eq!(ObserverConfig::default().file_permissions, FilePermissions { file_mode: 0o600, dir_mode: 0o700 });
        let err = ObserverConfig::default().apply_env_from(&env(&[("OBSERVER_FILE_MODE", "rw-r--r--")])).unwrap_err();
        assert_eq!(err.field, "OBSERVER_FILE_MODE");
        let err = ObserverConfig::default().apply_env_from(&env(&[("OBSERVER_DIR_MODE", "99")])).unwrap_err();
        assert_eq!(err.field, "OBSERVER_DIR_MODE");
        let unreadable = FilePermissions { file_mode: 0o200, dir_mode: 0o700 };
        let err = ObserverConfig { file_permissions: unreadable, ..Default::default() }.validate().unwrap_err();
        assert_eq!(err.field, "file_permissions");
        let err = ObserverConfig::default().apply_env_from(&env(&[("OBSERVER_QUEUE_CAPACITY", "lots")])).unwrap_err();
        assert_eq!(err.field, "OBSERVER_QUEUE_CAPACITY");
        let err = ObserverConfig::default().apply_env_from(&env(&[("KAFKA_SECURITY_PROTOCOL", "TLS")])).unwrap_err();
        assert_eq!(err.field, "KAFKA_SECURITY_PROTOCOL");
        assert!(err.message.contains("SASL_SSL"), "{err}");
    }

    #[test]
    fn kafka_validation_names_the_field_and_hides_the_password() {
        let bad = |f: fn(&mut KafkaConfig)| {
            let mut k = KafkaConfig::default();
            f(&mut k);
            k.validate().unwrap_err().field
        };
        assert_eq!(bad(|k| k.bootstrap_servers = " ".into()), "kafka.bootstrap_servers");
        assert_eq!(bad(|k| k.bootstrap_servers = "kafka".into()), "kafka.bootstrap_servers");
        assert_eq!(bad(|k| k.audit_topic = "audit events".into()), "kafka.audit_topic");
        assert_eq!(bad(|k| k.acks = "most".into()), "kafka.acks");
        assert_eq!(bad(|k| k.batch_size = 0), "kafka.batch_size");
        assert_eq!(bad(|k| k.security_protocol = SecurityProtocol::SaslSsl), "kafka.sasl_username");
        assert_eq!(bad(|k| k.sasl_username = Some("u".into())), "kafka.sasl_password");
        assert_eq!(bad(|k| k.sasl_mechanism = Some(SaslMechanism::Plain)), "kafka.security_protocol");
        fn perms(file_mode: u32, dir_mode: u32) -> Option<FilePermissions> {
            Some(FilePermissions { file_mode, dir_mode })
        }
        assert_eq!(bad(|k| k.spool_permissions = perms(0o400, 0o700)), "kafka.spool_permissions");
        assert_eq!(bad(|k| k.spool_permissions = perms(0o600, 0o17777)), "kafka.spool_permissions");
        KafkaConfig { spool_permissions: perms(0o640, 0o750), ..Default::default() }.validate().unwrap();
        assert_eq!(
            bad(|k| {
                k.security_protocol = SecurityProtocol::Ssl;
                k.sasl_username = Some("u".into());
            }),
            "kafka.security_protocol"
        );
        let k = KafkaConfig {
            security_protocol: SecurityProtocol::SaslSsl,
            sasl_mechanism: Some(SaslMechanism::ScramSha512),
            sasl_username: Some("user".into()),
            sasl_password: Some(Secret::new("hunter2")),
            ..Default::default()
        };
        k.validate().unwrap();
        let shown = format!("{k:?} {:?}", ObserverConfig { kafka: Some(k.clone()), ..Default::default() });
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("REDACTED"));
        assert_eq!("scram-sha-256".parse::<SaslMechanism>().unwrap(), SaslMechanism::ScramSha256);
    }

    #[test]
    fn sasl_credentials_imply_sasl_ssl_with_plain_as_in_the_reference() {
        let creds = |k: KafkaConfig| KafkaConfig {
            sasl_username: Some("user".into()),
            sasl_password: Some(Secret::new("pass")),
            ..k
        };
        // The guide's AgentTracer settings: username and password only.
        let k = creds(KafkaConfig::default());
        k.validate().unwrap();
        assert_eq!(k.effective_security_protocol(), SecurityProtocol::SaslSsl);
        assert_eq!(k.effective_sasl_mechanism(), Some(SaslMechanism::Plain));
        // The guide's TracerFactory settings: SASL_SSL without a mechanism.
        let k = creds(KafkaConfig { security_protocol: SecurityProtocol::SaslSsl, ..Default::default() });
        k.validate().unwrap();
        assert_eq!(k.effective_sasl_mechanism(), Some(SaslMechanism::Plain));
        // What is set explicitly wins.
        let k = creds(KafkaConfig {
            security_protocol: SecurityProtocol::SaslPlaintext,
            sasl_mechanism: Some(SaslMechanism::ScramSha256),
            ..Default::default()
        });
        k.validate().unwrap();
        assert_eq!(k.effective_security_protocol(), SecurityProtocol::SaslPlaintext);
        assert_eq!(k.effective_sasl_mechanism(), Some(SaslMechanism::ScramSha256));
        // The same from the environment.
        let c = ObserverConfig::default()
            .apply_env_from(&env(&[("KAFKA_SASL_USERNAME", "user"), ("KAFKA_SASL_PASSWORD", "pass")]))
            .unwrap();
        c.validate().unwrap();
        assert_eq!(c.kafka.unwrap().effective_security_protocol(), SecurityProtocol::SaslSsl);
        // No credentials: plain PLAINTEXT, no SASL.
        let k = KafkaConfig::default();
        assert_eq!(
            (k.effective_security_protocol(), k.effective_sasl_mechanism()),
            (SecurityProtocol::Plaintext, None)
        );
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
            kafka_enabled: true,
            kafka: Some(KafkaConfig { audit_topic: "".into(), ..Default::default() }),
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(err.field, "kafka.audit_topic");
    }
}
