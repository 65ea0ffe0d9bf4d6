//! The exporter's background thread: it serves librdkafka's delivery reports, appends what failed to the spool,
//! replaces a producer that failed fatally, and re-sends the spool, oldest segment first, with a growing backoff
//! while the broker keeps failing them. A segment that cannot be read, or holds lines that cannot be decoded,
//! is quarantined (never deleted).
//!
//! Segments are read one line at a time and each record is handed to librdkafka as soon as it is decoded (it
//! copies it), so the replay holds one record in memory whatever the segment's size, and librdkafka at most
//! [`REPLAY_WINDOW`] unacknowledged ones. Once a segment is read to its end, the next one is started while the
//! acknowledgements of the earlier ones are outstanding (up to [`REPLAY_SLOTS`] segments at once, each with its
//! own count); a segment is deleted only when none of its messages is outstanding any more, i.e. each was
//! acknowledged or failed; its failed messages are appended to the spool again just before it is deleted (not
//! as they fail: if the replay stops first, at shutdown, they are only in their segment, not spooled twice).

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use super::client::{new_producer, purge_into_spool};
use super::delivery::{is_permanent, lock, ExportContext, REPLAY, REPLAY_SLOTS};
use super::exporter::{owned_headers, Inner};
use super::spool::{Segment, SegmentReader, SpoolRecord};
use crate::error::ExporterError;

/// Most spooled messages handed to librdkafka and not yet acknowledged, over all segments being re-sent.
const REPLAY_WINDOW: usize = 10_000;

/// How often the background thread polls librdkafka for delivery reports.
const POLL: Duration = Duration::from_millis(20);

const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// When every segment of the spool is being re-sent, how long before the spool is listed again for a new one.
const LOOK_AGAIN: Duration = Duration::from_millis(100);

/// A segment being re-sent.
struct Replay {
    segment: Segment,
    /// Its slot: its messages carry the delivery tag `REPLAY + slot`.
    slot: usize,
    /// `None` once the segment was read to its end (or could not be read further).
    reader: Option<SegmentReader>,
    /// The reader's current line is read but its record not yet handed to librdkafka.
    pending: bool,
    /// Records handed to librdkafka (or refused by it for good).
    sent: usize,
    /// Lines that could not be decoded.
    skipped: usize,
    /// Why the segment could not be read to its end, if it could not.
    unreadable: Option<String>,
}

/// The state of the replay: the segments being re-sent, oldest first. Only the last one may still be read;
/// those before it wait for their acknowledgements.
#[derive(Default)]
struct Replays {
    segments: VecDeque<Replay>,
}

impl Replays {
    fn free_slot(&self) -> Option<usize> {
        (0..REPLAY_SLOTS).find(|slot| self.segments.iter().all(|r| r.slot != *slot))
    }
}

impl Inner {
    /// The background loop: serve delivery reports, persist failures, re-send the spool.
    pub(super) fn run(&self) {
        let mut replays = Replays::default();
        let mut backoff = Duration::from_millis(500);
        let mut next_attempt = Instant::now();
        let mut next_look = Instant::now();
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
            if let Some(r) = replays.segments.back_mut() {
                self.replay_some(r);
            }
            // Segments whose every message was acknowledged or re-spooled are done with, oldest first.
            while replays.segments.front().is_some_and(|r| {
                r.reader.is_none() && self.shared.replay_outstanding[r.slot].load(Ordering::Acquire) == 0
            }) {
                let Some(r) = replays.segments.pop_front() else { break };
                self.finish(r);
                let failed = self.shared.replay_failed.swap(0, Ordering::AcqRel);
                if failed > 0 {
                    next_attempt = Instant::now() + backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                } else {
                    backoff = Duration::from_millis(500);
                }
            }
            // The next segment, as soon as the last one is read to its end (not while messages fail).
            let last_read = replays.segments.back().is_none_or(|r| r.reader.is_none());
            let now = Instant::now();
            if last_read
                && !self.spool.is_empty()
                && now >= next_attempt
                && now >= next_look
                && self.shared.replay_failed.load(Ordering::Acquire) == 0
            {
                if let Some(slot) = replays.free_slot() {
                    let after = replays.segments.back().map(|r| r.segment.sequence());
                    match self.start_replay(slot, after) {
                        Some(r) => replays.segments.push_back(r),
                        None if replays.segments.is_empty() => next_attempt = now + backoff,
                        // Every segment is being re-sent: look again a little later, not on every turn.
                        None => next_look = now + LOOK_AGAIN,
                    }
                }
            }
        }
        // What is still in flight stays in its segment on disk (not deleted): the next process re-sends it.
        self.shared.replay_stopped.store(true, Ordering::Release);
    }

    /// Deletes a segment all of whose records were re-sent (acknowledged, or failed and spooled again), or
    /// quarantines it if some of its lines could not be decoded or read.
    fn finish(&self, r: Replay) {
        // Failures of this segment's records go back into the spool before the segment is deleted.
        let failures = std::mem::take(&mut *lock(&self.shared.replay_failures[r.slot]));
        if !failures.is_empty() {
            if let Err(e) = self.spool_now(failures) {
                crate::diag::report!(ERROR, "spool-write", "{e}");
            }
        }
        let finished = if let Some(error) = &r.unreadable {
            let reason = format!("it cannot be read ({error}; its {} records before were re-sent)", r.sent);
            self.spool.quarantine(&r.segment, &reason).map(drop)
        } else if r.skipped > 0 {
            // What could not be decoded is never deleted: the whole segment is set aside.
            let reason =
                format!("{} of its lines cannot be decoded (its {} other records were re-sent)", r.skipped, r.sent);
            self.spool.quarantine(&r.segment, &reason).map(drop)
        } else {
            self.spool.remove(&r.segment)
        };
        if let Err(e) = finished {
            crate::diag::report!(ERROR, "spool-remove", "removing a replayed spool segment: {e}");
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

    /// The oldest segment that can be read (after segment number `after`, if given: the ones up to it are being
    /// re-sent). A segment that cannot be read is quarantined (moved aside, reported and counted) and the next
    /// one is tried, so that one bad file never stops the replay of the others.
    fn start_replay(&self, slot: usize, after: Option<u64>) -> Option<Replay> {
        let segments = match self.spool.seal_and_list() {
            Ok(s) => s,
            Err(e) => {
                crate::diag::report!(ERROR, "spool-list", "listing the spool: {e}");
                return None;
            }
        };
        for segment in segments.into_iter().filter(|s| after.is_none_or(|after| s.sequence() > after)) {
            match self.spool.reader(&segment) {
                Ok(reader) => {
                    return Some(Replay {
                        segment,
                        slot,
                        reader: Some(reader),
                        pending: false,
                        sent: 0,
                        skipped: 0,
                        unreadable: None,
                    })
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

    /// Hands records of `r` to librdkafka while the window has room, reading them from the segment one at a time.
    fn replay_some(&self, r: &mut Replay) {
        let ctx = &*self.shared;
        let producer = self.producer.load();
        let outstanding = &ctx.replay_outstanding[r.slot];
        let Some(reader) = r.reader.as_mut() else { return };
        loop {
            if ctx.replay_outstanding.iter().map(|o| o.load(Ordering::Acquire)).sum::<usize>() >= REPLAY_WINDOW {
                return;
            }
            if !r.pending {
                match reader.next_line() {
                    Ok(true) => r.pending = true,
                    Ok(false) => break,
                    Err(e) => {
                        r.unreadable = Some(e.to_string());
                        break;
                    }
                }
            }
            let rec = match reader.record() {
                Ok(rec) => rec,
                Err(error) => {
                    reader.skip(&error);
                    r.pending = false;
                    continue;
                }
            };
            let headers = owned_headers(rec.headers.iter().map(|(k, v)| (&**k, &**v)));
            let mut record =
                BaseRecord::with_opaque_to(&rec.topic, REPLAY + r.slot).payload(&*rec.payload).headers(headers);
            if let Some(k) = &rec.key {
                record = record.key(k.as_bytes());
            }
            outstanding.fetch_add(1, Ordering::AcqRel);
            match producer.send(record) {
                Ok(()) => {
                    self.counters().produced.fetch_add(1, Ordering::Relaxed);
                    r.pending = false;
                    r.sent += 1;
                }
                Err((err, _)) if is_permanent(err.rdkafka_error_code()) => {
                    // Spooled by an earlier version, or the limits changed: it can never be sent.
                    outstanding.fetch_sub(1, Ordering::AcqRel);
                    ctx.reject(&rec.to_record(), &err);
                    r.pending = false;
                    r.sent += 1;
                }
                Err(_) => {
                    // librdkafka's queue is full: let it drain and continue on the next turn.
                    outstanding.fetch_sub(1, Ordering::AcqRel);
                    return;
                }
            }
        }
        // The end of the segment (or a read error): nothing more to send from it.
        r.skipped = reader.skipped();
        if r.skipped > 0 {
            crate::diag::report!(
                ERROR,
                "spool-undecodable",
                "{} spooled records in {} cannot be decoded and are skipped; the segment is kept in quarantine after \
                 the others are re-sent",
                r.skipped,
                r.segment.path().display()
            );
        }
        r.reader = None;
    }

    /// Appends the failed messages collected by the delivery callback to the spool.
    pub(super) fn drain_failed(&self) {
        self.shared.drain_failed();
    }

    pub(super) fn spool_now(&self, batch: Vec<SpoolRecord>) -> Result<(), ExporterError> {
        self.shared.spool_now(batch)
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

    /// An exporter whose broker never answers and whose messages wait 30 s before they fail: what is handed to
    /// librdkafka stays outstanding for the whole test.
    fn patient_exporter(spool_dir: &std::path::Path) -> KafkaExporter {
        KafkaExporter::new(KafkaConfig {
            bootstrap_servers: "127.0.0.1:9".into(),
            message_timeout: Duration::from_secs(30),
            spool_dir: Some(spool_dir.to_owned()),
            ..Default::default()
        })
        .expect("exporter")
    }

    fn spool_segments_of(dir: &std::path::Path, segments: usize, records: usize) {
        let spool = Spool::open(dir, u64::MAX).unwrap();
        for s in 0..segments {
            let batch: Vec<SpoolRecord> = (0..records)
                .map(|i| SpoolRecord {
                    topic: "audit".into(),
                    key: Some(format!("k-{s}-{i}")),
                    headers: vec![("event_id".into(), format!("{s}-{i}"))],
                    payload: format!("{{\"segment\":{s},\"n\":{i}}}").into_bytes(),
                })
                .collect();
            spool.append(&batch).unwrap();
            spool.seal_and_list().unwrap();
        }
    }

    /// Issue 15: the next segment is re-sent while the acknowledgements of the earlier ones are outstanding (the
    /// replay used to wait for every acknowledgement of a segment before reading the next), and the window of
    /// unacknowledged messages holds over all of them.
    #[test]
    fn the_next_segments_are_sent_while_acknowledgements_are_outstanding_within_the_window() {
        let dir = tempfile::tempdir().unwrap();
        spool_segments_of(dir.path(), 3, 4_000);
        let exporter = patient_exporter(dir.path());
        wait_for("the window to fill from three segments", Duration::from_secs(20), || {
            exporter.stats().produced >= REPLAY_WINDOW as u64
        });
        std::thread::sleep(Duration::from_millis(300));
        let stats = exporter.stats();
        assert_eq!(stats.produced, REPLAY_WINDOW as u64, "{stats:?}");
        assert_eq!((stats.acknowledged, stats.spool_records), (0, 12_000), "{stats:?}");
        exporter.shutdown(Duration::from_millis(100)).unwrap();
    }

    /// Issue 15: a replay stopped by shutdown spools nothing twice: the messages of a segment that failed, and
    /// those still in flight (purged), stay only in their segment on disk until the segment is done with (they
    /// used to be appended to the spool as they failed, so the next process sent them twice).
    #[test]
    fn a_replay_stopped_by_shutdown_spools_nothing_twice() {
        let dir = tempfile::tempdir().unwrap();
        spool_segments_of(dir.path(), 1, REPLAY_WINDOW + 5_000);
        let exporter = unreachable_exporter(dir.path());
        // The first window fails after 1 s, then the rest of the segment is in flight.
        wait_for("the whole segment to be sent", Duration::from_secs(30), || {
            exporter.stats().produced >= (REPLAY_WINDOW + 5_000) as u64
        });
        exporter.shutdown(Duration::from_millis(100)).unwrap();
        let stats = exporter.stats();
        assert!(stats.delivery_failures >= REPLAY_WINDOW as u64, "{stats:?}");
        assert_eq!((stats.acknowledged, stats.spool_records), (0, (REPLAY_WINDOW + 5_000) as u64), "{stats:?}");
        let on_disk: usize = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .map(|p| std::fs::read_to_string(p).unwrap().lines().count())
            .sum();
        assert_eq!(on_disk, REPLAY_WINDOW + 5_000);
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
