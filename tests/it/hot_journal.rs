//! After a `kill -9` in the middle of a full sync, the read-only commands (`status`,
//! `check`, `verify`) work on the file the killed run left, and `status` shows the
//! killed attempt as `running`.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::full_sync::create_users;
use crate::support;

/// Starts a full sync and kills it with `SIGKILL` once it has written a good part
/// of the new rows (the file or its WAL grew by 4 MiB, with a journal there when the
/// run uses one).
fn kill_a_full_sync_mid_way(db: &support::TestDb, target: &Path) {
    let journal = target.with_extension("sqlite-journal");
    let wal = target.with_extension("sqlite-wal");
    let size = |path: &Path| std::fs::metadata(path).map_or(0, |metadata| metadata.len());
    let written = || size(target) + size(&wal);
    let before = written();
    let mut child = support::spawn_users_sync(db, target, &["--full"]);
    let started = Instant::now();
    while written() < before + (4 << 20) || (size(&wal) == 0 && size(&journal) == 0) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was killed"
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the run wrote nothing"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    eprintln!(
        "killed after {:?}: file {} bytes, journal {} bytes, WAL {} bytes",
        started.elapsed(),
        size(target),
        size(&journal),
        size(&wal)
    );
}

fn command(db: &support::TestDb, target: &Path, args: &[&str]) -> (Option<i32>, String) {
    let output = support::data_sync(db, target, args);
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !printed.contains("readonly database"),
        "{args:?}: {printed}"
    );
    (output.status.code(), printed)
}

#[test]
fn read_only_commands_work_after_a_killed_full_sync() {
    let db = support::source_db();
    create_users(&db, 300_000);
    let target = support::target_file();
    support::sync::<mappings::Users>(&db, &target.path).unwrap();
    kill_a_full_sync_mid_way(&db, &target.path);

    let (code, printed) = command(&db, &target.path, &["status", "--json"]);
    assert_eq!(code, Some(0), "{printed}");
    let status: serde_json::Value = serde_json::from_str(&printed).unwrap();
    let users = &status["mappings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|mapping| mapping["mapping"] == "users")
        .unwrap();
    assert_eq!(users["last_outcome"], "running", "{printed}");
    // The last committed run is still the one shown.
    assert_eq!(users["rows"], 300_000, "{printed}");
    assert_eq!(users["mode"], "full", "{printed}");

    let (code, printed) = command(&db, &target.path, &["check", "--mapping", "users"]);
    assert_eq!(code, Some(0), "{printed}");
    let (code, printed) = command(&db, &target.path, &["verify", "--mapping", "users"]);
    assert_eq!(code, Some(0), "{printed}");
    assert!(
        printed.contains("`user_main` equals the source: 300000 rows"),
        "{printed}"
    );

    // The next run goes on from the previous contents.
    let output = support::data_sync(
        &db,
        &target.path,
        &["sync", "--mapping", "users", "--full", "--quiet"],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        support::target_users(&target.path),
        support::source_users(&db)
    );
}

#[test]
fn a_first_full_sync_killed_is_recorded_as_running() {
    let db = support::source_db();
    create_users(&db, 300_000);
    let target = support::target_file();
    kill_a_full_sync_mid_way(&db, &target.path);

    let (code, printed) = command(&db, &target.path, &["status", "--json"]);
    assert_eq!(code, Some(0), "{printed}");
    let status: serde_json::Value = serde_json::from_str(&printed).unwrap();
    let users = &status["mappings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|mapping| mapping["mapping"] == "users")
        .unwrap();
    assert_eq!(users["synced"], false, "{printed}");
    assert_eq!(users["last_outcome"], "running", "{printed}");

    // The next run is a full one, and completes.
    let output = support::data_sync(
        &db,
        &target.path,
        &["sync", "--mapping", "users", "--quiet", "--json"],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("\"mode\": \"full\""), "{stdout}");
    assert_eq!(
        support::target_users(&target.path),
        support::source_users(&db)
    );
}
