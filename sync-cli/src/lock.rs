//! The advisory lock beside a target file: `app.sqlite.lock`, held (`flock`) by the
//! one process writing `app.sqlite` (however it is named: relative, through `..` or
//! a symbolic link, the lock is beside the file itself), and holding its process id and command, so
//! that a second writer stops at once with an error that names the first instead
//! of waiting on SQLite's locks or interleaving runs.
//!
//! The lock is the operating system's: it goes with the process, however it ends,
//! and a lock file left behind locks nothing. The file itself is never removed
//! (removing it would let a third process lock a new file while the second still
//! holds the old one).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A held lock; dropping it releases it.
#[derive(Debug)]
pub(crate) struct TargetLock {
    _file: File,
}

/// The lock file of `target`: the path of the file itself (absolute, without `.`,
/// `..` or symbolic links, so that every name of one file finds one lock) with
/// `.lock` appended.
///
/// # Errors
///
/// The directory of `target` does not exist or cannot be read.
pub(crate) fn path_of(target: &Path) -> std::io::Result<PathBuf> {
    let mut path = real_path(target)?.into_os_string();
    path.push(".lock");
    Ok(PathBuf::from(path))
}

/// The path of the file `target` names, which need not exist yet: `target`
/// canonicalized where it exists, else its canonical directory and its name, after
/// following a symbolic link that points nowhere yet (SQLite creates the file
/// where the link points).
fn real_path(target: &Path) -> std::io::Result<PathBuf> {
    let mut target = target.to_owned();
    // As many links as the kernel follows before it gives up (ELOOP).
    for _ in 0..40 {
        match std::fs::canonicalize(&target) {
            Ok(path) => return Ok(path),
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
            Err(_) => {}
        }
        let directory = match target.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
            _ => PathBuf::from("."),
        };
        let Some(name) = target.file_name() else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the target names no file",
            ));
        };
        let directory = std::fs::canonicalize(directory)?;
        match std::fs::read_link(&target) {
            // A link to a file not created yet.
            Ok(link) => target = directory.join(link),
            Err(_) => return Ok(directory.join(name)),
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        "too many levels of symbolic links",
    ))
}

/// Whether `target` is a fan-out template (`out/{tenant_id}.sqlite`) rather than
/// one file.
pub(crate) fn is_template(target: &Path) -> bool {
    target.to_string_lossy().contains('{')
}

/// Takes the lock of `target` for `command` (`sync`, `follow`, ...).
///
/// # Errors
///
/// [`Error::Locked`] naming the holder when another process holds it;
/// [`Error::LockFile`] when the lock file cannot be opened.
pub(crate) fn acquire(target: &Path, command: &str) -> Result<TargetLock> {
    let path = path_of(target).map_err(|source| Error::LockFile {
        path: target.to_owned(),
        source,
    })?;
    acquire_at(path, target, command)
}

/// Takes the locks of a fan-out template (`out/{tenant_id}.sqlite`) for the runs of
/// `mappings` picking `selection` (`""` for every partition, `+shard-I-of-N`,
/// `+partition-VALUE`): one lock file per mapping and selection in the template's
/// directory (the longest one of its leading components without a placeholder,
/// made if missing), `.data-sync-lock-<mapping><selection>`. A second run of the
/// same mapping, template and selection stops at once; the workers of different
/// shards run side by side.
///
/// # Errors
///
/// [`Error::Locked`] naming the template and the holder when another process
/// holds one; [`Error::LockFile`] when a lock file cannot be made.
pub(crate) fn acquire_template(
    template: &Path,
    mappings: &[&str],
    selection: &str,
    command: &str,
) -> Result<Vec<TargetLock>> {
    let mut directory = PathBuf::new();
    if let Some(parent) = template.parent() {
        for component in parent.components() {
            if component.as_os_str().to_string_lossy().contains('{') {
                break;
            }
            directory.push(component);
        }
    }
    if directory.as_os_str().is_empty() {
        directory.push(".");
    }
    std::fs::create_dir_all(&directory).map_err(|source| Error::LockFile {
        path: directory.clone(),
        source,
    })?;
    let directory = std::fs::canonicalize(&directory).map_err(|source| Error::LockFile {
        path: directory.clone(),
        source,
    })?;
    mappings
        .iter()
        .map(|mapping| {
            let name = format!(
                ".data-sync-lock-{}{selection}",
                sync_runtime::partition_file_name(mapping.as_bytes())
            );
            acquire_at(directory.join(name), template, command)
        })
        .collect()
}

/// Takes the lock file `path` of `target` for `command`.
fn acquire_at(path: PathBuf, target: &Path, command: &str) -> Result<TargetLock> {
    let lock_error = |source| Error::LockFile {
        path: path.clone(),
        source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(lock_error)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(Error::Locked {
                target: target.to_owned(),
                holder: if holder.is_empty() {
                    "another process".to_owned()
                } else {
                    holder.to_owned()
                },
            });
        }
        Err(std::fs::TryLockError::Error(error)) => return Err(lock_error(error)),
    }
    let holder = format!("process {} (`data-sync {command}`)", std::process::id());
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(holder.as_bytes()))
        .and_then(|()| file.flush())
        .map_err(lock_error)?;
    Ok(TargetLock { _file: file })
}
