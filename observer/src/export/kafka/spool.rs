//! A durable local spool: the on-disk part of "the Kafka exporter never loses an event".
//!
//! Whatever the Kafka producer cannot deliver (broker down past its retries, local queue full, process exit
//! before delivery) is [appended](Spool::append) here, and re-sent oldest first once the broker is back,
//! also by the *next* process that starts with the same spool directory. This module only stores records;
//! the exporter drives replay:
//!
//! ```text
//! for segment in spool.seal_and_list()? {           // oldest first
//!     let Ok((records, skipped)) = spool.read(&segment) else {
//!         spool.quarantine(&segment, "it cannot be read")?;   // set aside, go on with the next
//!         continue;
//!     };
//!     /* produce every record, wait for delivery (or re-append what failed) */
//!     if skipped > 0 { spool.quarantine(&segment, "lines could not be decoded")?; } else { spool.remove(&segment)?; }
//! }
//! ```
//!
//! # Directory layout and format
//!
//! A spool directory holds a lock file, `spool.lock`, and segment files named
//! `segment-{seq:020}.jsonl` (`seq` is a zero-padded decimal sequence number, so lexical order is replay
//! order). Sequence numbers only grow: a process continues after the highest one it finds on disk.
//!
//! Every segment holds one record per line (`\n`-terminated), as a JSON object, human-readable on purpose so
//! that operators can inspect what is pending:
//!
//! ```text
//! {"topic":"audit","key":"doc-1","headers":[["event-type","read"]],"payload":"{\"event_id\":\"…\"}"}
//! {"topic":"audit","key":null,"headers":[],"payload_b64":"/wD+"}
//! ```
//!
//! `payload` holds the payload as text when it is valid UTF-8; otherwise the object has `payload_b64` (standard
//! base64, with padding) instead. JSON escapes newlines inside strings, so one line is exactly one record and
//! a torn write is detectable: the last line lacks its `\n`, or does not parse.
//!
//! At any time at most one segment is *active* (being appended to). It is sealed by
//! [`seal_and_list`](Spool::seal_and_list), or automatically once it reaches 16 MiB (so that a replay never
//! needs to hold more than about one such segment in memory). Segments found by [`open`](Spool::open) are
//! leftovers of a previous process and are all treated as sealed; the new process appends to a fresh segment
//! and never writes into an old one.
//!
//! # Permissions
//!
//! Segments may hold personal data: by default the spool creates its files (segments, the lock file) with mode
//! `0600` and its directories (the spool directory, `quarantine/`) with `0700`, owner only
//! ([`open_with_permissions`](Spool::open_with_permissions) sets others; the umask still applies; an existing
//! spool directory keeps its permissions).
//!
//! # Quarantine: nothing is deleted that was not re-sent
//!
//! One bad file never stops the spool. A file named `segment-…` that is not a readable regular segment
//! (unreadable, not a regular file, a symbolic link, or a name without a valid sequence number) is moved into
//! `<dir>/quarantine/` by [`open`](Spool::open), reported on stderr and as a `tracing` error, and counted
//! ([`quarantined`](Spool::quarantined)); `open` goes on with the others and does not fail because of it.
//! The exporter does the same with a segment that becomes unreadable before it is replayed, and with a segment
//! holding lines that cannot be decoded (after re-sending its other records): [`quarantine`](Spool::quarantine).
//! If a file cannot even be moved, it is left in place and skipped by this process. Quarantined files keep
//! their bytes unchanged; to re-send their records, fix them and move them back under an unused segment name
//! (records that were already re-sent are then sent again: de-duplicate on `event_id`).
//!
//! Sequence numbers found on disk near `u64::MAX` (a hand-made name) are renumbered from 1 at open, in order;
//! a segment name that is taken when a new segment is created (someone put a file or directory there) is
//! reported and skipped. Neither makes an append fail.
//!
//! # Durability (fsync policy)
//!
//! [`append`](Spool::append) writes the whole batch with one `write` call and then calls `fdatasync`
//! ([`File::sync_data`]) on the segment before it returns; when it creates a new segment file it also fsyncs
//! the directory, so that the file's name survives too. When `append` returns `Ok`, the records survive a
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
//!   after a power loss, with zero bytes). The next process treats that segment as sealed; [`read`](Spool::read)
//!   skips the torn last line with a warning and counts it (the segment is then quarantined, not deleted).
//!   Complete lines of the interrupted batch are replayed although their `append` never returned `Ok`; delivery
//!   is therefore at least once, never at most once.
//! * An I/O error during an append (disk full, failed fsync): the batch is cut off again (the segment is
//!   truncated to its previous length), the error is returned, and the segment is sealed, so that later appends
//!   go to a new file and never follow a half-written line. If even the truncation fails, the partly written
//!   batch stays in that sealed segment and may be replayed (duplicates, no loss).
//! * Two processes (or two `Spool`s in one process) must not share a directory: `open` takes an exclusive,
//!   advisory lock on `spool.lock` ([`File::try_lock`], i.e. `flock` on Unix) and fails with
//!   [`SpoolError::Locked`] if it is held. The lock is released when the `Spool` is dropped or the process
//!   dies; the lock file itself is left in place. Such locks may not work on network file systems.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::{self, File, TryLockError};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use base64::Engine as _;

use crate::config::FilePermissions;
use crate::export::files;
use serde::{Deserialize, Serialize};

/// The name of the lock file inside the spool directory.
const LOCK_FILE: &str = "spool.lock";
const SEGMENT_PREFIX: &str = "segment-";
const SEGMENT_SUFFIX: &str = ".jsonl";
/// Digits of the zero-padded sequence number (`u64::MAX` has 20).
const SEQ_DIGITS: usize = 20;
/// The active segment is sealed before an append once it has reached this size.
const DEFAULT_SEGMENT_BYTES: u64 = 16 * 1024 * 1024;
/// The quarantine directory inside the spool directory.
const QUARANTINE_DIR: &str = "quarantine";
/// Taken segment names skipped before an append gives up.
const MAX_NAME_ATTEMPTS: usize = 1_000;
/// Segments found with a sequence number at or above this are renumbered from 1 at open (no real spool gets
/// near it; a hand-made or corrupted name does).
const RENUMBER_ABOVE: u64 = u64::MAX / 2;

/// One message as it will be (re)produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolRecord {
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
pub enum SpoolError {
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

/// A sealed segment ready for replay, as returned by [`Spool::seal_and_list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    path: PathBuf,
    seq: u64,
    size: u64,
    records: u64,
}

impl Segment {
    /// The segment file, `<dir>/segment-{seq:020}.jsonl`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its sequence number (replay order: lower is older).
    #[cfg(test)]
    pub fn sequence(&self) -> u64 {
        self.seq
    }

    /// Its size in bytes.
    #[cfg(test)]
    pub fn size_bytes(&self) -> u64 {
        self.size
    }

    /// The number of complete (newline-terminated, non-blank) lines in it, i.e. the records it holds unless
    /// some of them are corrupt.
    #[cfg(test)]
    pub fn records(&self) -> u64 {
        self.records
    }
}

/// A durable, size-limited, append-only store of undelivered records (see the [module docs](self)).
///
/// `Send + Sync`: all operations take `&self` and are serialised by an internal mutex, except
/// [`read`](Spool::read), which does not block appends.
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    /// Seal the active segment before an append once it is this big.
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

#[derive(Debug)]
struct Inner {
    sealed: BTreeMap<u64, Segment>,
    active: Option<Active>,
    next_seq: u64,
    /// Sequence numbers of segments that could be neither read nor moved aside: left where they are, never
    /// replayed or reused by this process (the next process tries again).
    skipped: BTreeSet<u64>,
    /// Permissions of new segment files.
    perms: FilePermissions,
}

#[derive(Debug)]
struct Active {
    file: File,
    path: PathBuf,
    seq: u64,
    size: u64,
    records: u64,
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
    pub fn open(dir: impl Into<PathBuf>, max_bytes: u64) -> Result<Spool, SpoolError> {
        Self::open_with_permissions(dir, max_bytes, FilePermissions::default())
    }

    /// [`open`](Spool::open) with the permissions of the files and directories the spool creates (the default,
    /// used by `open`, is owner-only: files `0600`, directories `0700`; the umask still applies). An existing
    /// spool directory keeps its permissions.
    pub fn open_with_permissions(
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

    /// Appends records to the active segment and fsyncs (file data; and the directory when a new segment file
    /// is created) before returning: when it returns `Ok` the records survive a crash of the process or
    /// machine. All-or-nothing w.r.t. the size limit: if the records would take the spool over `max_bytes`,
    /// nothing is written and [`SpoolError::Full`] is returned.
    ///
    /// On an I/O error the batch is cut off again (best effort), the active segment is sealed and the error
    /// is returned: the records must be considered not spooled. Appending an empty slice does nothing.
    pub fn append(&self, records: &[SpoolRecord]) -> Result<(), SpoolError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(records.iter().map(|r| r.payload.len() + r.topic.len() + 64).sum());
        for record in records {
            encode_line(record, &mut buf)?;
        }
        let len = buf.len() as u64;
        let count = records.len() as u64;

        let mut guard = self.lock();
        let inner = &mut *guard;
        let bytes = self.bytes.load(Ordering::Relaxed);
        if bytes.checked_add(len).is_none_or(|total| total > self.max_bytes) {
            return Err(SpoolError::Full { limit_bytes: self.max_bytes });
        }
        if inner.active.as_ref().is_some_and(|a| a.size >= self.segment_bytes) {
            inner.seal_active();
        }

        let created = inner.active.is_none();
        if created {
            let (file, path, seq) = inner.create_segment(&self.dir)?;
            inner.active = Some(Active { file, path, seq, size: 0, records: 0 });
        }
        let Some(active) = inner.active.as_mut() else { unreachable!("an active segment was just created") };

        let written = active.file.write_all(&buf).and_then(|()| active.file.sync_data()).and_then(|()| {
            if created {
                sync_dir(&self.dir)
            } else {
                Ok(())
            }
        });
        match written {
            Ok(()) => {
                active.size += len;
                active.records += count;
                self.bytes.store(bytes + len, Ordering::Relaxed);
                self.records.fetch_add(count, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                let previous = active.size;
                let on_disk = match active.file.set_len(previous).and_then(|()| active.file.sync_data()) {
                    Ok(()) => previous,
                    Err(_) => fs::metadata(&active.path).map_or(previous + len, |m| m.len()),
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
                Err(e.into())
            }
        }
    }

    /// Seals the active segment (if non-empty) so the next append starts a new one, and returns all sealed
    /// segments oldest first (by sequence number).
    pub fn seal_and_list(&self) -> Result<Vec<Segment>, SpoolError> {
        let mut inner = self.lock();
        inner.seal_active();
        Ok(inner.sealed.values().cloned().collect())
    }

    /// Reads a sealed segment's records in order. Lines that cannot be decoded (corrupt lines, a torn last
    /// record left by a crash during an append) are skipped with a warning and counted (never panic); returns
    /// `(records, skipped_count)`.
    ///
    /// `skipped_count` counts the lines that could not be decoded, including a torn last line unless it holds
    /// only zero bytes or whitespace (a power loss). A last line that lacks only its newline but decodes is
    /// returned. Blank lines are ignored. A segment with skipped lines should be [quarantined](Spool::quarantine)
    /// after its records were re-sent, not removed: what could not be decoded is then kept. Does not block
    /// appends.
    pub fn read(&self, segment: &Segment) -> Result<(Vec<SpoolRecord>, usize), SpoolError> {
        failpoint::check(&segment.path, failpoint::OPEN)?;
        let data = fs::read(&segment.path)?;
        Ok(parse_segment(&segment.path, &data))
    }

    /// Deletes a sealed segment after all its records were delivered (or re-appended).
    ///
    /// Fails with an [`io::ErrorKind::NotFound`] error if `segment` is not (or no longer) a sealed segment of
    /// this spool. A segment file that was already deleted by someone else is forgotten with a warning.
    pub fn remove(&self, segment: &Segment) -> Result<(), SpoolError> {
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

    /// Takes a sealed segment out of replay without deleting what it holds: it is moved into
    /// [`quarantine_dir`](Spool::quarantine_dir) (named as before, with a `-N` suffix if that name is taken there);
    /// if it cannot be moved it is left in place and skipped by this spool (a later process tries it again).
    /// A segment file that no longer exists is forgotten. Either way the spool goes on with the other segments.
    ///
    /// Reported on stderr and as a `tracing` error with `reason`, and counted in
    /// [`quarantined`](Spool::quarantined). Use it for segments that cannot be read, and for segments with
    /// records that could not be decoded (instead of [`remove`](Spool::remove) once the others were re-sent).
    ///
    /// # Errors
    /// [`io::ErrorKind::NotFound`] if `segment` is not (or no longer) a sealed segment of this spool.
    pub fn quarantine(&self, segment: &Segment, reason: &str) -> Result<Quarantined, SpoolError> {
        let mut inner = self.lock();
        let known = sealed_segment(&inner, segment)?;
        let outcome = if fs::symlink_metadata(&known.path).is_err_and(|e| e.kind() == io::ErrorKind::NotFound) {
            self.quarantine.count();
            report(format_args!(
                "audit spool: segment {} ({} records) was deleted by someone else before it was re-sent; {reason}",
                known.path.display(),
                known.records
            ));
            Quarantined::Missing
        } else {
            match self.quarantine.set_aside(&known.path, reason) {
                Some(to) => Quarantined::Moved(to),
                None => {
                    inner.skipped.insert(known.seq);
                    Quarantined::Skipped
                }
            }
        };
        inner.sealed.remove(&known.seq);
        let bytes = self.bytes.load(Ordering::Relaxed);
        self.bytes.store(bytes.saturating_sub(known.size), Ordering::Relaxed);
        let records = self.records.load(Ordering::Relaxed);
        self.records.store(records.saturating_sub(known.records), Ordering::Relaxed);
        Ok(outcome)
    }

    /// The directory segments are moved into by [`quarantine`](Spool::quarantine): `<dir>/quarantine`
    /// (created when first needed).
    #[cfg(test)]
    pub fn quarantine_dir(&self) -> &Path {
        &self.quarantine.dir
    }

    /// How many segments (or files named like segments) this spool has taken out of replay so far: moved to
    /// the quarantine directory, skipped because they could not be moved, or found deleted.
    pub fn quarantined(&self) -> u64 {
        self.quarantine.count.load(Ordering::Relaxed)
    }

    /// Bytes currently on disk (sum of the segment file sizes).
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Records currently on disk (counted at open by scanning, plus appends, minus removals).
    pub fn records(&self) -> u64 {
        self.records.load(Ordering::Relaxed)
    }

    /// Whether no segment holds any byte.
    pub fn is_empty(&self) -> bool {
        self.bytes() == 0
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The size limit given to [`open`](Spool::open).
    #[cfg(test)]
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every update of `Inner` is completed before anything that could panic, so a poisoned lock still
        // guards consistent data.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Inner {
    /// The highest sequence number of the segments to replay (skipped ones do not count: new names step over
    /// them in [`create_segment`](Inner::create_segment)).
    fn highest_seq(&self) -> Option<u64> {
        self.sealed.keys().next_back().copied()
    }

    /// Creates the next segment file under a free name: a name that is taken (by a file or directory someone
    /// else put there) is reported and skipped, never an error for the append.
    fn create_segment(&mut self, dir: &Path) -> io::Result<(File, PathBuf, u64)> {
        for _ in 0..MAX_NAME_ATTEMPTS {
            let seq = self.next_seq;
            let Some(next) = seq.checked_add(1) else {
                return Err(io::Error::other("audit spool: segment sequence numbers are exhausted"));
            };
            self.next_seq = next;
            if self.sealed.contains_key(&seq) || self.skipped.contains(&seq) {
                continue;
            }
            let path = dir.join(segment_name(seq));
            match files::new_file_options(self.perms).append(true).create_new(true).open(&path) {
                Ok(file) => return Ok((file, path, seq)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    report(format_args!(
                        "audit spool: {} already exists (not written by this spool); using the next name",
                        path.display()
                    ));
                }
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other(format!("audit spool: no free segment name after {MAX_NAME_ATTEMPTS} attempts")))
    }

    /// When the sequence numbers found on disk leave little room to grow (a segment named with a huge number),
    /// renames the segments, in replay order, to 1, 2, 3, … so that appends can go on after them. A segment that
    /// cannot be renamed keeps its name (it may then be replayed later than its age says; nothing is lost).
    fn renumber_if_exhausted(&mut self, dir: &Path) {
        if self.highest_seq().is_none_or(|seq| seq < RENUMBER_ABOVE) {
            return;
        }
        let segments: Vec<Segment> = std::mem::take(&mut self.sealed).into_values().collect();
        let mut target = 1u64;
        for mut segment in segments {
            while target < segment.seq
                && (self.skipped.contains(&target) || fs::symlink_metadata(dir.join(segment_name(target))).is_ok())
            {
                target += 1;
            }
            if target < segment.seq {
                let path = dir.join(segment_name(target));
                match fs::rename(&segment.path, &path) {
                    Ok(()) => {
                        segment.path = path;
                        segment.seq = target;
                    }
                    Err(e) => report(format_args!(
                        "audit spool: could not renumber {} ({e}); it keeps its name",
                        segment.path.display()
                    )),
                }
            }
            target = target.max(segment.seq) + 1;
            self.sealed.insert(segment.seq, segment);
        }
        if let Err(e) = sync_dir(dir) {
            crate::diag::report!(
                WARN,
                "spool-dir-sync",
                "audit spool: directory fsync of {} after renumbering failed: {e}",
                dir.display()
            );
        }
        report(format_args!(
            "audit spool: segment numbers in {} were near the largest possible; renumbered {} segments from 1",
            dir.display(),
            self.sealed.len()
        ));
    }

    /// Moves the active segment (if any) to the sealed ones; an empty one is deleted instead.
    fn seal_active(&mut self) {
        let Some(active) = self.active.take() else {
            return;
        };
        if active.size == 0 {
            drop(active.file);
            if let Err(e) = fs::remove_file(&active.path) {
                crate::diag::report!(
                    WARN,
                    "spool-remove",
                    "audit spool: could not delete the empty segment {}: {e}",
                    active.path.display()
                );
            }
            return;
        }
        let segment = Segment { path: active.path, seq: active.seq, size: active.size, records: active.records };
        self.sealed.insert(active.seq, segment);
    }
}

/// What [`Spool::quarantine`] did with a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Quarantined {
    /// Moved to this path in the quarantine directory.
    Moved(PathBuf),
    /// Could not be moved: left in place and skipped by this spool (a later process tries it again).
    Skipped,
    /// The file no longer existed.
    Missing,
}

/// Reports a spool problem the user must hear about: on stderr (whatever subscriber is installed) and as a
/// `tracing` event.
fn report(message: fmt::Arguments<'_>) {
    crate::diag::report_loud("spool", message);
}

/// Sets files aside in `<spool>/quarantine/`, and counts them.
#[derive(Debug)]
struct Quarantine {
    dir: PathBuf,
    perms: FilePermissions,
    count: AtomicU64,
}

impl Quarantine {
    fn new(spool_dir: &Path, perms: FilePermissions) -> Self {
        Self { dir: spool_dir.join(QUARANTINE_DIR), perms, count: AtomicU64::new(0) }
    }

    fn count(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Moves `path` into the quarantine directory and reports it; `None` (reported too) if it could not be moved.
    fn set_aside(&self, path: &Path, reason: &str) -> Option<PathBuf> {
        self.count();
        match self.move_in(path) {
            Ok(to) => {
                report(format_args!(
                    "audit spool: {} cannot be replayed because {reason}; moved to {} (nothing was deleted)",
                    path.display(),
                    to.display()
                ));
                Some(to)
            }
            Err(e) => {
                report(format_args!(
                    "audit spool: {} cannot be replayed because {reason}, and could not be moved to {} ({e}); \
                     it is left in place and skipped",
                    path.display(),
                    self.dir.display()
                ));
                None
            }
        }
    }

    fn move_in(&self, path: &Path) -> io::Result<PathBuf> {
        if !self.dir.is_dir() {
            files::create_dir_all(&self.dir, self.perms)?;
            if let Some(parent) = self.dir.parent() {
                sync_dir(parent)?;
            }
        }
        let name = path.file_name().ok_or_else(|| io::Error::other("no file name"))?;
        for n in 0..MAX_NAME_ATTEMPTS {
            let mut target_name = name.to_owned();
            if n > 0 {
                target_name.push(format!("-{n}"));
            }
            let target = self.dir.join(target_name);
            if fs::symlink_metadata(&target).is_ok() {
                continue;
            }
            failpoint::check(path, failpoint::RENAME)?;
            fs::rename(path, &target)?;
            sync_dir(&self.dir)?;
            if let Some(from) = path.parent() {
                sync_dir(from)?;
            }
            return Ok(target);
        }
        Err(io::Error::other("no free name in the quarantine directory"))
    }
}

/// Injected I/O errors for the tests (root bypasses file permissions, so "permission denied" cannot be produced
/// with `chmod`).
/// The spool's own record of `segment`, if it is one of its sealed segments (same number and path).
fn sealed_segment(inner: &Inner, segment: &Segment) -> Result<Segment, SpoolError> {
    match inner.sealed.get(&segment.seq) {
        Some(known) if known.path == segment.path => Ok(known.clone()),
        _ => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} is not a sealed segment of this spool", segment.path.display()),
        )
        .into()),
    }
}

#[cfg(test)]
pub(crate) mod failpoint {
    use std::io;
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    /// Opening a segment for reading.
    pub(crate) const OPEN: &str = "open";
    /// Moving a segment into the quarantine directory.
    pub(crate) const RENAME: &str = "rename";

    static FAILING: Mutex<Vec<(PathBuf, &'static str)>> = Mutex::new(Vec::new());

    /// Makes `op` on `path` fail with "permission denied" from now on.
    pub(crate) fn inject(path: &Path, op: &'static str) {
        FAILING.lock().unwrap().push((path.to_owned(), op));
    }

    pub(super) fn check(path: &Path, op: &str) -> io::Result<()> {
        if FAILING.lock().unwrap().iter().any(|(p, o)| p == path && *o == op) {
            return Err(io::Error::from(io::ErrorKind::PermissionDenied));
        }
        Ok(())
    }
}

#[cfg(not(test))]
mod failpoint {
    use std::io;
    use std::path::Path;

    pub(super) const OPEN: &str = "open";
    pub(super) const RENAME: &str = "rename";

    #[inline(always)]
    pub(super) fn check(_path: &Path, _op: &str) -> io::Result<()> {
        Ok(())
    }
}

/// How one record is stored (serialisation side, borrowing).
#[derive(Serialize)]
struct LineOut<'a> {
    topic: &'a str,
    key: Option<&'a str>,
    headers: &'a [(String, String)],
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_b64: Option<String>,
}

/// How one record is stored (deserialisation side).
#[derive(Deserialize)]
struct LineIn {
    topic: String,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    headers: Vec<(String, String)>,
    #[serde(default)]
    payload: Option<String>,
    #[serde(default)]
    payload_b64: Option<String>,
}

/// Appends `record` as one JSON line (with its `\n`) to `buf`.
fn encode_line(record: &SpoolRecord, buf: &mut Vec<u8>) -> Result<(), SpoolError> {
    let (payload, payload_b64) = match std::str::from_utf8(&record.payload) {
        Ok(text) => (Some(text), None),
        Err(_) => (None, Some(base64::engine::general_purpose::STANDARD.encode(&record.payload))),
    };
    let line =
        LineOut { topic: &record.topic, key: record.key.as_deref(), headers: &record.headers, payload, payload_b64 };
    serde_json::to_writer(&mut *buf, &line).map_err(io::Error::from)?;
    buf.push(b'\n');
    Ok(())
}

/// Decodes one line (without its `\n`).
fn decode_line(line: &[u8]) -> Result<SpoolRecord, String> {
    let line: LineIn = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    let payload = match (line.payload, line.payload_b64) {
        (Some(text), None) => text.into_bytes(),
        (None, Some(b64)) => {
            base64::engine::general_purpose::STANDARD.decode(b64).map_err(|e| format!("payload_b64: {e}"))?
        }
        (Some(_), Some(_)) => return Err("both `payload` and `payload_b64` are present".into()),
        (None, None) => return Err("neither `payload` nor `payload_b64` is present".into()),
    };
    Ok(SpoolRecord { topic: line.topic, key: line.key, headers: line.headers, payload })
}

/// Decodes a whole segment: `(records, corrupt complete lines)`.
fn parse_segment(path: &Path, data: &[u8]) -> (Vec<SpoolRecord>, usize) {
    let mut records = Vec::new();
    let mut skipped = 0;
    let mut lines = data.split_inclusive(|&b| b == b'\n').enumerate().peekable();
    while let Some((index, line)) = lines.next() {
        let (line, terminated) = match line.strip_suffix(b"\n") {
            Some(line) => (line, true),
            None => (line, false),
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match decode_line(line) {
            Ok(record) => {
                if !terminated {
                    crate::diag::report!(
                        WARN,
                        "spool-record",
                        "audit spool: the last record of {} (line {}) lacks its newline but is complete; keeping it",
                        path.display(),
                        index + 1
                    );
                }
                records.push(record);
            }
            Err(error) if terminated => {
                skipped += 1;
                crate::diag::report!(
                    WARN,
                    "spool-record",
                    "audit spool: skipping a corrupt record in {} (line {}): {error}",
                    path.display(),
                    index + 1
                );
            }
            Err(_) => {
                debug_assert!(lines.peek().is_none());
                // Zeros (a power loss after the size was extended) hold nothing; anything else is kept by the
                // caller (it quarantines segments with skipped lines instead of deleting them).
                let content = line.iter().any(|&b| b != 0 && !b.is_ascii_whitespace());
                skipped += usize::from(content);
                crate::diag::report!(
                    WARN,
                    "spool-record",
                    "audit spool: skipping a torn last record of {} bytes in {} (line {}, an interrupted append)",
                    line.len(),
                    path.display(),
                    index + 1
                );
            }
        }
    }
    (records, skipped)
}

/// The size of a segment and its number of complete, non-blank lines, without holding it in memory.
fn scan_segment(path: &Path) -> io::Result<(u64, u64)> {
    failpoint::check(path, failpoint::OPEN)?;
    let mut file = File::open(path)?;
    let mut chunk = vec![0u8; 64 * 1024];
    let (mut size, mut lines) = (0u64, 0u64);
    let mut line_has_content = false;
    loop {
        let n = match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        size += n as u64;
        for &b in &chunk[..n] {
            if b == b'\n' {
                lines += u64::from(line_has_content);
                line_has_content = false;
            } else if !b.is_ascii_whitespace() {
                line_has_content = true;
            }
        }
    }
    Ok((size, lines))
}

fn segment_name(seq: u64) -> String {
    format!("{SEGMENT_PREFIX}{seq:0SEQ_DIGITS$}{SEGMENT_SUFFIX}")
}

/// The sequence number of a file named `segment-{seq:020}.jsonl`.
fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(SEGMENT_PREFIX)?.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != SEQ_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
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
    use super::*;
    use std::sync::Arc;

    fn rec(topic: &str, i: usize) -> SpoolRecord {
        SpoolRecord {
            topic: topic.to_string(),
            key: i.is_multiple_of(2).then(|| format!("key-{i}")),
            headers: vec![("event-type".into(), "read".into()), ("n".into(), i.to_string())],
            payload: format!("{{\"n\":{i},\"text\":\"line one\\nline two\"}}\n").into_bytes(),
        }
    }

    fn encoded_len(record: &SpoolRecord) -> u64 {
        let mut buf = Vec::new();
        encode_line(record, &mut buf).unwrap();
        buf.len() as u64
    }

    fn read_all(spool: &Spool) -> Vec<SpoolRecord> {
        let mut out = Vec::new();
        for segment in spool.seal_and_list().unwrap() {
            let (records, skipped) = spool.read(&segment).unwrap();
            assert_eq!(skipped, 0);
            out.extend(records);
        }
        out
    }

    fn segment_files(dir: &Path) -> Vec<String> {
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
    fn non_utf8_payload_round_trips_via_base64() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), u64::MAX).unwrap();
        let binary =
            SpoolRecord { topic: "t".into(), key: None, headers: vec![], payload: vec![0xff, 0x00, 0xfe, b'\n'] };
        let empty = SpoolRecord { topic: "t".into(), key: Some(String::new()), headers: vec![], payload: vec![] };
        spool.append(&[binary.clone(), empty.clone()]).unwrap();
        let segments = spool.seal_and_list().unwrap();
        let text = fs::read_to_string(segments[0].path()).unwrap();
        assert_eq!(text, "{\"topic\":\"t\",\"key\":null,\"headers\":[],\"payload_b64\":\"/wD+Cg==\"}\n{\"topic\":\"t\",\"key\":\"\",\"headers\":[],\"payload\":\"\"}\n");
        assert_eq!(spool.read(&segments[0]).unwrap(), (vec![binary, empty], 0));
    }

    #[test]
    fn torn_tail_is_skipped_and_corrupt_lines_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let all: Vec<SpoolRecord> = (0..3).map(|i| rec("audit", i)).collect();
        {
            let spool = Spool::open(dir.path(), u64::MAX).unwrap();
            spool.append(&all).unwrap();
        }
        // Rewrite the segment by hand: garbage lines in the middle, a blank line, and half a record at the end.
        let path = dir.path().join(segment_name(1));
        let text = fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let torn = &lines[0][..lines[0].len() / 2];
        let bad_b64 = r#"{"topic":"t","key":null,"headers":[],"payload_b64":"***"}"#;
        let both = r#"{"topic":"t","key":null,"headers":[],"payload":"a","payload_b64":"YQ=="}"#;
        let doctored =
            format!("{}\nnot json at all\n{}\n{bad_b64}\n\n{both}\n{}\n{torn}", lines[0], lines[1], lines[2]);
        fs::write(&path, &doctored).unwrap();

        let spool = Spool::open(dir.path(), u64::MAX).unwrap();
        assert_eq!(spool.bytes(), doctored.len() as u64);
        let segments = spool.seal_and_list().unwrap();
        assert_eq!(segments.len(), 1);
        let (records, skipped) = spool.read(&segments[0]).unwrap();
        assert_eq!(records, all);
        assert_eq!(skipped, 4, "three corrupt lines and the torn tail");

        // A last line that lacks only its newline is complete and kept.
        fs::write(&path, text.trim_end_matches('\n')).unwrap();
        assert_eq!(spool.read(&segments[0]).unwrap(), (all.clone(), 0));
        // Zero bytes at the end (power loss) are a torn tail too; pure garbage never panics.
        fs::write(&path, format!("{text}\0\0\0\0")).unwrap();
        assert_eq!(spool.read(&segments[0]).unwrap(), (all, 0));
        fs::write(&path, [0xffu8, b'{', b'\n', b'"', b'\n', 0x80]).unwrap();
        assert_eq!(spool.read(&segments[0]).unwrap(), (vec![], 3));
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

    #[test]
    fn empty_active_segment_is_not_listed_or_created() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), u64::MAX).unwrap();
        assert!(spool.seal_and_list().unwrap().is_empty());
        spool.append(&[]).unwrap();
        assert!(spool.seal_and_list().unwrap().is_empty());
        assert!(segment_files(dir.path()).is_empty());

        spool.append(&[rec("audit", 0)]).unwrap();
        assert_eq!(spool.seal_and_list().unwrap().len(), 1);
        assert_eq!(spool.seal_and_list().unwrap().len(), 1);
        assert_eq!(segment_files(dir.path()).len(), 1);
    }

    #[test]
    fn large_active_segment_is_sealed_automatically() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), u64::MAX).unwrap();
        let record = rec("audit", 3);
        spool.segment_bytes = 2 * encoded_len(&record);
        for _ in 0..5 {
            spool.append(std::slice::from_ref(&record)).unwrap();
        }
        // Sealed after reaching 2 records: 2 + 2 + 1.
        let segments = spool.seal_and_list().unwrap();
        assert_eq!(segments.iter().map(Segment::records).collect::<Vec<_>>(), [2, 2, 1]);
        assert_eq!(read_all(&spool).len(), 5);
    }

    #[test]
    fn a_taken_segment_name_is_skipped_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), u64::MAX).unwrap();
        // Someone puts a directory and a file where the next segments would go.
        fs::create_dir(dir.path().join(segment_name(1))).unwrap();
        fs::write(dir.path().join(segment_name(2)), "not mine\n").unwrap();
        spool.append(&[rec("audit", 1)]).unwrap();
        let segments = spool.seal_and_list().unwrap();
        assert_eq!(segments.iter().map(Segment::sequence).collect::<Vec<_>>(), [3]);
        assert_eq!(read_all(&spool), [rec("audit", 1)]);
        assert_eq!(fs::read_to_string(dir.path().join(segment_name(2))).unwrap(), "not mine\n");
    }

    #[test]
    fn a_segment_named_with_the_largest_sequence_number_does_not_stop_appends() {
        let dir = tempfile::tempdir().unwrap();
        let mut line = Vec::new();
        encode_line(&rec("audit", 0), &mut line).unwrap();
        fs::write(dir.path().join(segment_name(u64::MAX)), &line).unwrap();
        fs::write(dir.path().join(segment_name(u64::MAX - 1)), &line).unwrap();
        let spool = Spool::open(dir.path(), u64::MAX).unwrap();
        for i in 1..4 {
            spool.append(&[rec("audit", i)]).unwrap();
            spool.seal_and_list().unwrap();
        }
        // Renumbered in order, then appended after them: replay order is still oldest first.
        let seqs: Vec<u64> = spool.seal_and_list().unwrap().iter().map(Segment::sequence).collect();
        assert_eq!(seqs, [1, 2, 3, 4, 5]);
        let expected = [rec("audit", 0), rec("audit", 0), rec("audit", 1), rec("audit", 2), rec("audit", 3)];
        assert_eq!(read_all(&spool), expected);
        drop(spool);
        let spool = Spool::open(dir.path(), u64::MAX).unwrap();
        assert_eq!(read_all(&spool), expected);
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

    #[test]
    fn foreign_files_are_ignored_and_odd_segment_names_quarantined() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("notes.txt"), "hello\n").unwrap();
        fs::write(dir.path().join("segment-1.jsonl"), "x\n").unwrap();
        fs::write(dir.path().join("segment-99999999999999999999.jsonl"), "y\n").unwrap();
        fs::create_dir(dir.path().join(segment_name(7))).unwrap();
        let spool = Spool::open(dir.path(), u64::MAX).unwrap();
        assert!(spool.is_empty());
        assert_eq!(spool.quarantined(), 3);
        assert!(dir.path().join("notes.txt").is_file());
        let q = spool.quarantine_dir().to_owned();
        assert_eq!(fs::read_to_string(q.join("segment-1.jsonl")).unwrap(), "x\n");
        assert_eq!(fs::read_to_string(q.join("segment-99999999999999999999.jsonl")).unwrap(), "y\n");
        assert!(q.join(segment_name(7)).is_dir());
        spool.append(&[rec("audit", 0)]).unwrap();
        assert_eq!(spool.seal_and_list().unwrap()[0].sequence(), 1);
        assert_eq!(parse_segment_name(&segment_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_segment_name("segment-0000000000000000000a.jsonl"), None);
    }

    /// Root (the test machine's user) bypasses file permissions: "permission denied" is injected.
    #[test]
    fn unreadable_segments_at_open_are_quarantined_and_the_rest_opened() {
        let dir = tempfile::tempdir().unwrap();
        let all: Vec<SpoolRecord> = (0..4).map(|i| rec("audit", i)).collect();
        {
            let spool = Spool::open(dir.path(), u64::MAX).unwrap();
            for r in &all {
                spool.append(std::slice::from_ref(r)).unwrap();
                spool.seal_and_list().unwrap();
            }
        }
        // 1: permission denied; 2: permission denied and cannot be moved; 3: a dangling symbolic link.
        failpoint::inject(&dir.path().join(segment_name(1)), failpoint::OPEN);
        failpoint::inject(&dir.path().join(segment_name(2)), failpoint::OPEN);
        failpoint::inject(&dir.path().join(segment_name(2)), failpoint::RENAME);
        fs::remove_file(dir.path().join(segment_name(3))).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(dir.path().join("gone"), dir.path().join(segment_name(3))).unwrap();

        let spool = Spool::open(dir.path(), u64::MAX).expect("one bad file never fails open");
        assert_eq!(spool.quarantined(), if cfg!(unix) { 3 } else { 2 });
        assert_eq!(spool.records(), 1);
        assert_eq!(read_all(&spool), [all[3].clone()]);
        let q = spool.quarantine_dir();
        assert_eq!(fs::read(q.join(segment_name(1))).unwrap().len() as u64, encoded_len(&all[0]));
        // The one that could not be moved stays where it was, is not replayed, and its name is not reused.
        assert!(dir.path().join(segment_name(2)).is_file());
        spool.append(&[rec("audit", 9)]).unwrap();
        let seqs: Vec<u64> = spool.seal_and_list().unwrap().iter().map(Segment::sequence).collect();
        assert_eq!(seqs, [4, 5]);
    }

    #[test]
    fn an_unmovable_unreadable_segment_with_the_largest_number_does_not_stop_appends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(segment_name(u64::MAX));
        fs::write(&path, "{}\n").unwrap();
        failpoint::inject(&path, failpoint::OPEN);
        failpoint::inject(&path, failpoint::RENAME);
        let spool = Spool::open(dir.path(), u64::MAX).unwrap();
        spool.append(&[rec("audit", 1)]).unwrap();
        assert_eq!(read_all(&spool), [rec("audit", 1)]);
        assert!(path.is_file(), "left in place");
    }

    #[test]
    fn quarantine_takes_a_segment_out_of_replay_without_deleting_it() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), u64::MAX).unwrap();
        for i in 0..3 {
            spool.append(&[rec("audit", i)]).unwrap();
            spool.seal_and_list().unwrap();
        }
        let segments = spool.seal_and_list().unwrap();
        let first_bytes = fs::read(segments[0].path()).unwrap();
        failpoint::inject(segments[0].path(), failpoint::OPEN);
        assert!(spool.read(&segments[0]).is_err());

        let moved = spool.quarantine(&segments[0], "it cannot be read").unwrap();
        let Quarantined::Moved(to) = moved else { panic!("{moved:?}") };
        assert_eq!(fs::read(&to).unwrap(), first_bytes);
        assert_eq!(spool.records(), 2);
        assert_eq!(spool.bytes(), segments[1].size_bytes() + segments[2].size_bytes());
        // Deleted by someone else: forgotten, reported, counted.
        fs::remove_file(segments[1].path()).unwrap();
        assert_eq!(spool.quarantine(&segments[1], "it cannot be read").unwrap(), Quarantined::Missing);
        assert_eq!(spool.seal_and_list().unwrap(), [segments[2].clone()]);
        assert_eq!(spool.quarantined(), 2);
        assert!(spool.quarantine(&segments[0], "twice").is_err());
        // A second file with the same name in quarantine gets a suffix.
        let again = Spool::open(dir.path().join("other"), u64::MAX).unwrap();
        fs::create_dir_all(again.quarantine_dir()).unwrap();
        fs::write(again.quarantine_dir().join(segment_name(1)), "older").unwrap();
        again.append(&[rec("audit", 0)]).unwrap();
        let s = again.seal_and_list().unwrap();
        let Quarantined::Moved(to) = again.quarantine(&s[0], "test").unwrap() else { panic!() };
        assert!(to.to_string_lossy().ends_with(".jsonl-1"), "{}", to.display());
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    /// A8: segments may hold personal data: owner-only by default.
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
