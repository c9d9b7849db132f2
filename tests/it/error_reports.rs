//! Errors that say what happened: a statement timeout with PostgreSQL's SQLSTATE and
//! message, a full or closed stdout, a read-only target in an incremental run, and
//! `check` without the rights to read the source or on a file that is not a database.

use std::process::{Command, Stdio};

use crate::full_sync::create_users;
use crate::support::{self, printed};

#[test]
fn a_statement_timeout_keeps_its_sqlstate_and_message() {
    let db = support::source_db();
    create_users(&db, 10);
    let target = support::target_file();
    // While the source waits for a lock: the timeout comes before the COPY.
    let mut locker = db.client();
    let mut lock = locker.transaction().unwrap();
    lock.batch_execute("LOCK TABLE public.users IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let output = support::data_sync(
        &db,
        &target.path,
        &[
            "sync",
            "--mapping",
            "users",
            "--json",
            "--statement-timeout",
            "1s",
        ],
    );
    lock.rollback().unwrap();
    let text = printed(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("\"kind\": \"timeout\""), "{text}");
    assert!(
        text.contains("error: reading `public.users` for mapping `users`: ERROR 57014: canceling statement due to statement timeout"),
        "{text}"
    );

    // While the COPY runs: the source is a view that takes 0.2 s per row.
    db.client()
        .batch_execute(
            "ALTER TABLE public.users RENAME TO users_data;
             CREATE VIEW public.users AS SELECT * FROM public.users_data WHERE pg_sleep(0.2)::text = '';",
        )
        .unwrap();
    let output = support::data_sync(
        &db,
        &target.path,
        &[
            "sync",
            "--mapping",
            "users",
            "--json",
            "--full",
            // A view has no unique index; its key is unique all the same.
            "--assume-unique-key",
            "--statement-timeout",
            "1s",
        ],
    );
    let text = printed(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("\"kind\": \"timeout\""), "{text}");
    assert!(
        text.contains("error: reading `public.users` for mapping `users`: ERROR 57014: canceling statement due to statement timeout"),
        "{text}"
    );
}

/// Runs `data-sync ARGS` with stdout going to `/dev/full`.
fn into_dev_full(args: &[&str]) -> std::process::Output {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    Command::new(env!("CARGO_BIN_EXE_data-sync"))
        .args(args)
        .stdout(full)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

#[test]
fn a_full_stdout_is_one_error() {
    for args in [
        &["list", "--json"][..],
        &["list"][..],
        &["explain"][..],
        &["explain", "--json"][..],
    ] {
        let output = into_dev_full(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(
            stderr, "error: cannot write to stdout: No space left on device (os error 28)\n",
            "{args:?}"
        );
    }
}

#[test]
fn a_closed_pipe_ends_quietly() {
    for args in [&["explain"][..], &["explain", "--json"][..], &["list"][..]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_data-sync"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove("RUST_LOG")
            .spawn()
            .unwrap();
        // The reader goes away before the first byte is written.
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            printed(&output)
        );
        assert_eq!(String::from_utf8_lossy(&output.stderr), "", "{args:?}");
    }
}

#[test]
fn a_read_only_target_in_an_incremental_run_is_a_target_error() {
    let db = support::source_db();
    create_users(&db, 100);
    let target = support::target_file();
    support::sync::<mappings::Users>(&db, &target.path).unwrap();
    support::checkpoint(&target.path);
    db.client()
        .batch_execute("UPDATE public.users SET username = 'changed', updated_at = now() + interval '1 hour' WHERE id = 5")
        .unwrap();
    let before = support::target_users(&target.path);
    let output = {
        let _read_only = crate::faults::ReadOnly::new(&target.path);
        support::data_sync(&db, &target.path, &["sync", "--mapping", "users", "--json"])
    };
    let text = printed(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("\"kind\": \"target\""), "{text}");
    assert!(
        text.contains(&format!("error: target {}: ", target.path.display())),
        "{text}"
    );
    assert!(text.contains("readonly database"), "{text}");
    assert_eq!(support::target_users(&target.path), before);
}

#[test]
fn check_without_select_rights_is_not_ok() {
    let db = support::source_db();
    create_users(&db, 3);
    let target = support::target_file();
    support::sync::<mappings::Users>(&db, &target.path).unwrap();
    let role = format!("{}_reader", db.name());
    db.client()
        .batch_execute(&format!(
            "CREATE ROLE \"{role}\" LOGIN; GRANT SELECT (id, username) ON public.users TO \"{role}\";"
        ))
        .unwrap();
    let url = db.url().replacen("postgres@", &format!("{role}@"), 1);
    let output = Command::new(env!("CARGO_BIN_EXE_data-sync"))
        .args(["check", "--mapping", "users"])
        .env("DATA_SYNC_SOURCE", &url)
        .env("DATA_SYNC_TARGET", &target.path)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    db.client()
        .batch_execute(&format!("DROP OWNED BY \"{role}\"; DROP ROLE \"{role}\";"))
        .unwrap();
    let text = printed(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "source `public.users`: role `{role}` has no SELECT privilege on column `email`"
        )),
        "{text}"
    );
}

#[test]
fn check_on_a_file_that_is_not_a_database_is_not_ok() {
    let db = support::source_db();
    create_users(&db, 3);
    let target = support::target_file();
    std::fs::write(&target.path, b"not a database\n".repeat(100)).unwrap();
    let output = support::data_sync(&db, &target.path, &["check", "--mapping", "users"]);
    let text = printed(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "target {}: file is not a database",
            target.path.display()
        )),
        "{text}"
    );
}

/// Overwrites the header of page `page` (1-based) of the SQLite file at `path` with
/// bytes no page type has, as a bad sector or a stray write would.
fn damage_page(path: &std::path::Path, page: i64) {
    use std::io::{Seek, SeekFrom, Write};

    let page_size: i64 = rusqlite::Connection::open(path)
        .unwrap()
        .query_row("PRAGMA page_size", [], |row| row.get(0))
        .unwrap();
    let mut file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.seek(SeekFrom::Start(((page - 1) * page_size) as u64))
        .unwrap();
    file.write_all(&[0x77; 16]).unwrap();
}

#[test]
fn a_damaged_target_is_named_by_a_run_check_and_verify() {
    let db = support::source_db();
    create_users(&db, 20_000);
    let target = support::target_file();
    support::sync::<mappings::Users>(&db, &target.path).unwrap();
    // The root page of `user_profile`, which every reader of the table reads.
    let page: i64 = {
        let connection = rusqlite::Connection::open(&target.path).unwrap();
        connection
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
        connection
            .query_row(
                "SELECT rootpage FROM sqlite_schema WHERE name = 'user_profile'",
                [],
                |row| row.get(0),
            )
            .unwrap()
    };
    damage_page(&target.path, page);
    let damaged = format!(
        "target {}: database disk image is malformed: the file is damaged; `data-sync check` runs SQLite's integrity check on the targets, and `data-sync sync --full --target NEW.sqlite` builds a sound copy",
        target.path.display()
    );

    // A run that reads the damage names it, and the way out.
    db.client()
        .batch_execute(
            "UPDATE public.users SET username = 'changed', updated_at = now() + interval '1 hour' WHERE id = 1",
        )
        .unwrap();
    let output = support::data_sync(&db, &target.path, &["sync", "--mapping", "users", "--json"]);
    let text = printed(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains(&format!("error: {damaged}")), "{text}");
    assert!(text.contains("\"kind\": \"target\""), "{text}");

    // `check` reads every page of the targets.
    let output = support::data_sync(&db, &target.path, &["check", "--mapping", "users"]);
    let text = printed(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("target `user_profile`: the table fails SQLite's integrity check ("),
        "{text}"
    );
    assert!(
        text.contains("sync into a new file with `data-sync sync --full --target NEW.sqlite`"),
        "{text}"
    );

    // So does `verify`.
    let output = support::data_sync(&db, &target.path, &["verify", "--mapping", "users"]);
    let text = printed(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains(&format!("error: {damaged}")), "{text}");
}

#[test]
fn check_with_a_statement_timeout_does_not_wait_on_a_lock() {
    let db = support::source_db();
    create_users(&db, 3);
    let target = support::target_file();
    support::sync::<mappings::Users>(&db, &target.path).unwrap();
    let mut locker = db.client();
    let mut lock = locker.transaction().unwrap();
    lock.batch_execute("LOCK TABLE public.users IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let output = support::data_sync(
        &db,
        &target.path,
        &["check", "--mapping", "users", "--statement-timeout", "1s"],
    );
    lock.rollback().unwrap();
    let text = printed(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("error: reading `public.users` for mapping `users`: ERROR 57014: canceling statement due to statement timeout"),
        "{text}"
    );
}
