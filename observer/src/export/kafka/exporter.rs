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
//! # let event = observer::audit::log_create(observer::ResourceType::Document, "doc-123").emit().unwrap();
//! let accepted = exporter.export_audit(&event)?; // Accepted::Queued, or Accepted::Spooled when librdkafka is full
//! println!("export: {accepted:?}");
//! exporter.export_custom_event("custom-events", "my-key", &serde_json::json!({"event_type": "custom"}))?;
//! exporter.flush(std::time::Duration::from_secs(5))?;
//! exporter.shutdown(std::time::Duration::from_secs(5))?;
//! # Ok(()) }
//! ```

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use super::client::{check_topic, new_producer, purge_into_spool};
use super::delivery::{is_permanent, lock, Counters, ExportContext, Shared, LIVE};
use super::spool::{Spool, SpoolRecord};
use crate::audit::{AuditEvent, SCHEMA_VERSION};
use crate::config::KafkaConfig;
use crate::error::ExporterError;

/// How long shutdown waits for acknowledgements in silence before saying on stderr what it is waiting for.
const WAIT_NOTICE_AFTER: Duration = Duration::from_secs(1);

/// How a [`KafkaExporter`] took a message it was given (the guide's `ExportResult.success == True`). Either way
/// the message is delivered at least once (or, if even the spool fails later, written to stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(docsrs, doc(cfg(feature = "kafka")))]
pub enum Accepted {
    /// Handed to librdkafka's queue for delivery.
    Queued,
    /// librdkafka could not take it (its queue is full, or the exporter is shut down): it goes to the disk
    /// spool and is re-sent from there.
    Spooled,
}

/// Counters of a [`KafkaExporter`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(docsrs, doc(cfg(feature = "kafka")))]
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

/// Exports audit events and custom events to Kafka. Cheap to clone: clones share one producer, one spool and
/// one background thread (one producer per process is the intended use; see `observer::kafka_exporter`).
#[derive(Clone)]
#[cfg_attr(docsrs, doc(cfg(feature = "kafka")))]
pub struct KafkaExporter {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) config: KafkaConfig,
    pub(super) shared: Arc<Shared>,
    pub(super) producer: ArcSwap<BaseProducer<ExportContext>>,
    pub(super) spool: Arc<Spool>,
    pub(super) shutdown: AtomicBool,
    pub(super) closed: AtomicBool,
    pub(super) thread: Mutex<Option<JoinHandle<()>>>,
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

impl KafkaExporter {
    /// A ready exporter: validates `config`, opens the spool directory (re-sending what an earlier process left
    /// there), creates the producer and its background thread, and checks in the background that the broker
    /// answers and that the audit and trace topics exist (the guide's `exporter.initialize()`; what is wrong is
    /// reported once: a missing topic is an error, its events are spooled until it is created). Never blocks on
    /// the broker: a broker that is down does not fail this.
    ///
    /// # Errors
    /// [`ExporterError::Configuration`] (an invalid setting, the field named), [`ExporterError::SpoolLocked`] (the
    /// spool directory is used by another exporter or process), [`ExporterError::Io`] (the spool directory cannot
    /// be opened, or the thread not started), [`ExporterError::ProducerCreation`] (librdkafka refuses a setting).
    pub fn new(config: KafkaConfig) -> Result<Self, ExporterError> {
        config.validate()?;
        let dir = config.spool_dir.clone().unwrap_or_else(|| PathBuf::from(KafkaConfig::DEFAULT_SPOOL_DIR));
        let perms = config.spool_permissions.unwrap_or_default();
        let spool = Spool::open_with_permissions(&dir, config.spool_max_bytes, perms)
            .map_err(|e| e.into_exporter_error(&dir))?;
        let spool = Arc::new(spool);
        let shared = Arc::new(Shared::new(config.bootstrap_servers.clone(), spool.clone()));
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
            .map_err(|e| ExporterError::Io { what: "kafka thread".into(), source: e })?;
        *lock(&inner.thread) = Some(thread);
        let exporter = Self { inner };
        exporter.check_topics_in_background();
        Ok(exporter)
    }

    /// Checks, in the background, that the broker answers and that the audit and trace topics exist, and reports
    /// what is wrong once. Never fails and never blocks.
    fn check_topics_in_background(&self) {
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
    /// [`ExporterError::UnknownTopic`] when the broker says it does not exist; [`ExporterError::TopicMetadata`]
    /// when the cluster could not be asked.
    pub fn check_topic(&self, topic: &str, timeout: Duration) -> Result<(), ExporterError> {
        check_topic(&self.inner.producer.load(), topic, timeout)
    }

    /// The configuration.
    pub fn config(&self) -> &KafkaConfig {
        &self.inner.config
    }

    /// Exports one audit event to the audit topic (JSON as in the guide; key `RESOURCE_TYPE:resource_id`;
    /// headers `event_type`, `event_id`, `schema_version`, `content-type`). Never blocks.
    ///
    /// # Errors
    /// As [`send`](Self::send), and [`ExporterError::Serialize`].
    pub fn export_audit(&self, event: &AuditEvent) -> Result<Accepted, ExporterError> {
        // Redacted under the policy in force here, as the pipeline redacts what it sends.
        let redacted = crate::redact::redact_event(&crate::redact::active(), event);
        let event = redacted.as_ref().unwrap_or(event);
        let json = serde_json::to_vec(event)?;
        self.send_audit_record(event, crate::AuditFormat::Json, &json)
    }

    /// Exports any JSON value to `topic` with `key`. Never blocks.
    ///
    /// # Errors
    /// As [`send`](Self::send), and [`ExporterError::Serialize`].
    pub fn export_custom_event(
        &self,
        topic: &str,
        key: &str,
        data: &serde_json::Value,
    ) -> Result<Accepted, ExporterError> {
        let json = serde_json::to_vec(data)?;
        self.send(topic, Some(key), &[("content-type", "application/json")], &json)
    }

    /// Sends one audit event, already serialised in `format` as `payload`, to the audit topic. Headers as
    /// [`export_audit`](Self::export_audit); for OCSF and FHIR `schema_version` is that format's version
    /// (`1.5.0`, `4.0.1`), `format` names it (`ocsf`, `fhir`) and `content-type` is its media type.
    pub(crate) fn send_audit_record(
        &self,
        event: &AuditEvent,
        format: crate::AuditFormat,
        payload: &[u8],
    ) -> Result<Accepted, ExporterError> {
        let mut key = String::with_capacity(event.resource_type.as_str().len() + 1 + event.resource_id.len());
        key.push_str(event.resource_type.as_str());
        key.push(':');
        key.push_str(&event.resource_id);
        let schema_version = match format {
            crate::AuditFormat::Ocsf => crate::AuditFormat::OCSF_VERSION,
            crate::AuditFormat::Fhir => crate::AuditFormat::FHIR_VERSION,
            _ => SCHEMA_VERSION,
        };
        let headers = [
            ("event_type", event.audit_type.as_str()),
            ("event_id", event.event_id.as_str()),
            ("schema_version", schema_version),
            ("content-type", format.content_type()),
            ("format", format.as_str()),
        ];
        self.send(&self.inner.config.audit_topic, Some(&key), &headers, payload)
    }

    /// A checkpoint of the integrity chain to the audit topic: key `checkpoint:<chain id>`, headers `record_type:
    /// checkpoint`, `schema_version`, `content-type`.
    pub(crate) fn send_checkpoint_json(
        &self,
        checkpoint: &crate::integrity::Checkpoint,
        json: &[u8],
    ) -> Result<Accepted, ExporterError> {
        let key = format!("checkpoint:{}", checkpoint.chain_id);
        let headers =
            [("record_type", "checkpoint"), ("schema_version", SCHEMA_VERSION), ("content-type", "application/json")];
        self.send(&self.inner.config.audit_topic, Some(&key), &headers, json)
    }

    /// Hands one message to librdkafka, or to the spool when librdkafka cannot take it. Never blocks.
    ///
    /// # Errors
    /// Only when the message is not on its way to Kafka; it was then written to stderr as an
    /// `observer-kafka-fallback:` line: [`ExporterError::MessageTooLarge`] (Kafka can never take it), or
    /// [`ExporterError::Unspooled`] (after shutdown, the spool could not take it).
    pub fn send(
        &self,
        topic: &str,
        key: Option<&str>,
        headers: &[(&str, &str)],
        payload: &[u8],
    ) -> Result<Accepted, ExporterError> {
        if self.inner.closed.load(Ordering::Acquire) {
            self.inner.spool_now(vec![spool_record(topic, key, headers, payload)])?;
            return Ok(Accepted::Spooled);
        }
        let owned = owned_headers(headers.iter().copied());
        let mut record = BaseRecord::with_opaque_to(topic, LIVE).payload(payload).headers(owned);
        if let Some(k) = key {
            record = record.key(k);
        }
        match self.inner.producer.load().send(record) {
            Ok(()) => {
                self.inner.counters().produced.fetch_add(1, Ordering::Relaxed);
                Ok(Accepted::Queued)
            }
            Err((err, _)) if is_permanent(err.rdkafka_error_code()) => {
                let record = spool_record(topic, key, headers, payload);
                Err(self.inner.shared.reject(&record, &err))
            }
            Err((err, _)) => {
                // Queue full (or any other immediate refusal): keep it on disk instead.
                tracing::debug!(target: "observer::kafka", error = %err, "librdkafka refused a message; spooling it");
                self.inner.shared.push_failed(spool_record(topic, key, headers, payload));
                Ok(Accepted::Spooled)
            }
        }
    }

    /// Waits (at most `timeout`) until every message handed over so far is acknowledged, and whatever failed
    /// meanwhile is safely in the spool.
    ///
    /// [`observer::flush`](crate::flush) flushes the exporters the SDK owns (the one of `init`, the ones shared
    /// by the tracers' streams); this is the flush of an exporter you created yourself.
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
    /// [`ExporterError::Unspooled`] when messages could not be spooled during the exporter's life (they were
    /// written to stderr instead), with their number.
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
            return Err(ExporterError::Unspooled { messages: overflow, source: None });
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
pub(super) fn owned_headers<'a>(headers: impl ExactSizeIterator<Item = (&'a str, &'a str)>) -> OwnedHeaders {
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

impl Inner {
    pub(super) fn counters(&self) -> &Counters {
        &self.shared.counters
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
}
