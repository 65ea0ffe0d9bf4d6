//! Setting aside what cannot be replayed: nothing is deleted that was not re-sent.
//!
//! One bad file never stops the spool. A file named `segment-…` that is not a readable regular segment
//! (unreadable, not a regular file, a symbolic link, or a name without a valid sequence number) is moved into
//! `<dir>/quarantine/` by [`open`](super::Spool::open), reported on stderr and as a `tracing` error, and counted
//! ([`quarantined`](super::Spool::quarantined)); `open` goes on with the others and does not fail because of it.
//! The exporter does the same with a segment that becomes unreadable before it is replayed, and with a segment
//! holding lines that cannot be decoded (after re-sending its other records): [`quarantine`](super::Spool::quarantine).
//! If a file cannot even be moved, it is left in place and skipped by this process. Quarantined files keep
//! their bytes unchanged; to re-send their records, fix them and move them back under an unused segment name
//! (records that were already re-sent are then sent again: de-duplicate on `event_id`).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::segments::{sealed_segment, Segment, MAX_NAME_ATTEMPTS};
use super::{failpoint, report, sync_dir, Spool, SpoolError};
use crate::config::FilePermissions;
use crate::export::files;

/// The quarantine directory inside the spool directory.
const QUARANTINE_DIR: &str = "quarantine";

impl Spool {
    /// Takes a sealed segment out of replay without deleting what it holds: it is moved into
    /// [`quarantine_dir`](super::Spool::quarantine_dir) (named as before, with a `-N` suffix if that name is taken there);
    /// if it cannot be moved it is left in place and skipped by this spool (a later process tries it again).
    /// A segment file that no longer exists is forgotten. Either way the spool goes on with the other segments.
    ///
    /// Reported on stderr and as a `tracing` error with `reason`, and counted in
    /// [`quarantined`](super::Spool::quarantined). Use it for segments that cannot be read, and for segments with
    /// records that could not be decoded (instead of [`remove`](super::Spool::remove) once the others were re-sent).
    ///
    /// # Errors
    /// [`io::ErrorKind::NotFound`] if `segment` is not (or no longer) a sealed segment of this spool.
    pub(crate) fn quarantine(&self, segment: &Segment, reason: &str) -> Result<Quarantined, SpoolError> {
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

    /// The directory segments are moved into by [`quarantine`](super::Spool::quarantine): `<dir>/quarantine`
    /// (created when first needed).
    #[cfg(test)]
    pub(crate) fn quarantine_dir(&self) -> &Path {
        &self.quarantine.dir
    }

    /// How many segments (or files named like segments) this spool has taken out of replay so far: moved to
    /// the quarantine directory, skipped because they could not be moved, or found deleted.
    pub(crate) fn quarantined(&self) -> u64 {
        self.quarantine.count.load(Ordering::Relaxed)
    }
}

/// What [`Spool::quarantine`] did with a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum Quarantined {
    /// Moved to this path in the quarantine directory.
    Moved(PathBuf),
    /// Could not be moved: left in place and skipped by this spool (a later process tries it again).
    Skipped,
    /// The file no longer existed.
    Missing,
}

/// Sets files aside in `<spool>/quarantine/`, and counts them.
#[derive(Debug)]
pub(super) struct Quarantine {
    dir: PathBuf,
    perms: FilePermissions,
    count: AtomicU64,
}

impl Quarantine {
    pub(super) fn new(spool_dir: &Path, perms: FilePermissions) -> Self {
        Self { dir: spool_dir.join(QUARANTINE_DIR), perms, count: AtomicU64::new(0) }
    }

    fn count(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Moves `path` into the quarantine directory and reports it; `None` (reported too) if it could not be moved.
    pub(super) fn set_aside(&self, path: &Path, reason: &str) -> Option<PathBuf> {
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

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::export::kafka::spool::format::{parse_segment_name, segment_name};
    use crate::export::kafka::spool::tests::{encoded_len, read_all, rec};
    use crate::export::kafka::spool::SpoolRecord;

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
}
