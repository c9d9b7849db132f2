//! `data-sync check`: the compiled-in mappings against a live source whose table was
//! altered after the snapshot, and against the live target file.

use crate::full_sync::create_users;
use crate::support;

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn check_passes_when_source_and_target_match() {
    let db = support::source_db();
    create_users(&db, 3);
    let target = support::target_file();
    let output = support::data_sync(&db, &target.path, &["sync", "--mapping", "users"]);
    assert!(output.status.success());
    let output = support::data_sync(&db, &target.path, &["check", "--mapping", "users"]);
    assert!(
        output.status.success(),
        "{}{}",
        stdout(&output),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout(&output), "users: ok\n");
}

#[test]
fn check_lists_every_difference_of_an_altered_source_and_target() {
    let db = support::source_db();
    create_users(&db, 3);
    let target = support::target_file();
    let output = support::data_sync(&db, &target.path, &["sync", "--mapping", "users"]);
    assert!(output.status.success());

    // The table changes after the snapshot was taken: a column dropped, a type
    // widened past what the field reads, NOT NULL removed; and a target table is
    // gone.
    db.client()
        .batch_execute(
            "ALTER TABLE public.users DROP COLUMN bio;
             ALTER TABLE public.users ALTER COLUMN id TYPE numeric;
             ALTER TABLE public.users ALTER COLUMN email DROP NOT NULL;",
        )
        .unwrap();
    rusqlite::Connection::open(&target.path)
        .unwrap()
        .execute_batch("DROP TABLE user_profile")
        .unwrap();

    let output = support::data_sync(&db, &target.path, &["check", "--mapping", "users"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("differences between the mappings and the live schemas"),
        "{stderr}"
    );
    // A missing column hides the type checks (the SELECT cannot be prepared). The
    // dropped target table is no difference: the next sync creates it.
    assert_eq!(
        stdout(&output),
        "users: 2 differences (the next sync creates `user_profile`)\n\
         \x20 source `public.users`: column `email` is nullable, but field `email` (`String`) is not an `Option`\n\
         \x20 source `public.users`: column `bio` is missing (field `bio` reads it)\n"
    );

    // With every column back, the widened type is listed too.
    db.client()
        .batch_execute("ALTER TABLE public.users ADD COLUMN bio text")
        .unwrap();
    let output = support::data_sync(
        &db,
        &target.path,
        &["check", "--mapping", "users", "--json"],
    );
    assert_eq!(output.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["ok"], false);
    let messages: Vec<&str> = json["mappings"][0]["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|difference| difference["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        [
            "column `email` is nullable, but field `email` (`String`) is not an `Option`",
            "column `id` is `numeric`, but field `id` (`i64`) reads `bigint`",
        ]
    );
    assert_eq!(
        json["mappings"][0]["to_create"],
        serde_json::json!(["user_profile"])
    );
}

#[test]
fn check_reports_a_missing_source_table_and_target_file() {
    let db = support::source_db();
    let target = support::target_file();
    let output = support::data_sync(&db, &target.path, &["check", "--mapping", "users"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stdout(&output),
        "users: 1 difference (the next sync creates `user_main`, `user_profile`)\n\
         \x20 source `public.users`: table `public.users` does not exist\n"
    );
    assert!(!target.path.exists(), "check creates no target file");
}
