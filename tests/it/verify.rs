//! `data-sync verify`: equal after a sync (exit 0); a target row changed, deleted
//! or added by hand is reported with its key (exit 1), as text and as JSON.

use std::path::Path;

use sync_runtime::SourceConfig;
use testkit::TestDb;

use crate::support;

/// A synced `users` source of 2,000 rows, every tenth soft-deleted.
fn synced() -> (TestDb, support::TargetFile) {
    let db = support::source_db();
    crate::full_sync::create_users(&db, 2_000);
    db.client()
        .execute(
            "UPDATE public.users SET deleted_at = now() WHERE id % 10 = 0",
            &[],
        )
        .unwrap();
    let target = support::target_file();
    support::sync::<mappings::Users>(&db, &target.path).unwrap();
    (db, target)
}

fn verify(db: &TestDb, target: &Path, json: bool) -> (Option<i32>, String, String) {
    let mut args = vec!["verify", "--mapping", "users"];
    if json {
        args.push("--json");
    }
    let output = support::data_sync(db, target, &args);
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn edit(target: &Path, sql: &str) {
    rusqlite::Connection::open(target)
        .unwrap()
        .execute_batch(sql)
        .unwrap();
}

#[test]
fn a_synced_target_verifies_equal() {
    let (db, target) = synced();
    let (code, stdout, stderr) = verify(&db, &target.path, false);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("`user_main` equals the source: 1800 rows"),
        "{stdout}"
    );
    assert!(
        stdout.contains("`user_profile` equals the source: 1800 rows"),
        "{stdout}"
    );

    let (code, stdout, _) = verify(&db, &target.path, true);
    assert_eq!(code, Some(0));
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["version"], 1);
    assert_eq!(report["ok"], true);
    let table = &report["mappings"][0]["targets"][0];
    assert_eq!(table["table"], "user_main");
    assert_eq!(table["equal"], true);
    assert_eq!(table["source_rows"], 1800);
    assert_eq!(table["source_checksum"], table["target_checksum"]);
}

#[test]
fn rows_changed_deleted_or_added_by_hand_are_reported_by_key() {
    let (db, target) = synced();
    edit(
        &target.path,
        "UPDATE user_main SET email = 'changed@example.org' WHERE id = 5;
         DELETE FROM user_profile WHERE id = 7;
         INSERT INTO user_main (id, username, email) VALUES (999999, 'intruder', 'x@y');",
    );

    let (code, stdout, stderr) = verify(&db, &target.path, false);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("`user_main` differs from the source"),
        "{stdout}"
    );
    assert!(stdout.contains("  extra key 999999\n"), "{stdout}");
    assert!(stdout.contains("  changed key 5\n"), "{stdout}");
    assert!(stdout.contains("  missing key 7\n"), "{stdout}");
    assert!(
        stderr.ends_with(
            "error: 2 target tables differ from the source; rerun with `--repair` to copy the differing rows\n"
        ),
        "{stderr}"
    );

    let (code, stdout, _) = verify(&db, &target.path, true);
    assert_eq!(code, Some(1));
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["ok"], false);
    let main = &report["mappings"][0]["targets"][0];
    assert_eq!(main["table"], "user_main");
    assert_eq!(main["equal"], false);
    assert_eq!(main["source_rows"], 1800);
    assert_eq!(main["target_rows"], 1801);
    assert_eq!(
        (
            main["missing"].clone(),
            main["extra"].clone(),
            main["changed"].clone()
        ),
        (0.into(), 1.into(), 1.into())
    );
    assert_eq!(
        main["differences"],
        serde_json::json!([
            { "kind": "extra", "key": "999999" },
            { "kind": "changed", "key": "5" },
        ])
    );
    let profile = &report["mappings"][0]["targets"][1];
    assert_eq!(profile["table"], "user_profile");
    assert_eq!(profile["target_rows"], 1799);
    assert_eq!(
        profile["differences"],
        serde_json::json!([{ "kind": "missing", "key": "7" }])
    );

    // A soft-deleted source row put back by hand is extra too.
    edit(
        &target.path,
        "INSERT INTO user_profile (id, bio, avatar_url) VALUES (999999, NULL, NULL);
         INSERT INTO user_main (id, username, email) VALUES (20, 'user_20', 'u20@example.org');",
    );
    let verification = sync_runtime::verify::<mappings::Users>(
        &SourceConfig::parse(&db.url()).unwrap(),
        &target.path,
        10,
    )
    .unwrap();
    assert!(!verification.is_equal());
    let keys: Vec<(&str, &str)> = verification.targets[0]
        .differences
        .iter()
        .map(|difference| (difference.kind, difference.key.as_str()))
        .collect();
    assert_eq!(
        keys,
        [("extra", "20"), ("extra", "999999"), ("changed", "5")]
    );
}

#[test]
fn a_sync_repairs_what_verify_found() {
    let (db, target) = synced();
    edit(&target.path, "DELETE FROM user_profile WHERE id = 7;");
    assert_eq!(verify(&db, &target.path, false).0, Some(1));
    support::sync::<mappings::Users>(&db, &target.path).unwrap();
    let (code, stdout, stderr) = verify(&db, &target.path, false);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
}
