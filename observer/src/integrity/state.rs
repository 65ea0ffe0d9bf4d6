//! The chain's state directory: the head of the chain (chain id, next sequence number, last hash, Merkle
//! frontier) kept across restarts, and the lock that keeps two processes from sharing it.
//!
//! * `chain.lock`: an exclusive advisory lock (`flock`) held while the pipeline runs; it holds the owner's pid,
//!   for the error a second process gets.
//! * `chain.json`: the head, replaced atomically (written to `chain.json.tmp`, fsynced, renamed over, directory
//!   fsynced). It is marked `"clean": false` as soon as a process takes the chain over, and `"clean": true` with
//!   the final head after the last checkpoint at shutdown. Only a clean head is continued: after a crash the head
//!   on disk may be older than the last event that left the process, and continuing from it would fork the
//!   chain, so a new chain starts and names the old one and its last known head instead.

use std::fs::{File, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Digest, MerkleTree};
use crate::config::FilePermissions;
use crate::export::files;

const LOCK_FILE: &str = "chain.lock";
const STATE_FILE: &str = "chain.json";
const TEMP_FILE: &str = "chain.json.tmp";
const VERSION: u32 = 1;

/// Why the state directory cannot be used.
#[derive(Debug)]
pub(crate) enum StateError {
    /// Another process (or pipeline) holds the lock.
    Locked { dir: PathBuf, owner: String },
    /// Creating, locking or writing the directory's files failed.
    Io { what: String, source: io::Error },
}

/// The head of a chain: what the next event links to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) chain_id: String,
    /// The last event's hash ([`Digest::GENESIS`] before the first event).
    pub(crate) last_hash: Digest,
    /// The Merkle tree over the chain's event hashes; its size is the last sequence number.
    pub(crate) tree: MerkleTree,
}

/// What was found in the state directory.
#[derive(Debug)]
pub(crate) enum Found {
    /// A head left by a clean shutdown: continue it.
    Clean(Head),
    /// Nothing usable: start a new chain. The reason goes into the new chain's first event.
    None(String),
}

/// The open state directory (its lock is held until this is dropped).
#[derive(Debug)]
pub(crate) struct StateDir {
    dir: PathBuf,
    perms: FilePermissions,
    _lock: File,
}

#[derive(Serialize, Deserialize)]
struct OnDisk {
    version: u32,
    chain_id: String,
    size: u64,
    last_hash: Digest,
    frontier: Vec<Digest>,
    clean: bool,
    pid: u32,
}

impl StateDir {
    /// Creates `dir` if needed, takes its lock and reads the head left there.
    pub(crate) fn open(dir: &Path, perms: FilePermissions) -> Result<(Self, Found), StateError> {
        let io_err = |what: &str, source| StateError::Io { what: format!("{what} {}", dir.display()), source };
        files::create_dir_all(dir, perms).map_err(|e| io_err("creating the chain state directory", e))?;
        let mut lock = files::new_file_options(perms)
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(LOCK_FILE))
            .map_err(|e| io_err("opening the lock of the chain state directory", e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut owner = String::new();
                let _ = lock.read_to_string(&mut owner);
                let owner = match owner.trim() {
                    "" => "another pipeline".to_owned(),
                    pid => format!("process {pid}"),
                };
                return Err(StateError::Locked { dir: dir.to_owned(), owner });
            }
            Err(TryLockError::Error(e)) => return Err(io_err("locking the chain state directory", e)),
        }
        let pid = std::process::id().to_string();
        let _ =
            lock.set_len(0).and_then(|()| lock.seek(SeekFrom::Start(0))).and_then(|_| lock.write_all(pid.as_bytes()));
        let state = Self { dir: dir.to_owned(), perms, _lock: lock };
        let found = state.read();
        Ok((state, found))
    }

    fn read(&self) -> Found {
        let path = self.dir.join(STATE_FILE);
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Found::None(format!("no chain state in {} yet", self.dir.display()))
            }
            Err(e) => return Found::None(format!("the chain state {} is unreadable: {e}", path.display())),
        };
        let disk: OnDisk = match serde_json::from_slice(&text) {
            Ok(d) => d,
            Err(e) => return Found::None(format!("the chain state {} is not valid: {e}", path.display())),
        };
        let head = match decode(&disk) {
            Ok(h) => h,
            Err(e) => return Found::None(format!("the chain state {} is not valid: {e}", path.display())),
        };
        if disk.clean {
            Found::Clean(head)
        } else {
            Found::None(format!(
                "the process that wrote chain {} (pid {}) did not shut down cleanly; its last persisted head (size {}) \
                 may be older than its last event",
                head.chain_id,
                disk.pid,
                head.tree.size()
            ))
        }
    }

    /// Replaces the head on disk atomically (temp file, fsync, rename, directory fsync).
    pub(crate) fn save(&self, head: &Head, clean: bool) -> Result<(), StateError> {
        let disk = OnDisk {
            version: VERSION,
            chain_id: head.chain_id.clone(),
            size: head.tree.size(),
            last_hash: head.last_hash,
            frontier: head.tree.edge().to_vec(),
            clean,
            pid: std::process::id(),
        };
        let tmp = self.dir.join(TEMP_FILE);
        let io_err = |what: &str, source| StateError::Io { what: format!("{what} {}", self.dir.display()), source };
        let write = || -> io::Result<()> {
            let json = serde_json::to_vec(&disk).map_err(io::Error::other)?;
            let mut f: File = files::new_file_options(self.perms).write(true).create(true).truncate(true).open(&tmp)?;
            f.write_all(&json)?;
            f.sync_all()?;
            std::fs::rename(&tmp, self.dir.join(STATE_FILE))?;
            sync_dir(&self.dir)
        };
        write().map_err(|e| io_err("saving the chain head in", e))
    }
}

fn decode(disk: &OnDisk) -> Result<Head, String> {
    if disk.version != VERSION {
        return Err(format!("version {} (expected {VERSION})", disk.version));
    }
    if disk.chain_id.is_empty() {
        return Err("no chain id".into());
    }
    super::validate_chain_id(&disk.chain_id).map_err(|e| e.to_string())?;
    let tree =
        MerkleTree::from_edge(disk.size, disk.frontier.clone()).ok_or("the Merkle frontier does not fit the size")?;
    if (tree.size() == 0) != (disk.last_hash == Digest::GENESIS) {
        return Err("the last hash does not fit the size".into());
    }
    Ok(Head { chain_id: disk.chain_id.clone(), last_hash: disk.last_hash, tree })
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(n: u8) -> Head {
        let mut tree = MerkleTree::new();
        for i in 0..n {
            tree.push(&Digest([i; 32]));
        }
        Head { chain_id: "c1".into(), last_hash: if n > 0 { Digest([n; 32]) } else { Digest::GENESIS }, tree }
    }

    #[test]
    fn a_clean_head_is_continued_and_anything_else_says_why_not() {
        let dir = tempfile::tempdir().unwrap();
        let sd = dir.path().join("state");
        let (state, found) = StateDir::open(&sd, FilePermissions::default()).unwrap();
        assert!(matches!(&found, Found::None(why) if why.contains("no chain state")), "{found:?}");
        state.save(&head(5), false).unwrap();
        drop(state);
        let (state, found) = StateDir::open(&sd, FilePermissions::default()).unwrap();
        assert!(matches!(&found, Found::None(why) if why.contains("did not shut down cleanly")), "{found:?}");
        state.save(&head(5), true).unwrap();
        drop(state);
        let (state, found) = StateDir::open(&sd, FilePermissions::default()).unwrap();
        assert!(matches!(&found, Found::Clean(h) if *h == head(5)), "{found:?}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(sd.join(STATE_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        drop(state);
        std::fs::write(sd.join(STATE_FILE), b"{\"version\":1,").unwrap();
        let (_state, found) = StateDir::open(&sd, FilePermissions::default()).unwrap();
        assert!(matches!(&found, Found::None(why) if why.contains("not valid")), "{found:?}");
    }

    #[test]
    fn a_second_owner_is_refused_with_the_first_ones_pid() {
        let dir = tempfile::tempdir().unwrap();
        let (_first, _) = StateDir::open(dir.path(), FilePermissions::default()).unwrap();
        let err = StateDir::open(dir.path(), FilePermissions::default()).unwrap_err();
        let pid = std::process::id().to_string();
        assert!(matches!(&err, StateError::Locked { owner, .. } if owner.contains(&pid)), "{err:?}");
    }
}
