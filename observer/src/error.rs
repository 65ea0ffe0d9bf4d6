//! The error hierarchy of the guide: [`ObserverError`] with configuration, audit, exporter and token kinds.

use crate::audit::AuditEvent;

/// Every error the SDK returns. Mirrors the guide's hierarchy: `ObserverError` is the base, with
/// [`ConfigurationError`], [`AuditError`] and [`ExporterError`] beneath it, plus [`TokenError`] for JWT handling.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ObserverError {
    /// The configuration given to [`init`](crate::init) (or a component) is invalid.
    #[error(transparent)]
    Configuration(#[from] ConfigurationError),
    /// An audit event could not be recorded.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// An exporter (file, Kafka, …) failed.
    #[error(transparent)]
    Exporter(#[from] ExporterError),
    /// A JWT could not be decoded or verified.
    #[error(transparent)]
    Token(#[from] TokenError),
}

/// An invalid configuration value. The message names the field (e.g. `kafka.bootstrap_servers`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration `{field}`: {message}")]
pub struct ConfigurationError {
    /// The dotted name of the offending field, e.g. `kafka.sasl_mechanism` or `OBSERVER_QUEUE_CAPACITY`.
    pub field: String,
    /// What is wrong with it. Never contains a secret value.
    pub message: String,
}

impl ConfigurationError {
    /// A configuration error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// An audit event could not be handed to the pipeline. The event is returned inside the error so that
/// the caller can retry or store it: nothing is dropped silently.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The bounded queue between callers and the background dispatcher is full.
    #[error("audit queue is full (capacity {capacity}); event {} was not recorded", .event.event_id)]
    QueueFull {
        /// The configured queue capacity.
        capacity: usize,
        /// The event that was not recorded.
        event: std::sync::Arc<AuditEvent>,
    },
    /// The event could not be written by the synchronous fallback writer (used before `init` and after shutdown).
    #[error("audit event {} could not be written: {source}", .event.event_id)]
    WriteFailed {
        /// The underlying exporter error.
        source: ExporterError,
        /// The event that was not recorded.
        event: std::sync::Arc<AuditEvent>,
    },
    /// The event names a patient (`.patient(..)`, `#[audit(patient = ..)]`) but there is no usable patient key to
    /// hash the identifier with, so it was not recorded (an identifier is never written in clear). The event inside
    /// has no `patient_ref`.
    #[error("audit event {} names a patient but {reason}; not recorded", .event.event_id)]
    PatientKey {
        /// Why there is no usable key (never key material).
        reason: String,
        /// The event that was not recorded.
        event: std::sync::Arc<AuditEvent>,
    },
    /// A field the helper requires is missing (e.g. the `recipient` of
    /// [`log_disclosure`](crate::audit::log_disclosure)); the event was not recorded.
    #[error("audit event {} has no `{field}`; not recorded", .event.event_id)]
    MissingField {
        /// The missing field, as named in the JSON.
        field: &'static str,
        /// The event that was not recorded.
        event: std::sync::Arc<AuditEvent>,
    },
}

/// A sink or exporter failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExporterError {
    /// An I/O error: of a file or stream sink, the Kafka spool, or a thread the SDK could not start.
    #[error("{what}: {source}")]
    Io {
        /// What failed (e.g. `file /var/log/audit.jsonl`, `Kafka spool /var/spool/observer`, `dispatcher thread`).
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The event could not be serialised.
    #[error("serialising event: {0}")]
    Serialize(#[from] serde_json::Error),
    /// A flush did not finish within its timeout.
    #[error("flush timed out after {0:?} with events still pending")]
    FlushTimeout(std::time::Duration),
    /// The exporter has been shut down.
    #[error("exporter is shut down")]
    ShutDown,
    /// A sink delivered only part of what it had buffered: the first `delivered` records it accepted since its
    /// previous flush reached the destination; the sink itself wrote the rest to the stderr fallback. Returned by
    /// [`Sink::flush`](crate::export::Sink::flush) so that the pipeline's counters stay exact.
    #[error("{source} ({delivered} records delivered, the rest written to the stderr fallback)")]
    PartialFlush {
        /// How many of the records accepted since the previous flush reached the destination, in order.
        delivered: usize,
        /// Why the rest did not.
        #[source]
        source: Box<ExporterError>,
    },
    /// The OpenTelemetry span exporter failed to export what had ended (on a flush), e.g. the collector is
    /// unreachable.
    #[cfg(feature = "otel")]
    #[cfg_attr(docsrs, doc(cfg(feature = "otel")))]
    #[error("OpenTelemetry span export: {0}")]
    SpanExport(#[source] opentelemetry_sdk::error::OTelSdkError),
    /// The OpenTelemetry span exporter did not shut down cleanly (its last export failed or did not finish in
    /// time).
    #[cfg(feature = "otel")]
    #[cfg_attr(docsrs, doc(cfg(feature = "otel")))]
    #[error("OpenTelemetry span exporter shutdown: {0}")]
    SpanShutdown(#[source] opentelemetry_sdk::error::OTelSdkError),
    /// The OpenTelemetry metric exporter failed to export (on a flush), e.g. the collector is unreachable.
    #[cfg(feature = "otel")]
    #[cfg_attr(docsrs, doc(cfg(feature = "otel")))]
    #[error("OpenTelemetry metric export: {0}")]
    MetricExport(#[source] opentelemetry_sdk::error::OTelSdkError),
    /// The OpenTelemetry metric exporter did not shut down cleanly (its last export failed or did not finish in
    /// time).
    #[cfg(feature = "otel")]
    #[cfg_attr(docsrs, doc(cfg(feature = "otel")))]
    #[error("OpenTelemetry metric exporter shutdown: {0}")]
    MetricShutdown(#[source] opentelemetry_sdk::error::OTelSdkError),
    /// The OTLP span exporter could not be built (e.g. its HTTP client or gRPC channel).
    #[cfg(feature = "otel")]
    #[cfg_attr(docsrs, doc(cfg(feature = "otel")))]
    #[error("OTLP span exporter: {0}")]
    SpanExporterBuild(#[source] opentelemetry_otlp::ExporterBuildError),
    /// The audit chain's state directory (`IntegrityConfig::state_dir`) is held by another process or pipeline:
    /// each producer needs its own (two writers of one chain would fork it).
    #[error("audit chain state directory {} is in use by {owner}; give each process its own `integrity.state_dir`", .dir.display())]
    ChainStateLocked {
        /// The directory.
        dir: std::path::PathBuf,
        /// Who holds it (`process <pid>`, or `another pipeline`).
        owner: String,
    },
    /// An audit event could not be chained (`integrity` on): it was written to the stderr fallback without its
    /// `integrity` object and counted as failed.
    #[error("chaining an audit event: {0}")]
    Integrity(#[from] crate::integrity::IntegrityError),
    /// A sink of your own failed: what its [`Sink`](crate::export::Sink) methods return for failures that are not
    /// I/O errors. The SDK's own sinks never return it.
    #[error("{sink} sink: {source}")]
    Custom {
        /// Which sink failed (its [`name`](crate::export::Sink::name)).
        sink: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The Kafka configuration is invalid (checked by `KafkaExporter::new` and `KafkaTopicSink::new`); the error
    /// names the field.
    #[cfg(feature = "kafka")]
    #[cfg_attr(docsrs, doc(cfg(feature = "kafka")))]
    #[error(transparent)]
    Configuration(#[from] ConfigurationError),
    /// librdkafka refused to create the producer (a setting it does not accept, e.g. an unreadable
    /// `ssl_ca_location`).
    #[cfg(feature = "kafka")]
    #[cfg_attr(docsrs, doc(cfg(feature = "kafka")))]
    #[error("creating the Kafka producer: {0}")]
    ProducerCreation(#[source] rdkafka::error::KafkaError),
    /// The Kafka spool directory is in use by another exporter or process (each exporter needs its own
    /// `spool_dir`).
    #[cfg(feature = "kafka")]
    #[cfg_attr(docsrs, doc(cfg(feature = "kafka")))]
    #[error(
        "Kafka spool directory {} is in use by another exporter or process; give each its own `spool_dir`",
        .0.display()
    )]
    SpoolLocked(std::path::PathBuf),
    /// The Kafka spool reached its size limit (`spool_max_bytes`).
    #[cfg(feature = "kafka")]
    #[cfg_attr(docsrs, doc(cfg(feature = "kafka")))]
    #[error("the Kafka spool is full (limit {limit_bytes} bytes)")]
    SpoolFull {
        /// The configured limit.
        limit_bytes: u64,
    },
    /// Messages Kafka could not take (now, or before a shutdown) could not be kept in the spool either: they were
    /// written to stderr as `observer-kafka-fallback:` lines instead (recover them from the logs). `source` says
    /// why ([`SpoolFull`](Self::SpoolFull) or [`Io`](Self::Io)) when the error is about one send; the error of
    /// [`KafkaExporter::shutdown`](crate::export::KafkaExporter::shutdown) counts all of them and has none.
    #[cfg(feature = "kafka")]
    #[cfg_attr(docsrs, doc(cfg(feature = "kafka")))]
    #[error(
        "{messages} undeliverable Kafka messages could not be spooled{}; they were written to stderr as \
         `observer-kafka-fallback:` lines",
        .source.as_ref().map(|e| format!(" ({e})")).unwrap_or_default()
    )]
    Unspooled {
        /// How many messages.
        messages: u64,
        /// Why the spool could not take them, when known.
        #[source]
        source: Option<Box<ExporterError>>,
    },
    /// Kafka can never take this message: it is larger than the producer's or the broker's maximum message size.
    /// It was not spooled (it would be re-sent forever) but written to stderr as an `observer-kafka-fallback:`
    /// line.
    #[cfg(feature = "kafka")]
    #[cfg_attr(docsrs, doc(cfg(feature = "kafka")))]
    #[error(
        "a {bytes}-byte message for Kafka topic `{topic}` is larger than the maximum message size; written to \
         stderr as an `observer-kafka-fallback:` line instead"
    )]
    MessageTooLarge {
        /// The topic.
        topic: String,
        /// The payload's size.
        bytes: usize,
    },
    /// The Kafka topic does not exist on the cluster (and the cluster does not create topics on demand).
    #[cfg(feature = "kafka")]
    #[cfg_attr(docsrs, doc(cfg(feature = "kafka")))]
    #[error("Kafka topic `{0}` does not exist; create it, or enable auto-creation on the cluster")]
    UnknownTopic(String),
    /// The Kafka cluster could not be asked about a topic (unreachable, or it refused the request).
    #[cfg(feature = "kafka")]
    #[cfg_attr(docsrs, doc(cfg(feature = "kafka")))]
    #[error("asking the Kafka cluster about topic `{topic}`: {source}")]
    TopicMetadata {
        /// The topic.
        topic: String,
        /// librdkafka's error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
}

/// A JWT that could not be decoded or verified. Each case is distinct so that callers (and audit events)
/// can tell a forged token from an expired one. Never contains the token itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a JWT: wrong number of segments, bad base64, or a header/payload that is not a JSON object.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The token declares `alg: none` (an unsigned token); such tokens are always refused when verifying.
    #[error("unsigned token (`alg: none`) refused")]
    UnsignedToken,
    /// The token's algorithm is not in the verifier's allow-list or does not match the key.
    #[error("algorithm `{0}` is not allowed")]
    DisallowedAlgorithm(String),
    /// The signature does not verify against the key.
    #[error("invalid signature")]
    InvalidSignature,
    /// The token's `exp` is in the past (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// The token's `nbf` is in the future (beyond the leeway).
    #[error("token not yet valid")]
    NotYetValid,
    /// The `iss` claim does not match the expected issuer.
    #[error("invalid issuer")]
    InvalidIssuer,
    /// The `aud` claim does not contain an expected audience.
    #[error("invalid audience")]
    InvalidAudience,
    /// No key in the JWKS has the token's `kid`.
    #[error("no key found for kid `{0}`")]
    UnknownKey(String),
    /// The key material itself is unusable.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// A claim the mapping needs (e.g. the actor id) is missing or has the wrong type.
    #[error("claim `{0}` is missing or not a string")]
    MissingClaim(String),
    /// No verification keys are available: the JWKS could not be fetched (and none were cached). A server-side
    /// problem, not a bad token; the message says why (e.g. `HTTP 503`, `timed out`), never a URL's credentials.
    #[error("verification keys unavailable: {0}")]
    KeysUnavailable(String),
}

/// A malformed OTLP exporter setting is a [`ConfigurationError`]; any other failure to build the exporter is
/// [`ExporterError::SpanExporterBuild`].
#[cfg(feature = "otel")]
impl From<opentelemetry_otlp::ExporterBuildError> for ObserverError {
    fn from(e: opentelemetry_otlp::ExporterBuildError) -> Self {
        match e {
            opentelemetry_otlp::ExporterBuildError::InvalidConfiguration(msg) => {
                ConfigurationError::new("otlp exporter", msg).into()
            }
            other => ExporterError::SpanExporterBuild(other).into(),
        }
    }
}
