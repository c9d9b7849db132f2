//! Full sync of the reference `users` mapping: exact values, idempotence, atomicity.

use mappings::Users;
use rusqlite::types::Value;

use crate::support::{self, TestDb};

/// Creates `public.users` as the reference mapping reads it, with `rows` rows that
/// exercise NULLs, non-ASCII text, empty strings and quotes.
pub fn create_users(db: &TestDb, rows: i64) {
    let mut client = db.client();
    client.batch_execute(testkit::reference::USERS_DDL).unwrap();
    client
        .execute(
            "INSERT INTO public.users (id, username, email, bio, avatar_url)
             SELECT g,
                    'user_' || g,
                    CASE WHEN g % 7 = 0 THEN '' ELSE 'u' || g || '@example.org' END,
                    CASE WHEN g % 3 = 0 THEN NULL
                         WHEN g % 3 = 1 THEN 'Grüße aus Köln 🎉 ' || g || ' «quoted» ''single'' \"double\"'
                         ELSE repeat('ß', (g % 50)::int) END,
                    CASE WHEN g % 2 = 0 THEN NULL ELSE 'https://img.example.org/' || g || '.png' END
             FROM generate_series(1::bigint, $1::bigint) AS g",
            &[&rows],
        )
        .unwrap();
}

fn assert_target_equals_source(db: &TestDb, target: &std::path::Path) {
    let expected = support::source_users(db);
    let actual = support::target_users(target);
    assert_eq!(actual.len(), expected.len(), "row count");
    for (actual, expected) in actual.iter().zip(&expected) {
        assert_eq!(actual, expected);
    }
    let counts = support::sqlite_rows(
        target,
        "SELECT (SELECT count(*) FROM user_main), (SELECT count(*) FROM user_profile)",
    );
    let count = Value::Integer(expected.len() as i64);
    assert_eq!(counts, vec![vec![count.clone(), count]]);
}

#[test]
fn empty_table_creates_empty_targets() {
    let db = support::source_db();
    create_users(&db, 0);
    let target = support::target_file();
    let summary = support::sync::<Users>(&db, &target.path).unwrap();
    assert_eq!(summary.rows_read, 0);
    assert_target_equals_source(&db, &target.path);
}

#[test]
fn one_row() {
    let db = support::source_db();
    create_users(&db, 1);
    let target = support::target_file();
    let summary = support::sync::<Users>(&db, &target.path).unwrap();
    assert_eq!(summary.rows_read, 1);
    assert_eq!(
        support::target_users(&target.path),
        vec![vec![
            Value::Integer(1),
            Value::Text("user_1".into()),
            Value::Text("u1@example.org".into()),
            Value::Text("Grüße aus Köln 🎉 1 «quoted» 'single' \"double\"".into()),
            Value::Text("https://img.example.org/1.png".into()),
        ]]
    );
}

#[test]
fn ten_thousand_rows_exact_and_a_second_run_changes_nothing() {
    let db = support::source_db();
    create_users(&db, 10_000);
    let target = support::target_file();
    let first = support::sync::<Users>(&db, &target.path).unwrap();
    assert_eq!(first.rows_read, 10_000);
    assert_eq!(
        first
            .targets
            .iter()
            .map(|t| (t.table.as_str(), t.rows))
            .collect::<Vec<_>>(),
        vec![("user_main", 10_000), ("user_profile", 10_000)]
    );
    assert_target_equals_source(&db, &target.path);
    let before = support::target_users(&target.path);

    let second = support::sync::<Users>(&db, &target.path).unwrap();
    assert_eq!(second.rows_read, 10_000);
    assert_eq!(support::target_users(&target.path), before);
}

#[test]
fn rows_deleted_and_changed_at_the_source_are_replaced() {
    let db = support::source_db();
    create_users(&db, 100);
    let target = support::target_file();
    support::sync::<Users>(&db, &target.path).unwrap();
    db.client()
        .batch_execute(
            "DELETE FROM public.users WHERE id > 50;
             UPDATE public.users SET bio = 'changed', avatar_url = NULL WHERE id = 1;",
        )
        .unwrap();
    support::sync::<Users>(&db, &target.path).unwrap();
    assert_target_equals_source(&db, &target.path);
}

#[test]
fn targets_are_strict_with_keys_and_foreign_keys() {
    let db = support::source_db();
    create_users(&db, 1);
    let target = support::target_file();
    support::sync::<Users>(&db, &target.path).unwrap();
    let schema = support::sqlite_rows(
        &target.path,
        "SELECT name, sql FROM sqlite_schema WHERE name IN ('user_main', 'user_profile') ORDER BY name",
    );
    assert_eq!(
        schema,
        vec![
            vec![
                Value::Text("user_main".into()),
                Value::Text(
                    "CREATE TABLE \"user_main\" (\"id\" INTEGER NOT NULL, \"username\" TEXT NOT NULL, \"email\" TEXT NOT NULL, PRIMARY KEY (\"id\")) STRICT".into()
                ),
            ],
            vec![
                Value::Text("user_profile".into()),
                Value::Text(
                    "CREATE TABLE \"user_profile\" (\"id\" INTEGER NOT NULL, \"bio\" TEXT, \"avatar_url\" TEXT, PRIMARY KEY (\"id\"), FOREIGN KEY (\"id\") REFERENCES \"user_main\" (\"id\")) STRICT".into()
                ),
            ],
        ]
    );
    let state = support::sqlite_rows(
        &target.path,
        "SELECT mapping, mode, rows, last_outcome FROM _data_sync_state",
    );
    assert_eq!(
        state,
        vec![vec![
            Value::Text("users".into()),
            Value::Text("full".into()),
            Value::Integer(1),
            Value::Text("ok".into()),
        ]]
    );
}

/// `public.tokens`, keyed by a uuid that has nothing to do with the rows' physical
/// order.
#[derive(Debug, sync_runtime::Mapping)]
#[sync(from = "public.tokens", name = "tokens", key = "id")]
pub struct Tokens {
    #[sync(to = "token", primary_key)]
    pub id: sync_runtime::value::Uuid,
    #[sync(to = "token")]
    pub serial: i64,
}

/// A full sync reads a table with a unique index on its key in key order (issue 17),
/// so the target's rows arrive, and get their rowids, in key order however the
/// source stores them; the values are the source's.
#[test]
fn a_full_sync_reads_rows_in_key_order() {
    let db = support::source_db();
    db.client()
        .batch_execute(
            "CREATE TABLE public.tokens (id uuid PRIMARY KEY, serial bigint NOT NULL);
             INSERT INTO public.tokens SELECT md5('token ' || g)::uuid, g FROM generate_series(1, 3000) AS g;",
        )
        .unwrap();
    let target = support::target_file();
    let source = sync_runtime::SourceConfig::parse(&db.url()).unwrap();
    let options = sync_runtime::SyncOptions {
        full: true,
        batch_size: 500,
        ..sync_runtime::SyncOptions::default()
    };
    sync_runtime::sync::<Tokens>(&source, &target.path, &options).unwrap();
    let expected: Vec<Vec<Value>> = db
        .client()
        .query(
            "SELECT id::text, serial FROM public.tokens ORDER BY id",
            &[],
        )
        .unwrap()
        .into_iter()
        .map(|row| vec![Value::Text(row.get(0)), Value::Integer(row.get(1))])
        .collect();
    assert_eq!(expected.len(), 3000);
    let by_rowid =
        support::sqlite_rows(&target.path, "SELECT id, serial FROM token ORDER BY rowid");
    assert!(by_rowid == expected, "rows not written in key order");
    // The physical order was not the key order to begin with.
    let physical: Vec<i64> = db
        .client()
        .query("SELECT serial FROM public.tokens", &[])
        .unwrap()
        .into_iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(physical, (1..=3000).collect::<Vec<i64>>());
}

/// The first run into a new file loads through a rollback journal (nothing to read
/// yet) and leaves the file in WAL mode, as every later run keeps it.
#[test]
fn a_first_full_sync_leaves_a_new_file_in_wal_mode() {
    let db = support::source_db();
    create_users(&db, 2_000);
    let target = support::target_file();
    support::sync::<Users>(&db, &target.path).unwrap();
    let mode = support::sqlite_rows(&target.path, "PRAGMA journal_mode");
    assert_eq!(mode, vec![vec![Value::Text("wal".into())]]);
    assert_target_equals_source(&db, &target.path);
    // A second full sync, over the tables, stays in WAL mode throughout.
    support::sync::<Users>(&db, &target.path).unwrap();
    assert_target_equals_source(&db, &target.path);
    assert_eq!(
        support::sqlite_rows(&target.path, "PRAGMA journal_mode"),
        vec![vec![Value::Text("wal".into())]]
    );
}
