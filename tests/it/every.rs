//! `sync --every DURATION` runs until SIGTERM, and the lock beside the target file
//! stops a second writer, naming the first (issue 18 item 6).

use std::time::{Duration, Instant};

use crate::full_sync::create_users;
use crate::support::{self, Logged};

#[test]
fn every_runs_until_sigterm_and_holds_the_target_against_a_second_writer() {
    let db = support::source_db();
    create_users(&db, 5);
    let target = support::target_file();
    let mut sync = Logged::spawn(
        &db,
        &target.path,
        &["sync", "--mapping", "users", "--every", "2s"],
    );
    // Three runs, one log line each, over one connection that stays open between
    // them: the same server process after each.
    let started = Instant::now();
    let mut client = db.client();
    let mut backends = Vec::new();
    for _ in 0..3 {
        let line = sync.until("run finished");
        assert_eq!(line["outcome"], "ok", "{line}");
        let rows = client
            .query(
                "SELECT pid, backend_start::text FROM pg_stat_activity
                 WHERE datname = current_database() AND application_name = 'data-sync'",
                &[],
            )
            .unwrap();
        let rows: Vec<(i32, String)> = rows.iter().map(|row| (row.get(0), row.get(1))).collect();
        assert_eq!(rows.len(), 1, "{rows:?}");
        backends.push(rows[0].clone());
    }
    assert_eq!(backends[1], backends[0]);
    assert_eq!(backends[2], backends[0]);
    // Three runs two seconds apart take four seconds and a little.
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    // A second writer of the same file stops at once, naming the first.
    let output = support::data_sync(&db, &target.path, &["sync", "--mapping", "users"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr,
        format!(
            "error: `{}` is being written by process {} (`data-sync sync`); wait for it to finish or stop it\n",
            target.path.display(),
            sync.child.id()
        )
    );
    // Readers are not locked out.
    let output = support::data_sync(&db, &target.path, &["status"]);
    assert!(output.status.success(), "{output:?}");

    // Between two runs (a signal during one stops it as interrupted, exit 143).
    sync.until("run finished");
    let (exit, took) = sync.terminate();
    eprintln!("exited {took:?} after SIGTERM");
    // The promise is a second; the margin is for a loaded machine.
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(exit.code(), Some(0));
    let summaries = std::io::read_to_string(sync.child.stdout.take().unwrap()).unwrap();
    assert!(summaries.lines().count() >= 3, "{summaries}");
    assert!(
        summaries.lines().all(|line| line.starts_with("users: ")),
        "{summaries}"
    );

    // Once the first is gone, the lock is free.
    let output = support::data_sync(&db, &target.path, &["sync", "--mapping", "users"]);
    assert!(output.status.success(), "{output:?}");
}

#[test]
fn one_file_named_three_ways_is_one_lock() {
    let db = support::source_db();
    create_users(&db, 5);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("out")).unwrap();
    let file = dir.path().join("out/x.sqlite");
    std::os::unix::fs::symlink("out/x.sqlite", dir.path().join("link.sqlite")).unwrap();
    let mut sync = Logged::spawn(&db, &file, &["sync", "--mapping", "users", "--every", "1s"]);
    sync.until("run finished");
    let holder = format!("process {} (`data-sync sync`)", sync.child.id());
    // The same file through `..`, relative to the working directory, and through a
    // symbolic link: each stops at the lock the first process holds.
    for name in ["./out/../out/x.sqlite", "link.sqlite", "out/x.sqlite"] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_data-sync"))
            .args(["--target", name, "sync", "--mapping", "users"])
            .current_dir(dir.path())
            .env("DATA_SYNC_SOURCE", db.url())
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{name}: {output:?}");
        assert_eq!(
            String::from_utf8_lossy(&output.stderr),
            format!(
                "error: `{name}` is being written by {holder}; wait for it to finish or stop it\n"
            ),
        );
    }
    // One lock file, beside the file itself.
    let mut names: Vec<String> = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".lock"))
        .collect();
    names.sort();
    assert_eq!(names, ["x.sqlite.lock"]);
    assert!(!dir.path().join("link.sqlite.lock").exists());
    let (exit, _) = sync.terminate();
    assert_eq!(exit.code(), Some(0));
}
