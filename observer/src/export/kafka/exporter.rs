//! Kafka export on `rdkafka`, with a durable disk spool for whatever the broker has not
//! acknowledged. Feature `kafka`.
//!
//! # Delivery guarantees
//! * **Never blocks the caller.** Sending hands the message to librdkafka's in-memory queue; when that queue is
//!   full the message goes straight to the spool.
//! * **At least once, nothing dropped.** A message librdkafka reports as failed (broker down past
//!   `message_timeout`, unknown topic, queue full, purged at shutdown) is appended to the spool and fsynced,
//!   then re-sent, oldest segment first, when the broker takes messages again — also by the next process that
//!   opens the same spool directory. Re-sending after a purge or an unacknowledged attempt can duplicate an
//!   event; every audit event carries a unique `event_id` (also a header) for consumers to de-duplicate on.
//! * **Shutdown** ([`KafkaExporter::shutdown`], called by the init guard) waits up to its timeout for
//!   acknowledgements, then purges what is still in flight into the spool, so an orderly exit loses nothing.
//!   A hard crash (SIGKILL) loses what was only in librdkafka's memory (at most `message_timeout` worth).
//!   A wait longer than a second is announced on stderr (messages, brokers, deadline), and so is what went to
//!   the spool.
//! * **A bad spool file** (unreadable, or with lines that cannot be decoded) is moved to the spool's
//!   `quarantine/` directory, reported on stderr and counted in [`KafkaStats::spool_quarantined`]; replay goes
//!   on with the other segments. Nothing that was not re-sent is deleted.
//! * **Spool full** (`spool_max_bytes`): each further undeliverable message is written to stderr as
//!   `observer-kafka-fallback: topic=… key=… <payload>`, counted in [`KafkaStats::spool_overflow`] and
//!   reported as an error.
//! * **Ordering**: one resource's audit events share a message key (`RESOURCE_TYPE:resource_id`), so they land
//!   in one partition in order while the broker is up. Events that went through the spool are re-sent after
//!   newer live events.
//!
//! ```no_run
//! use observer::export::KafkaExporter;
//! use observer::{AuditEvent, KafkaConfig};
//! # fn main() -> Result<(), observer::ExporterError> {
//! let exporter = KafkaExporter::new(KafkaConfig { bootstrap_servers: "kafka:9092".into(), ..Default::default() })?;
//! exporter.initialize();
//! # let event = observer::audit::log_create(observer::ResourceType::Document, "doc-123").emit().unwrap();
//! let result = exporter.export_audit(&event);
//! println!("Export success: {}", result.success);
//! exporter.export_custom_event("custom-events", "my-key", &serde_json::json!({"event_type": "custom"}));
//! exporter.flush(std::time::Duration::from_secs(5))?;
//! exporter.shutdown(std::time::Duration::from_secs(5))?;
//! # Ok(()) }
//! ```

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext, PurgeConfig};
use rdkafka::ClientContext;

use super::spool::{Segment, Spool, SpoolError, SpoolRecord};
use crate::audit::{AuditEvent, SCHEMA_VERSION};
use crate::config::{KafkaConfig, SecurityProtocol};
use crate::error::ExporterError;
use crate::export::{Record, Sink};

/// Delivery tag of a live message.
const LIVE: usize = 0;
/// Delivery tag of a message re-sent from the spool.
const REPLAY: usize = 1;
/// Most spooled messages handed to librdkafka at once during replay.
const REPLAY_WINDOW: usize = 10_000;
/// How often the background thread polls librdkafka for delivery reports.
const POLL: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long shutdown waits for acknowledgements in silence before saying on stderr what it is waiting for.
const WAIT_NOTICE_AFTER: Duration = Duration::from_secs(1);

/// What one export call did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportResult {
    /// The message was accepted: queued for delivery, or (when librdkafka could not take it) spooled to disk.
    pub success: bool,
    /// The message went to the disk spool instead of librdkafka's queue.
    pub spooled: bool,
    /// The topic.
    pub topic: String,
    /// Why it failed (`success == false`): the spool was full or could not be written.
    pub error: Option<String>,
}

/// Counters of a [`KafkaExporter`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KafkaStats {
    /// Messages handed to librdkafka (live and replayed).
    pub produced: u64,
    /// Messages the broker acknowledged.
    pub acknowledged: u64,
    /// Delivery failures reported by librdkafka (each was spooled or, if the spool was full, written to stderr).
    pub delivery_failures: u64,
    /// Messages appended to the spool.
    pub spooled: u64,
    /// Spooled messages acknowledged after being re-sent.
    pub replayed: u64,
    /// Messages that could not be spooled (spool full or unwritable) and went to stderr instead.
    pub spool_overflow: u64,
    /// Messages Kafka can never take (larger than the producer's or the broker's maximum message size): not
    /// spooled — they would be re-sent forever — but written to stderr as `observer-kafka-fallback:` lines.
    pub rejected: u64,
    /// Messages in librdkafka's queue or in flight.
    pub in_flight: u64,
    /// Messages currently in the spool (on disk).
    pub spool_records: u64,
    /// Bytes currently in the spool.
    pub spool_bytes: u64,
    /// Spool segments (or files named like them) taken out of replay because they could not be read or held
    /// lines that could not be decoded: moved to the spool's `quarantine/` directory (or, if that failed, left
    /// in place and skipped), each reported on stderr. Nothing in them was deleted.
    pub spool_quarantined: u64,
}

#[derive(Debug, Default)]
struct Counters {
    produced: AtomicU64,
    acknowledged: AtomicU64,
    delivery_failures: AtomicU64,
    spooled: AtomicU64,
    replayed: AtomicU64,
    spool_overflow: AtomicU64,
    rejected: AtomicU64,
}

/// librdkafka callbacks: delivery reports, errors and logs. One per producer instance; all share [`Shared`].
struct ExportContext {
    shared: Arc<Shared>,
}

/// State shared by every producer instance of one exporter (a fenced producer is replaced by a new one).
struct Shared {
    counters: Counters,
    /// Failed messages waiting to be appended to the spool by the background thread.
    failed: Mutex<Vec<SpoolRecord>>,
    /// Replayed messages not yet reported.
    replay_outstanding: AtomicUsize,
    /// Replayed messages that failed again in the current replay.
    replay_failed: AtomicUsize,
    reported_topics: Mutex<HashSet<String>>,
    broker_down_reported: AtomicBool,
    bootstrap: String,
    /// The producer hit a fatal error (e.g. an idempotent producer fenced after a timeout) and must be replaced.
    needs_new_producer: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ClientContext for ExportContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
                tracing::debug!(target: "observer::kafka", facility = fac, "librdkafka: {log_message}")
            }
            _ => tracing::trace!(target: "observer::kafka", facility = fac, "librdkafka: {log_message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // Broker connection errors repeat every reconnect attempt: report the outage once, and again only after
        // a delivery succeeded in between.
        let transport = matches!(
            error.rdkafka_error_code(),
            Some(
                RDKafkaErrorCode::AllBrokersDown | RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::Resolve
            )
        );
        let shared = &self.shared;
        if matches!(error.rdkafka_error_code(), Some(RDKafkaErrorCode::Fatal)) {
            shared.needs_new_producer.store(true, Ordering::Release);
        }
        if transport {
            if !shared.broker_down_reported.swap(true, Ordering::Relaxed) {
                crate::diag::report!(
                    WARN,
                    "kafka-unreachable",
                    "Kafka unreachable at {} ({reason}); events are queued, then spooled, and delivered when it is \
                     back",
                    shared.bootstrap
                );
            }
        } else {
            crate::diag::report!(ERROR, "kafka-error", "Kafka client error: {reason}");
        }
    }
}

impl ProducerContext for ExportContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, tag: usize) {
        self.shared.delivery(result, tag);
    }
}

impl Shared {
    fn delivery(&self, result: &DeliveryResult<'_>, tag: usize) {
        match result {
            Ok(_) => {
                self.counters.acknowledged.fetch_add(1, Ordering::Relaxed);
                if tag == REPLAY {
                    self.counters.replayed.fetch_add(1, Ordering::Relaxed);
                }
                if self.broker_down_reported.swap(false, Ordering::Relaxed) {
                    crate::diag::report!(INFO, "kafka-reachable", "Kafka reachable again");
                }
            }
            Err((err, msg)) => {
                self.counters.delivery_failures.fetch_add(1, Ordering::Relaxed);
                if tag == REPLAY {
                    self.replay_failed.fetch_add(1, Ordering::Relaxed);
                }
                let code = err.rdkafka_error_code();
                if matches!(code, Some(RDKafkaErrorCode::UnknownTopic | RDKafkaErrorCode::UnknownTopicOrPartition)) {
                    self.report_unknown_topic(msg.topic());
                }
                if matches!(
                    code,
                    Some(
                        RDKafkaErrorCode::ProducerFenced
                            | RDKafkaErrorCode::InvalidProducerEpoch
                            | RDKafkaErrorCode::Fatal
                    )
                ) {
                    self.needs_new_producer.store(true, Ordering::Release);
                }
                let permanent = is_permanent(code);
                let headers = msg
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| {
                                (h.key.to_owned(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned())
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let record = SpoolRecord {
                    topic: msg.topic().to_owned(),
                    key: msg.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                    headers,
                    payload: msg.payload().unwrap_or_default().to_vec(),
                };
                if permanent {
                    self.reject(&record, err);
                } else {
                    lock(&self.failed).push(record);
                }
            }
        }
        if tag == REPLAY {
            self.replay_outstanding.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Whether librdkafka or the broker refused a message for good: re-sending it can never succeed.
fn is_permanent(code: Option<RDKafkaErrorCode>) -> bool {
    matches!(code, Some(RDKafkaErrorCode::MessageSizeTooLarge))
}

/// Writes messages that cannot be delivered or kept to stderr, one `observer-kafka-fallback:` line each, so that
/// nothing disappears silently (log collectors keep stderr).
fn write_fallback(records: &[SpoolRecord]) {
    let mut err = std::io::stderr().lock();
    for r in records {
        let _ = write!(err, "observer-kafka-fallback: topic={} key={} ", r.topic, r.key.as_deref().unwrap_or(""));
        let _ = err.write_all(&r.payload);
        let _ = err.write_all(b"\n");
    }
}

impl Shared {
    /// A message Kafka can never take: counted, reported and written to stderr instead of the spool. Returns the
    /// message for the caller.
    fn reject(&self, record: &SpoolRecord, err: &KafkaError) -> String {
        self.counters.rejected.fetch_add(1, Ordering::Relaxed);
        let message = format!(
            "a {}-byte message for topic `{}` was refused by Kafka ({err}): larger than the maximum message size; \
             written to stderr as an `observer-kafka-fallback:` line instead",
            record.payload.len(),
            record.topic
        );
        crate::diag::report!(ERROR, "kafka-message-refused", "{message}");
        write_fallback(std::slice::from_ref(record));
        message
    }

    fn report_unknown_topic(&self, topic: &str) {
        if lock(&self.reported_topics).insert(topic.to_owned()) {
            crate::diag::report!(
                ERROR,
                "kafka-unknown-topic",
                "Kafka topic `{topic}` does not exist at {} (and the cluster does not create it): its events are \
                 spooled until it is created",
                self.bootstrap
            );
        }
    }
}

/// Exports audit events and custom events to Kafka. Cheap to clone: clones share one producer, one spool and
/// one background thread (one producer per process is the intended use; see `observer::kafka_exporter`).
#[derive(Clone)]
pub struct KafkaExporter {
    inner: Arc<Inner>,
}

struct Inner {
    config: KafkaConfig,
    shared: Arc<Shared>,
    producer: ArcSwap<BaseProducer<ExportContext>>,
    spool: Spool,
    shutdown: AtomicBool,
    closed: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for KafkaExporter {
    // Not derived: the librdkafka config holds the SASL password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaExporter")
            .field("bootstrap_servers", &self.inner.config.bootstrap_servers)
            .field("audit_topic", &self.inner.config.audit_topic)
            .field("spool_dir", &self.inner.spool.dir())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// The librdkafka properties for `config`. Holds the SASL password: never log it.
pub(crate) fn client_config(config: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.bootstrap_servers)
        .set("client.id", &config.client_id)
        .set("acks", &config.acks)
        .set("retries", config.retries.to_string())
        .set("retry.backoff.ms", config.retry_backoff.as_millis().to_string())
        .set("batch.size", config.batch_size.to_string())
        .set("linger.ms", config.linger.as_millis().to_string())
        .set("compression.type", config.compression.as_str())
        .set("enable.idempotence", config.enable_idempotence.to_string())
        .set("message.timeout.ms", config.message_timeout.as_millis().to_string())
        .set("security.protocol", config.effective_security_protocol().as_str());
    if let Some(m) = config.effective_sasl_mechanism() {
        c.set("sasl.mechanism", m.as_str());
    }
    if let Some(u) = &config.sasl_username {
        c.set("sasl.username", u);
    }
    if let Some(p) = &config.sasl_password {
        c.set("sasl.password", p.expose());
    }
    if let Some(ca) = &config.ssl_ca_location {
        c.set("ssl.ca.location", ca.to_string_lossy());
    }
    if matches!(config.effective_security_protocol(), SecurityProtocol::Ssl | SecurityProtocol::SaslSsl) {
        c.set("ssl.endpoint.identification.algorithm", "https");
    }
    c
}

impl KafkaExporter {
    /// Validates `config`, opens the spool directory and creates the producer. Does not contact the broker:
    /// a broker that is down does not fail this (call [`initialize`](Self::initialize) to check it).
    ///
    /// # Errors
    /// An invalid config ([`ExporterError::Other`] naming the field), a spool directory that cannot be opened or
    /// is used by another process, or a librdkafka config it refuses.
    pub fn new(config: KafkaConfig) -> Result<Self, ExporterError> {
        config.validate().map_err(|e| ExporterError::Other(e.to_string()))?;
        let dir = config.spool_dir.clone().unwrap_or_else(|| PathBuf::from(KafkaConfig::DEFAULT_SPOOL_DIR));
        let perms = config.spool_permissions.unwrap_or_default();
        let spool = Spool::open_with_permissions(&dir, config.spool_max_bytes, perms).map_err(|e| match e {
            SpoolError::Locked(p) => ExporterError::Other(format!(
                "spool directory {} is in use by another exporter or process; give each its own `spool_dir`",
                p.display()
            )),
            other => ExporterError::Other(format!("opening spool directory {}: {other}", dir.display())),
        })?;
        let shared = Arc::new(Shared {
            counters: Counters::default(),
            failed: Mutex::new(Vec::new()),
            replay_outstanding: AtomicUsize::new(0),
            replay_failed: AtomicUsize::new(0),
            reported_topics: Mutex::new(HashSet::new()),
            broker_down_reported: AtomicBool::new(false),
            bootstrap: config.bootstrap_servers.clone(),
            needs_new_producer: AtomicBool::new(false),
        });
        let producer = new_producer(&config, &shared)?;
        if !spool.is_empty() {
            tracing::info!(
                target: "observer::kafka",
                records = spool.records(),
                dir = %spool.dir().display(),
                "spooled events from an earlier run will be re-sent"
            );
        }
        let inner = Arc::new(Inner {
            config,
            shared,
            producer: ArcSwap::from_pointee(producer),
            spool,
            shutdown: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            thread: Mutex::new(None),
        });
        let worker = inner.clone();
        let thread = std::thread::Builder::new()
            .name("observer-kafka".into())
            .spawn(move || worker.run())
            .map_err(|e| ExporterError::Io { sink: "kafka thread".into(), source: e })?;
        *lock(&inner.thread) = Some(thread);
        Ok(Self { inner })
    }

    /// The guide's `exporter.initialize()`: checks, in the background, that the broker answers and that the
    /// audit and trace topics exist, and reports what is wrong once (a missing topic is an error: its events
    /// are spooled until it is created). Never fails and never blocks.
    pub fn initialize(&self) {
        let inner = self.inner.clone();
        let _ = std::thread::Builder::new().name("observer-kafka-check".into()).spawn(move || {
            let topics = [inner.config.audit_topic.clone(), inner.config.trace_topic.clone()];
            for topic in topics {
                if let Err(e) = check_topic(&inner.producer.load(), &topic, Duration::from_secs(10)) {
                    match e {
                        ExporterError::UnknownTopic(t) => inner.shared.report_unknown_topic(&t),
                        other => crate::diag::report!(
                            WARN,
                            "kafka-check",
                            "Kafka check failed ({other}); will keep retrying"
                        ),
                    }
                    // One report is enough: the rest would fail the same way while the broker is down.
                    if inner.shared.broker_down_reported.load(Ordering::Relaxed) {
                        break;
                    }
                }
            }
        });
    }

    /// Checks now (waiting at most `timeout`) that `topic` exists on the cluster.
    ///
    /// # Errors
    /// [`ExporterError::UnknownTopic`] when the broker says it does not exist; [`ExporterError::Other`] when the
    /// broker could not be asked.
    pub fn check_topic(&self, topic: &str, timeout: Duration) -> Result<(), ExporterError> {
        check_topic(&self.inner.producer.load(), topic, timeout)
    }

    /// The configuration.
    pub fn config(&self) -> &KafkaConfig {
        &self.inner.config
    }

    /// Exports one audit event to the audit topic (JSON as in the guide; key `RESOURCE_TYPE:resource_id`;
    /// headers `event_type`, `event_id`, `schema_version`, `content-type`). Never blocks.
    pub fn export_audit(&self, event: &AuditEvent) -> ExportResult {
        match serde_json::to_vec(event) {
            Ok(json) => self.send_audit_json(event, &json),
            Err(e) => self.result(&self.inner.config.audit_topic, false, Some(format!("serialising: {e}"))),
        }
    }

    /// Exports any JSON value to `topic` with `key`. Never blocks.
    pub fn export_custom_event(&self, topic: &str, key: &str, data: &serde_json::Value) -> ExportResult {
        match serde_json::to_vec(data) {
            Ok(json) => self.send(topic, Some(key), &[("content-type", "application/json")], &json),
            Err(e) => self.result(topic, false, Some(format!("serialising: {e}"))),
        }
    }

    pub(crate) fn send_audit_json(&self, event: &AuditEvent, json: &[u8]) -> ExportResult {
        let mut key = String::with_capacity(event.resource_type.as_str().len() + 1 + event.resource_id.len());
        key.push_str(event.resource_type.as_str());
        key.push(':');
        key.push_str(&event.resource_id);
        let headers = [
            ("event_type", event.audit_type.as_str()),
            ("event_id", event.event_id.as_str()),
            ("schema_version", SCHEMA_VERSION),
            ("content-type", "application/json"),
        ];
        self.send(&self.inner.config.audit_topic, Some(&key), &headers, json)
    }

    /// Hands one message to librdkafka, or to the spool when librdkafka cannot take it.
    pub fn send(&self, topic: &str, key: Option<&str>, headers: &[(&str, &str)], payload: &[u8]) -> ExportResult {
        if self.inner.closed.load(Ordering::Acquire) {
            return match self.inner.spool_now(vec![spool_record(topic, key, headers, payload)]) {
                Ok(()) => ExportResult { success: true, spooled: true, topic: topic.to_owned(), error: None },
                Err(e) => self.result(topic, false, Some(e)),
            };
        }
        let owned = owned_headers(headers.iter().copied());
        let mut record = BaseRecord::with_opaque_to(topic, LIVE).payload(payload).headers(owned);
        if let Some(k) = key {
            record = record.key(k);
        }
        match self.inner.producer.load().send(record) {
            Ok(()) => {
                self.inner.counters().produced.fetch_add(1, Ordering::Relaxed);
                self.result(topic, true, None)
            }
            Err((err, _)) if is_permanent(err.rdkafka_error_code()) => {
                let record = spool_record(topic, key, headers, payload);
                let message = self.inner.shared.reject(&record, &err);
                self.result(topic, false, Some(message))
            }
            Err((err, _)) => {
                // Queue full (or any other immediate refusal): keep it on disk instead.
                tracing::debug!(target: "observer::kafka", error = %err, "librdkafka refused a message; spooling it");
                lock(&self.inner.shared.failed).push(spool_record(topic, key, headers, payload));
                ExportResult { success: true, spooled: true, topic: topic.to_owned(), error: None }
            }
        }
    }

    fn result(&self, topic: &str, success: bool, error: Option<String>) -> ExportResult {
        ExportResult { success, spooled: false, topic: topic.to_owned(), error }
    }

    /// Waits (at most `timeout`) until every message handed over so far is acknowledged, and whatever failed
    /// meanwhile is safely in the spool.
    ///
    /// # Errors
    /// [`ExporterError::FlushTimeout`] if messages are still in flight when the timeout passes (they stay
    /// queued and are delivered or spooled later).
    pub fn flush(&self, timeout: Duration) -> Result<(), ExporterError> {
        let producer = self.inner.producer.load_full();
        let res = producer.flush(timeout);
        self.inner.drain_failed();
        match res {
            Ok(()) => Ok(()),
            Err(_) if producer.in_flight_count() == 0 => Ok(()),
            Err(_) => Err(ExporterError::FlushTimeout(timeout)),
        }
    }

    /// Stops the exporter: waits up to `timeout` for acknowledgements, then purges what is still queued or in
    /// flight into the spool, so nothing is lost. Later sends go straight to the spool. Idempotent.
    ///
    /// A wait longer than a second is announced on stderr (`observer: warning: shutting down: waiting up to …
    /// for Kafka at <brokers> to acknowledge N messages …`, with the deadline), and what was moved to the spool
    /// is reported there too, whatever `tracing` subscriber is installed.
    ///
    /// # Errors
    /// Only when messages could not be spooled (they were written to stderr instead).
    pub fn shutdown(&self, timeout: Duration) -> Result<(), ExporterError> {
        let inner = &self.inner;
        if inner.shutdown.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        if let Some(t) = lock(&inner.thread).take() {
            let _ = t.join();
        }
        let producer = inner.producer.load_full();
        let waited = inner.wait_for_acks(&producer, timeout);
        let spooled_before = inner.counters().spooled.load(Ordering::Relaxed);
        let overflow_before = inner.counters().spool_overflow.load(Ordering::Relaxed);
        let left = producer.in_flight_count();
        purge_into_spool(&producer);
        drop(producer);
        inner.closed.store(true, Ordering::Release);
        inner.drain_failed();
        let spooled = inner.counters().spooled.load(Ordering::Relaxed) - spooled_before;
        let overflow = inner.counters().spool_overflow.load(Ordering::Relaxed);
        if left > 0 {
            crate::diag::report_loud(
                "kafka-shutdown",
                format_args!(
                    "{left} messages were not acknowledged by Kafka at {} within {waited:.1?}: {spooled} written to the \
                     spool {} (re-sent by the next process that uses it){}",
                    inner.config.bootstrap_servers,
                    inner.spool.dir().display(),
                    match overflow - overflow_before {
                        0 => String::new(),
                        n => format!(", {n} could not be spooled and were written to stderr"),
                    }
                ),
            );
        }
        if overflow > 0 {
            return Err(ExporterError::Other(format!("{overflow} messages could not be spooled and went to stderr")));
        }
        Ok(())
    }

    /// Counters of this exporter.
    pub fn stats(&self) -> KafkaStats {
        let c = self.inner.counters();
        KafkaStats {
            produced: c.produced.load(Ordering::Relaxed),
            acknowledged: c.acknowledged.load(Ordering::Relaxed),
            delivery_failures: c.delivery_failures.load(Ordering::Relaxed),
            spooled: c.spooled.load(Ordering::Relaxed),
            replayed: c.replayed.load(Ordering::Relaxed),
            spool_overflow: c.spool_overflow.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            in_flight: u64::try_from(self.inner.producer.load().in_flight_count()).unwrap_or(0),
            spool_records: self.inner.spool.records(),
            spool_bytes: self.inner.spool.bytes(),
            spool_quarantined: self.inner.spool.quarantined(),
        }
    }
}

/// librdkafka headers from `(name, value)` pairs.
fn owned_headers<'a>(headers: impl ExactSizeIterator<Item = (&'a str, &'a str)>) -> OwnedHeaders {
    let mut owned = OwnedHeaders::new_with_capacity(headers.len());
    for (key, value) in headers {
        owned = owned.insert(Header { key, value: Some(value.as_bytes()) });
    }
    owned
}

/// The spool's copy of a message that librdkafka did not take.
fn spool_record(topic: &str, key: Option<&str>, headers: &[(&str, &str)], payload: &[u8]) -> SpoolRecord {
    SpoolRecord {
        topic: topic.to_owned(),
        key: key.map(str::to_owned),
        headers: headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        payload: payload.to_vec(),
    }
}

fn new_producer(config: &KafkaConfig, shared: &Arc<Shared>) -> Result<BaseProducer<ExportContext>, ExporterError> {
    client_config(config)
        .set_log_level(RDKafkaLogLevel::Warning)
        .create_with_context(ExportContext { shared: shared.clone() })
        .map_err(|e| ExporterError::Other(format!("creating the Kafka producer: {e}")))
}

/// Purges what `producer` still holds; the purged messages come back as failed delivery reports and are
/// collected for the spool.
fn purge_into_spool(producer: &BaseProducer<ExportContext>) {
    if producer.in_flight_count() > 0 {
        producer.purge(PurgeConfig::default().queue().inflight());
        let deadline = Instant::now() + Duration::from_secs(5);
        while producer.in_flight_count() > 0 && Instant::now() < deadline {
            producer.poll(Duration::from_millis(10));
        }
    }
    producer.poll(Duration::ZERO);
}

fn check_topic(producer: &BaseProducer<ExportContext>, topic: &str, timeout: Duration) -> Result<(), ExporterError> {
    let metadata = producer
        .client()
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| ExporterError::Other(format!("asking the Kafka cluster about topic `{topic}`: {e}")))?;
    match metadata.topics().iter().find(|t| t.name() == topic) {
        Some(t) if t.error().is_none() && !t.partitions().is_empty() => Ok(()),
        _ => Err(ExporterError::UnknownTopic(topic.to_owned())),
    }
}

/// A segment being re-sent.
struct Replay {
    segment: Segment,
    records: Vec<SpoolRecord>,
    next: usize,
    /// Lines of the segment that could not be decoded.
    skipped: usize,
}

impl Inner {
    fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    /// Replaces a producer that hit a fatal error (an idempotent producer that was fenced, e.g. after a
    /// timeout during an outage): what the old one held is purged into the spool and re-sent by the new one.
    fn replace_producer(&self, retired: &mut Vec<Arc<BaseProducer<ExportContext>>>) {
        let fatal = self.producer.load().client().fatal_error();
        crate::diag::report!(
            WARN,
            "kafka-producer-replaced",
            "the Kafka producer was fenced or failed fatally ({fatal:?}); replacing it (undelivered events are spooled \
             and re-sent)"
        );
        match new_producer(&self.config, &self.shared) {
            Ok(p) => {
                let old = self.producer.swap(Arc::new(p));
                purge_into_spool(&old);
                retired.push(old);
            }
            Err(e) => {
                crate::diag::report!(
                    ERROR,
                    "kafka-producer-failed",
                    "could not create a new Kafka producer ({e}); retrying"
                );
                self.shared.needs_new_producer.store(true, Ordering::Release);
            }
        }
    }

    /// Waits up to `timeout` until librdkafka has no message left in its queue or in flight. When that takes
    /// longer than [`WAIT_NOTICE_AFTER`], says once on stderr what it is waiting for. Returns the time waited.
    fn wait_for_acks(&self, producer: &BaseProducer<ExportContext>, timeout: Duration) -> Duration {
        let start = Instant::now();
        let deadline = start + timeout;
        let mut told = false;
        loop {
            let now = Instant::now();
            if now >= deadline || producer.in_flight_count() == 0 {
                return now - start;
            }
            let until_notice = (start + WAIT_NOTICE_AFTER).saturating_duration_since(now);
            let slice = if told || until_notice.is_zero() { deadline - now } else { until_notice.min(deadline - now) };
            if producer.flush(slice).is_ok() {
                return start.elapsed();
            }
            let in_flight = producer.in_flight_count();
            if !told && in_flight > 0 && start.elapsed() >= WAIT_NOTICE_AFTER {
                told = true;
                let remaining = deadline.saturating_duration_since(Instant::now());
                let at = chrono::Utc::now() + chrono::Duration::from_std(remaining).unwrap_or_default();
                crate::diag::report_loud(
                    "kafka-shutdown",
                    format_args!(
                        "shutting down: waiting up to {:.0?} more (until {} UTC) for Kafka at {} to acknowledge {in_flight} \
                         messages; what is not acknowledged by then goes to the spool {}",
                        remaining,
                        at.format("%H:%M:%S"),
                        self.config.bootstrap_servers,
                        self.spool.dir().display()
                    ),
                );
            }
        }
    }

    /// The background loop: serve delivery reports, persist failures, re-send the spool.
    fn run(&self) {
        let mut replay: Option<Replay> = None;
        let mut backoff = Duration::from_millis(500);
        let mut next_attempt = Instant::now();
        // Replaced producers, dropped here (not on a caller's thread) once nobody uses them any more.
        let mut retired: Vec<Arc<BaseProducer<ExportContext>>> = Vec::new();
        while !self.shutdown.load(Ordering::Acquire) {
            self.producer.load().poll(POLL);
            for old in &retired {
                old.poll(Duration::ZERO);
            }
            retired.retain(|p| Arc::strong_count(p) > 1 || p.in_flight_count() > 0);
            if self.shared.needs_new_producer.swap(false, Ordering::AcqRel) {
                self.replace_producer(&mut retired);
                next_attempt = Instant::now() + backoff;
            }
            self.drain_failed();
            match replay.take() {
                Some(mut r) => {
                    self.replay_some(&mut r);
                    let done = r.next >= r.records.len() && self.shared.replay_outstanding.load(Ordering::Acquire) == 0;
                    if done {
                        // Failures of this replay are already back in the spool (drained above).
                        self.drain_failed();
                        let finished = if r.skipped > 0 {
                            // What could not be decoded is never deleted: the whole segment is set aside.
                            let reason = format!(
                                "{} of its lines cannot be decoded (its {} other records were re-sent)",
                                r.skipped,
                                r.records.len()
                            );
                            self.spool.quarantine(&r.segment, &reason).map(drop)
                        } else {
                            self.spool.remove(&r.segment)
                        };
                        if let Err(e) = finished {
                            crate::diag::report!(ERROR, "spool-remove", "removing a replayed spool segment: {e}");
                        }
                        let failed = self.shared.replay_failed.swap(0, Ordering::AcqRel);
                        if failed > 0 {
                            next_attempt = Instant::now() + backoff;
                            backoff = (backoff * 2).min(MAX_BACKOFF);
                        } else {
                            backoff = Duration::from_millis(500);
                        }
                    } else {
                        replay = Some(r);
                    }
                }
                None if !self.spool.is_empty() && Instant::now() >= next_attempt => {
                    replay = self.start_replay();
                    if replay.is_none() {
                        next_attempt = Instant::now() + backoff;
                    }
                }
                None => {}
            }
        }
    }

    /// The oldest segment that can be read. A segment that cannot be read is quarantined (moved aside, reported
    /// and counted) and the next one is tried, so that one bad file never stops the replay of the others.
    fn start_replay(&self) -> Option<Replay> {
        let segments = match self.spool.seal_and_list() {
            Ok(s) => s,
            Err(e) => {
                crate::diag::report!(ERROR, "spool-list", "listing the spool: {e}");
                return None;
            }
        };
        for segment in segments {
            match self.spool.read(&segment) {
                Ok((records, skipped)) => {
                    if skipped > 0 {
                        crate::diag::report!(
                            ERROR,
                            "spool-undecodable",
                            "{skipped} spooled records in {} cannot be decoded and are skipped; the segment is kept in \
                             quarantine after the others are re-sent",
                            segment.path().display()
                        );
                    }
                    return Some(Replay { segment, records, next: 0, skipped });
                }
                Err(e) => {
                    if let Err(e) = self.spool.quarantine(&segment, &format!("it cannot be read ({e})")) {
                        crate::diag::report!(ERROR, "spool-quarantine", "quarantining a spool segment: {e}");
                    }
                }
            }
        }
        None
    }

    fn replay_some(&self, r: &mut Replay) {
        let ctx = &*self.shared;
        let producer = self.producer.load();
        while r.next < r.records.len() && ctx.replay_outstanding.load(Ordering::Acquire) < REPLAY_WINDOW {
            let rec = &r.records[r.next];
            let headers = owned_headers(rec.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            let mut record = BaseRecord::with_opaque_to(&rec.topic, REPLAY).payload(&rec.payload).headers(headers);
            if let Some(k) = &rec.key {
                record = record.key(k);
            }
            ctx.replay_outstanding.fetch_add(1, Ordering::AcqRel);
            match producer.send(record) {
                Ok(()) => {
                    self.counters().produced.fetch_add(1, Ordering::Relaxed);
                    r.next += 1;
                }
                Err((err, _)) if is_permanent(err.rdkafka_error_code()) => {
                    // Spooled by an earlier version, or the limits changed: it can never be sent.
                    ctx.replay_outstanding.fetch_sub(1, Ordering::AcqRel);
                    ctx.reject(rec, &err);
                    r.next += 1;
                }
                Err(_) => {
                    // librdkafka's queue is full: let it drain and continue on the next turn.
                    ctx.replay_outstanding.fetch_sub(1, Ordering::AcqRel);
                    break;
                }
            }
        }
    }

    /// Appends the failed messages collected by the delivery callback to the spool.
    fn drain_failed(&self) {
        let batch = std::mem::take(&mut *lock(&self.shared.failed));
        if batch.is_empty() {
            return;
        }
        if let Err(e) = self.spool_now(batch) {
            crate::diag::report!(ERROR, "spool-write", "{e}");
        }
    }

    fn spool_now(&self, batch: Vec<SpoolRecord>) -> Result<(), String> {
        let n = batch.len() as u64;
        match self.spool.append(&batch) {
            Ok(()) => {
                self.counters().spooled.fetch_add(n, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                self.counters().spool_overflow.fetch_add(n, Ordering::Relaxed);
                write_fallback(&batch);
                Err(format!(
                    "{n} undeliverable Kafka messages could not be spooled ({e}); they were written to stderr as `observer-kafka-fallback:` lines"
                ))
            }
        }
    }
}

/// The audit sink that exports every event to the audit topic through a shared [`KafkaExporter`].
#[derive(Debug, Clone)]
pub struct KafkaSink {
    exporter: KafkaExporter,
    shutdown_timeout: Duration,
}

impl KafkaSink {
    /// A sink over `exporter`; shutting the pipeline down waits up to `shutdown_timeout` for acknowledgements.
    pub fn new(exporter: KafkaExporter, shutdown_timeout: Duration) -> Self {
        Self { exporter, shutdown_timeout }
    }
}

impl Sink for KafkaSink {
    fn name(&self) -> String {
        format!(
            "kafka {} topic {}",
            self.exporter.inner.config.bootstrap_servers, self.exporter.inner.config.audit_topic
        )
    }

    fn write(&self, record: Record<'_>) -> Result<(), ExporterError> {
        let r = self.exporter.send_audit_json(record.event, record.json);
        match r.error {
            None => Ok(()),
            Some(e) => Err(ExporterError::Other(e)),
        }
    }

    fn shutdown(&self) -> Result<(), ExporterError> {
        self.exporter.shutdown(self.shutdown_timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{SaslMechanism, Secret};

    #[test]
    fn every_setting_reaches_librdkafka() {
        let config = KafkaConfig {
            bootstrap_servers: "k1:9093,k2:9093".into(),
            client_id: "my-service-producer".into(),
            security_protocol: SecurityProtocol::SaslSsl,
            sasl_mechanism: Some(SaslMechanism::ScramSha512),
            sasl_username: Some("user".into()),
            sasl_password: Some(Secret::new("hunter2")),
            ssl_ca_location: Some("/etc/ssl/ca.pem".into()),
            acks: "all".into(),
            retries: 7,
            retry_backoff: Duration::from_millis(250),
            batch_size: 32_768,
            linger: Duration::from_millis(9),
            compression: crate::config::Compression::Zstd,
            ..Default::default()
        };
        let c = client_config(&config);
        for (k, v) in [
            ("bootstrap.servers", "k1:9093,k2:9093"),
            ("client.id", "my-service-producer"),
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", "user"),
            ("sasl.password", "hunter2"),
            ("ssl.ca.location", "/etc/ssl/ca.pem"),
            ("acks", "all"),
            ("retries", "7"),
            ("retry.backoff.ms", "250"),
            ("batch.size", "32768"),
            ("linger.ms", "9"),
            ("compression.type", "zstd"),
            ("enable.idempotence", "true"),
            ("message.timeout.ms", "30000"),
        ] {
            assert_eq!(c.get(k), Some(v), "{k}");
        }
        // The guide's settings (username and password only) reach librdkafka as SASL_SSL with PLAIN.
        let guide = client_config(&KafkaConfig {
            sasl_username: Some("user".into()),
            sasl_password: Some(Secret::new("pass")),
            ..Default::default()
        });
        assert_eq!(guide.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(guide.get("sasl.mechanism"), Some("PLAIN"));
        assert_eq!(guide.get("ssl.endpoint.identification.algorithm"), Some("https"));
        assert_eq!(client_config(&KafkaConfig::default()).get("sasl.mechanism"), None);
        // librdkafka accepts the whole set (SSL and SASL are compiled in).
        let dir = std::env::temp_dir().join(format!("observer-kafka-unit-{}", std::process::id()));
        let exporter =
            KafkaExporter::new(KafkaConfig { spool_dir: Some(dir.clone()), ssl_ca_location: None, ..config })
                .expect("producer");
        let shown = format!("{exporter:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        exporter.shutdown(Duration::from_secs(1)).expect("shutdown");
        let _ = std::fs::remove_dir_all(dir);
    }
    /// An exporter whose broker never answers (nothing listens on port 9), failing deliveries after 1 s.
    fn unreachable_exporter(spool_dir: &std::path::Path) -> KafkaExporter {
        KafkaExporter::new(KafkaConfig {
            bootstrap_servers: "127.0.0.1:9".into(),
            message_timeout: Duration::from_secs(1),
            spool_dir: Some(spool_dir.to_owned()),
            ..Default::default()
        })
        .expect("exporter")
    }

    fn spool_with_segments(dir: &std::path::Path, n: usize) -> Vec<std::path::PathBuf> {
        let spool = Spool::open(dir, u64::MAX).unwrap();
        for i in 0..n {
            let record = SpoolRecord {
                topic: "audit".into(),
                key: None,
                headers: vec![],
                payload: format!("{{\"n\":{i}}}").into_bytes(),
            };
            spool.append(&[record]).unwrap();
            spool.seal_and_list().unwrap();
        }
        spool.seal_and_list().unwrap().iter().map(|s| s.path().to_owned()).collect()
    }

    fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for: {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A3: a segment deleted before it is replayed must not stop the replay of the others (it used to be retried
    /// every 500 ms forever).
    #[test]
    fn a_vanished_segment_does_not_stop_the_replay_of_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let segments = spool_with_segments(dir.path(), 2);
        let exporter = unreachable_exporter(dir.path());
        // Segment 1 is re-sent first (and fails after 1 s, back into a new segment 3); segment 2 vanishes.
        std::fs::remove_file(&segments[1]).unwrap();
        wait_for("the replay to go past the vanished segment", Duration::from_secs(30), || {
            exporter.stats().produced >= 2
        });
        exporter.shutdown(Duration::from_secs(1)).unwrap();
    }

    /// A3: a segment that cannot be read (injected "permission denied": the tests run as root) is quarantined and
    /// the replay goes on with the next one.
    #[test]
    fn an_unreadable_segment_is_quarantined_and_the_replay_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let segments = spool_with_segments(dir.path(), 2);
        super::super::spool::failpoint::inject(&segments[0], super::super::spool::failpoint::OPEN);
        let exporter = unreachable_exporter(dir.path());
        wait_for("segment 2 to be re-sent", Duration::from_secs(30), || exporter.stats().produced >= 1);
        let stats = exporter.stats();
        assert_eq!(stats.spool_quarantined, 1, "{stats:?}");
        let kept = dir.path().join("quarantine").join(segments[0].file_name().unwrap());
        assert_eq!(
            std::fs::read_to_string(kept).unwrap(),
            "{\"topic\":\"audit\",\"key\":null,\"headers\":[],\"payload\":\"{\\\"n\\\":0}\"}\n"
        );
        exporter.shutdown(Duration::from_secs(1)).unwrap();
    }

    /// A4: a spooled line that cannot be decoded is never deleted: after the other records of its segment were
    /// re-sent, the segment is kept (quarantined) with its bytes unchanged.
    #[test]
    fn a_record_that_cannot_be_decoded_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let segments = spool_with_segments(dir.path(), 1);
        let broken = b"{\"topic\":\"audit\",\"key\":null,\"headers\":[],\"payload\":\"{\\\"n\\\":1}\"\n";
        let mut file = std::fs::OpenOptions::new().append(true).open(&segments[0]).unwrap();
        file.write_all(broken).unwrap();
        drop(file);
        let exporter = unreachable_exporter(dir.path());
        // The good record fails after 1 s and is re-spooled; then the segment is done with.
        wait_for("the segment to be replayed", Duration::from_secs(30), || !segments[0].exists());
        let mut found = false;
        let mut stack = vec![dir.path().to_owned()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if std::fs::read(&path).unwrap().windows(broken.len()).any(|w| w == broken) {
                    found = true;
                }
            }
        }
        assert!(found, "the undecodable line was deleted");
        exporter.shutdown(Duration::from_secs(1)).unwrap();
    }
}
