//! The built-in sinks: JSON-lines file, stdout, and an in-memory recorder for tests.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::{Record, Sink};
use crate::audit::AuditEvent;
use crate::config::FileSync;
use crate::error::ExporterError;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks cannot leave the data half-updated in a way that matters
    // (buffers and vectors), so keep going rather than propagate the poison.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Appends one JSON object per line to a file, creating it (and its parent directories) if needed.
///
/// Records are collected per batch and written with one `write` call when the dispatcher flushes. If the
/// file cannot be opened or written, the batch's lines go to standard error (prefixed
/// `observer-audit-fallback: `) and the file is reopened on the next batch.
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    sync: FileSync,
    state: Mutex<FileState>,
}

#[derive(Debug)]
struct FileState {
    file: Option<File>,
    pending: Vec<u8>,
}

impl FileSink {
    /// Opens (or creates) `path` for appending.
    pub fn open(path: impl Into<PathBuf>, sync: FileSync) -> Result<Self, ExporterError> {
        let path = path.into();
        let file = open_append(&path)
            .map_err(|source| ExporterError::Io { sink: format!("file {}", path.display()), source })?;
        Ok(Self {
            path,
            sync,
            state: Mutex::new(FileState { file: Some(file), pending: Vec::with_capacity(256 * 1024) }),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write_pending(&self, state: &mut FileState, fsync: bool) -> Result<(), ExporterError> {
        if state.pending.is_empty() && !fsync {
            return Ok(());
        }
        let res = (|| {
            if state.file.is_none() {
                state.file = Some(open_append(&self.path)?);
            }
            let Some(file) = state.file.as_mut() else {
                return Ok(());
            };
            file.write_all(&state.pending)?;
            if fsync {
                file.sync_data()?;
            }
            Ok(())
        })();
        match res {
            Ok(()) => {
                state.pending.clear();
                Ok(())
            }
            Err(source) => {
                state.file = None;
                super::dispatcher::fallback_to_stderr(&state.pending);
                state.pending.clear();
                Err(ExporterError::Io { sink: self.name(), source })
            }
        }
    }
}

fn open_append(path: &Path) -> std::io::Result<File> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

impl Sink for FileSink {
    fn name(&self) -> String {
        format!("file {}", self.path.display())
    }

    fn write(&self, record: Record<'_>) -> Result<(), ExporterError> {
        let mut state = lock(&self.state);
        state.pending.extend_from_slice(record.json);
        state.pending.push(b'\n');
        Ok(())
    }

    fn flush(&self) -> Result<(), ExporterError> {
        let mut state = lock(&self.state);
        self.write_pending(&mut state, self.sync == FileSync::EveryBatch)
    }

    fn sync(&self) -> Result<(), ExporterError> {
        let mut state = lock(&self.state);
        self.write_pending(&mut state, self.sync != FileSync::Never)
    }
}

/// Writes one JSON object per line to standard output.
#[derive(Debug, Default)]
pub struct StdoutSink {
    buf: Mutex<Vec<u8>>,
}

impl StdoutSink {
    /// A stdout sink.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Sink for StdoutSink {
    fn name(&self) -> String {
        "stdout".into()
    }

    fn write(&self, record: Record<'_>) -> Result<(), ExporterError> {
        let mut buf = lock(&self.buf);
        buf.extend_from_slice(record.json);
        buf.push(b'\n');
        Ok(())
    }

    fn flush(&self) -> Result<(), ExporterError> {
        let mut buf = lock(&self.buf);
        let mut out = std::io::stdout().lock();
        let res = out.write_all(&buf).and_then(|()| out.flush());
        buf.clear();
        res.map_err(|source| ExporterError::Io { sink: self.name(), source })
    }
}

/// Keeps every event in memory, for assertions in tests. Clones share the same storage: keep one clone,
/// give the other to the config (`AuditSink::Memory(sink.clone())`), then assert on what arrived.
///
/// ```
/// let sink = observer::MemorySink::new();
/// assert!(sink.is_empty());
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemorySink {
    inner: Arc<MemoryInner>,
}

#[derive(Debug, Default)]
struct MemoryInner {
    records: Mutex<Vec<(AuditEvent, Vec<u8>)>>,
    arrived: Condvar,
}

impl MemorySink {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// The events recorded so far, in arrival order.
    pub fn events(&self) -> Vec<AuditEvent> {
        lock(&self.inner.records).iter().map(|(e, _)| e.clone()).collect()
    }

    /// The JSON of the events recorded so far, exactly as serialised for every sink.
    pub fn json(&self) -> Vec<serde_json::Value> {
        lock(&self.inner.records).iter().filter_map(|(_, j)| serde_json::from_slice(j).ok()).collect()
    }

    /// The number of events recorded.
    pub fn len(&self) -> usize {
        lock(&self.inner.records).len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets everything recorded.
    pub fn clear(&self) {
        lock(&self.inner.records).clear();
    }

    /// Waits until an event matching `pred` arrives (or `timeout` passes) and returns it.
    pub fn wait_for(&self, timeout: Duration, mut pred: impl FnMut(&AuditEvent) -> bool) -> Option<AuditEvent> {
        let deadline = Instant::now() + timeout;
        let mut records = lock(&self.inner.records);
        loop {
            if let Some((e, _)) = records.iter().find(|(e, _)| pred(e)) {
                return Some(e.clone());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            records = self.inner.arrived.wait_timeout(records, left).unwrap_or_else(PoisonError::into_inner).0;
        }
    }
}

impl Sink for MemorySink {
    fn name(&self) -> String {
        "memory".into()
    }

    fn write(&self, record: Record<'_>) -> Result<(), ExporterError> {
        lock(&self.inner.records).push((record.event.clone(), record.json.to_vec()));
        Ok(())
    }

    fn flush(&self) -> Result<(), ExporterError> {
        self.inner.arrived.notify_all();
        Ok(())
    }
}
