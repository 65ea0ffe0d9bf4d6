//! The bounded queue and the background thread that serialises events and feeds the sinks.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TryRecvError, TrySendError};

use super::{Record, Sink};
use crate::audit::AuditEvent;
use crate::error::{AuditError, ExporterError};

/// Most events taken from the queue before the sinks are flushed.
const MAX_BATCH: usize = 1024;
/// How long the dispatcher sleeps between polls of a busy queue (the added delivery latency).
const POLL: Duration = Duration::from_millis(1);
/// After this long without work the dispatcher syncs the sinks and blocks on the queue.
const BLOCK_AFTER: Duration = Duration::from_millis(50);
/// Longest single block on an empty queue.
const IDLE: Duration = Duration::from_secs(1);
/// Written events waiting to be dropped by the next callers (see [`Pipeline::submit`]).
const RECYCLE: usize = 1024;

/// Counters of the audit pipeline since [`init`](crate::init). Read with [`stats`](crate::stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DispatchStats {
    /// Events accepted into the queue.
    pub accepted: u64,
    /// Events handed to every sink without error.
    pub written: u64,
    /// Events refused because the queue was full (each returned to its caller as `AuditError::QueueFull`).
    pub rejected_queue_full: u64,
    /// Sink write/flush failures (each failed event's JSON went to stderr instead).
    pub sink_errors: u64,
    /// Events currently queued or being written.
    pub pending: u64,
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    done: AtomicU64,
    written: AtomicU64,
    rejected: AtomicU64,
    sink_errors: AtomicU64,
}

enum Command {
    Event(Arc<AuditEvent>),
    Flush(Sender<Result<(), ExporterError>>),
    Shutdown(Sender<Result<(), ExporterError>>),
}

/// What a pipeline needs besides its sinks.
#[derive(Debug, Clone)]
pub(crate) struct PipelineSettings {
    pub capacity: usize,
}

/// The queue, its dispatcher thread and the sinks.
#[derive(Debug)]
pub(crate) struct Pipeline {
    tx: Sender<Command>,
    /// Events the dispatcher is done with, dropped on the callers' threads.
    recycled: Receiver<Arc<AuditEvent>>,
    capacity: usize,
    counters: Arc<Counters>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Pipeline {
    pub(crate) fn start(settings: PipelineSettings, sinks: Vec<Arc<dyn Sink>>) -> std::io::Result<Self> {
        let (tx, rx) = bounded(settings.capacity);
        let (recycle, recycled) = bounded(RECYCLE);
        let counters = Arc::new(Counters::default());
        let worker =
            Dispatcher { rx, recycle, sinks, counters: counters.clone(), buf: Vec::with_capacity(4096), dirty: false };
        let thread = std::thread::Builder::new().name("observer-dispatch".into()).spawn(move || worker.run())?;
        Ok(Self { tx, recycled, capacity: settings.capacity, counters, thread: Mutex::new(Some(thread)) })
    }

    /// Hands an event to the dispatcher without blocking.
    ///
    /// Also drops up to two events the dispatcher has finished with: memory allocated on a caller's thread is
    /// then mostly freed there too. With glibc's malloc, frees from the dispatcher thread contend with the
    /// callers' allocations on the arena lock; freed here, they stay in the thread's cache and are reused.
    pub(crate) fn submit(&self, event: Arc<AuditEvent>) -> Result<(), AuditError> {
        for _ in 0..2 {
            match self.recycled.try_recv() {
                Ok(done) => drop(done),
                Err(_) => break,
            }
        }
        match self.tx.try_send(Command::Event(event)) {
            Ok(()) => {
                self.counters.accepted.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(TrySendError::Full(Command::Event(event))) => {
                let n = self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                if n.is_power_of_two() || n == 0 {
                    tracing::error!(
                        target: "observer",
                        capacity = self.capacity,
                        rejected_so_far = n + 1,
                        "audit queue full: event returned to the caller as AuditError::QueueFull"
                    );
                }
                Err(AuditError::QueueFull { capacity: self.capacity, event })
            }
            Err(TrySendError::Disconnected(Command::Event(event))) => {
                // The dispatcher is gone (it only stops at shutdown): the caller writes the event synchronously.
                Err(AuditError::WriteFailed { source: ExporterError::ShutDown, event })
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                // Only events are sent with try_send.
                Err(AuditError::Invalid("unexpected control message".into()))
            }
        }
    }

    /// Waits (at most `timeout`) until every event queued before this call is written and the sinks synced.
    pub(crate) fn flush(&self, timeout: Duration) -> Result<(), ExporterError> {
        self.control(timeout, Command::Flush)
    }

    /// Drains the queue, shuts the sinks down and stops the thread, waiting at most `timeout`.
    pub(crate) fn shutdown(&self, timeout: Duration) -> Result<(), ExporterError> {
        let res = self.control(timeout, Command::Shutdown);
        if res.is_ok() {
            if let Some(t) = self.thread.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
                let _ = t.join();
            }
        }
        res
    }

    fn control(
        &self,
        timeout: Duration,
        make: fn(Sender<Result<(), ExporterError>>) -> Command,
    ) -> Result<(), ExporterError> {
        let (ack_tx, ack_rx) = bounded(1);
        let deadline = Instant::now() + timeout;
        self.tx.send_deadline(make(ack_tx), deadline).map_err(|e| match e {
            crossbeam_channel::SendTimeoutError::Timeout(_) => ExporterError::FlushTimeout(timeout),
            crossbeam_channel::SendTimeoutError::Disconnected(_) => ExporterError::ShutDown,
        })?;
        match ack_rx.recv_deadline(deadline) {
            Ok(r) => r,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => Err(ExporterError::FlushTimeout(timeout)),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => Err(ExporterError::ShutDown),
        }
    }

    pub(crate) fn stats(&self) -> DispatchStats {
        let c = &self.counters;
        let accepted = c.accepted.load(Ordering::Relaxed);
        DispatchStats {
            accepted,
            written: c.written.load(Ordering::Relaxed),
            rejected_queue_full: c.rejected.load(Ordering::Relaxed),
            sink_errors: c.sink_errors.load(Ordering::Relaxed),
            pending: accepted.saturating_sub(c.done.load(Ordering::Relaxed)),
        }
    }
}

struct Dispatcher {
    rx: Receiver<Command>,
    recycle: Sender<Arc<AuditEvent>>,
    sinks: Vec<Arc<dyn Sink>>,
    counters: Arc<Counters>,
    buf: Vec<u8>,
    /// Something was flushed but not yet synced.
    dirty: bool,
}

impl Dispatcher {
    fn run(mut self) {
        let mut batch: Vec<Command> = Vec::with_capacity(MAX_BATCH);
        let mut last_work = Instant::now();
        loop {
            // While events keep coming, poll with short sleeps instead of blocking on the queue: a blocked
            // receiver makes every sender pay a futex wake-up (a syscall) on its own thread. After a quiet
            // spell, sync the sinks and block, so an idle service costs nothing.
            match self.rx.try_recv() {
                Ok(cmd) => batch.push(cmd),
                Err(TryRecvError::Empty) if last_work.elapsed() < BLOCK_AFTER => {
                    std::thread::sleep(POLL);
                    continue;
                }
                Err(TryRecvError::Empty) => {
                    if self.dirty {
                        let _ = self.sync_all();
                    }
                    match self.rx.recv_timeout(IDLE) {
                        Ok(cmd) => batch.push(cmd),
                        Err(RecvTimeoutError::Timeout) => continue,
                        Err(RecvTimeoutError::Disconnected) => {
                            let _ = self.shutdown_all();
                            return;
                        }
                    }
                }
                Err(TryRecvError::Disconnected) => {
                    let _ = self.shutdown_all();
                    return;
                }
            }
            last_work = Instant::now();
            while batch.len() < MAX_BATCH {
                match self.rx.try_recv() {
                    Ok(cmd) => batch.push(cmd),
                    Err(_) => break,
                }
            }
            let mut events = 0u64;
            let mut pending_flush = false;
            for cmd in batch.drain(..) {
                match cmd {
                    Command::Event(event) => {
                        self.write(&event);
                        events += 1;
                        // Dropped by a caller (see `Pipeline::submit`), or here when they are not keeping up.
                        let _ = self.recycle.try_send(event);
                    }
                    Command::Flush(ack) => {
                        let res = self.flush_all().and_then(|()| self.sync_all());
                        self.counters.done.fetch_add(std::mem::take(&mut events), Ordering::Relaxed);
                        let _ = ack.send(res);
                    }
                    Command::Shutdown(ack) => {
                        // Everything sent before the shutdown is already in this batch or the queue.
                        let mut rest = Vec::new();
                        while let Ok(cmd) = self.rx.try_recv() {
                            rest.push(cmd);
                        }
                        for cmd in rest {
                            match cmd {
                                Command::Event(e) => {
                                    self.write(&e);
                                    events += 1;
                                }
                                Command::Flush(a) | Command::Shutdown(a) => {
                                    let _ = a.send(Ok(()));
                                }
                            }
                        }
                        let res = self.shutdown_all();
                        self.counters.done.fetch_add(events, Ordering::Relaxed);
                        let _ = ack.send(res);
                        return;
                    }
                }
                pending_flush = true;
            }
            if pending_flush {
                let _ = self.flush_all();
                self.dirty = true;
            }
            self.counters.done.fetch_add(events, Ordering::Relaxed);
        }
    }

    fn write(&mut self, event: &AuditEvent) {
        self.buf.clear();
        if let Err(e) = serde_json::to_writer(&mut self.buf, event) {
            // Cannot happen for AuditEvent (no maps with non-string keys), but never lose the event silently.
            self.report(&format!("serialising event {}: {e}", event.event_id));
            self.counters.sink_errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let record = Record { event, json: &self.buf };
        let mut ok = true;
        for sink in &self.sinks {
            if let Err(e) = sink.write(record) {
                ok = false;
                self.counters.sink_errors.fetch_add(1, Ordering::Relaxed);
                report_sink_error(sink.as_ref(), &e);
                fallback_to_stderr(record.json);
            }
        }
        if ok {
            self.counters.written.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn flush_all(&self) -> Result<(), ExporterError> {
        self.each(|s| s.flush())
    }

    fn sync_all(&mut self) -> Result<(), ExporterError> {
        self.dirty = false;
        self.each(|s| s.sync())
    }

    fn shutdown_all(&mut self) -> Result<(), ExporterError> {
        self.dirty = false;
        self.each(|s| s.shutdown())
    }

    fn each(&self, f: impl Fn(&dyn Sink) -> Result<(), ExporterError>) -> Result<(), ExporterError> {
        let mut first = Ok(());
        for sink in &self.sinks {
            if let Err(e) = f(sink.as_ref()) {
                self.counters.sink_errors.fetch_add(1, Ordering::Relaxed);
                report_sink_error(sink.as_ref(), &e);
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
        first
    }

    fn report(&self, msg: &str) {
        tracing::error!(target: "observer", "{msg}");
        let _ = writeln!(std::io::stderr(), "observer: {msg}");
    }
}

fn report_sink_error(sink: &dyn Sink, err: &ExporterError) {
    tracing::error!(target: "observer", sink = %sink.name(), error = %err, "audit sink failed; event written to stderr instead");
}

/// The last resort for events a sink could not take: one line each on stderr, prefixed
/// `observer-audit-fallback: `, so they are never lost silently. `lines` holds one or more JSON lines.
pub(crate) fn fallback_to_stderr(lines: &[u8]) {
    let mut err = std::io::stderr().lock();
    for line in lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let _ = err.write_all(b"observer-audit-fallback: ");
        let _ = err.write_all(line);
        let _ = err.write_all(b"\n");
    }
}
