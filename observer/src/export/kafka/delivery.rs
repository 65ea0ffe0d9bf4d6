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

use super::spool::{Spool, SpoolRecord};
use crate::error::ExporterError;

/// Delivery tag of a live message.
pub(super) const LIVE: usize = 0;

/// Delivery tag of a message re-sent from the spool: `REPLAY + slot`, the slot of its segment (see
/// [`Shared::replay_outstanding`]).
pub(super) const REPLAY: usize = 1;

/// Spool segments that can be re-sent at once (each with its own count of unacknowledged messages).
pub(super) const REPLAY_SLOTS: usize = 4;

/// Failed messages are handed to the spool in chunks of about this many bytes: whoever adds the message that
/// reaches it appends the chunk, so that messages waiting for the spool never hold more memory than this per
/// thread adding them, however fast they fail.
pub(super) const FAILED_CHUNK_BYTES: usize = 4 * 1024 * 1024;

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
    /// Failed messages waiting to be appended to the spool (by the background thread, or by whoever adds the
    /// message that fills a chunk: [`push_failed`](Shared::push_failed)).
    pub(super) failed: Mutex<Failed>,
    /// The spool.
    pub(super) spool: Arc<Spool>,
    /// Replayed messages not yet reported, by the slot of their segment.
    pub(super) replay_outstanding: [AtomicUsize; REPLAY_SLOTS],
    /// Replayed messages that failed again in the current replay.
    pub(super) replay_failed: AtomicUsize,
    /// Replayed messages that failed, by the slot of their segment: appended to the spool when that segment is
    /// done with, just before it is deleted (at most one segment's records each). Until then the segment holds
    /// them, so if the replay stops first (shutdown) they are not spooled twice.
    pub(super) replay_failures: [Mutex<Vec<SpoolRecord>>; REPLAY_SLOTS],
    /// The background thread stopped re-sending the spool (shutdown): the segments of replayed messages still
    /// in flight stay on disk, so such a message that fails is not spooled a second time.
    pub(super) replay_stopped: AtomicBool,
    pub(super) reported_topics: Mutex<HashSet<String>>,
    pub(super) broker_down_reported: AtomicBool,
    pub(super) bootstrap: String,
    /// The producer hit a fatal error (e.g. an idempotent producer fenced after a timeout) and must be replaced.
    pub(super) needs_new_producer: AtomicBool,
}

impl Shared {
    /// The state of a new exporter connected to `bootstrap`.
    pub(super) fn new(bootstrap: String, spool: Arc<Spool>) -> Self {
        Self {
            counters: Counters::default(),
            failed: Mutex::new(Failed::default()),
            spool,
            replay_outstanding: std::array::from_fn(|_| AtomicUsize::new(0)),
            replay_failed: AtomicUsize::new(0),
            replay_failures: std::array::from_fn(|_| Mutex::new(Vec::new())),
            replay_stopped: AtomicBool::new(false),
            reported_topics: Mutex::new(HashSet::new()),
            broker_down_reported: AtomicBool::new(false),
            bootstrap,
            needs_new_producer: AtomicBool::new(false),
        }
    }
}

/// Failed messages waiting for the spool.
#[derive(Debug, Default)]
pub(super) struct Failed {
    records: Vec<SpoolRecord>,
    /// Their approximate size.
    bytes: usize,
}

impl Shared {
    /// Queues a failed message for the spool; if that fills a chunk ([`FAILED_CHUNK_BYTES`]), appends the chunk
    /// now, on this thread.
    pub(super) fn push_failed(&self, record: SpoolRecord) {
        let size = record.payload.len()
            + record.topic.len()
            + record.key.as_ref().map_or(0, String::len)
            + record.headers.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
        let chunk = {
            let mut failed = lock(&self.failed);
            failed.records.push(record);
            failed.bytes += size;
            (failed.bytes >= FAILED_CHUNK_BYTES).then(|| std::mem::take(&mut *failed).records)
        };
        if let Some(chunk) = chunk {
            self.spool_failed(chunk);
        }
    }

    /// Appends the failed messages queued so far to the spool.
    pub(super) fn drain_failed(&self) {
        let batch = std::mem::take(&mut *lock(&self.failed)).records;
        if !batch.is_empty() {
            self.spool_failed(batch);
        }
    }

    fn spool_failed(&self, batch: Vec<SpoolRecord>) {
        if let Err(e) = self.spool_now(batch) {
            crate::diag::report!(ERROR, "spool-write", "{e}");
        }
    }

    /// Appends `batch` to the spool; if it cannot, writes it to stderr and counts it as overflow.
    pub(super) fn spool_now(&self, batch: Vec<SpoolRecord>) -> Result<(), ExporterError> {
        let n = batch.len() as u64;
        match self.spool.append(&batch) {
            Ok(()) => {
                self.counters.spooled.fetch_add(n, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                self.counters.spool_overflow.fetch_add(n, Ordering::Relaxed);
                write_fallback(&batch);
                Err(ExporterError::Unspooled {
                    messages: n,
                    source: Some(Box::new(e.into_exporter_error(self.spool.dir()))),
                })
            }
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
                if tag >= REPLAY {
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
                if tag >= REPLAY {
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
                } else if let Some(held) = tag.checked_sub(REPLAY).and_then(|slot| self.replay_failures.get(slot)) {
                    // Its segment is on disk until the replay is done with it. If the replay stopped (shutdown),
                    // it stays there and the next process re-sends it: not spooled a second time.
                    if !self.replay_stopped.load(Ordering::Acquire) {
                        lock(held).push(record);
                    }
                } else {
                    self.push_failed(record);
                }
            }
        }
        if let Some(outstanding) = tag.checked_sub(REPLAY).and_then(|slot| self.replay_outstanding.get(slot)) {
            outstanding.fetch_sub(1, Ordering::AcqRel);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 15: failed messages wait in memory for at most about one chunk: the one that fills it appends the
    /// chunk to the spool (they used to pile up until the background thread appended all of them at once, a
    /// whole librdkafka queue timing out at once: hundreds of MiB in memory and in one segment).
    #[test]
    fn failed_messages_go_to_the_spool_in_bounded_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Arc::new(Spool::open(dir.path(), u64::MAX).unwrap());
        let shared = Shared::new("127.0.0.1:9".into(), spool.clone());
        let record = |i: usize| SpoolRecord {
            topic: "audit".into(),
            key: Some(format!("k{i}")),
            headers: vec![("event_id".into(), i.to_string())],
            payload: vec![b'x'; 1000],
        };
        let n = 3 * FAILED_CHUNK_BYTES / 1000;
        let mut most_waiting = 0;
        for i in 0..n {
            shared.push_failed(record(i));
            most_waiting = most_waiting.max(lock(&shared.failed).bytes);
        }
        assert!(most_waiting < FAILED_CHUNK_BYTES, "{most_waiting}");
        let appended = spool.records();
        assert!(appended > 0 && appended as usize + lock(&shared.failed).records.len() == n, "{appended}");
        assert_eq!(shared.counters.spooled.load(Ordering::Relaxed), appended);
        shared.drain_failed();
        assert_eq!(spool.records() as usize, n);
        assert!(lock(&shared.failed).records.is_empty());
    }
}
