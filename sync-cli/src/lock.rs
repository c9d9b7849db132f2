//! The advisory lock beside a target file: `app.sqlite.lock`, held (`flock`) by the
//! one process writing `app.sqlite`, and holding its process id and command, so
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

/// The lock file of `target`: its path with `.lock` appended.
pub(crate) fn path_of(target: &Path) -> PathBuf {
    let mut path = target.as_os_str().to_owned();
    path.push(".lock");
    PathBuf::from(path)
}

/// Takes the lock of `target` for `command` (`sync`, `follow`, ...).
///
/// # Errors
///
/// [`Error::Locked`] naming the holder when another process holds it;
/// [`Error::LockFile`] when the lock file cannot be opened.
pub(crate) fn acquire(target: &Path, command: &str) -> Result<TargetLock> {
    let path = path_of(target);
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
