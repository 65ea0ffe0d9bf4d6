//! The segments of a spool: naming, the one active segment, sealing, renumbering.
//!
//! At any time at most one segment is *active* (being appended to). It is sealed by
//! [`seal_and_list`](super::Spool::seal_and_list), or when the next record would take it past 16 MiB (an append
//! larger than that is split across segments; a single record larger than that gets a segment of its own). Segments found by [`open`](super::Spool::open) are
//! leftovers of a previous process and are all treated as sealed; the new process appends to a fresh segment
//! and never writes into an old one.
//!
//! Sequence numbers found on disk near `u64::MAX` (a hand-made name) are renumbered from 1 at open, in order;
//! a segment name that is taken when a new segment is created (someone put a file or directory there) is
//! reported and skipped. Neither makes an append fail.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use super::format::segment_name;
use super::{report, sync_dir, SpoolError};
use crate::config::FilePermissions;
use crate::export::files;

/// Most bytes in one segment (unless it holds a single record larger than that).
pub(super) const DEFAULT_SEGMENT_BYTES: u64 = 16 * 1024 * 1024;

/// Taken segment names skipped before an append gives up.
pub(super) const MAX_NAME_ATTEMPTS: usize = 1_000;

/// Segments found with a sequence number at or above this are renumbered from 1 at open (no real spool gets
/// near it; a hand-made or corrupted name does).
const RENUMBER_ABOVE: u64 = u64::MAX / 2;

/// A sealed segment ready for replay, as returned by [`Spool::seal_and_list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Segment {
    pub(super) path: PathBuf,
    pub(super) seq: u64,
    pub(super) size: u64,
    pub(super) records: u64,
}

impl Segment {
    /// The segment file, `<dir>/segment-{seq:020}.jsonl`.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Its sequence number (replay order: lower is older).
    pub(crate) fn sequence(&self) -> u64 {
        self.seq
    }

    /// Its size in bytes.
    #[cfg(test)]
    pub(crate) fn size_bytes(&self) -> u64 {
        self.size
    }

    /// The number of complete (newline-terminated, non-blank) lines in it, i.e. the records it holds unless
    /// some of them are corrupt.
    #[cfg(test)]
    pub(crate) fn records(&self) -> u64 {
        self.records
    }
}

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) sealed: BTreeMap<u64, Segment>,
    pub(super) active: Option<Active>,
    pub(super) next_seq: u64,
    /// Sequence numbers of segments that could be neither read nor moved aside: left where they are, never
    /// replayed or reused by this process (the next process tries again).
    pub(super) skipped: BTreeSet<u64>,
    /// Permissions of new segment files.
    pub(super) perms: FilePermissions,
}

#[derive(Debug)]
pub(super) struct Active {
    pub(super) file: File,
    pub(super) path: PathBuf,
    pub(super) seq: u64,
    pub(super) size: u64,
    pub(super) records: u64,
}

impl Inner {
    /// The highest sequence number of the segments to replay (skipped ones do not count: new names step over
    /// them in [`create_segment`](Inner::create_segment)).
    pub(super) fn highest_seq(&self) -> Option<u64> {
        self.sealed.keys().next_back().copied()
    }

    /// Creates the next segment file under a free name: a name that is taken (by a file or directory someone
    /// else put there) is reported and skipped, never an error for the append.
    pub(super) fn create_segment(&mut self, dir: &Path) -> io::Result<(File, PathBuf, u64)> {
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
    pub(super) fn renumber_if_exhausted(&mut self, dir: &Path) {
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
    pub(super) fn seal_active(&mut self) {
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

/// The spool's own record of `segment`, if it is one of its sealed segments (same number and path).
pub(super) fn sealed_segment(inner: &Inner, segment: &Segment) -> Result<Segment, SpoolError> {
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
mod tests {
    use std::fs;

    use super::*;
    use crate::export::kafka::spool::format::encode_line;
    use crate::export::kafka::spool::tests::{encoded_len, read_all, rec, segment_files};
    use crate::export::kafka::spool::{Spool, SpoolError, SpoolRecord};

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

    /// Issue 15: one append larger than the segment size is split across segments, each at most that size (a
    /// segment was sealed only between appends, so one append of a whole failed librdkafka queue made one
    /// segment of hundreds of MiB); a record larger than the size gets a segment of its own.
    #[test]
    fn an_append_larger_than_the_segment_size_is_split() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), u64::MAX).unwrap();
        let record = rec("audit", 3);
        let len = encoded_len(&record);
        spool.segment_bytes = 2 * len + len / 2;
        spool.append(std::slice::from_ref(&record)).unwrap();
        spool.append(&vec![record.clone(); 6]).unwrap();
        let huge = SpoolRecord { payload: vec![b'x'; 3 * len as usize], ..record.clone() };
        spool.append(&[huge.clone(), record.clone()]).unwrap();
        let segments = spool.seal_and_list().unwrap();
        // 1 + 6: 2, 2, 2, 1; then the huge one alone (the last segment was not empty), and the last record.
        assert_eq!(segments.iter().map(Segment::records).collect::<Vec<_>>(), [2, 2, 2, 1, 1, 1]);
        for segment in &segments[..4] {
            assert!(segment.size_bytes() <= spool.segment_bytes, "{segment:?}");
        }
        assert_eq!(segments[4].size_bytes(), encoded_len(&huge));
        assert_eq!(spool.records(), 9);
        assert_eq!(spool.bytes(), segments.iter().map(Segment::size_bytes).sum::<u64>());
        let mut expected = vec![record.clone(); 7];
        expected.extend([huge, record]);
        assert_eq!(read_all(&spool), expected);
    }

    /// An append split across segments is still all or nothing: when a later segment cannot be written, what went
    /// into the earlier ones is taken out again.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_failed_split_append_takes_out_what_it_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), u64::MAX).unwrap();
        let record = rec("audit", 3);
        let len = encoded_len(&record);
        spool.segment_bytes = 2 * len;
        spool.append(std::slice::from_ref(&record)).unwrap();
        let (bytes, records) = (spool.bytes(), spool.records());
        // The first piece fills the active segment; the next segment cannot be created (no number left).
        spool.lock().next_seq = u64::MAX;
        assert!(matches!(spool.append(&vec![record.clone(); 3]), Err(SpoolError::Io(_))));
        assert_eq!((spool.bytes(), spool.records()), (bytes, records));
        assert_eq!(fs::metadata(dir.path().join(segment_name(1))).unwrap().len(), len);
        assert_eq!(read_all(&spool), [record]);
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
}
