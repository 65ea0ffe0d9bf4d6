//! Creating the SDK's own files and directories with restricted permissions (audit events may hold personal
//! data). Shared by every component that writes files (the audit file sink and the Kafka spool).

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

use crate::config::FilePermissions;

/// Creates `dir` and its missing parents with `perms.dir_mode` (existing ones keep their permissions).
pub(crate) fn create_dir_all(dir: &Path, perms: FilePermissions) -> io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, perms.dir_mode);
    #[cfg(not(unix))]
    let _ = perms;
    builder.create(dir)
}

/// Opens `path` for reading and appending, creating it with `perms.file_mode` (and its parent directories with
/// `perms.dir_mode`) if needed.
pub(crate) fn open_append(path: &Path, perms: FilePermissions) -> io::Result<File> {
    if let Some(parent) = path.parent() {
        create_dir_all(parent, perms)?;
    }
    new_file_options(perms).read(true).append(true).create(true).open(path)
}

/// `OpenOptions` that create files with `perms.file_mode` (Unix); the caller sets how the file is opened.
pub(crate) fn new_file_options(perms: FilePermissions) -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, perms.file_mode);
    #[cfg(not(unix))]
    let _ = perms;
    options
}

/// The identity of an open file (device and inode), to notice that its path now names another file.
#[cfg(unix)]
pub(crate) fn identity(meta: &std::fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((meta.dev(), meta.ino()))
}

/// The identity of an open file (not available on this platform).
#[cfg(not(unix))]
pub(crate) fn identity(_meta: &std::fs::Metadata) -> Option<(u64, u64)> {
    None
}

/// Whether the open file has been deleted (no name left).
#[cfg(unix)]
pub(crate) fn is_unlinked(meta: &std::fs::Metadata) -> bool {
    std::os::unix::fs::MetadataExt::nlink(meta) == 0
}

/// Whether the open file has been deleted (not detectable on this platform).
#[cfg(not(unix))]
pub(crate) fn is_unlinked(_meta: &std::fs::Metadata) -> bool {
    false
}
