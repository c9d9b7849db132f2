//! `data-sync verify --repair`: after changes an incremental run cannot see (updates
//! that did not move the cursor, a row deleted outright, a row inserted below the
//! watermark), it re-copies just the differing keys from one snapshot and deletes
//! the keys that left the source, in one SQLite transaction, and says what it did.

use crate::full_sync::create_users;
use crate::support;

fn run(db: &support::TestDb, target: &std::path::Path, args: &[&str]) -> (Option<i32>, String) {
    let output = support::data_sync(db, target, args);
    (output.status.code(), support::printed(&output))
}

/// 1,000 users synced, then changed behind the cursor's back; an incremental run
/// sees none of it.
fn drifted() -> (support::TestDb, support::TargetFile) {
    let db = support::source_db();
    create_users(&db, 1_000);
    // Cursor values long past, so that the overlap window of the next run reads none.
    db.client()
        .batch_execute("UPDATE public.users SET updated_at = '2020-01-01T00:00:00Z'::timestamptz + id * interval '1 second'")
        .unwrap();
    let target = support::target_file();
    support::sync::<mappings::Users>(&db, &target.path).unwrap();
    db.client()
        .batch_execute(
            "UPDATE public.users SET username = 'renamed', bio = NULL WHERE id IN (3, 500);
             DELETE FROM public.users WHERE id = 7;
             INSERT INTO public.users (id, username, email, updated_at)
                 VALUES (5000, 'late', 'late@x', '2000-01-01T00:00:00Z');",
        )
        .unwrap();
    let (code, printed) = run(
        &db,
        &target.path,
        &["sync", "--mapping", "users", "--quiet"],
    );
    assert_eq!(code, Some(0), "{printed}");
    assert_ne!(
        support::target_users(&target.path),
        support::source_users(&db)
    );
    (db, target)
}

#[test]
fn repair_recopies_the_differing_keys() {
    let (db, target) = drifted();
    // A row the user changed in the target by hand is repaired too.
    rusqlite::Connection::open(&target.path)
        .unwrap()
        .execute_batch("UPDATE user_profile SET avatar_url = 'edited' WHERE id = 10")
        .unwrap();
    let before = support::sqlite_rows(
        &target.path,
        "SELECT id, username FROM user_main WHERE id IN (1, 2, 999) ORDER BY id",
    );

    let (code, printed) = run(
        &db,
        &target.path,
        &["verify", "--mapping", "users", "--repair"],
    );
    assert_eq!(code, Some(0), "{printed}");
    assert!(
        printed.contains(
            "users: `user_main` repaired: 1 missing copied, 1 extra deleted, 2 changed copied"
        ),
        "{printed}"
    );
    assert!(
        printed.contains(
            "users: `user_profile` repaired: 1 missing copied, 1 extra deleted, 2 changed copied"
        ),
        "{printed}"
    );
    assert_eq!(
        support::target_users(&target.path),
        support::source_users(&db)
    );
    // Rows that did not differ are left as they were.
    assert_eq!(
        support::sqlite_rows(
            &target.path,
            "SELECT id, username FROM user_main WHERE id IN (1, 2, 999) ORDER BY id"
        ),
        before
    );

    let (code, printed) = run(&db, &target.path, &["verify", "--mapping", "users"]);
    assert_eq!(code, Some(0), "{printed}");
    // Incremental runs go on from the same watermark.
    db.client()
        .batch_execute("UPDATE public.users SET username = 'later', updated_at = now() + interval '1 hour' WHERE id = 1")
        .unwrap();
    let (code, printed) = run(
        &db,
        &target.path,
        &["sync", "--mapping", "users", "--quiet"],
    );
    assert_eq!(code, Some(0), "{printed}");
    assert_eq!(
        support::target_users(&target.path),
        support::source_users(&db)
    );
}

#[test]
fn repair_reports_as_json_and_leaves_an_equal_target_alone() {
    let (db, target) = drifted();
    let (code, printed) = run(
        &db,
        &target.path,
        &["verify", "--mapping", "users", "--repair", "--json"],
    );
    assert_eq!(code, Some(0), "{printed}");
    let value: serde_json::Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(value["ok"], true, "{printed}");
    let main = &value["mappings"][0]["targets"][0];
    assert_eq!(main["table"], "user_main");
    assert_eq!(main["equal"], false);
    assert_eq!(
        main["repaired"],
        serde_json::json!({ "copied": 3, "deleted": 1 }),
        "{printed}"
    );
    assert_eq!(
        support::target_users(&target.path),
        support::source_users(&db)
    );

    let (code, printed) = run(
        &db,
        &target.path,
        &["verify", "--mapping", "users", "--repair", "--json"],
    );
    assert_eq!(code, Some(0), "{printed}");
    let value: serde_json::Value = serde_json::from_str(&printed).unwrap();
    let main = &value["mappings"][0]["targets"][0];
    assert_eq!(main["equal"], true, "{printed}");
    assert_eq!(
        main["repaired"],
        serde_json::json!({ "copied": 0, "deleted": 0 }),
        "{printed}"
    );
}
