//! A durable local spool: the on-disk part of "the Kafka exporter never loses an event".
//!
//! Whatever the Kafka producer cannot deliver (broker down past its retries, local queue full, process exit
//! before delivery) is [appended](Spool::append) here, and re-sent oldest first once the broker is back,
//! also by the *next* process that starts with the same spool directory. This module only stores records;
//! the exporter drives replay:
//!
//! ```text
//! for segment in spool.seal_and_list()? {           // oldest first
//!     let Ok(mut reader) = spool.reader(&segment) else {
//!         spool.quarantine(&segment, "it cannot be read")?;   // set aside, go on with the next
//!         continue;
//!     };
//!     while reader.next_line()? { /* produce reader.record() (or reader.skip(error)) */ }
//!     /* wait for delivery of every record (or re-append what failed) */
//!     if reader.skipped() > 0 { spool.quarantine(&segment, "lines could not be decoded")?; } else { spool.remove(&segment)?; }
//! }
//! ```
//!
//! The files of this module: the on-disk [format](format) of a record, the [segments](segments) (naming,
//! the active one, sealing, renumbering), the [quarantine](quarantine) of files that cannot be replayed.
//!
//! # Permissions
//!
//! Segments may hold personal data: by default the spool creates its files (segments, the lock file) with mode
//! `0600` and its directories (the spool directory, `quarantine/`) with `0700`, owner only
//! ([`open_with_permissions`](Spool::open_with_permissions) sets others; the umask still applies; an existing
//! spool directory keeps its permissions).
//!
//! # Durability (fsync policy)
//!
//! [`append`](Spool::append) writes the batch with one `write` call per segment it goes into (a batch larger
//! than the room left in the active segment is split across segments of at most 16 MiB) and calls `fdatasync`
//! ([`File::sync_data`]) on each before the next and before it returns; when it creates a new segment file it
//! also fsyncs the directory, so that the file's name survives too. When `append` returns `Ok`, the records survive a
//! crash of the process or of the machine. [`open`](Spool::open) fsyncs the parent directory when it had to
//! create the spool directory, and [`remove`](Spool::remove) fsyncs the directory after deleting a segment
//! (best effort: if that fsync fails, the segment may reappear after a machine crash and be replayed twice).
//! On non-Unix platforms directories are not fsynced (it is not supported there).
//!
//! # Size limit
//!
//! The spool holds at most `max_bytes` bytes of segment files (the sum of their sizes, including leftovers of
//! earlier processes and torn tails). An append is all-or-nothing: if its encoded records would take the
//! spool over the limit, nothing is written and [`SpoolError::Full`] is returned; the caller must deliver or
//! report those records in some other way. Space is freed only by [`remove`](Spool::remove). If a
//! previous process left more than `max_bytes` on disk (say the limit was lowered), appends fail with `Full`
//! until replay has removed enough segments. Nothing is ever deleted to make room.
//!
//! # Crash behaviour
//!
//! * Crash (of the process or the machine) during an append: the active segment may end with a torn line (or,
//!   after a power loss, with zero bytes). The next process treats that segment as sealed; its
//!   [reader](Spool::reader) skips the torn last line with a warning and counts it (the segment is then quarantined, not deleted).
//!   Complete lines of the interrupted batch are replayed although their `append` never returned `Ok`; delivery
//!   is therefore at least once, never at most once.
//! * An I/O error during an append (disk full, failed fsync): the batch is cut off again (the segment is
//!   truncated to its previous length), the error is returned, and the segment is sealed, so that later appends
//!   go to a new file and never follow a half-written line; the parts of the batch already written to earlier
//!   segments are taken out again too (segments it created are deleted). If even that fails, the partly
//!   written batch stays in those sealed segments and may be replayed (duplicates, no loss).
//! * Two processes (or two `Spool`s in one process) must not share a directory: `open` takes an exclusive,
//!   advisory lock on `spool.lock` ([`File::try_lock`], i.e. `flock` on Unix) and fails with
//!   [`SpoolError::Locked`] if it is held. The lock is released when the `Spool` is dropped or the process
//!   dies; the lock file itself is left in place. Such locks may not work on network file systems.

pub(super) mod failpoint;
mod format;
mod quarantine;
mod segments;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::{self, File, TryLockError};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::config::FilePermissions;
use crate::error::ExporterError;
use crate::export::files;
pub(crate) use format::SegmentReader;
use format::{encode_line, parse_segment_name, scan_segment, SEGMENT_PREFIX};
use quarantine::Quarantine;
pub(crate) use segments::Segment;
use segments::{sealed_segment, Active, Inner, DEFAULT_SEGMENT_BYTES};

/// The name of the lock file inside the spool directory.
const LOCK_FILE: &str = "spool.lock";

impl SpoolError {
    /// The public error for this spool error of the spool in `dir`.
    pub(crate) fn into_exporter_error(self, dir: &Path) -> ExporterError {
        match self {
            Self::Full { limit_bytes } => ExporterError::SpoolFull { limit_bytes },
            Self::Io(source) => ExporterError::Io { what: format!("Kafka spool {}", dir.display()), source },
            Self::Locked(dir) => ExporterError::SpoolLocked(dir),
        }
    }
}

/// One message as it will be (re)produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SpoolRecord {
    /// The Kafka topic.
    pub topic: String,
    /// The message key, if any.
    pub key: Option<String>,
    /// The message headers, in order.
    pub headers: Vec<(String, String)>,
    /// The message payload (stored as text when it is UTF-8, as base64 otherwise).
    pub payload: Vec<u8>,
}

/// An error of the [`Spool`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum SpoolError {
    /// The spool reached its size limit; the record was NOT written.
    #[error("audit spool is full (limit {limit_bytes} bytes); the records were not written")]
    Full {
        /// The configured limit (`max_bytes` of [`Spool::open`]).
        limit_bytes: u64,
    },
    /// Reading, writing, syncing or deleting a spool file failed.
    #[error("audit spool I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Another process holds the spool directory's lock.
    #[error("audit spool directory {} is locked by another process or spool instance", .0.display())]
    Locked(std::path::PathBuf),
}

/// What one append wrote into one segment.
struct Piece {
    seq: u64,
    path: PathBuf,
    /// The segment's size before.
    previous: u64,
    len: u64,
    records: u64,
}

/// A durable, size-limited, append-only store of undelivered records (see the [module docs](self)).
///
/// `Send + Sync`: all operations take `&self` and are serialised by an internal mutex, except
/// [`read`](Spool::read), which does not block appends.
pub(crate) struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    /// Most bytes in one segment (a record larger than that gets a segment of its own).
    segment_bytes: u64,
    inner: Mutex<Inner>,
    /// Bytes of all segment files (only changed while `inner` is locked; atomic so readers never block).
    bytes: AtomicU64,
    /// Records in all segment files (idem).
    records: AtomicU64,
    /// Where segments that cannot be replayed are set aside.
    quarantine: Quarantine,
    /// Holds the exclusive lock on `spool.lock` until dropped.
    _lock: File,
}

impl fmt::Debug for Spool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spool")
            .field("dir", &self.dir)
            .field("max_bytes", &self.max_bytes)
            .field("bytes", &self.bytes())
            .field("records", &self.records())
            .finish_non_exhaustive()
    }
}

impl Spool {
    /// Opens (creating) `dir`, takes an exclusive lock on `dir/spool.lock` (try_lock: a second process/instance
    /// using the same dir gets [`SpoolError::Locked`]; the lock is released on drop), scans existing segments,
    /// and deletes nothing.
    ///
    /// Segments found on disk are all treated as sealed and count towards [`bytes`](Spool::bytes) and
    /// [`records`](Spool::records); new appends go to a fresh segment numbered after the highest one found.
    #[cfg(test)]
    pub(crate) fn open(dir: impl Into<PathBuf>, max_bytes: u64) -> Result<Spool, SpoolError> {
        Self::open_with_permissions(dir, max_bytes, FilePermissions::default())
    }

    /// [`open`](Spool::open) with the permissions of the files and directories the spool creates (the default,
    /// used by `open`, is owner-only: files `0600`, directories `0700`; the umask still applies). An existing
    /// spool directory keeps its permissions.
    pub(crate) fn open_with_permissions(
        dir: impl Into<PathBuf>,
        max_bytes: u64,
        perms: FilePermissions,
    ) -> Result<Spool, SpoolError> {
        let dir = dir.into();
        let existed = dir.is_dir();
        files::create_dir_all(&dir, perms)?;
        if !existed {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
        }

        let lock = files::new_file_options(perms)
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(LOCK_FILE))?;
        if !try_lock_exclusive(&lock)? {
            return Err(SpoolError::Locked(dir));
        }

        let quarantine = Quarantine::new(&dir, perms);
        let mut sealed = BTreeMap::new();
        let mut skipped = BTreeSet::new();
        let (mut bytes, mut records) = (0u64, 0u64);
        for entry in fs::read_dir(&dir)? {
            // One entry the directory listing cannot describe must not stop the others.
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    report(format_args!("audit spool: skipping an unreadable entry of {}: {e}", dir.display()));
                    continue;
                }
            };
            let name = entry.file_name();
            let path = entry.path();
            let looks_like_segment = name.to_str().is_some_and(|n| n.starts_with(SEGMENT_PREFIX));
            if !looks_like_segment {
                continue;
            }
            let Some(seq) = name.to_str().and_then(parse_segment_name) else {
                quarantine.set_aside(&path, "its name is not `segment-<20 digits>.jsonl`");
                continue;
            };
            // `symlink_metadata`: a symbolic link is not a segment this spool wrote, even if it points at one.
            let scanned = match fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_file() => scan_segment(&path),
                Ok(_) => Err(io::Error::other("not a regular file")),
                Err(e) => Err(e),
            };
            match scanned {
                Ok((size, count)) => {
                    bytes = bytes.saturating_add(size);
                    records = records.saturating_add(count);
                    sealed.insert(seq, Segment { path, seq, size, records: count });
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    if quarantine.set_aside(&path, &format!("it cannot be read ({e})")).is_none() {
                        skipped.insert(seq);
                    }
                }
            }
        }
        let mut inner = Inner { sealed, active: None, next_seq: 1, skipped, perms };
        inner.renumber_if_exhausted(&dir);
        inner.next_seq = inner.highest_seq().map_or(1, |last| last.saturating_add(1));
        if !inner.sealed.is_empty() {
            tracing::info!(
                target: "observer",
                dir = %dir.display(),
                segments = inner.sealed.len(),
                records,
                bytes,
                "audit spool: found undelivered records of an earlier run"
            );
        }

        Ok(Spool {
            dir,
            max_bytes,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            inner: Mutex::new(inner),
            bytes: AtomicU64::new(bytes),
            records: AtomicU64::new(records),
            quarantine,
            _lock: lock,
        })
    }

    /// Appends records to the active segment — split across new segments where it would grow past the segment
    /// size (16 MiB; a record larger than that gets a segment of its own) — and fsyncs (file data; and the
    /// directory when a new segment file is created) before returning: when it returns `Ok` the records survive a crash of the process or
    /// machine. All-or-nothing w.r.t. the size limit: if the records would take the spool over `max_bytes`,
    /// nothing is written and [`SpoolError::Full`] is returned.
    ///
    /// On an I/O error the batch is cut off again, from every segment it went into (best effort), the active
    /// segment is sealed and the error
    /// is returned: the records must be considered not spooled. Appending an empty slice does nothing.
    pub(crate) fn append(&self, records: &[SpoolRecord]) -> Result<(), SpoolError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(records.iter().map(|r| r.payload.len() + r.topic.len() + 64).sum());
        // Where each line ends in `buf`.
        let mut ends = Vec::with_capacity(records.len());
        for record in records {
            encode_line(record, &mut buf)?;
            ends.push(buf.len());
        }
        let len = buf.len() as u64;

        let mut guard = self.lock();
        let inner = &mut *guard;
        let bytes = self.bytes.load(Ordering::Relaxed);
        if bytes.checked_add(len).is_none_or(|total| total > self.max_bytes) {
            return Err(SpoolError::Full { limit_bytes: self.max_bytes });
        }
        // The batch goes into segments of at most `segment_bytes` each (a record larger than that gets one of
        // its own), one piece per segment, each written and fsynced before the next.
        let mut pieces: Vec<Piece> = Vec::new();
        let (mut from, mut line) = (0usize, 0usize);
        while line < ends.len() {
            if inner.active.as_ref().is_some_and(|a| a.size >= self.segment_bytes) {
                inner.seal_active();
            }
            let created = inner.active.is_none();
            if created {
                match inner.create_segment(&self.dir) {
                    Ok((file, path, seq)) => inner.active = Some(Active { file, path, seq, size: 0, records: 0 }),
                    Err(e) => {
                        self.undo(inner, &pieces);
                        return Err(e.into());
                    }
                }
            }
            let Some(active) = inner.active.as_mut() else { unreachable!("an active segment was just created") };
            let room = self.segment_bytes.saturating_sub(active.size);
            let mut to = line;
            while to < ends.len() && ((ends[to] - from) as u64 <= room || (to == line && active.size == 0)) {
                to += 1;
            }
            if to == line {
                // The next record does not fit: on to a new segment.
                inner.seal_active();
                continue;
            }
            let piece = &buf[from..ends[to - 1]];
            let (piece_len, count) = (piece.len() as u64, (to - line) as u64);
            let written = active.file.write_all(piece).and_then(|()| active.file.sync_data()).and_then(|()| {
                if created {
                    sync_dir(&self.dir)
                } else {
                    Ok(())
                }
            });
            let bytes = self.bytes.load(Ordering::Relaxed);
            match written {
                Ok(()) => {
                    pieces.push(Piece {
                        seq: active.seq,
                        path: active.path.clone(),
                        previous: active.size,
                        len: piece_len,
                        records: count,
                    });
                    active.size += piece_len;
                    active.records += count;
                    self.bytes.store(bytes + piece_len, Ordering::Relaxed);
                    self.records.fetch_add(count, Ordering::Relaxed);
                    (from, line) = (ends[to - 1], to);
                }
                Err(e) => {
                    let previous = active.size;
                    let on_disk = match active.file.set_len(previous).and_then(|()| active.file.sync_data()) {
                        Ok(()) => previous,
                        Err(_) => fs::metadata(&active.path).map_or(previous + piece_len, |m| m.len()),
                    };
                    crate::diag::report!(
                        WARN,
                        "spool-append",
                        "audit spool: append to {} failed ({e}; partial write {}); sealing the segment",
                        active.path.display(),
                        if on_disk == previous { "cut off" } else { "left in place" }
                    );
                    active.size = on_disk;
                    self.bytes.store(bytes - previous + on_disk, Ordering::Relaxed);
                    inner.seal_active();
                    self.undo(inner, &pieces);
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    /// Takes the pieces of a failed append that were already written out again (best effort: a piece that
    /// cannot be taken out stays and is replayed — a duplicate of what the caller then reports, never a loss).
    /// They are all in sealed segments (a later piece was started after them).
    fn undo(&self, inner: &mut Inner, pieces: &[Piece]) {
        for piece in pieces.iter().rev() {
            let undone = if piece.previous == 0 {
                fs::remove_file(&piece.path).is_ok()
            } else {
                fs::OpenOptions::new()
                    .write(true)
                    .open(&piece.path)
                    .and_then(|f| f.set_len(piece.previous).and_then(|()| f.sync_data()))
                    .is_ok()
            };
            if !undone {
                continue;
            }
            if piece.previous == 0 {
                inner.sealed.remove(&piece.seq);
            } else if let Some(segment) = inner.sealed.get_mut(&piece.seq) {
                segment.size = piece.previous;
                segment.records = segment.records.saturating_sub(piece.records);
            }
            let bytes = self.bytes.load(Ordering::Relaxed);
            self.bytes.store(bytes.saturating_sub(piece.len), Ordering::Relaxed);
            let records = self.records.load(Ordering::Relaxed);
            self.records.store(records.saturating_sub(piece.records), Ordering::Relaxed);
        }
    }

    /// Seals the active segment (if non-empty) so the next append starts a new one, and returns all sealed
    /// segments oldest first (by sequence number).
    pub(crate) fn seal_and_list(&self) -> Result<Vec<Segment>, SpoolError> {
        let mut inner = self.lock();
        inner.seal_active();
        Ok(inner.sealed.values().cloned().collect())
    }

    /// Opens a sealed segment for reading its records in order, one line at a time (see [`SegmentReader`]):
    /// lines that cannot be decoded (corrupt lines, a torn last record left by a crash during an append) are
    /// skipped with a warning and counted (never panic). A segment with skipped lines should be
    /// [quarantined](Spool::quarantine) after its records were re-sent, not removed: what could not be decoded
    /// is then kept. Does not block appends.
    pub(crate) fn reader(&self, segment: &Segment) -> Result<SegmentReader, SpoolError> {
        Ok(SegmentReader::open(&segment.path)?)
    }

    /// All records of a sealed segment, in order, and the number of lines skipped (see [`reader`](Spool::reader)).
    #[cfg(test)]
    pub(crate) fn read(&self, segment: &Segment) -> Result<(Vec<SpoolRecord>, usize), SpoolError> {
        let mut reader = self.reader(segment)?;
        let mut records = Vec::new();
        while reader.next_line()? {
            match reader.record() {
                Ok(record) => records.push(record.to_record()),
                Err(error) => reader.skip(&error),
            }
        }
        Ok((records, reader.skipped()))
    }

    /// Deletes a sealed segment after all its records were delivered (or re-appended).
    ///
    /// Fails with an [`io::ErrorKind::NotFound`] error if `segment` is not (or no longer) a sealed segment of
    /// this spool. A segment file that was already deleted by someone else is forgotten with a warning.
    pub(crate) fn remove(&self, segment: &Segment) -> Result<(), SpoolError> {
        let mut inner = self.lock();
        let known = sealed_segment(&inner, segment)?;
        match fs::remove_file(&known.path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                crate::diag::report!(
                    WARN,
                    "spool-segment-gone",
                    "audit spool: segment {} was already deleted",
                    known.path.display()
                );
            }
            Err(e) => return Err(e.into()),
        }
        inner.sealed.remove(&known.seq);
        let bytes = self.bytes.load(Ordering::Relaxed);
        self.bytes.store(bytes.saturating_sub(known.size), Ordering::Relaxed);
        let records = self.records.load(Ordering::Relaxed);
        self.records.store(records.saturating_sub(known.records), Ordering::Relaxed);
        drop(inner);
        if let Err(e) = sync_dir(&self.dir) {
            crate::diag::report!(
                WARN,
                "spool-dir-sync",
                "audit spool: directory fsync of {} after removal failed: {e}",
                self.dir.display()
            );
        }
        Ok(())
    }

    /// Bytes currently on disk (sum of the segment file sizes).
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Records currently on disk (counted at open by scanning, plus appends, minus removals).
    pub(crate) fn records(&self) -> u64 {
        self.records.load(Ordering::Relaxed)
    }

    /// Whether no segment holds any byte.
    pub(crate) fn is_empty(&self) -> bool {
        self.bytes() == 0
    }

    /// The spool directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The size limit given to [`open`](Spool::open).
    #[cfg(test)]
    pub(crate) fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every update of `Inner` is completed before anything that could panic, so a poisoned lock still
        // guards consistent data.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Reports a spool problem the user must hear about: on stderr (whatever subscriber is installed) and as a
/// `tracing` event.
fn report(message: fmt::Arguments<'_>) {
    crate::diag::report_loud("spool", message);
}

/// Takes the exclusive advisory lock on `file` without waiting: `Ok(false)` if someone else holds it.
/// (`File::try_lock`, stable since Rust 1.89, is why the workspace's `rust-version` is 1.89.)
fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(TryLockError::WouldBlock) => Ok(false),
        Err(TryLockError::Error(e)) => Err(e),
    }
}

/// Makes the directory's entries (created or deleted files) durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Directories cannot be opened for fsync here; their entries are made durable by the file system.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::format::segment_name;
    use super::*;

    pub(super) fn rec(topic: &str, i: usize) -> SpoolRecord {
        SpoolRecord {
            topic: topic.to_string(),
            key: i.is_multiple_of(2).then(|| format!("key-{i}")),
            headers: vec![("event-type".into(), "read".into()), ("n".into(), i.to_string())],
            payload: format!("{{\"n\":{i},\"text\":\"line one\\nline two\"}}\n").into_bytes(),
        }
    }

    pub(super) fn encoded_len(record: &SpoolRecord) -> u64 {
        let mut buf = Vec::new();
        encode_line(record, &mut buf).unwrap();
        buf.len() as u64
    }

    pub(super) fn read_all(spool: &Spool) -> Vec<SpoolRecord> {
        let mut out = Vec::new();
        for segment in spool.seal_and_list().unwrap() {
            let (records, skipped) = spool.read(&segment).unwrap();
            assert_eq!(skipped, 0);
            out.extend(records);
        }
        out
    }

    pub(super) fn segment_files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with(SEGMENT_PREFIX))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn spool_is_send_sync_debug() {
        fn check<T: Send + Sync + fmt::Debug>() {}
        check::<Spool>();
        check::<Segment>();
        check::<SpoolError>();
    }

    #[test]
    fn round_trip_across_segments_preserves_order() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path().join("spool"), u64::MAX).unwrap();
        assert!(spool.is_empty());
        let all: Vec<SpoolRecord> = (0..7).map(|i| rec("audit", i)).collect();

        spool.append(&all[0..2]).unwrap();
        let first = spool.seal_and_list().unwrap();
        assert_eq!(first.len(), 1);
        spool.append(&all[2..3]).unwrap();
        spool.append(&all[3..5]).unwrap();
        spool.seal_and_list().unwrap();
        spool.append(&all[5..7]).unwrap();
        assert_eq!(spool.records(), 7);

        let segments = spool.seal_and_list().unwrap();
        assert_eq!(segments.len(), 3);
        assert!(segments.windows(2).all(|w| w[0].sequence() < w[1].sequence()));
        assert_eq!(segments.iter().map(Segment::records).collect::<Vec<_>>(), [2, 3, 2]);
        let on_disk: u64 = segments.iter().map(|s| fs::metadata(s.path()).unwrap().len()).sum();
        assert_eq!(spool.bytes(), on_disk);
        assert_eq!(segments.iter().map(Segment::size_bytes).sum::<u64>(), on_disk);
        assert_eq!(read_all(&spool), all);

        // Every segment is a readable JSON-lines file: one line per record.
        let text = fs::read_to_string(segments[1].path()).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(text.starts_with(
            r#"{"topic":"audit","key":"key-2","headers":[["event-type","read"],["n","2"]],"payload":"{\"n\":2"#
        ));

        for segment in &segments {
            spool.remove(segment).unwrap();
        }
        assert!(spool.is_empty());
        assert_eq!((spool.bytes(), spool.records()), (0, 0));
        assert!(segment_files(spool.dir()).is_empty());
        assert!(spool.seal_and_list().unwrap().is_empty());

        // Removing twice, or a segment that is not sealed, is an error.
        let err = spool.remove(&segments[0]).unwrap_err();
        assert!(matches!(err, SpoolError::Io(ref e) if e.kind() == io::ErrorKind::NotFound), "{err}");
    }

    #[test]
    fn reopen_sees_old_segments_and_continues_sequence_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let all: Vec<SpoolRecord> = (0..5).map(|i| rec("audit", i)).collect();
        {
            let spool = Spool::open(dir.path(), 1 << 20).unwrap();
            spool.append(&all[0..2]).unwrap();
            spool.seal_and_list().unwrap();
            spool.append(&all[2..4]).unwrap(); // left active when the "process" ends
        }
        assert_eq!(segment_files(dir.path()), [segment_name(1), segment_name(2)]);
        assert_eq!(segment_name(1), "segment-00000000000000000001.jsonl");

        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(spool.records(), 4);
        let on_disk: u64 =
            segment_files(dir.path()).iter().map(|n| fs::metadata(dir.path().join(n)).unwrap().len()).sum();
        assert_eq!(spool.bytes(), on_disk);
        assert_eq!(spool.max_bytes(), 1 << 20);
        assert_eq!(spool.dir(), dir.path());

        spool.append(&all[4..5]).unwrap();
        let segments = spool.seal_and_list().unwrap();
        assert_eq!(segments.iter().map(Segment::sequence).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(read_all(&spool), all);
        assert_eq!(spool.records(), 5);

        // Remove everything but the newest, reopen: numbering continues after the highest left.
        spool.remove(&segments[0]).unwrap();
        spool.remove(&segments[1]).unwrap();
        drop(spool);
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(spool.records(), 1);
        spool.append(&all[0..1]).unwrap();
        let seqs: Vec<u64> = spool.seal_and_list().unwrap().iter().map(Segment::sequence).collect();
        assert_eq!(seqs, [3, 4]);
    }

    #[test]
    fn size_limit_is_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let record = rec("audit", 1);
        let len = encoded_len(&record);
        let spool = Spool::open(dir.path(), 3 * len).unwrap();

        spool.append(&[record.clone(), record.clone()]).unwrap();
        assert_eq!((spool.bytes(), spool.records()), (2 * len, 2));
        let err = spool.append(&[record.clone(), record.clone()]).unwrap_err();
        assert!(matches!(err, SpoolError::Full { limit_bytes } if limit_bytes == 3 * len), "{err}");
        assert_eq!((spool.bytes(), spool.records()), (2 * len, 2));
        assert_eq!(fs::metadata(dir.path().join(segment_name(1))).unwrap().len(), 2 * len);

        spool.append(std::slice::from_ref(&record)).unwrap();
        assert_eq!((spool.bytes(), spool.records()), (3 * len, 3));
        assert!(matches!(spool.append(std::slice::from_ref(&record)), Err(SpoolError::Full { .. })));
        assert_eq!((spool.bytes(), spool.records()), (3 * len, 3));
        assert_eq!(fs::metadata(dir.path().join(segment_name(1))).unwrap().len(), 3 * len);

        // Removing frees the space again.
        let segments = spool.seal_and_list().unwrap();
        spool.remove(&segments[0]).unwrap();
        assert_eq!((spool.bytes(), spool.records()), (0, 0));
        spool.append(&[record.clone(), record.clone(), record.clone()]).unwrap();
        assert_eq!(spool.bytes(), 3 * len);

        // A batch bigger than the whole limit is refused; a zero limit refuses everything.
        let tiny = Spool::open(dir.path().join("tiny"), 0).unwrap();
        assert!(matches!(tiny.append(std::slice::from_ref(&record)), Err(SpoolError::Full { limit_bytes: 0 })));
        assert!(tiny.is_empty());
        assert!(segment_files(tiny.dir()).is_empty());
    }

    #[test]
    fn second_open_of_a_locked_dir_fails_until_drop() {
        let dir = tempfile::tempdir().unwrap();
        let first = Spool::open(dir.path(), u64::MAX).unwrap();
        let err = Spool::open(dir.path(), u64::MAX).unwrap_err();
        assert!(matches!(err, SpoolError::Locked(ref p) if p == dir.path()), "{err}");
        assert!(err.to_string().contains("locked"));
        drop(first);
        let second = Spool::open(dir.path(), u64::MAX).unwrap();
        assert!(dir.path().join(LOCK_FILE).is_file());
        drop(second);
    }

    #[test]
    fn concurrent_appends_are_all_readable() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Arc::new(Spool::open(dir.path(), u64::MAX).unwrap());
        const THREADS: usize = 4;
        const PER_THREAD: usize = 50;
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let spool = Arc::clone(&spool);
                std::thread::spawn(move || {
                    for i in 0..PER_THREAD {
                        let r = rec(&format!("topic-{t}"), i);
                        if i % 2 == 0 {
                            spool.append(&[r]).unwrap();
                        } else {
                            spool.append(&[r.clone(), r]).unwrap();
                        }
                        if t == 0 && i % 10 == 0 {
                            spool.seal_and_list().unwrap();
                        }
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
        let expected_per_thread = PER_THREAD + PER_THREAD / 2;
        assert_eq!(spool.records(), (THREADS * expected_per_thread) as u64);
        let all = read_all(&spool);
        assert_eq!(all.len(), THREADS * expected_per_thread);
        for t in 0..THREADS {
            let topic = format!("topic-{t}");
            let mine: Vec<SpoolRecord> = all.iter().filter(|r| r.topic == topic).cloned().collect();
            let expected: Vec<SpoolRecord> = (0..PER_THREAD)
                .flat_map(|i| std::iter::repeat_n(rec(&topic, i), if i % 2 == 0 { 1 } else { 2 }))
                .collect();
            assert_eq!(mine, expected, "order of thread {t}");
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn failed_write_seals_the_segment_and_keeps_earlier_records() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), u64::MAX).unwrap();
        spool.append(&[rec("audit", 0)]).unwrap();
        let (bytes, records) = (spool.bytes(), spool.records());
        // Make the next write fail with ENOSPC.
        spool.lock().active.as_mut().unwrap().file = fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        assert!(matches!(spool.append(&[rec("audit", 1)]), Err(SpoolError::Io(_))));
        assert_eq!((spool.bytes(), spool.records()), (bytes, records));
        assert!(spool.lock().active.is_none(), "the failed segment is sealed");

        spool.append(&[rec("audit", 2)]).unwrap();
        let segments = spool.seal_and_list().unwrap();
        assert_eq!(segments.iter().map(Segment::sequence).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(read_all(&spool), [rec("audit", 0), rec("audit", 2)]);
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[cfg(unix)]
    #[test]
    fn spool_files_and_directories_are_private_by_default() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("spool");
        let spool = Spool::open(&dir, u64::MAX).unwrap();
        spool.append(&[rec("audit", 0)]).unwrap();
        let segments = spool.seal_and_list().unwrap();
        assert_eq!(mode(&dir), 0o700, "spool directory");
        assert_eq!(mode(&dir.join(LOCK_FILE)), 0o600, "lock file");
        assert_eq!(mode(segments[0].path()), 0o600, "segment");
        fs::write(dir.join("segment-x.jsonl"), "x").unwrap();
        drop(spool);
        let spool = Spool::open(&dir, u64::MAX).unwrap();
        assert_eq!(mode(spool.quarantine_dir()), 0o700, "quarantine directory");
    }

    #[cfg(unix)]
    #[test]
    fn spool_permissions_are_configurable() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("spool");
        let perms = FilePermissions { file_mode: 0o640, dir_mode: 0o750 };
        let spool = Spool::open_with_permissions(&dir, u64::MAX, perms).unwrap();
        spool.append(&[rec("audit", 0)]).unwrap();
        let segments = spool.seal_and_list().unwrap();
        assert_eq!((mode(&dir), mode(segments[0].path())), (0o750, 0o640));
    }
}
