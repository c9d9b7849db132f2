//! Memory stays bounded by the size of the rows, not by row size times batch size:
//! 600 rows of 1 MiB sync, full and incremental, under 300 MiB peak RSS of the
//! `data-sync` process, with the default batch size of 10,000 rows.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support;

/// Runs `data-sync ARGS` and returns whether it succeeded, its stderr and its peak
/// resident set (`VmHWM`, KiB), sampled from `/proc` until it exits: the high-water
/// mark only grows, so only growth in the last sampling interval could be missed.
fn peak_rss(db: &support::TestDb, target: &std::path::Path, args: &[&str]) -> (bool, String, u64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_data-sync"))
        .args(args)
        .env("DATA_SYNC_SOURCE", db.url())
        .env("DATA_SYNC_TARGET", target)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file)
            && let Some(line) = text.lines().find(|line| line.starts_with("VmHWM:"))
        {
            let kib: u64 = line
                .split_whitespace()
                .nth(1)
                .and_then(|value| value.parse().ok())
                .unwrap_or(0);
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    (status.success(), stderr, peak)
}

#[test]
fn six_hundred_rows_of_one_mebibyte_stay_under_300_mib() {
    let db = support::source_db();
    let mut client = db.client();
    client.batch_execute(testkit::reference::USERS_DDL).unwrap();
    // 1 MiB of text per row that PostgreSQL cannot compress much: md5 digests.
    client
        .batch_execute(
            "INSERT INTO public.users (id, username, email, bio, updated_at)
             SELECT g, 'user_' || g, 'e' || g,
                    lpad(g::text, 8, '0') || substr(digests.text, 9),
                    '2026-01-01T00:00:00Z'::timestamptz + g * interval '1 second'
             FROM generate_series(1, 600) AS g,
                  (SELECT string_agg(md5(i::text), '') AS text FROM generate_series(1, 32768) AS i) AS digests",
        )
        .unwrap();
    let target = support::target_file();
    let limit = 300 * 1024;

    let (ok, stderr, full_peak) = peak_rss(
        &db,
        &target.path,
        &["sync", "--mapping", "users", "--full", "--quiet"],
    );
    eprintln!("full sync: peak RSS {} MiB", full_peak / 1024);
    assert!(ok, "{stderr}");
    assert!(full_peak < limit, "full sync peak RSS {full_peak} KiB");
    let lengths = support::sqlite_rows(
        &target.path,
        "SELECT count(*), sum(length(bio)) FROM user_profile",
    );
    assert_eq!(
        lengths,
        vec![vec![
            rusqlite::types::Value::Integer(600),
            rusqlite::types::Value::Integer(600 << 20)
        ]]
    );

    // Every row changed: an incremental run reads them all again.
    client
        .batch_execute("UPDATE public.users SET updated_at = updated_at + interval '1 day', username = 'changed_' || id")
        .unwrap();
    let (ok, stderr, incremental_peak) = peak_rss(
        &db,
        &target.path,
        &["sync", "--mapping", "users", "--quiet"],
    );
    eprintln!("incremental sync: peak RSS {} MiB", incremental_peak / 1024);
    assert!(ok, "{stderr}");
    assert!(
        incremental_peak < limit,
        "incremental sync peak RSS {incremental_peak} KiB"
    );
    let changed = support::sqlite_rows(
        &target.path,
        "SELECT count(*) FROM user_main WHERE username LIKE 'changed_%'",
    );
    assert_eq!(changed, vec![vec![rusqlite::types::Value::Integer(600)]]);
}
