//! The built-in sinks: JSON-lines file, stdout, and an in-memory recorder for tests.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::{files, Record, Sink};
use crate::audit::AuditEvent;
use crate::config::format::AuditFormat;
use crate::config::{FilePermissions, FileSync};
use crate::error::ExporterError;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks cannot leave the data half-updated in a way that matters
    // (buffers and vectors), so keep going rather than propagate the poison.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Appends one JSON object per line to a file, creating it (and its parent directories) if needed, owner-only
/// by default (see [`FilePermissions`]).
///
/// Records are collected per batch and written with one `write` call when the dispatcher flushes.
///
/// * **Write failures** (disk full, …): the lines that did not reach the file go to standard error (prefixed
///   `observer-audit-fallback: `), and the file is reopened on the next batch. A line only partly written is cut
///   off the file again (the whole line is on the fallback), so every line in the file is a complete event and
///   each event is either in the file or on the fallback. Should that cut fail, or the file be found not ending
///   in a newline when it is (re)opened (e.g. torn by a crash), a newline is added first, so that new events
///   start on their own line; such a torn fragment is reported, and it is not an event.
/// * **Rotation and deletion**: before every batch the sink checks that its path still names the file it has
///   open (device and inode); if the file was renamed (logrotate without `copytruncate`) or deleted, it is
///   synced (unless [`FileSync::Never`]) and closed, and a new file is created at the configured path. A batch
///   written to a file deleted meanwhile is written again to the new one.
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    sync: FileSync,
    format: AuditFormat,
    permissions: FilePermissions,
    state: Mutex<FileState>,
}

#[derive(Debug)]
struct FileState {
    file: Option<OpenFile>,
    pending: Vec<u8>,
}

#[derive(Debug)]
struct OpenFile {
    file: File,
    /// Device and inode, to notice that the path names another file now.
    id: Option<(u64, u64)>,
}

impl FileSink {
    /// Opens (or creates) `path` for appending, with the default [`FilePermissions`] (`0600`, directories `0700`).
    pub fn open(path: impl Into<PathBuf>, sync: FileSync) -> Result<Self, ExporterError> {
        Self::open_with_permissions(path, sync, FilePermissions::default())
    }

    /// Opens (or creates) `path` for appending; a new file and new parent directories get `permissions`.
    pub fn open_with_permissions(
        path: impl Into<PathBuf>,
        sync: FileSync,
        permissions: FilePermissions,
    ) -> Result<Self, ExporterError> {
        let path = path.into();
        let file = open_file(&path, permissions)
            .map_err(|source| ExporterError::Io { what: format!("file {}", path.display()), source })?;
        Ok(Self {
            path,
            sync,
            format: AuditFormat::Json,
            permissions,
            state: Mutex::new(FileState { file: Some(file), pending: Vec::with_capacity(256 * 1024) }),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes its lines in `format` (default the guide's JSON): one OCSF event or FHIR `AuditEvent` per line.
    pub fn in_format(mut self, format: AuditFormat) -> Self {
        self.format = format;
        self
    }

    /// Closes the open file when the path no longer names it (renamed or deleted), syncing it first.
    fn check_path(&self, state: &mut FileState) {
        let Some(open) = state.file.as_ref() else { return };
        let Some(id) = open.id else { return };
        let current = std::fs::metadata(&self.path).ok().as_ref().and_then(files::identity);
        if current == Some(id) {
            return;
        }
        if self.sync != FileSync::Never {
            let _ = open.file.sync_data();
        }
        state.file = None;
        let what = if current.is_some() { "was renamed or replaced" } else { "was deleted or moved" };
        crate::diag::report!(
            WARN,
            "audit-file-moved",
            "audit file {} {what}; reopening it at the configured path",
            self.path.display()
        );
    }

    fn write_pending(&self, state: &mut FileState, fsync: bool) -> Result<(), ExporterError> {
        if state.pending.is_empty() {
            if let (true, Some(open)) = (fsync, state.file.as_ref()) {
                return open.file.sync_data().map_err(|source| ExporterError::Io { what: self.name(), source });
            }
            return Ok(());
        }
        self.check_path(state);
        let mut retried = false;
        loop {
            if state.file.is_none() {
                match open_file(&self.path, self.permissions) {
                    Ok(f) => state.file = Some(f),
                    Err(source) => return Err(self.fail(state, 0, source)),
                }
            }
            let Some(open) = state.file.as_mut() else { continue };
            let (written, res) = write_counted(&mut open.file, &state.pending);
            if let Err(source) = res {
                return Err(self.fail(state, written, source));
            }
            // Deleted while we wrote (or just before): write the batch again into a new file at the path.
            if !retried && open.file.metadata().is_ok_and(|m| files::is_unlinked(&m)) {
                crate::diag::report!(
                    WARN,
                    "audit-file-deleted",
                    "audit file {} was deleted; reopening it at the configured path",
                    self.path.display()
                );
                state.file = None;
                retried = true;
                continue;
            }
            if fsync {
                if let Err(source) = open.file.sync_data() {
                    // Written, but whether it is on disk is unknown: the dispatcher also puts these lines on
                    // the fallback (better twice than not at all).
                    state.file = None;
                    state.pending.clear();
                    return Err(ExporterError::Io { what: self.name(), source });
                }
            }
            state.pending.clear();
            return Ok(());
        }
    }

    /// After a failed write of which `written` bytes reached the file: cuts a partly written line off again,
    /// sends every line not wholly in the file to the stderr fallback, and closes the file.
    fn fail(&self, state: &mut FileState, written: usize, source: std::io::Error) -> ExporterError {
        let pending = std::mem::take(&mut state.pending);
        let clean = pending[..written].iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
        let delivered = pending[..clean].iter().filter(|b| **b == b'\n').count();
        let torn = (written - clean) as u64;
        if let Some(mut open) = state.file.take() {
            if torn > 0 {
                let cut = open.file.stream_position().and_then(|end| {
                    let len = open.file.metadata()?.len();
                    if len != end {
                        return Err(std::io::Error::other("the file changed meanwhile"));
                    }
                    open.file.set_len(end - torn)
                });
                if let Err(e) = cut {
                    crate::diag::report!(
                        WARN,
                        "audit-file-torn",
                        "audit file {}: could not remove a partly written line ({e}); it will be ended with a newline \
                         (the event is on the stderr fallback)",
                        self.path.display()
                    );
                }
            }
        }
        super::fallback_to_stderr(&pending[clean..]);
        // Keep the buffer (its capacity) for the next batch.
        state.pending = pending;
        state.pending.clear();
        ExporterError::PartialFlush { delivered, source: Box::new(ExporterError::Io { what: self.name(), source }) }
    }
}

/// Writes `buf` like `write_all`, also returning how many bytes reached the file.
fn write_counted(file: &mut File, buf: &[u8]) -> (usize, std::io::Result<()>) {
    let mut written = 0;
    while written < buf.len() {
        match file.write(&buf[written..]) {
            Ok(0) => return (written, Err(std::io::ErrorKind::WriteZero.into())),
            Ok(n) => written += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return (written, Err(e)),
        }
    }
    (written, Ok(()))
}

/// Opens the audit file; if it does not end with a newline (a line torn by a crash or a failed cut), ends it.
fn open_file(path: &Path, permissions: FilePermissions) -> std::io::Result<OpenFile> {
    let mut file = files::open_append(path, permissions)?;
    let meta = file.metadata()?;
    if meta.len() > 0 {
        let mut last = [0u8; 1];
        file.seek(SeekFrom::Start(meta.len() - 1))?;
        file.read_exact(&mut last)?;
        if last[0] != b'\n' {
            file.write_all(b"\n")?;
            crate::diag::report!(
                WARN,
                "audit-file-torn",
                "audit file {} did not end with a newline (a line torn by an earlier failure or crash, not an event); \
                 a newline was added so that new events start on their own line",
                path.display()
            );
        }
    }
    Ok(OpenFile { id: files::identity(&meta), file })
}

impl Sink for FileSink {
    fn name(&self) -> String {
        match self.format {
            AuditFormat::Json => format!("file {}", self.path.display()),
            f => format!("file {} ({f})", self.path.display()),
        }
    }

    fn format(&self) -> AuditFormat {
        self.format
    }

    fn write(&self, record: Record<'_>) -> Result<(), ExporterError> {
        let mut state = lock(&self.state);
        state.pending.extend_from_slice(record.output);
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
    format: AuditFormat,
}

impl StdoutSink {
    /// A stdout sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes its lines in `format` (default the guide's JSON).
    pub fn in_format(mut self, format: AuditFormat) -> Self {
        self.format = format;
        self
    }
}

impl Sink for StdoutSink {
    fn name(&self) -> String {
        match self.format {
            AuditFormat::Json => "stdout".into(),
            f => format!("stdout ({f})"),
        }
    }

    fn format(&self) -> AuditFormat {
        self.format
    }

    fn write(&self, record: Record<'_>) -> Result<(), ExporterError> {
        let mut buf = lock(&self.buf);
        buf.extend_from_slice(record.output);
        buf.push(b'\n');
        Ok(())
    }

    fn flush(&self) -> Result<(), ExporterError> {
        let mut buf = lock(&self.buf);
        let mut out = std::io::stdout().lock();
        let res = out.write_all(&buf).and_then(|()| out.flush());
        buf.clear();
        res.map_err(|source| ExporterError::Io { what: self.name(), source })
    }
}

/// Keeps every event in memory, for assertions in tests. Clones share the same storage: keep one clone,
/// give the other to the config (`AuditSink::Memory(sink.clone())`), then assert on what arrived.
///
/// ```
/// let sink = observer::export::MemorySink::new();
/// assert!(sink.is_empty());
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemorySink {
    inner: Arc<MemoryInner>,
    /// This clone's format (clones share the storage, not the format).
    format: AuditFormat,
}

/// One record: the event (`None` for a checkpoint of the integrity chain), its guide JSON, and its output when the
/// sink's format is not the guide's JSON.
type Recorded = (Option<AuditEvent>, Vec<u8>, Option<Vec<u8>>);

#[derive(Debug, Default)]
struct MemoryInner {
    /// Every record in arrival order.
    records: Mutex<Vec<Recorded>>,
    arrived: Condvar,
}

impl MemorySink {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// This sink (sharing the storage) receiving records in `format` (default the guide's JSON); see
    /// [`output`](Self::output).
    pub fn in_format(mut self, format: AuditFormat) -> Self {
        self.format = format;
        self
    }

    /// The events recorded so far, in arrival order.
    pub fn events(&self) -> Vec<AuditEvent> {
        lock(&self.inner.records).iter().filter_map(|(e, ..)| e.clone()).collect()
    }

    /// The guide JSON of the events recorded so far, exactly as serialised for every sink.
    pub fn json(&self) -> Vec<serde_json::Value> {
        let records = lock(&self.inner.records);
        records.iter().filter(|(e, ..)| e.is_some()).filter_map(|(_, j, _)| serde_json::from_slice(j).ok()).collect()
    }

    /// The events as received in [`Record::output`] (the sink's format: OCSF events, FHIR `AuditEvent`s, or the
    /// guide's JSON), parsed.
    pub fn output(&self) -> Vec<serde_json::Value> {
        lock(&self.inner.records)
            .iter()
            .filter(|(e, ..)| e.is_some())
            .filter_map(|(_, j, o)| serde_json::from_slice(o.as_deref().unwrap_or(j)).ok())
            .collect()
    }

    /// The integrity chain's checkpoint records received so far (see [`RecordKind::Checkpoint`](super::RecordKind)),
    /// as JSON.
    pub fn checkpoints(&self) -> Vec<serde_json::Value> {
        let records = lock(&self.inner.records);
        records.iter().filter(|(e, ..)| e.is_none()).filter_map(|(_, j, _)| serde_json::from_slice(j).ok()).collect()
    }

    /// Every record's guide JSON line in arrival order, events and checkpoints: what a JSON-lines file would hold.
    pub fn lines(&self) -> Vec<Vec<u8>> {
        lock(&self.inner.records).iter().map(|(_, j, _)| j.clone()).collect()
    }

    /// The number of events recorded.
    pub fn len(&self) -> usize {
        lock(&self.inner.records).iter().filter(|(e, ..)| e.is_some()).count()
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
            if let Some(e) = records.iter().filter_map(|(e, ..)| e.as_ref()).find(|e| pred(e)) {
                return Some(e.clone());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            records = self.inner.arrived.wait_timeout(records, left).unwrap_or_else(PoisonError::into_inner).0;
        }
    }
}

impl Sink for MemorySink {
    fn name(&self) -> String {
        match self.format {
            AuditFormat::Json => "memory".into(),
            f => format!("memory ({f})"),
        }
    }

    fn format(&self) -> AuditFormat {
        self.format
    }

    fn write(&self, record: Record<'_>) -> Result<(), ExporterError> {
        let output = (self.format != AuditFormat::Json).then(|| record.output.to_vec());
        lock(&self.inner.records).push((record.as_event().cloned(), record.json.to_vec(), output));
        Ok(())
    }

    fn flush(&self) -> Result<(), ExporterError> {
        self.inner.arrived.notify_all();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AuditAction, AuditEventType, ResourceType};

    fn write_one(sink: &FileSink, id: &str) {
        let event = AuditEvent::new(AuditEventType::DataAccess, AuditAction::Read, ResourceType::Document, id);
        let json = serde_json::to_vec(&event).unwrap();
        sink.write(Record::new(&event, &json)).unwrap();
        sink.flush().unwrap();
    }

    #[test]
    fn a_file_torn_by_an_earlier_crash_gets_a_newline_before_new_events() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        std::fs::write(&path, b"{\"event_id\":\"evt_1\"}\n{\"event_id\":\"evt_2\",\"time").unwrap();
        let sink = FileSink::open(&path, FileSync::Never).unwrap();
        write_one(&sink, "after-crash");
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[1], "{\"event_id\":\"evt_2\",\"time", "the fragment stays, ended");
        let last: serde_json::Value = serde_json::from_str(lines[2]).expect("the new event is a line of its own");
        assert_eq!(last["resource_id"], "after-crash");
        assert!(text.ends_with('\n'));
    }
}
