//! Bad input stops a run with one clear message and leaves the target as it was.

use mappings::Users;
use rusqlite::types::Value;

use crate::full_sync::create_users;
use crate::support;

fn snapshot(target: &std::path::Path) -> Vec<Vec<Value>> {
    support::sqlite_rows(
        target,
        "SELECT 'main', id, username, email, NULL FROM user_main
         UNION ALL SELECT 'profile', id, bio, avatar_url, NULL FROM user_profile
         ORDER BY 1, 2",
    )
}

#[test]
fn a_run_failing_part_way_leaves_the_previous_contents() {
    let db = support::source_db();
    create_users(&db, 30_000);
    let target = support::target_file();
    support::sync::<Users>(&db, &target.path).unwrap();
    let before = snapshot(&target.path);

    // Row 25,000 cannot be read into `email: String`: the run stops there, after
    // earlier batches were already written inside its transaction.
    let mut client = db.client();
    client
        .batch_execute(
            "ALTER TABLE public.users ALTER COLUMN email DROP NOT NULL;
             UPDATE public.users SET email = NULL WHERE id = 25000;
             UPDATE public.users SET username = 'renamed' WHERE id = 1;",
        )
        .unwrap();
    let error = support::sync::<Users>(&db, &target.path)
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "mapping `users`: cannot read column `email` of `public.users` at key 25000: unexpected NULL: make the field an `Option`"
    );
    assert_eq!(snapshot(&target.path), before);
    let state = support::sqlite_rows(
        &target.path,
        "SELECT rows, last_outcome LIKE 'mapping `users`: cannot read column `email`%' FROM _data_sync_state",
    );
    assert_eq!(state, vec![vec![Value::Integer(30_000), Value::Integer(1)]]);
}

#[test]
fn a_mismatching_target_table_is_refused_and_left_alone() {
    let db = support::source_db();
    create_users(&db, 10);
    let target = support::target_file();
    {
        let connection = rusqlite::Connection::open(&target.path).unwrap();
        connection
            .execute_batch(
                "CREATE TABLE user_main (id INTEGER PRIMARY KEY, username TEXT NOT NULL, email BLOB, extra TEXT) STRICT;
                 INSERT INTO user_main VALUES (1, 'kept', NULL, 'x');",
            )
            .unwrap();
    }
    let error = support::sync::<Users>(&db, &target.path)
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "target table `user_main` does not match mapping `users`: column `email` is BLOB, the mapping writes TEXT; \
         column `email` is nullable, the mapping's is NOT NULL; column `extra` is not in the mapping"
    );
    assert_eq!(
        support::sqlite_rows(&target.path, "SELECT * FROM user_main"),
        vec![vec![
            Value::Integer(1),
            Value::Text("kept".into()),
            Value::Null,
            Value::Text("x".into())
        ]]
    );
    let tables = support::sqlite_rows(
        &target.path,
        "SELECT name FROM sqlite_schema WHERE name = 'user_profile'",
    );
    assert!(tables.is_empty(), "nothing of the failed run is committed");
}

#[test]
fn a_missing_source_table_names_it() {
    let db = support::source_db();
    let target = support::target_file();
    let error = support::sync::<Users>(&db, &target.path)
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("reading `public.users` for mapping `users`: ERROR: relation \"public.users\" does not exist"),
        "{error}"
    );
}

#[test]
fn a_source_column_of_another_type_is_refused_before_reading() {
    let db = support::source_db();
    db.client()
        .batch_execute(
            "CREATE TABLE public.users (id bigint PRIMARY KEY, username text NOT NULL, email bytea NOT NULL, bio text, avatar_url text, updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz);
             INSERT INTO public.users VALUES (1, 'a', '\\x00', NULL, NULL);",
        )
        .unwrap();
    let target = support::target_file();
    let error = support::sync::<Users>(&db, &target.path)
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "mapping `users`: source column `email` of `public.users` is `bytea`, but field `email: String` reads `text`"
    );
}
