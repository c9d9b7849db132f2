//! A mapping declared in YAML (`tests/mappings/odd_names.yaml`, a test mapping the
//! binary does not ship), compiled by `cargo xtask gen`, synced end to end: names
//! with spaces, capitals and reserved words, all exact.

use rusqlite::types::Value;

use crate::generated::OddNames;
use crate::outcomes::data_sync_test_mappings;
use crate::support::{self, TestDb};

/// Creates `public."Odd Source"` as `tests/mappings/odd_names.yaml` reads it.
fn create_odd_source(db: &TestDb) {
    let mut client = db.client();
    client
        .batch_execute(
            r#"CREATE TABLE public."Odd Source" (
                   "Id" bigint PRIMARY KEY,
                   "select" text NOT NULL,
                   "User Name" text,
                   "type" character varying(20) NOT NULL,
                   "id" integer
               );
               CREATE TABLE public.odd_source ("Id" bigint);
               INSERT INTO public."Odd Source" ("Id", "select", "User Name", "type", "id") VALUES
                   (-9223372036854775808, '', NULL, 'min', 1),
                   (1, 'SELECT * FROM "x"; --', 'Ada "the" O''Neil', 'order', 2),
                   (2, 'Grüße 🎉', '', 'a', NULL),
                   (9223372036854775807, 'max', 'Zoë', 'zzzzzzzzzzzzzzzzzzzz', 3);"#,
        )
        .unwrap();
}

fn text(value: &str) -> Value {
    Value::Text(value.to_owned())
}

#[test]
fn odd_names_sync_exactly() {
    let db = support::source_db();
    create_odd_source(&db);
    let target = support::target_file();

    let summary = support::sync::<OddNames>(&db, &target.path).unwrap();
    assert_eq!(summary.rows_read, 4);

    assert_eq!(
        support::sqlite_rows(
            &target.path,
            r#"SELECT "Id", "select", "Name Of User" FROM "Odd Main" ORDER BY "Id""#
        ),
        [
            vec![Value::Integer(i64::MIN), text(""), Value::Null],
            vec![
                Value::Integer(1),
                text(r#"SELECT * FROM "x"; --"#),
                text(r#"Ada "the" O'Neil"#),
            ],
            vec![Value::Integer(2), text("Grüße 🎉"), text("")],
            vec![Value::Integer(i64::MAX), text("max"), text("Zoë")],
        ]
    );
    assert_eq!(
        support::sqlite_rows(
            &target.path,
            r#"SELECT "ID", "type", "User Name" FROM "order" ORDER BY "ID""#
        ),
        [
            vec![Value::Integer(i64::MIN), text("min"), Value::Null],
            vec![
                Value::Integer(1),
                text("order"),
                text(r#"Ada "the" O'Neil"#)
            ],
            vec![Value::Integer(2), text("a"), text("")],
            vec![
                Value::Integer(i64::MAX),
                text("zzzzzzzzzzzzzzzzzzzz"),
                text("Zoë"),
            ],
        ]
    );
    // The names are exact: no case-folded or unquoted twin exists.
    assert_eq!(
        support::sqlite_rows(
            &target.path,
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE '\\_%' ESCAPE '\\' ORDER BY name"
        ),
        [vec![text("Odd Main")], vec![text("order")]]
    );
    // `order."ID"` references `"Odd Main"."Id"`.
    assert_eq!(
        support::sqlite_rows(
            &target.path,
            r#"SELECT "table", "from", "to" FROM pragma_foreign_key_list('order')"#
        ),
        [vec![text("Odd Main"), text("ID"), text("Id")]]
    );
}

#[test]
fn odd_names_through_the_binary() {
    let db = support::source_db();
    create_odd_source(&db);
    let target = support::target_file();

    let list = data_sync_test_mappings(&db, &target.path, &["list"]);
    assert!(list.status.success(), "{list:?}");
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(listed.contains("odd_names"), "{listed}");
    assert!(listed.contains("Odd Source"), "{listed}");

    let output = data_sync_test_mappings(&db, &target.path, &["sync", "--mapping", "odd_names"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        support::sqlite_rows(&target.path, r#"SELECT count(*) FROM "Odd Main""#),
        [vec![Value::Integer(4)]]
    );
}
