//! A full sync rebuilds the targets without harming what the user added to the file
//! (issue 19 item 2), whatever shape the mapping's tables had before (issue 18
//! item 4); a missing target table means a full run.

use std::path::Path;

use rusqlite::types::Value;
use sync_runtime::{Mapping, SourceConfig, Summary, SyncOptions};

use crate::full_sync::create_users;
use crate::support::{self, TestDb};

/// Every schema object of the file but SQLite's own: type, name, table, SQL.
fn schema(target: &Path) -> Vec<Vec<Value>> {
    support::sqlite_rows(
        target,
        "SELECT type, name, tbl_name, sql FROM sqlite_schema
         WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name",
    )
}

#[test]
fn user_indexes_views_triggers_and_references_survive_full_syncs() {
    let db = support::source_db();
    create_users(&db, 50);
    let target = support::target_file();
    let sync_full = || {
        let output =
            support::data_sync(&db, &target.path, &["sync", "--mapping", "users", "--full"]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    sync_full();
    rusqlite::Connection::open(&target.path)
        .unwrap()
        .execute_batch(
            "CREATE INDEX user_main_email ON user_main (email);
             CREATE VIEW v_users AS
                 SELECT m.id, m.username, p.bio FROM user_main AS m JOIN user_profile AS p ON p.id = m.id;
             CREATE TABLE audit (user_id INTEGER NOT NULL, username TEXT NOT NULL);
             CREATE TRIGGER user_main_audit AFTER UPDATE OF username ON user_main
             BEGIN INSERT INTO audit VALUES (new.id, new.username); END;
             CREATE TABLE app_fav (user_id INTEGER NOT NULL REFERENCES user_main (id), note TEXT);
             INSERT INTO app_fav VALUES (1, 'first'), (2, 'second');",
        )
        .unwrap();
    let before = schema(&target.path);

    db.client()
        .batch_execute("UPDATE public.users SET username = 'renamed' WHERE id = 3")
        .unwrap();
    sync_full();
    sync_full();

    assert_eq!(
        schema(&target.path),
        before,
        "every object as the user made it"
    );
    assert_eq!(
        support::target_users(&target.path),
        support::source_users(&db)
    );
    assert_eq!(
        support::sqlite_rows(&target.path, "SELECT count(*), max(username) FROM v_users"),
        vec![vec![Value::Integer(50), Value::Text("user_9".into())]]
    );
    assert_eq!(
        support::sqlite_rows(
            &target.path,
            "SELECT user_id, note FROM app_fav ORDER BY user_id"
        ),
        vec![
            vec![Value::Integer(1), Value::Text("first".into())],
            vec![Value::Integer(2), Value::Text("second".into())],
        ]
    );
    assert_eq!(
        support::sqlite_rows(
            &target.path,
            "SELECT \"table\", \"to\" FROM pragma_foreign_key_list('app_fav')"
        ),
        vec![vec![
            Value::Text("user_main".into()),
            Value::Text("id".into())
        ]]
    );
    assert!(support::sqlite_rows(&target.path, "PRAGMA foreign_key_check").is_empty());
    // The index serves queries, and the trigger fires on the new table.
    let plan = support::sqlite_rows(
        &target.path,
        "EXPLAIN QUERY PLAN SELECT id FROM user_main WHERE email = 'u5@example.org'",
    );
    assert!(format!("{plan:?}").contains("user_main_email"), "{plan:?}");
    let connection = rusqlite::Connection::open(&target.path).unwrap();
    connection
        .execute("UPDATE user_main SET username = 'by hand' WHERE id = 5", [])
        .unwrap();
    assert_eq!(
        support::sqlite_rows(&target.path, "SELECT user_id, username FROM audit"),
        vec![vec![Value::Integer(5), Value::Text("by hand".into())]]
    );
}

/// `public.notes` with a `body` column.
#[derive(Debug, Clone, PartialEq, Mapping)]
#[sync(from = "public.notes", name = "notes", key = "id", cursor = "version")]
pub struct Notes {
    #[sync(to = "note", primary_key)]
    pub id: i64,
    pub version: i64,
    #[sync(to = "note")]
    pub title: String,
    #[sync(to = "note")]
    pub body: Option<String>,
}

/// The same mapping after `body` was removed from it.
#[derive(Debug, Clone, PartialEq, Mapping)]
#[sync(from = "public.notes", name = "notes", key = "id", cursor = "version")]
pub struct NotesWithoutBody {
    #[sync(to = "note", primary_key)]
    pub id: i64,
    pub version: i64,
    #[sync(to = "note")]
    pub title: String,
}

fn create_notes(db: &TestDb) {
    db.client()
        .batch_execute(
            "CREATE TABLE public.notes (id bigint PRIMARY KEY, version bigint NOT NULL, title text NOT NULL, body text);
             INSERT INTO public.notes SELECT g, g, 'note ' || g, 'body ' || g FROM generate_series(1, 20) AS g;",
        )
        .unwrap();
}

fn run<M: Mapping>(db: &TestDb, target: &Path, full: bool) -> sync_runtime::Result<Summary> {
    let source = SourceConfig::parse(&db.url()).unwrap();
    let options = SyncOptions {
        full,
        ..SyncOptions::default()
    };
    sync_runtime::sync::<M>(&source, target, &options)
}

fn columns(target: &Path, table: &str) -> Vec<Vec<Value>> {
    support::sqlite_rows(
        target,
        &format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid"),
    )
}

fn names(names: &[&str]) -> Vec<Vec<Value>> {
    names
        .iter()
        .map(|name| vec![Value::Text((*name).to_owned())])
        .collect()
}

#[test]
fn full_rebuilds_a_table_after_a_column_left_the_mapping() {
    let db = support::source_db();
    create_notes(&db);
    let target = support::target_file();
    run::<Notes>(&db, &target.path, false).unwrap();
    rusqlite::Connection::open(&target.path)
        .unwrap()
        .execute_batch(
            "CREATE INDEX note_title ON note (title);
             CREATE INDEX note_body ON note (body);",
        )
        .unwrap();

    let error = run::<NotesWithoutBody>(&db, &target.path, false).unwrap_err();
    assert!(error.to_string().contains("rerun with `--full`"), "{error}");

    let summary = run::<NotesWithoutBody>(&db, &target.path, true).unwrap();
    assert_eq!((summary.mode.as_str(), summary.rows_read), ("full", 20));
    assert_eq!(columns(&target.path, "note"), names(&["id", "title"]));
    // The user's index on a column that is gone cannot come back; the other one does.
    assert_eq!(
        support::sqlite_rows(
            &target.path,
            "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'note' ORDER BY name",
        ),
        names(&["note_title"])
    );
    db.client()
        .batch_execute("UPDATE public.notes SET title = 'changed', version = 100 WHERE id = 7")
        .unwrap();
    let summary = run::<NotesWithoutBody>(&db, &target.path, false).unwrap();
    assert_eq!(summary.mode, "incremental");
    assert_eq!(
        support::sqlite_rows(&target.path, "SELECT title FROM note WHERE id = 7"),
        vec![vec![Value::Text("changed".into())]]
    );
}

#[test]
fn a_missing_target_table_means_a_full_run() {
    let db = support::source_db();
    create_notes(&db);
    let target = support::target_file();
    run::<Notes>(&db, &target.path, false).unwrap();
    rusqlite::Connection::open(&target.path)
        .unwrap()
        .execute_batch("DROP TABLE note")
        .unwrap();
    // Another definition of the mapping, its table gone: a full run, no `--full` needed.
    let summary = run::<NotesWithoutBody>(&db, &target.path, false).unwrap();
    assert_eq!((summary.mode.as_str(), summary.rows_read), ("full", 20));
    assert_eq!(columns(&target.path, "note"), names(&["id", "title"]));
}

/// An earlier `users` with one target table: the catalogue's `users` splits the row
/// into `user_main` and a new `user_profile`.
#[derive(Debug, Clone, PartialEq, Mapping)]
#[sync(
    from = "public.users",
    name = "users",
    key = "id",
    cursor = "updated_at"
)]
pub struct UsersBeforeTheSplit {
    #[sync(to = "user_main", primary_key)]
    pub id: i64,
    pub updated_at: sync_runtime::value::Timestamptz,
    #[sync(to = "user_main")]
    pub username: String,
    #[sync(to = "user_main")]
    pub email: String,
}

#[test]
fn status_says_a_split_into_a_new_table_is_a_full_run_and_sync_runs_it() {
    let db = support::source_db();
    create_users(&db, 8);
    let target = support::target_file();
    run::<UsersBeforeTheSplit>(&db, &target.path, false).unwrap();

    // `status --json`'s entry of `users`.
    let users_status = || -> serde_json::Value {
        let output = support::data_sync(&db, &target.path, &["status", "--json"]);
        support::assert_ok(&output);
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        json["mappings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|mapping| mapping["mapping"] == "users")
            .unwrap()
            .clone()
    };
    let users = users_status();
    assert_eq!(users["needs_full"], false, "{users}");
    assert_eq!(users["rebuilds"], "table `user_profile` is missing");
    let output = support::data_sync(&db, &target.path, &["status"]);
    assert!(
        support::stdout(&output).contains(
            "; the mapping changed since: the next sync rebuilds its targets in full (table `user_profile` is missing)\n"
        ),
        "{}",
        support::printed(&output)
    );

    let output = support::data_sync(&db, &target.path, &["sync", "--mapping", "users"]);
    support::assert_ok(&output);
    assert_eq!(
        support::stdout(&output).split(',').next(),
        Some("users: full sync")
    );
    assert_eq!(
        support::target_users(&target.path),
        support::source_users(&db)
    );
    let users = users_status();
    assert_eq!(
        (&users["needs_full"], &users["rebuilds"], &users["changed"]),
        (
            &false.into(),
            &serde_json::Value::Null,
            &serde_json::Value::Null
        )
    );
}
