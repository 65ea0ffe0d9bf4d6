//! librdkafka's callbacks for the exporter: delivery reports (acknowledged, failed into the spool, refused for
//! good), client errors and logs, and the state every producer instance of one exporter shares.

use std::collections::HashSet;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crossbeam_utils::CachePadded;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::ClientContext;

use super::spool::SpoolRecord;
use crate::error::ExporterError;

/// Delivery tag of a live message.
pub(super) const LIVE: usize = 0;

/// Delivery tag of a message re-sent from the spool.
pub(super) const REPLAY: usize = 1;

#[derive(Debug, Default)]
pub(super) struct Counters {
    /// Written by the sending thread (the dispatcher) for every message, `acknowledged` by the thread that
    /// serves delivery reports: each on a cache line of its own, so that the two threads do not pass one line
    /// back and forth for every message.
    pub(super) produced: CachePadded<AtomicU64>,
    pub(super) acknowledged: CachePadded<AtomicU64>,
    pub(super) delivery_failures: AtomicU64,
    pub(super) spooled: AtomicU64,
    pub(super) replayed: AtomicU64,
    pub(super) spool_overflow: AtomicU64,
    pub(super) rejected: AtomicU64,
}

/// librdkafka callbacks: delivery reports, errors and logs. One per producer instance; all share [`Shared`].
pub(super) struct ExportContext {
    pub(super) shared: Arc<Shared>,
}

/// State shared by every producer instance of one exporter (a fenced producer is replaced by a new one).
pub(super) struct Shared {
    pub(super) counters: Counters,
    /// Failed messages waiting to be appended to the spool by the background thread.
    pub(super) failed: Mutex<Vec<SpoolRecord>>,
    /// Replayed messages not yet reported.
    pub(super) replay_outstanding: AtomicUsize,
    /// Replayed messages that failed again in the current replay.
    pub(super) replay_failed: AtomicUsize,
    pub(super) reported_topics: Mutex<HashSet<String>>,
    pub(super) broker_down_reported: AtomicBool,
    pub(super) bootstrap: String,
    /// The producer hit a fatal error (e.g. an idempotent producer fenced after a timeout) and must be replaced.
    pub(super) needs_new_producer: AtomicBool,
}

impl Shared {
    /// The state of a new exporter connected to `bootstrap`.
    pub(super) fn new(bootstrap: String) -> Self {
        Self {
            counters: Counters::default(),
            failed: Mutex::new(Vec::new()),
            replay_outstanding: AtomicUsize::new(0),
            replay_failed: AtomicUsize::new(0),
            reported_topics: Mutex::new(HashSet::new()),
            broker_down_reported: AtomicBool::new(false),
            bootstrap,
            needs_new_producer: AtomicBool::new(false),
        }
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
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
                // Read before written: a write for every acknowledgement would take the line from the other
                // threads that read it.
                if self.broker_down_reported.load(Ordering::Relaxed)
                    && self.broker_down_reported.swap(false, Ordering::Relaxed)
                {
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
pub(super) fn is_permanent(code: Option<RDKafkaErrorCode>) -> bool {
    matches!(code, Some(RDKafkaErrorCode::MessageSizeTooLarge))
}

/// Writes messages that cannot be delivered or kept to stderr, one `observer-kafka-fallback:` line each, so that
/// nothing disappears silently (log collectors keep stderr).
pub(super) fn write_fallback(records: &[SpoolRecord]) {
    let mut err = std::io::stderr().lock();
    for r in records {
        let _ = write!(err, "observer-kafka-fallback: topic={} key={} ", r.topic, r.key.as_deref().unwrap_or(""));
        let _ = err.write_all(&r.payload);
        let _ = err.write_all(b"\n");
    }
}

impl Shared {
    /// A message Kafka can never take: counted, reported and written to stderr instead of the spool. Returns the
    /// error for the caller.
    pub(super) fn reject(&self, record: &SpoolRecord, err: &KafkaError) -> ExporterError {
        self.counters.rejected.fetch_add(1, Ordering::Relaxed);
        crate::diag::report!(
            ERROR,
            "kafka-message-refused",
            "a {}-byte message for topic `{}` was refused by Kafka ({err}): larger than the maximum message size; \
             written to stderr as an `observer-kafka-fallback:` line instead",
            record.payload.len(),
            record.topic
        );
        write_fallback(std::slice::from_ref(record));
        ExporterError::MessageTooLarge { topic: record.topic.clone(), bytes: record.payload.len() }
    }

    pub(super) fn report_unknown_topic(&self, topic: &str) {
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
