//! The exporter's background thread: it serves librdkafka's delivery reports, appends what failed to the spool,
//! replaces a producer that failed fatally, and re-sends the spool, oldest segment first, with a growing backoff
//! while the broker keeps failing them. A segment that cannot be read, or holds lines that cannot be decoded,
//! is quarantined (never deleted).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use super::client::{new_producer, purge_into_spool};
use super::delivery::{is_permanent, lock, write_fallback, ExportContext, REPLAY};
use super::exporter::{owned_headers, Inner};
use super::spool::{Segment, SpoolRecord};
use crate::error::ExporterError;

/// Most spooled messages handed to librdkafka at once during replay.
const REPLAY_WINDOW: usize = 10_000;

/// How often the background thread polls librdkafka for delivery reports.
const POLL: Duration = Duration::from_millis(20);

const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// A segment being re-sent.
struct Replay {
    segment: Segment,
    records: Vec<SpoolRecord>,
    next: usize,
    /// Lines of the segment that could not be decoded.
    skipped: usize,
}

impl Inner {
    /// The background loop: serve delivery reports, persist failures, re-send the spool.
    pub(super) fn run(&self) {
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
    pub(super) fn drain_failed(&self) {
        let batch = std::mem::take(&mut *lock(&self.shared.failed));
        if batch.is_empty() {
            return;
        }
        if let Err(e) = self.spool_now(batch) {
            crate::diag::report!(ERROR, "spool-write", "{e}");
        }
    }

    pub(super) fn spool_now(&self, batch: Vec<SpoolRecord>) -> Result<(), ExporterError> {
        let n = batch.len() as u64;
        match self.spool.append(&batch) {
            Ok(()) => {
                self.counters().spooled.fetch_add(n, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                self.counters().spool_overflow.fetch_add(n, Ordering::Relaxed);
                write_fallback(&batch);
                Err(ExporterError::Unspooled {
                    messages: n,
                    source: Some(Box::new(e.into_exporter_error(self.spool.dir()))),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::config::KafkaConfig;
    use crate::export::kafka::spool::{failpoint, Spool};
    use crate::export::KafkaExporter;

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
        failpoint::inject(&segments[0], failpoint::OPEN);
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
