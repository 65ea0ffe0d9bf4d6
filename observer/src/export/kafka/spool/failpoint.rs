//! Injected I/O errors for the tests (root bypasses file permissions, so "permission denied" cannot be produced
//! with `chmod`). Outside the tests, [`check`] does nothing.

use std::io;
use std::path::Path;
#[cfg(test)]
use std::path::PathBuf;
#[cfg(test)]
use std::sync::Mutex;

/// Opening a segment for reading.
pub(crate) const OPEN: &str = "open";
/// Moving a segment into the quarantine directory.
pub(crate) const RENAME: &str = "rename";

#[cfg(test)]
static FAILING: Mutex<Vec<(PathBuf, &'static str)>> = Mutex::new(Vec::new());

/// Makes `op` on `path` fail with "permission denied" from now on.
#[cfg(test)]
pub(crate) fn inject(path: &Path, op: &'static str) {
    FAILING.lock().unwrap().push((path.to_owned(), op));
}

/// Fails if `op` on `path` was [injected](inject).
#[cfg(test)]
pub(super) fn check(path: &Path, op: &str) -> io::Result<()> {
    if FAILING.lock().unwrap().iter().any(|(p, o)| p == path && *o == op) {
        return Err(io::Error::from(io::ErrorKind::PermissionDenied));
    }
    Ok(())
}

/// Never fails outside the tests.
#[cfg(not(test))]
#[inline(always)]
pub(super) fn check(_path: &Path, _op: &str) -> io::Result<()> {
    Ok(())
}
