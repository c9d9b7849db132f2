//! Target faults: a locked, read-only, foreign or full target gives one clear message
//! and keeps its previous contents.

use std::path::Path;
use std::process::Command;

use rusqlite::types::Value;

use crate::full_sync::create_users;
use crate::support::{self, TestDb};

fn contents(target: &Path) -> Vec<Vec<Value>> {
    support::sqlite_rows(
        target,
        "SELECT id, username, email FROM user_main ORDER BY id",
    )
}

/// A database with 100 users synced into a fresh target.
fn synced() -> (TestDb, support::TargetFile, Vec<Vec<Value>>) {
    let db = support::source_db();
    create_users(&db, 100);
    let target = support::target_file();
    support::sync::<mappings::Users>(&db, &target.path).unwrap();
    db.client()
        .batch_execute("UPDATE public.users SET username = 'changed'")
        .unwrap();
    let before = contents(&target.path);
    (db, target, before)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout == b"0\n")
}

/// Makes `path` unwritable even for root (`chattr +i`), or by mode for others.
pub(crate) struct ReadOnly<'a>(&'a Path);

impl<'a> ReadOnly<'a> {
    pub(crate) fn new(path: &'a Path) -> Self {
        if is_root() {
            let status = Command::new("chattr").arg("+i").arg(path).status().unwrap();
            assert!(status.success(), "chattr +i {}", path.display());
        } else {
            let mode = if path.is_dir() { 0o555 } else { 0o444 };
            std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode))
                .unwrap();
        }
        ReadOnly(path)
    }
}

impl Drop for ReadOnly<'_> {
    fn drop(&mut self) {
        if is_root() {
            let _ = Command::new("chattr").arg("-i").arg(self.0).status();
        } else {
            let mode = if self.0.is_dir() { 0o755 } else { 0o644 };
            let _ = std::fs::set_permissions(
                self.0,
                std::os::unix::fs::PermissionsExt::from_mode(mode),
            );
        }
    }
}

#[test]
fn a_target_locked_by_another_writer() {
    let (db, target, before) = synced();
    let other = rusqlite::Connection::open(&target.path).unwrap();
    other
        .execute_batch("BEGIN IMMEDIATE; INSERT INTO user_main VALUES (-1, 'other', 'writer');")
        .unwrap();
    let error = support::sync::<mappings::Users>(&db, &target.path)
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        format!("target {}: database is locked", target.path.display())
    );
    other.execute_batch("ROLLBACK").unwrap();
    assert_eq!(contents(&target.path), before);
}

#[test]
fn a_read_only_target_file() {
    let (db, target, before) = synced();
    // Checkpoint, so the data is all in the main file.
    support::checkpoint(&target.path);
    let error = {
        let _read_only = ReadOnly::new(&target.path);
        support::sync::<mappings::Users>(&db, &target.path)
            .unwrap_err()
            .to_string()
    };
    assert!(
        error.starts_with(&format!("target {}: ", target.path.display())),
        "{error}"
    );
    assert!(error.contains("readonly database"), "{error}");
    assert_eq!(contents(&target.path), before);
}

#[test]
fn a_read_only_target_directory() {
    let db = support::source_db();
    create_users(&db, 3);
    let target = support::target_file();
    let directory = target.path.parent().unwrap().to_owned();
    let error = {
        let _read_only = ReadOnly::new(&directory);
        support::sync::<mappings::Users>(&db, &target.path)
            .unwrap_err()
            .to_string()
    };
    assert!(
        error.starts_with(&format!("target {}: ", target.path.display())),
        "{error}"
    );
    assert!(error.contains("unable to open database file"), "{error}");
    assert!(!target.path.exists());
}

#[test]
fn a_target_that_is_not_a_sqlite_database() {
    let db = support::source_db();
    create_users(&db, 3);
    let target = support::target_file();
    let garbage = b"this is a spreadsheet, not a database\n".repeat(200);
    std::fs::write(&target.path, &garbage).unwrap();
    let error = support::sync::<mappings::Users>(&db, &target.path)
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        format!("target {}: file is not a database", target.path.display())
    );
    assert_eq!(std::fs::read(&target.path).unwrap(), garbage);
}

#[test]
fn a_full_disk() {
    let (db, target, before) = synced();
    support::checkpoint(&target.path);
    // Ten times the rows, with long text, cannot fit in the 2 MiB this run may write.
    db.client()
        .batch_execute(
            "INSERT INTO public.users (id, username, email)
             SELECT g, repeat('x', 500), repeat('y', 500) FROM generate_series(1000, 20000) g",
        )
        .unwrap();
    let output = Command::new("sh")
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 4096; exec \"$0\" sync --mapping users")
        .arg(env!("CARGO_BIN_EXE_data-sync"))
        .env("DATA_SYNC_SOURCE", db.url())
        .env("DATA_SYNC_TARGET", &target.path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The file size limit makes write(2) fail with EFBIG, which SQLite reports as
    // an I/O error (a real full disk, ENOSPC, as "database or disk is full"): a
    // fault of the file, not of the row being written.
    assert!(
        stderr.starts_with(&format!("error: target {}: ", target.path.display())),
        "{stderr}"
    );
    assert!(stderr.trim_end().ends_with("disk I/O error"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(contents(&target.path), before);
}
