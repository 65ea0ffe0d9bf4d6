//! [`KafkaConfig`]: the Kafka connection and producer settings, their enums, environment overrides and validation.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::env::{self, Env};
use super::{FilePermissions, Secret};
use crate::error::ConfigurationError;

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
    /// Backoff between retries (the guide's `retry_backoff_ms`), in whole milliseconds. Default 100 ms.
    pub retry_backoff: Duration,
    /// Maximum batch size in bytes. Default 1,000,000 (librdkafka's; the guide's example sets 16,384, which
    /// caps a batch at ~16 events of 1 KB and costs throughput).
    pub batch_size: usize,
    /// Linger before sending a batch (the guide's `linger_ms`), in whole milliseconds, at most 900 s. Default 5 ms.
    pub linger: Duration,
    /// Compression codec. Default none.
    pub compression: Compression,
    /// Idempotent producer (no duplicates from producer retries). Default `true`.
    pub enable_idempotence: bool,
    /// How long librdkafka keeps trying to deliver a message before reporting it failed (it then goes to the
    /// spool), in whole milliseconds, from 1 s to 1 h. Default 30 s. Env `KAFKA_MESSAGE_TIMEOUT_MS` (milliseconds).
    pub message_timeout: Duration,
    /// CA certificate file for SSL / SASL_SSL (PEM). Env `KAFKA_SSL_CA_LOCATION`.
    pub ssl_ca_location: Option<PathBuf>,
    /// Directory of the durable spool for events the broker has not acknowledged. Default `observer-spool`
    /// in the working directory. One process per directory (it is locked). Env `OBSERVER_SPOOL_DIR`.
    pub spool_dir: Option<PathBuf>,
    /// Size limit of the spool in bytes. Default 1 GiB. When reached, further undeliverable events are
    /// written to stderr (`observer-kafka-fallback: …`), counted and reported as errors. Env
    /// `OBSERVER_SPOOL_MAX_BYTES`.
    pub spool_max_bytes: u64,
    /// Permissions of the spool's files (segments, lock file) and of the directories it creates (the spool
    /// directory, `quarantine/`). `None` (default): the
    /// [`ObserverConfig::file_permissions`](super::ObserverConfig::file_permissions) when the exporter is created
    /// by `init` or a `TracerFactory`, owner-only (`0600` / `0700`) otherwise. Existing directories keep their
    /// permissions.
    pub spool_permissions: Option<FilePermissions>,
    /// The format of the audit topic's messages: the guide's JSON (default), OCSF or FHIR R4 `AuditEvent` (see
    /// [`AuditFormat`](super::AuditFormat)). Env `KAFKA_AUDIT_FORMAT` (`json`, `ocsf`, `fhir`).
    pub audit_format: super::AuditFormat,
}

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
            retry_backoff: Duration::from_millis(100),
            batch_size: 1_000_000,
            linger: Duration::from_millis(5),
            compression: Compression::None,
            enable_idempotence: true,
            message_timeout: Duration::from_secs(30),
            ssl_ca_location: None,
            spool_dir: None,
            spool_max_bytes: 1 << 30,
            spool_permissions: None,
            audit_format: super::AuditFormat::Json,
        }
    }
}

impl KafkaConfig {
    /// The spool directory used when [`spool_dir`](Self::spool_dir) is not set: `observer-spool`, relative to the
    /// working directory.
    pub const DEFAULT_SPOOL_DIR: &str = "observer-spool";

    /// The defaults with the `KAFKA_*` environment variables applied.
    ///
    /// # Errors
    /// A [`ConfigurationError`] naming the variable whose value does not parse.
    pub fn from_env() -> Result<Self, ConfigurationError> {
        Self::default().apply_env()
    }

    /// Applies the environment variables below (they win over values set in code). `observer::init` applies them
    /// through [`ObserverConfig::apply_env`](super::ObserverConfig::apply_env) when Kafka is on.
    ///
    /// | variable | field |
    /// |---|---|
    /// | `KAFKA_BOOTSTRAP_SERVERS` | `bootstrap_servers` |
    /// | `KAFKA_CLIENT_ID` | `client_id` |
    /// | `KAFKA_AUDIT_TOPIC` | `audit_topic` |
    /// | `KAFKA_TRACE_TOPIC` | `trace_topic` |
    /// | `KAFKA_WORKFLOW_TOPIC` | `workflow_topic` |
    /// | `KAFKA_SECURITY_PROTOCOL` | `security_protocol` (`PLAINTEXT`, `SSL`, `SASL_PLAINTEXT`, `SASL_SSL`) |
    /// | `KAFKA_SASL_MECHANISM` | `sasl_mechanism` (`PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`) |
    /// | `KAFKA_SASL_USERNAME`, `KAFKA_SASL_PASSWORD` | `sasl_username`, `sasl_password` |
    /// | `KAFKA_ACKS` | `acks` |
    /// | `KAFKA_MESSAGE_TIMEOUT_MS` | `message_timeout` (milliseconds) |
    /// | `KAFKA_SSL_CA_LOCATION` | `ssl_ca_location` |
    /// | `OBSERVER_SPOOL_DIR`, `OBSERVER_SPOOL_MAX_BYTES` | `spool_dir`, `spool_max_bytes` |
    /// | `KAFKA_AUDIT_FORMAT` | `audit_format` (`json`, `ocsf`, `fhir`) |
    ///
    /// # Errors
    /// A [`ConfigurationError`] naming the variable whose value does not parse.
    pub fn apply_env(self) -> Result<Self, ConfigurationError> {
        self.apply_env_from(&env::process)
    }

    /// [`apply_env`](Self::apply_env) with a custom variable lookup.
    ///
    /// # Errors
    /// As [`apply_env`](Self::apply_env).
    pub fn apply_env_from(mut self, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigurationError> {
        let env = Env::new(lookup);
        let strings: [(&str, &mut String); 6] = [
            ("KAFKA_BOOTSTRAP_SERVERS", &mut self.bootstrap_servers),
            ("KAFKA_CLIENT_ID", &mut self.client_id),
            ("KAFKA_AUDIT_TOPIC", &mut self.audit_topic),
            ("KAFKA_TRACE_TOPIC", &mut self.trace_topic),
            ("KAFKA_WORKFLOW_TOPIC", &mut self.workflow_topic),
            ("KAFKA_ACKS", &mut self.acks),
        ];
        for (var, field) in strings {
            if let Some(v) = env.string(var) {
                *field = v;
            }
        }
        if let Some(p) = env.choice("KAFKA_SECURITY_PROTOCOL")? {
            self.security_protocol = p;
        }
        if let Some(m) = env.choice("KAFKA_SASL_MECHANISM")? {
            self.sasl_mechanism = Some(m);
        }
        if let Some(u) = env.string("KAFKA_SASL_USERNAME") {
            self.sasl_username = Some(u);
        }
        if let Some(p) = env.string("KAFKA_SASL_PASSWORD") {
            self.sasl_password = Some(Secret::new(p));
        }
        if let Some(t) = env.millis("KAFKA_MESSAGE_TIMEOUT_MS")? {
            self.message_timeout = t;
        }
        if let Some(p) = env.path("KAFKA_SSL_CA_LOCATION") {
            self.ssl_ca_location = Some(p);
        }
        if let Some(f) = env.choice("KAFKA_AUDIT_FORMAT")? {
            self.audit_format = f;
        }
        if let Some(p) = env.path("OBSERVER_SPOOL_DIR") {
            self.spool_dir = Some(p);
        }
        if let Some(n) = env.parse("OBSERVER_SPOOL_MAX_BYTES")? {
            self.spool_max_bytes = n;
        }
        Ok(self)
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
        if !(Duration::from_secs(1)..=Duration::from_secs(3_600)).contains(&self.message_timeout) {
            return Err(ConfigurationError::new("kafka.message_timeout", "must be between 1 s and 1 h"));
        }
        if self.spool_max_bytes < 1 << 20 {
            return Err(ConfigurationError::new("kafka.spool_max_bytes", "must be at least 1 MiB"));
        }
        if let Some(p) = self.spool_permissions {
            p.validate("kafka.spool_permissions")?;
        }
        if self.linger > Duration::from_secs(900) {
            return Err(ConfigurationError::new("kafka.linger", "must be at most 900 s"));
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

/// A legal Kafka topic name; errors name `field`.
pub(crate) fn validate_topic(field: &str, topic: &str) -> Result<(), ConfigurationError> {
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

#[cfg(test)]
mod tests {
    use super::super::env::tests::table;
    use super::super::ObserverConfig;
    use super::*;

    #[test]
    fn defaults_are_the_reference_ones_and_valid() {
        let k = KafkaConfig::default();
        assert_eq!(k.audit_topic, "genesis-audit-events");
        assert_eq!(k.trace_topic, "genesis-traces-streaming");
        assert_eq!(k.acks, "all");
        k.validate().unwrap();
    }

    #[test]
    fn env_overrides_win_and_bad_values_name_the_variable() {
        let k = KafkaConfig::default()
            .apply_env_from(&table(&[
                ("KAFKA_BOOTSTRAP_SERVERS", "k1:9092,k2:9093"),
                ("KAFKA_SECURITY_PROTOCOL", "sasl_ssl"),
                ("KAFKA_MESSAGE_TIMEOUT_MS", "5000"),
                ("OBSERVER_SPOOL_DIR", "/var/spool/observer"),
            ]))
            .unwrap();
        assert_eq!(k.bootstrap_servers, "k1:9092,k2:9093");
        assert_eq!(k.security_protocol, SecurityProtocol::SaslSsl);
        assert_eq!(k.message_timeout, Duration::from_secs(5));
        assert_eq!(k.spool_dir.as_deref(), Some(std::path::Path::new("/var/spool/observer")));
        let err = KafkaConfig::default().apply_env_from(&table(&[("KAFKA_SASL_MECHANISM", "GSSAPI")])).unwrap_err();
        assert_eq!(err.field, "KAFKA_SASL_MECHANISM");
        assert!(err.message.contains("SCRAM-SHA-512"), "{err}");
        let err = KafkaConfig::default().apply_env_from(&table(&[("OBSERVER_SPOOL_MAX_BYTES", "1G")])).unwrap_err();
        assert_eq!(err.field, "OBSERVER_SPOOL_MAX_BYTES");
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
        assert_eq!(bad(|k| k.message_timeout = Duration::from_millis(999)), "kafka.message_timeout");
        assert_eq!(bad(|k| k.linger = Duration::from_secs(901)), "kafka.linger");
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
            .apply_env_from(&table(&[
                ("OBSERVER_KAFKA_ENABLED", "true"),
                ("KAFKA_SASL_USERNAME", "user"),
                ("KAFKA_SASL_PASSWORD", "pass"),
            ]))
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
}
