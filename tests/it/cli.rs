//! The `data-sync` binary: exit codes, messages, JSON, no password in any output.

use crate::full_sync::create_users;
use crate::support;

#[test]
fn sync_prints_a_summary_and_json() {
    let db = support::source_db();
    create_users(&db, 5);
    let target = support::target_file();
    let output = support::data_sync(&db, &target.path, &["sync", "--mapping", "users"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.starts_with("users: full sync, 5 rows read (user_main 5, user_profile 5) in "),
        "{stdout}"
    );

    let output = support::data_sync(
        &db,
        &target.path,
        &["sync", "--mapping", "users", "--full", "--json"],
    );
    assert!(output.status.success());
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let mapping = &json["mappings"][0];
    assert_eq!(mapping["mapping"], "users");
    assert_eq!(mapping["mode"], "full");
    assert_eq!(mapping["rows_read"], 5);
    assert_eq!(mapping["targets"][1]["table"], "user_profile");
    assert_eq!(mapping["targets"][1]["rows"], 5);
    assert!(mapping["seconds"].as_f64().unwrap() >= 0.0);
}

#[test]
fn list_shows_every_mapping() {
    let db = support::source_db();
    let target = support::target_file();
    let output = support::data_sync(&db, &target.path, &["list"]);
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout
            .lines()
            .any(|line| line == "users: public.users -> user_main, user_profile"),
        "{stdout}"
    );
    // The hand-written example of `mappings/src/custom/`, registered by gen.
    assert!(
        stdout
            .lines()
            .any(|line| line == "contacts: public.users -> contact"),
        "{stdout}"
    );
}

#[test]
fn unknown_mapping_is_one_clear_error() {
    let db = support::source_db();
    let target = support::target_file();
    let output = support::data_sync(&db, &target.path, &["sync", "--mapping", "userz"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.starts_with("error: no mapping `userz`; compiled-in mappings: "),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(!target.path.exists());
}

#[test]
fn a_password_never_reaches_the_output() {
    let target = support::target_file();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_data-sync"))
        .args(["sync", "--mapping", "users"])
        .env(
            "DATA_SYNC_SOURCE",
            "postgresql://sync:Sup3r-Secret-PW@127.0.0.1:1/app?connect_timeout=2",
        )
        .env("DATA_SYNC_TARGET", &target.path)
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!all.contains("Sup3r-Secret-PW"), "{all}");
    assert!(
        all.contains("error: cannot connect to the source 127.0.0.1:1/app: "),
        "{all}"
    );
}

#[test]
fn a_missing_or_empty_password_file_is_named() {
    let db = support::source_db();
    let target = support::target_file();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-password");
    let output = support::data_sync(
        &db,
        &target.path,
        &[
            "sync",
            "--mapping",
            "users",
            "--password-file",
            missing.to_str().unwrap(),
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!(
            "error: {}: No such file or directory (os error 2)\n",
            missing.display()
        )
    );
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "").unwrap();
    let output = support::data_sync(
        &db,
        &target.path,
        &[
            "sync",
            "--mapping",
            "users",
            "--password-file",
            empty.to_str().unwrap(),
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!(
            "error: source configuration: password file {} is empty\n",
            empty.display()
        )
    );
    assert!(!target.path.exists(), "nothing was written");
}
