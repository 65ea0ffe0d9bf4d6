//! The bounded queue and the background thread that serialises events and feeds the sinks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, SendTimeoutError, Sender, TrySendError};
use crossbeam_utils::CachePadded;

use super::fallback_to_stderr;
use super::{Record, RecordKind, Sink};
use crate::audit::format::{self, Extras};
use crate::audit::AuditEvent;
use crate::config::format::AuditFormat;
use crate::error::ExporterError;
use crate::integrity::Chain;

/// Most events taken from the queue before the sinks are flushed.
const MAX_BATCH: usize = 1024;
/// After this long without a command, what was written since the last sync is synced (the dispatcher went idle).
const QUIET: Duration = Duration::from_millis(50);
/// Longest single wait on an empty queue with nothing to sync.
const IDLE: Duration = Duration::from_secs(1);

/// Counters of an audit pipeline since it started: the process's ([`observer::stats`](crate::stats)) or a
/// [`Pipeline`](super::Pipeline)'s ([`Pipeline::stats`](super::Pipeline::stats)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DispatchStats {
    /// Events accepted into the queue.
    pub accepted: u64,
    /// Events every sink took and delivered (for the file sink: the whole line is in the file).
    pub written: u64,
    /// Events some sink did not deliver: their JSON line went to the stderr fallback
    /// (`observer-audit-fallback: `). `accepted == written + failed + pending`.
    pub failed: u64,
    /// Sinks taken out of the pipeline because they panicked (reported on stderr and as an error).
    pub sink_panics: u64,
    /// Events refused because the queue was full (each returned to its caller as `AuditError::QueueFull`).
    pub rejected_queue_full: u64,
    /// Sink failures: failed or panicking `write`, `flush`, `sync` and `shutdown` calls.
    pub sink_errors: u64,
    /// Events currently queued or being written.
    pub pending: u64,
    /// Events counted as `written` whose sink's next `sync` (the file's `fdatasync`) then failed: they reached
    /// the file as far as the OS said, but may not survive a machine crash. Each such failure is reported.
    pub sync_failed: u64,
    /// Checkpoint records of the integrity chain every sink delivered (not events: not in `accepted`).
    pub checkpoints: u64,
    /// Checkpoint records some sink did not deliver (their line went to the stderr fallback).
    pub checkpoints_failed: u64,
}

#[derive(Debug, Default)]
struct Counters {
    /// Written by the callers for every event, the rest by the dispatcher (`written` once per batch): on a cache
    /// line of its own, so that the callers and the dispatcher do not pass one line back and forth.
    accepted: CachePadded<AtomicU64>,
    written: AtomicU64,
    failed: AtomicU64,
    sink_panics: AtomicU64,
    rejected: AtomicU64,
    sink_errors: AtomicU64,
    sync_failed: AtomicU64,
    checkpoints: AtomicU64,
    checkpoints_failed: AtomicU64,
}

enum Command {
    Event(Arc<AuditEvent>),
    Flush(Sender<Result<(), ExporterError>>),
}

/// What a pipeline needs besides its sinks.
#[derive(Debug, Clone)]
pub(crate) struct PipelineSettings {
    pub capacity: usize,
    /// Longest time data may wait for the sinks' `sync` while events keep arriving.
    pub sync_interval: Duration,
    /// The policy applied to every event before it is serialised.
    pub redactor: crate::redact::Redactor,
}

/// Why [`Queue::submit`] did not take an event (the caller still holds it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The queue is full.
    Full,
    /// The dispatcher thread is gone (it panicked outside a sink).
    Stopped,
}

/// The callers' side of a pipeline: the bounded queue into the dispatcher thread.
///
/// The dispatcher stops when every `Queue` is dropped: it writes what is still queued, shuts the sinks down
/// and reports to its [`Worker`]. So whoever stops a pipeline drops its queue and waits on the worker; an
/// emitter that still held the queue at that moment only delays the stop until its event is in.
#[derive(Debug)]
pub(crate) struct Queue {
    tx: Sender<Command>,
    capacity: usize,
    counters: Arc<Counters>,
}

/// The dispatcher thread of a [`Queue`]: waited on once every queue handle is dropped.
#[derive(Debug)]
pub(crate) struct Worker {
    /// The result of the sinks' last flush and shutdown, sent when the thread is done.
    done: Receiver<Result<(), ExporterError>>,
    /// Taken by the first [`wait`](Self::wait) that saw the thread finish.
    thread: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl Queue {
    /// Starts the dispatcher thread feeding `sinks`, chaining the events with `chain` (integrity on).
    pub(crate) fn start(
        settings: PipelineSettings,
        sinks: Vec<Arc<dyn Sink>>,
        chain: Option<Chain>,
    ) -> std::io::Result<(Self, Worker)> {
        let (tx, rx) = bounded(settings.capacity);
        let (done_tx, done) = bounded(1);
        let counters = Arc::new(Counters::default());
        let sinks: Vec<Slot> =
            sinks.into_iter().map(|sink| Slot { format: sink.format(), sink, accepted: Vec::new() }).collect();
        let worker = Dispatcher {
            rx,
            formats: Formats::for_sinks(&sinks),
            sinks,
            counters: counters.clone(),
            buf: Vec::with_capacity(64 * 1024),
            spans: Vec::with_capacity(MAX_BATCH),
            failed: Vec::with_capacity(MAX_BATCH),
            checkpoint: Vec::new(),
            chain,
            unsynced_since: None,
            unsynced_events: 0,
            unreported: Ok(()),
            sync_interval: settings.sync_interval,
            redactor: settings.redactor,
        };
        let thread = std::thread::Builder::new().name("observer-dispatch".into()).spawn(move || {
            let res = worker.run();
            let _ = done_tx.send(res);
        })?;
        let queue = Self { tx, capacity: settings.capacity, counters: counters.clone() };
        Ok((queue, Worker { done, thread: Some(thread), counters }))
    }

    /// Hands an event to the dispatcher without blocking.
    ///
    /// A plain `try_send`: the dispatcher blocks on the queue when it is empty, so a send may wake it (a futex
    /// call on the caller's thread), and it frees the events it wrote. Two devices that avoided those costs
    /// (polling the queue with 1 ms sleeps while busy; handing written events back for the callers to free, for
    /// glibc's malloc) did not pay in `benches/emit.rs`, A/B in one session on the shared 2-core machine
    /// (medians of 14 to 22 alternating runs, µs per emit on the caller's thread): both devices 2.38, polling
    /// alone 2.51, blocking + hand-back 3.23, this plain form 1.91 (0.80 of both devices).
    pub(crate) fn submit(&self, event: Arc<AuditEvent>) -> Result<(), Refused> {
        match self.tx.try_send(Command::Event(event)) {
            Ok(()) => {
                self.counters.accepted.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(TrySendError::Full(_)) => {
                let n = self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                if n.is_power_of_two() || n == 0 {
                    crate::diag::report!(
                        ERROR,
                        "queue-full",
                        "audit queue full (capacity {}, {} rejected so far): event returned to the caller as \
                         AuditError::QueueFull",
                        self.capacity,
                        n + 1
                    );
                }
                Err(Refused::Full)
            }
            Err(TrySendError::Disconnected(_)) => Err(Refused::Stopped),
        }
    }

    /// The queue's capacity.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Waits (at most `timeout`) until every event queued before this call is written and the sinks synced.
    ///
    /// # Errors
    /// The first sink failure (in `flush`, `sync` or `shutdown`) since the previous flush, or
    /// [`ExporterError::FlushTimeout`].
    pub(crate) fn flush(&self, timeout: Duration) -> Result<(), ExporterError> {
        let (ack_tx, ack_rx) = bounded(1);
        let deadline = Instant::now() + timeout;
        self.tx.send_deadline(Command::Flush(ack_tx), deadline).map_err(|e| match e {
            SendTimeoutError::Timeout(_) => ExporterError::FlushTimeout(timeout),
            SendTimeoutError::Disconnected(_) => ExporterError::ShutDown,
        })?;
        match ack_rx.recv_deadline(deadline) {
            Ok(r) => r,
            Err(RecvTimeoutError::Timeout) => Err(ExporterError::FlushTimeout(timeout)),
            Err(RecvTimeoutError::Disconnected) => Err(ExporterError::ShutDown),
        }
    }

    pub(crate) fn stats(&self) -> DispatchStats {
        self.counters.stats()
    }
}

impl Worker {
    /// Waits (at most `timeout`) until the dispatcher, whose queue handles are all dropped, has written what
    /// was queued and shut the sinks down.
    ///
    /// # Errors
    /// The first sink failure since the last flush; [`ExporterError::FlushTimeout`] when a queue handle was
    /// still alive or the sinks took longer (the thread then finishes on its own).
    pub(crate) fn wait(&mut self, timeout: Duration) -> Result<(), ExporterError> {
        let Some(thread) = self.thread.take() else { return Ok(()) };
        match self.done.recv_timeout(timeout) {
            Ok(res) => {
                let _ = thread.join();
                res
            }
            Err(RecvTimeoutError::Timeout) => {
                self.thread = Some(thread);
                Err(ExporterError::FlushTimeout(timeout))
            }
            // The thread died without reporting: a panic outside the sinks (they are contained).
            Err(RecvTimeoutError::Disconnected) => Err(ExporterError::ShutDown),
        }
    }

    /// The counters, also after the queue is gone.
    pub(crate) fn stats(&self) -> DispatchStats {
        self.counters.stats()
    }
}

impl Counters {
    fn stats(&self) -> DispatchStats {
        // Settled counts first, then `accepted` (which only grows): `pending` is what was accepted and not yet
        // settled, so `accepted == written + failed + pending` (up to submits still in flight, which count as
        // accepted just after their event is queued).
        let written = self.written.load(Ordering::Acquire);
        let failed = self.failed.load(Ordering::Acquire);
        let accepted = self.accepted.load(Ordering::Acquire);
        DispatchStats {
            accepted,
            written,
            failed,
            sink_panics: self.sink_panics.load(Ordering::Relaxed),
            rejected_queue_full: self.rejected.load(Ordering::Relaxed),
            sink_errors: self.sink_errors.load(Ordering::Relaxed),
            sync_failed: self.sync_failed.load(Ordering::Relaxed),
            checkpoints: self.checkpoints.load(Ordering::Relaxed),
            checkpoints_failed: self.checkpoints_failed.load(Ordering::Relaxed),
            pending: accepted.saturating_sub(written + failed),
        }
    }
}

/// One sink and the records it accepted since its last flush.
struct Slot {
    sink: Arc<dyn Sink>,
    /// Its [`Sink::format`], asked once.
    format: AuditFormat,
    /// Indices into the dispatcher's unflushed records.
    accepted: Vec<usize>,
}

/// The formats other than the guide's JSON that some sink uses, each with the current event rendered in it.
struct Formats {
    /// `(format, the current event in it, whether rendering it worked)`.
    rendered: Vec<(AuditFormat, Vec<u8>, bool)>,
}

impl Formats {
    fn for_sinks(sinks: &[Slot]) -> Self {
        let mut rendered: Vec<(AuditFormat, Vec<u8>, bool)> = Vec::new();
        for slot in sinks {
            if slot.format != AuditFormat::Json && !rendered.iter().any(|(f, ..)| *f == slot.format) {
                rendered.push((slot.format, Vec::with_capacity(4096), false));
            }
        }
        Self { rendered }
    }

    /// Renders `event` once in every format in use (after the guide JSON and its integrity fields).
    fn render(&mut self, event: &AuditEvent, extras: &Extras<'_>) {
        for (fmt, buf, ok) in &mut self.rendered {
            buf.clear();
            *ok = match format::render(*fmt, event, extras, buf) {
                Ok(()) => true,
                Err(e) => {
                    crate::diag::report!(
                        ERROR,
                        "event-unformattable",
                        "rendering audit event {} as {fmt}: {e}",
                        event.event_id
                    );
                    false
                }
            };
        }
    }

    /// The current event in `fmt` (`json` for the guide's JSON); `None` when rendering it failed.
    fn output<'a>(&'a self, fmt: AuditFormat, json: &'a [u8]) -> Option<&'a [u8]> {
        if fmt == AuditFormat::Json {
            return Some(json);
        }
        self.rendered.iter().find(|(f, ..)| *f == fmt).and_then(|(_, buf, ok)| ok.then_some(buf.as_slice()))
    }
}

struct Dispatcher {
    rx: Receiver<Command>,
    /// The other formats the sinks asked for.
    formats: Formats,
    /// The sinks still in the pipeline (a sink that panics is taken out).
    sinks: Vec<Slot>,
    counters: Arc<Counters>,
    /// The JSON of every event since the last flush, back to back; `spans[i]` is event `i`'s range.
    buf: Vec<u8>,
    spans: Vec<(usize, usize)>,
    /// Whether event `i` since the last flush failed in some sink (its JSON then went to the stderr fallback).
    failed: Vec<bool>,
    /// Whether record `i` since the last flush is a checkpoint (not an event).
    checkpoint: Vec<bool>,
    /// The integrity chain (integrity on).
    chain: Option<Chain>,
    /// When data first reached the sinks after their last sync.
    unsynced_since: Option<Instant>,
    /// Events counted as written since the sinks' last sync.
    unsynced_events: u64,
    /// The first sink failure (`flush`, `sync`, `shutdown`) since the last flush command: its answer.
    unreported: Result<(), ExporterError>,
    sync_interval: Duration,
    redactor: crate::redact::Redactor,
}

/// What a sink call did.
enum Call<T> {
    Done(T),
    Panicked(String),
}

fn call<T>(f: impl FnOnce() -> T) -> Call<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(v) => Call::Done(v),
        Err(payload) => Call::Panicked(
            payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".into()),
        ),
    }
}

impl Dispatcher {
    /// Runs until every [`Queue`] is dropped and the queue is empty; returns the sinks' last failure.
    fn run(mut self) -> Result<(), ExporterError> {
        let mut batch: Vec<Command> = Vec::with_capacity(MAX_BATCH);
        loop {
            // Block until a command comes. What was written since the last sync waits at most until the queue
            // has been quiet for `QUIET` (the dispatcher is idle), or `sync_interval` under steady load.
            let mut wait = match self.unsynced_since {
                None => IDLE,
                Some(t) => QUIET.min(self.sync_interval.saturating_sub(t.elapsed())),
            };
            if let Some(due) = self.chain.as_ref().and_then(Chain::due_in) {
                wait = wait.min(due);
            }
            match self.rx.recv_timeout(wait) {
                Ok(cmd) => batch.push(cmd),
                Err(RecvTimeoutError::Timeout) => {
                    if self.chain.as_ref().is_some_and(Chain::due) {
                        self.write_checkpoint();
                        let res = self.flush_all();
                        self.note(res);
                    }
                    if self.unsynced_since.is_some() {
                        let res = self.sync_all();
                        self.note(res);
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return self.stop(),
            }
            while batch.len() < MAX_BATCH {
                match self.rx.try_recv() {
                    Ok(cmd) => batch.push(cmd),
                    Err(_) => break,
                }
            }
            for cmd in batch.drain(..) {
                match cmd {
                    Command::Event(event) => self.write(&event),
                    Command::Flush(ack) => {
                        self.write_checkpoint();
                        let res = self.flush_all().and_then(|()| self.sync_all());
                        let earlier = std::mem::replace(&mut self.unreported, Ok(()));
                        let _ = ack.send(earlier.and(res));
                    }
                }
            }
            let res = self.flush_all();
            self.note(res);
            self.sync_if_due();
        }
    }

    /// Every queue handle is gone and the queue is empty (each batch was flushed as it was written).
    fn stop(&mut self) -> Result<(), ExporterError> {
        // The last checkpoint covers every event.
        self.write_checkpoint();
        let res = self.flush_all();
        self.note(res);
        let res = self.shutdown_all();
        if let Some(chain) = &mut self.chain {
            chain.close();
        }
        std::mem::replace(&mut self.unreported, Ok(())).and(res)
    }

    /// Keeps the first sink failure for the next flush or the shutdown to return.
    fn note(&mut self, res: Result<(), ExporterError>) {
        if self.unreported.is_ok() {
            self.unreported = res;
        }
    }

    /// Redacts `event`, serialises it once and hands it to every sink.
    fn write(&mut self, event: &AuditEvent) {
        // Redaction first: the sinks, the fallbacks and anything computed over the bytes see the redacted event.
        let redacted = crate::redact::redact_event(&self.redactor, event);
        let event = redacted.as_ref().unwrap_or(event);
        let start = self.buf.len();
        let res = match &mut self.chain {
            None => serde_json::to_writer(&mut self.buf, event).map_err(ExporterError::from),
            // Integrity on: the canonical line with its `integrity` object, chained.
            Some(chain) => chain.write(event, &mut self.buf),
        };
        if let Err(e) = res {
            // Cannot happen for AuditEvent (no maps with non-string keys), but never lose the event silently.
            self.buf.truncate(start);
            crate::diag::report!(ERROR, "event-unserialisable", "serialising audit event {}: {e}", event.event_id);
            if let Ok(json) = serde_json::to_vec(event) {
                fallback_to_stderr(&json);
            }
            self.counters.sink_errors.fetch_add(1, Ordering::Relaxed);
            self.counters.failed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.deliver(start, RecordKind::Event(event));
        if self.chain.as_ref().is_some_and(Chain::due) {
            self.write_checkpoint();
        }
    }

    /// A checkpoint record into the stream (integrity on, events since the last one).
    fn write_checkpoint(&mut self) {
        let Some(chain) = &mut self.chain else { return };
        let start = self.buf.len();
        if let Some(checkpoint) = chain.checkpoint(&mut self.buf) {
            self.deliver(start, RecordKind::Checkpoint(&checkpoint));
        }
    }

    /// Hands the record whose JSON is `buf[start..]` to every sink.
    fn deliver(&mut self, start: usize, kind: RecordKind<'_>) {
        let idx = self.spans.len();
        self.spans.push((start, self.buf.len()));
        self.failed.push(false);
        let is_checkpoint = matches!(kind, RecordKind::Checkpoint(_));
        self.checkpoint.push(is_checkpoint);
        let json = &self.buf[start..];
        if let (RecordKind::Event(event), false) = (kind, self.formats.rendered.is_empty()) {
            // The chain fields of the event just chained, for the other formats (OCSF, FHIR) to carry (nothing to
            // compute when every sink takes the guide's JSON).
            let last = self.chain.as_ref().map(Chain::last);
            let hash = last.map(|(_, _, h)| h.to_hex());
            let chain = last.zip(hash.as_deref()).map(|((chain_id, seq, _), hash)| crate::audit::format::ChainFields {
                chain_id,
                seq,
                hash,
            });
            self.formats.render(event, &Extras { chain });
        }
        let mut panicked = Vec::new();
        for (i, slot) in self.sinks.iter_mut().enumerate() {
            if is_checkpoint && slot.format != AuditFormat::Json {
                // The chain covers the guide JSON: checkpoints go to the sinks of that format only.
                continue;
            }
            let Some(output) = self.formats.output(slot.format, json) else {
                // Not renderable in this sink's format (reported): the guide JSON goes to the fallback.
                self.counters.sink_errors.fetch_add(1, Ordering::Relaxed);
                if !std::mem::replace(&mut self.failed[idx], true) {
                    fallback_to_stderr(json);
                }
                continue;
            };
            let record = Record { kind, json, output };
            match call(|| slot.sink.write(record)) {
                Call::Done(Ok(())) => slot.accepted.push(idx),
                Call::Done(Err(e)) => {
                    self.counters.sink_errors.fetch_add(1, Ordering::Relaxed);
                    report_sink_error(slot.sink.as_ref(), &e);
                    if !std::mem::replace(&mut self.failed[idx], true) {
                        fallback_to_stderr(json);
                    }
                }
                Call::Panicked(msg) => {
                    if !std::mem::replace(&mut self.failed[idx], true) {
                        fallback_to_stderr(json);
                    }
                    panicked.push((i, "write", msg));
                }
            }
        }
        if self.sinks.is_empty() && !std::mem::replace(&mut self.failed[idx], true) {
            fallback_to_stderr(json);
        }
        self.take_out(panicked);
    }

    /// Removes the sinks that panicked (indices ascending), loudly. What they accepted since their last flush
    /// may be lost with them, so it goes to the stderr fallback.
    fn take_out(&mut self, mut panicked: Vec<(usize, &'static str, String)>) {
        while let Some((i, op, msg)) = panicked.pop() {
            let slot = self.sinks.remove(i);
            self.counters.sink_panics.fetch_add(1, Ordering::Relaxed);
            self.counters.sink_errors.fetch_add(1, Ordering::Relaxed);
            for &idx in &slot.accepted {
                if !std::mem::replace(&mut self.failed[idx], true) {
                    let (a, b) = self.spans[idx];
                    fallback_to_stderr(&self.buf[a..b]);
                }
            }
            let left: Vec<String> = self.sinks.iter().map(|s| s.sink.name()).collect();
            let msg = format!(
                "audit sink {} panicked in {op} ({msg}); it is taken out of the pipeline. Its unflushed events are on \
                 the stderr fallback; later events go to the other sinks ({})",
                slot.sink.name(),
                if left.is_empty() { "none left: to the stderr fallback".to_owned() } else { left.join(", ") }
            );
            crate::diag::report_loud("sink-panicked", format_args!("{msg}"));
        }
    }

    /// Flushes every sink and settles the records since the last flush: counted as written when every sink
    /// delivered them, as failed otherwise (their JSON is then on the stderr fallback).
    fn flush_all(&mut self) -> Result<(), ExporterError> {
        let mut first = Ok(());
        let mut panicked = Vec::new();
        let mut any = false;
        for (i, slot) in self.sinks.iter_mut().enumerate() {
            any |= !slot.accepted.is_empty();
            match call(|| slot.sink.flush()) {
                Call::Done(Ok(())) => slot.accepted.clear(),
                Call::Done(Err(e)) => {
                    self.counters.sink_errors.fetch_add(1, Ordering::Relaxed);
                    report_sink_error(slot.sink.as_ref(), &e);
                    let undelivered = match &e {
                        // The sink wrote the undelivered rest to the fallback itself.
                        ExporterError::PartialFlush { delivered, .. } => {
                            for &idx in slot.accepted.iter().skip(*delivered) {
                                self.failed[idx] = true;
                            }
                            &[][..]
                        }
                        _ => &slot.accepted[..],
                    };
                    for &idx in undelivered {
                        if !std::mem::replace(&mut self.failed[idx], true) {
                            let (a, b) = self.spans[idx];
                            fallback_to_stderr(&self.buf[a..b]);
                        }
                    }
                    slot.accepted.clear();
                    if first.is_ok() {
                        first = Err(e);
                    }
                }
                Call::Panicked(msg) => panicked.push((i, "flush", msg)),
            }
        }
        self.take_out(panicked);
        if any && self.unsynced_since.is_none() {
            self.unsynced_since = Some(Instant::now());
        }
        let (mut failed, mut checkpoints, mut checkpoints_failed) = (0, 0, 0);
        for (&f, &c) in self.failed.iter().zip(&self.checkpoint) {
            checkpoints += u64::from(c);
            checkpoints_failed += u64::from(c && f);
            failed += u64::from(f && !c);
        }
        let total = self.spans.len() as u64 - checkpoints;
        self.counters.failed.fetch_add(failed, Ordering::Relaxed);
        self.counters.written.fetch_add(total - failed, Ordering::Relaxed);
        self.counters.checkpoints.fetch_add(checkpoints - checkpoints_failed, Ordering::Relaxed);
        self.counters.checkpoints_failed.fetch_add(checkpoints_failed, Ordering::Relaxed);
        self.unsynced_events += total - failed;
        self.buf.clear();
        self.spans.clear();
        self.failed.clear();
        self.checkpoint.clear();
        first
    }

    /// Syncs when data has waited `sync_interval` for it, so that steady load cannot postpone it forever.
    fn sync_if_due(&mut self) {
        if self.unsynced_since.is_some_and(|t| t.elapsed() >= self.sync_interval) {
            let res = self.sync_all();
            self.note(res);
        }
    }

    fn sync_all(&mut self) -> Result<(), ExporterError> {
        self.unsynced_since = None;
        let res = self.each("sync", |s| s.sync());
        self.settle_sync(res.is_ok());
        res
    }

    fn shutdown_all(&mut self) -> Result<(), ExporterError> {
        self.unsynced_since = None;
        let res = self.each("shutdown", |s| s.shutdown());
        self.settle_sync(res.is_ok());
        res
    }

    /// After a sync: the events written since the previous one are durable, or, when a sink's sync failed,
    /// counted in `sync_failed` and reported (they stay in `written`: the file has them, the disk may not).
    fn settle_sync(&mut self, ok: bool) {
        let events = std::mem::take(&mut self.unsynced_events);
        if !ok && events > 0 {
            self.counters.sync_failed.fetch_add(events, Ordering::Relaxed);
            crate::diag::report!(
                ERROR,
                "sync-failed",
                "a sink's sync (fsync) or shutdown failed: the {events} audit events written since the previous sync may not \
                 survive a machine crash (counted in stats().sync_failed)"
            );
        }
    }

    /// `sync` or `shutdown` on every sink (nothing is buffered in the dispatcher at these points).
    fn each(
        &mut self,
        op: &'static str,
        f: impl Fn(&dyn Sink) -> Result<(), ExporterError>,
    ) -> Result<(), ExporterError> {
        let mut first = Ok(());
        let mut panicked = Vec::new();
        for (i, slot) in self.sinks.iter().enumerate() {
            match call(|| f(slot.sink.as_ref())) {
                Call::Done(Ok(())) => {}
                Call::Done(Err(e)) => {
                    self.counters.sink_errors.fetch_add(1, Ordering::Relaxed);
                    // Nothing is buffered at these points: what matters is what `settle_sync` reports.
                    crate::diag::report!(ERROR, "sink-failed", "audit sink {} failed in {op}: {e}", slot.sink.name());
                    if first.is_ok() {
                        first = Err(e);
                    }
                }
                Call::Panicked(msg) => panicked.push((i, op, msg)),
            }
        }
        self.take_out(panicked);
        first
    }
}

fn report_sink_error(sink: &dyn Sink, err: &ExporterError) {
    crate::diag::report!(
        ERROR,
        "sink-failed",
        "audit sink {} failed: {err}; the events it did not deliver are on stderr (observer-audit-fallback: lines)",
        sink.name()
    );
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;
    use crate::export::MemorySink;
    use crate::ResourceType;
    use crate::{AuditAction, AuditEventType};

    /// A sink whose `sync` fails while `fail` is set (as `fdatasync` does after a write-back error).
    #[derive(Debug, Default)]
    struct FailingSync {
        fail: AtomicBool,
    }

    impl Sink for FailingSync {
        fn name(&self) -> String {
            "failing-sync".into()
        }
        fn write(&self, _: Record<'_>) -> Result<(), ExporterError> {
            Ok(())
        }
        fn sync(&self) -> Result<(), ExporterError> {
            if self.fail.load(Ordering::SeqCst) {
                Err(ExporterError::Io { what: self.name(), source: std::io::Error::other("EIO") })
            } else {
                Ok(())
            }
        }
    }

    fn event(i: usize) -> Arc<AuditEvent> {
        Arc::new(AuditEvent::new(
            AuditEventType::DataAccess,
            AuditAction::Read,
            ResourceType::Document,
            format!("d{i}"),
        ))
    }

    #[test]
    fn each_format_in_use_is_rendered_once_per_event_for_all_its_sinks() {
        let memories = [
            MemorySink::new().in_format(AuditFormat::Ocsf),
            MemorySink::new(),
            MemorySink::new().in_format(AuditFormat::Fhir),
            MemorySink::new().in_format(AuditFormat::Ocsf),
        ];
        let sinks: Vec<Arc<dyn Sink>> = memories.iter().map(|m| Arc::new(m.clone()) as Arc<dyn Sink>).collect();
        let slots: Vec<Slot> =
            sinks.iter().map(|s| Slot { sink: s.clone(), format: s.format(), accepted: Vec::new() }).collect();
        let mut formats = Formats::for_sinks(&slots);
        let in_use: Vec<AuditFormat> = formats.rendered.iter().map(|(f, ..)| *f).collect();
        assert_eq!(in_use, [AuditFormat::Ocsf, AuditFormat::Fhir], "one buffer per format, none for the guide JSON");
        let e = event(1);
        formats.render(&e, &Extras::default());
        let json = serde_json::to_vec(&*e).unwrap();
        assert_eq!(formats.output(AuditFormat::Json, &json), Some(&json[..]));
        let ocsf: serde_json::Value =
            serde_json::from_slice(formats.output(AuditFormat::Ocsf, &json).unwrap()).unwrap();
        assert_eq!(ocsf["class_uid"], 6003);

        // Through the dispatcher: each sink gets its format; both OCSF sinks the same record.
        let settings = PipelineSettings {
            capacity: 64,
            sync_interval: Duration::from_secs(3600),
            redactor: crate::redact::Redactor::default(),
        };
        let (pipeline, mut worker) = Queue::start(settings, sinks, None).unwrap();
        pipeline.submit(event(2)).unwrap();
        pipeline.flush(Duration::from_secs(10)).unwrap();
        drop(pipeline);
        worker.wait(Duration::from_secs(10)).unwrap();
        let out: Vec<serde_json::Value> = memories.iter().map(|m| m.output().remove(0)).collect();
        assert_eq!(out[0], out[3]);
        assert_eq!(out[0]["metadata"]["uid"], out[1]["event_id"]);
        assert_eq!(out[2]["resourceType"], "AuditEvent");
        assert!(memories.iter().all(|m| m.json()[0] == out[1]), "every sink's `json` is the guide JSON");
    }

    #[test]
    fn events_whose_sync_failed_are_counted_and_later_ones_are_not() {
        let failing = Arc::new(FailingSync::default());
        failing.fail.store(true, Ordering::SeqCst);
        let memory = MemorySink::new();
        let settings = PipelineSettings {
            capacity: 64,
            sync_interval: Duration::from_secs(3600),
            redactor: crate::redact::Redactor::default(),
        };
        let (pipeline, mut worker) =
            Queue::start(settings, vec![Arc::new(memory.clone()), failing.clone()], None).unwrap();

        for i in 0..10 {
            pipeline.submit(event(i)).unwrap();
        }
        assert!(pipeline.flush(Duration::from_secs(10)).is_err(), "the failed sync is the flush's error");
        let stats = pipeline.stats();
        assert_eq!((stats.written, stats.sync_failed), (10, 10), "{stats:?}");

        failing.fail.store(false, Ordering::SeqCst);
        for i in 10..15 {
            pipeline.submit(event(i)).unwrap();
        }
        pipeline.flush(Duration::from_secs(10)).unwrap();
        drop(pipeline);
        worker.wait(Duration::from_secs(10)).unwrap();
        let stats = worker.stats();
        assert_eq!((stats.written, stats.sync_failed), (15, 10), "{stats:?}");
        assert_eq!(memory.len(), 15);
    }
}
