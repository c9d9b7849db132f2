//! Readers of the target file keep reading the previous contents while a full sync
//! rebuilds it (issue 19 item 7): no `database is locked`, no half-loaded state.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use crate::full_sync::create_users;
use crate::support;

/// Rows of the source: a full sync of them takes a few seconds in a debug build.
const ROWS: i64 = 200_000;

/// One poll of a reader that opens the file anew, as an app serving a request
/// does: both targets' row counts in one read transaction.
fn poll(path: &std::path::Path) -> rusqlite::Result<(i64, i64)> {
    let connection = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    // A short wait only: a reader locked out for the length of a sync fails here.
    connection.busy_timeout(Duration::from_millis(250))?;
    connection.query_row(
        "SELECT (SELECT count(*) FROM user_main), (SELECT count(*) FROM user_profile)",
        [],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )
}

#[test]
fn a_reader_polling_through_a_full_sync_is_never_locked_out() {
    let db = support::source_db();
    create_users(&db, ROWS);
    let target = support::target_file();
    let output = support::data_sync(&db, &target.path, &["sync", "--mapping", "users"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    db.client()
        .execute(
            "INSERT INTO public.users (id, username, email)
             SELECT g, 'new_' || g, 'n' || g || '@example.org' FROM generate_series($1::bigint + 1, $1::bigint + 1000) AS g",
            &[&ROWS],
        )
        .unwrap();

    let done = AtomicBool::new(false);
    let (polls, child) = std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut polls = Vec::new();
            while !done.load(Ordering::SeqCst) {
                let started = Instant::now();
                polls.push((poll(&target.path), started.elapsed()));
                std::thread::sleep(Duration::from_millis(100));
            }
            polls
        });
        let child = support::spawn_users_sync(&db, &target.path, &["--full"])
            .wait_with_output()
            .expect("data-sync ends");
        done.store(true, Ordering::SeqCst);
        (reader.join().expect("the reader ends"), child)
    });
    assert_eq!(
        child.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&child.stderr)
    );
    let slowest = polls
        .iter()
        .map(|(_, took)| *took)
        .max()
        .unwrap_or_default();
    eprintln!("{} polls, the slowest took {slowest:?}", polls.len());
    assert!(
        polls.len() >= 3,
        "the reader polled during the run: {}",
        polls.len()
    );
    let new = ROWS + 1000;
    for (result, _) in &polls {
        match result {
            Ok(counts) => assert!(
                *counts == (ROWS, ROWS) || *counts == (new, new),
                "the old contents or the new, never a mix: {counts:?}"
            ),
            Err(error) => panic!("a reader failed during the sync: {error}"),
        }
    }
    assert_eq!(poll(&target.path).unwrap(), (new, new));
}

#[test]
fn a_reader_holding_a_snapshot_neither_stalls_a_full_sync_nor_sees_it() {
    let db = support::source_db();
    create_users(&db, 2_000);
    let target = support::target_file();
    let output = support::data_sync(&db, &target.path, &["sync", "--mapping", "users"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    db.client()
        .batch_execute(
            "INSERT INTO public.users (id, username, email)
             SELECT g, 'new_' || g, 'n' || g || '@example.org' FROM generate_series(2001, 2100) AS g",
        )
        .unwrap();

    let reader =
        Connection::open_with_flags(&target.path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let count = |connection: &Connection| -> i64 {
        connection
            .query_row("SELECT count(*) FROM user_main", [], |row| row.get(0))
            .unwrap()
    };
    assert_eq!(count(&reader), 2_000);
    // The reader's read transaction stays open for the whole run.
    let output = support::data_sync(&db, &target.path, &["sync", "--mapping", "users", "--full"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(count(&reader), 2_000, "the reader keeps its snapshot");
    reader.execute_batch("COMMIT").unwrap();
    assert_eq!(count(&reader), 2_100, "and sees the new contents after it");
}

#[test]
fn a_wait_for_another_writer_is_bounded_and_reported() {
    let db = support::source_db();
    create_users(&db, 10);
    let target = support::target_file();
    let output = support::data_sync(&db, &target.path, &["sync", "--mapping", "users"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");

    let writer = Connection::open(&target.path).unwrap();
    writer.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = Instant::now();
    let output = support::data_sync(&db, &target.path, &["sync", "--mapping", "users", "--full"]);
    let waited = started.elapsed();
    writer.execute_batch("ROLLBACK").unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("database is locked"), "{stderr}");
    assert!(
        stderr.contains("another connection holds a lock on the target file; waiting up to 5 s"),
        "{stderr}"
    );
    assert!(waited < Duration::from_secs(60), "bounded: {waited:?}");
    // Once the lock is gone, the run goes through.
    let output = support::data_sync(&db, &target.path, &["sync", "--mapping", "users", "--full"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
}
