//! Change capture (`capture: log`) against the throwaway PostgreSQL's logical
//! decoding: the first copy, drains of every kind of change, exactly once.

use std::path::Path;

use crate::generated::UsersLog;
use rusqlite::types::Value;
use sync_runtime::{SourceConfig, Summary, SyncOptions};

use crate::support::{self, TestDb};

/// A source database with the reference `users` table and `rows` rows; every third
/// row's `bio` is large and incompressible, so PostgreSQL stores it out of line
/// (TOAST) and an update of another column sends it as "unchanged".
pub fn users_source(rows: i64) -> TestDb {
    let db = support::source_db();
    let mut client = db.client();
    client.batch_execute(testkit::reference::USERS_DDL).unwrap();
    client.batch_execute(BIG_TEXT).unwrap();
    client
        .execute(
            "INSERT INTO public.users (id, username, email, bio, avatar_url)
             SELECT i, 'user' || i, 'user' || i || '@example.com',
                    CASE WHEN i % 3 = 0 THEN big_text(i) ELSE 'bio ' || i END,
                    CASE WHEN i % 2 = 0 THEN 'https://example.com/' || i END
             FROM generate_series(1, $1::bigint) AS i",
            &[&rows],
        )
        .unwrap();
    db
}

/// `big_text(seed)`: 32 KiB of hex digits that do not compress below TOAST's
/// threshold.
pub const BIG_TEXT: &str = "CREATE FUNCTION big_text(seed bigint) RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT string_agg(md5(seed::text || ':' || i::text), '') FROM generate_series(1, 1000) AS i $$";

/// One run of `users_log` through the library, as `data-sync sync` runs it.
pub fn sync_log(db: &TestDb, target: &Path) -> sync_runtime::Result<Summary> {
    let source = SourceConfig::parse(&db.url()).expect("test URL parses");
    sync_runtime::sync::<UsersLog>(&source, target, &SyncOptions::default())
}

/// The target's users, both tables joined, by key.
pub fn target_live_users(target: &Path) -> Vec<Vec<Value>> {
    let counts = support::sqlite_rows(
        target,
        "SELECT (SELECT count(*) FROM live_user), (SELECT count(*) FROM live_user_profile)",
    );
    assert_eq!(
        counts[0][0], counts[0][1],
        "both targets hold the same rows"
    );
    support::sqlite_rows(
        target,
        "SELECT m.id, m.username, m.email, p.bio, p.avatar_url
         FROM live_user AS m JOIN live_user_profile AS p ON p.id = m.id ORDER BY m.id",
    )
}

/// Asserts that the target's users equal the source's (not soft-deleted) exactly,
/// naming the keys that differ (values abbreviated) when they do not.
#[track_caller]
pub fn assert_same_users(db: &TestDb, target: &Path) {
    let source = support::source_users(db);
    let target = target_live_users(target);
    if source == target {
        return;
    }
    let short = |row: &Vec<Value>| {
        row.iter()
            .map(|value| {
                let text = format!("{value:?}");
                if text.len() > 40 {
                    format!("{}..", &text[..40])
                } else {
                    text
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut differences = Vec::new();
    for row in &source {
        if !target.contains(row) {
            differences.push(format!("source only: {}", short(row)));
        }
    }
    for row in &target {
        if !source.contains(row) {
            differences.push(format!("target only: {}", short(row)));
        }
    }
    panic!(
        "target differs from the source ({} vs {} rows):\n{}",
        source.len(),
        target.len(),
        differences.join("\n")
    );
}

/// The stored capture position of `users_log`.
/// `None` also while the file or its state table does not exist yet.
pub fn stored_position(target: &Path) -> Option<String> {
    let connection = rusqlite::Connection::open(target).ok()?;
    connection
        .query_row(
            "SELECT capture_position FROM _data_sync_state WHERE mapping = 'users_log'",
            [],
            |row| row.get::<_, Option<String>>(0),
        )
        .ok()
        .flatten()
}

/// The names of the replication slots on the test database.
pub fn slots(db: &TestDb) -> Vec<String> {
    db.client()
        .query(
            "SELECT slot_name::text FROM pg_replication_slots WHERE database = current_database()
             ORDER BY 1",
            &[],
        )
        .unwrap()
        .into_iter()
        .map(|row| row.get(0))
        .collect()
}

#[test]
fn first_run_copies_and_later_runs_apply_every_kind_of_change() {
    let db = users_source(300);
    let target = support::target_file();
    let summary = sync_log(&db, &target.path).unwrap();
    assert_eq!(summary.mode, "full");
    assert_eq!(summary.rows_read, 300);
    assert_same_users(&db, &target.path);
    let first = stored_position(&target.path).expect("a position is stored");
    assert_eq!(slots(&db).len(), 1, "one slot for the target file");

    let mut client = db.client();
    client
        .batch_execute(
            "INSERT INTO public.users (id, username, email) VALUES (1001, 'new', 'new@example.com');
             UPDATE public.users SET username = 'renamed' || id WHERE id IN (3, 6, 7);
             UPDATE public.users SET email = 'moved@example.com', id = 2001 WHERE id = 9;
             UPDATE public.users SET id = 2002 WHERE id = 10;
             DELETE FROM public.users WHERE id IN (1, 2);
             UPDATE public.users SET deleted_at = now() WHERE id = 4;
             BEGIN; UPDATE public.users SET username = 'rolled back'; ROLLBACK;
             BEGIN;
             INSERT INTO public.users (id, username, email, bio) VALUES (1002, 'x', 'y', big_text(7));
             UPDATE public.users SET avatar_url = 'changed' WHERE id = 1002;
             DELETE FROM public.users WHERE id = 5;
             COMMIT;",
        )
        .unwrap();
    let summary = sync_log(&db, &target.path).unwrap();
    assert_eq!(summary.mode, "capture");
    assert_same_users(&db, &target.path);
    let after = support::source_users(&db);
    // Row 6 kept its out-of-line bio through the update of its username.
    let six = after
        .iter()
        .find(|row| row[0] == Value::Integer(6))
        .unwrap();
    assert!(
        matches!(&six[3], Value::Text(bio) if bio.len() == 32_000),
        "{:?}",
        &six[3]
    );
    let second = stored_position(&target.path).unwrap();
    assert_ne!(first, second, "the position moved");

    // Nothing new: the run applies nothing, and the position stays or (when the
    // cluster's other databases wrote more than 16 MiB of WAL since, which the slot
    // holds back) moves forward to the run's end position, never back.
    let summary = sync_log(&db, &target.path).unwrap();
    assert_eq!(summary.rows_read, 0);
    let third = stored_position(&target.path).unwrap();
    assert!(lsn(&third) >= lsn(&second), "{third} before {second}");

    // A TRUNCATE empties the targets; what comes after it arrives.
    client
        .batch_execute(
            "TRUNCATE public.users;
             INSERT INTO public.users (id, username, email) VALUES (7, 'seven', 's@example.com');",
        )
        .unwrap();
    sync_log(&db, &target.path).unwrap();
    assert_eq!(
        target_live_users(&target.path),
        vec![vec![
            Value::Integer(7),
            Value::Text("seven".into()),
            Value::Text("s@example.com".into()),
            Value::Null,
            Value::Null,
        ]]
    );
    let confirmed: String = client
        .query_one(
            "SELECT confirmed_flush_lsn::text FROM pg_replication_slots
             WHERE database = current_database()",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        Some(confirmed),
        stored_position(&target.path),
        "the slot is confirmed up to the stored position"
    );
}

/// A `pg_lsn` text (`X/Y`, hexadecimal) as a number, to compare positions.
fn lsn(text: &str) -> u64 {
    let (high, low) = text.split_once('/').expect("an X/Y position");
    (u64::from_str_radix(high, 16).unwrap() << 32) | u64::from_str_radix(low, 16).unwrap()
}

/// The slot's restart point as a `pg_lsn` difference from `0/0`; not the temporary
/// slot a run may create for a moment to move it.
fn restart_point(client: &mut postgres::Client) -> i64 {
    client
        .query_one(
            "SELECT pg_wal_lsn_diff(restart_lsn, '0/0')::bigint FROM pg_replication_slots
             WHERE database = current_database() AND NOT temporary",
            &[],
        )
        .unwrap()
        .get(0)
}

/// Writes about 24 MB of WAL into a table no mapping reads; returns the WAL position
/// after it, in bytes.
fn wal_burst(client: &mut postgres::Client) -> i64 {
    client
        .batch_execute(
            "CREATE TABLE public.filler (x text);
             INSERT INTO public.filler
                 SELECT repeat(md5(i::text), 32) FROM generate_series(1, 24000) AS i",
        )
        .unwrap();
    client
        .query_one(
            "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint",
            &[],
        )
        .unwrap()
        .get(0)
}

/// After a burst of WAL (here of a table the mapping does not read), a run whose
/// confirm leaves the slot's restart point more than 16 MiB behind has the server
/// write a record of the transactions running, so that the next confirms move the
/// restart point past the burst, instead of every decoding call going through the
/// burst again until the server writes such a record by itself (every 15 s).
#[test]
fn runs_after_a_burst_move_the_restart_point_past_it() {
    let db = users_source(10);
    let target = support::target_file();
    sync_log(&db, &target.path).unwrap();
    let mut client = db.client();
    let burst_end = wal_burst(&mut client);
    assert!(restart_point(&mut client) < burst_end - 16 * 1024 * 1024);
    // Each run applies one change and confirms it. A record of the transactions
    // running moves the restart point to where the oldest transaction running at it
    // began decoding, which may be before the burst while another transaction of
    // the cluster runs: a few runs, each of which asks for a record again.
    let mut restart = 0;
    for id in 1001_i64..1007 {
        client
            .execute(
                "INSERT INTO public.users (id, username, email) VALUES ($1, 'b', 'b@example.com')",
                &[&id],
            )
            .unwrap();
        sync_log(&db, &target.path).unwrap();
        restart = restart_point(&mut client);
        if restart >= burst_end {
            break;
        }
    }
    assert!(
        restart >= burst_end,
        "the restart point stayed {} bytes before the burst's end",
        burst_end - restart
    );
    assert_same_users(&db, &target.path);
}

/// A burst of WAL of a table no mapping reads, and runs with nothing to apply: a run
/// that finds its slot holding back more than 16 MiB has the record of the running
/// transactions written before it reads its end position, stores that end position
/// and confirms it, so the restart point moves past the burst although no change of
/// the mapping's table came (before, such runs never confirmed and the slot kept the
/// burst's WAL until a change of the table arrived).
#[test]
fn runs_with_nothing_to_apply_after_a_burst_let_go_of_it() {
    let db = users_source(10);
    let target = support::target_file();
    sync_log(&db, &target.path).unwrap();
    let mut client = db.client();
    let burst_end = wal_burst(&mut client);
    let before = stored_position(&target.path).unwrap();
    // Another transaction of the cluster running at the record keeps the restart
    // point before it: a few runs, each of which writes a record again.
    let mut restart = 0;
    for _ in 0..6 {
        let summary = sync_log(&db, &target.path).unwrap();
        assert_eq!(summary.rows_read, 0);
        restart = restart_point(&mut client);
        if restart >= burst_end {
            break;
        }
    }
    assert!(
        restart >= burst_end,
        "the restart point stayed {} bytes before the burst's end",
        burst_end - restart
    );
    assert_ne!(stored_position(&target.path).unwrap(), before);
    assert_same_users(&db, &target.path);
}

#[test]
fn undoing_a_soft_delete_brings_back_the_value_the_update_did_not_send() {
    let db = users_source(6);
    let target = support::target_file();
    sync_log(&db, &target.path).unwrap();
    let mut client = db.client();
    // Row 3's bio is stored out of line: neither update sends it.
    client
        .batch_execute("UPDATE public.users SET deleted_at = now() WHERE id = 3")
        .unwrap();
    sync_log(&db, &target.path).unwrap();
    assert_eq!(
        support::sqlite_rows(&target.path, "SELECT count(*) FROM live_user WHERE id = 3")[0][0],
        Value::Integer(0),
        "the soft-deleted row left the targets"
    );
    client
        .batch_execute("UPDATE public.users SET deleted_at = NULL, username = 'back' WHERE id = 3")
        .unwrap();
    sync_log(&db, &target.path).unwrap();
    assert_same_users(&db, &target.path);
    let bio = support::sqlite_rows(
        &target.path,
        "SELECT length(bio) FROM live_user_profile WHERE id = 3",
    );
    assert_eq!(bio, vec![vec![Value::Integer(32_000)]]);
}

#[test]
fn two_target_files_of_one_mapping_get_two_slots() {
    let db = users_source(30);
    let first = support::target_file();
    let second = support::target_file();
    sync_log(&db, &first.path).unwrap();
    sync_log(&db, &second.path).unwrap();
    let names = slots(&db);
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names
            .iter()
            .all(|name| name.starts_with("data_sync_users_log_"))
    );
    db.client()
        .batch_execute("DELETE FROM public.users WHERE id <= 10")
        .unwrap();
    // Each file reads its own slot: the first one's drain takes nothing from the other.
    sync_log(&db, &first.path).unwrap();
    assert_same_users(&db, &first.path);
    assert_eq!(
        support::sqlite_rows(&second.path, "SELECT count(*) FROM live_user")[0][0],
        Value::Integer(30)
    );
    sync_log(&db, &second.path).unwrap();
    assert_same_users(&db, &second.path);
}
