//! `strict = false` (YAML `strict: false`): plain tables with the same declared types,
//! for SQLite readers older than 3.37. A mapping with it is synced and the file read
//! by the Debian `sqlite3` command-line client, which must print the exact values and
//! show no STRICT table; the schema comparison accepts the plain table the mapping
//! made and refuses a STRICT/plain mismatch either way, naming it.

use std::path::Path;
use std::process::Command;

use sync_runtime::{Error, Mapping};

use crate::support::{self, TestDb};

/// `public.plain` into a plain table.
#[derive(Debug, Clone, PartialEq, Mapping)]
#[sync(from = "public.plain", key = "id", strict = false)]
pub struct Plain {
    #[sync(to = "plain_main", primary_key)]
    pub id: i64,
    #[sync(to = "plain_main")]
    pub name: String,
    #[sync(to = "plain_main")]
    pub score: Option<f64>,
    #[sync(to = "plain_main")]
    pub payload: Option<Vec<u8>>,
}

/// The same table and target, STRICT (the default).
#[derive(Debug, Clone, PartialEq, Mapping)]
#[sync(from = "public.plain", key = "id", name = "plain_strict")]
pub struct PlainStrict {
    #[sync(to = "plain_main", primary_key)]
    pub id: i64,
    #[sync(to = "plain_main")]
    pub name: String,
    #[sync(to = "plain_main")]
    pub score: Option<f64>,
    #[sync(to = "plain_main")]
    pub payload: Option<Vec<u8>>,
}

fn create_plain(db: &TestDb) {
    db.client()
        .batch_execute(
            "CREATE TABLE public.plain (id bigint PRIMARY KEY, name text NOT NULL, score double precision, payload bytea);
             INSERT INTO public.plain VALUES
               (9007199254740993, 'Grüße aus Köln 🎉 ''single'' \"double\"', 0.1, '\\x00ff00'),
               (-1, '', NULL, NULL),
               (2, '12', 1e300, '\\x');",
        )
        .unwrap();
}

/// The output of the `sqlite3` client for `sql` on `target`, values as SQL literals.
fn sqlite3(target: &Path, sql: &str) -> String {
    let output = Command::new("sqlite3")
        .args(["-batch", "-bail", "-quote"])
        .arg(target)
        .arg(sql)
        .output()
        .expect("the sqlite3 client runs (apt-get install sqlite3)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn a_plain_table_is_read_exactly_by_the_sqlite3_client() {
    let db = support::source_db();
    create_plain(&db);
    let target = support::target_file();
    support::sync::<Plain>(&db, &target.path).unwrap();

    assert_eq!(
        sqlite3(
            &target.path,
            "SELECT id, name, score, payload, typeof(id), typeof(name), typeof(score), typeof(payload) FROM plain_main ORDER BY id"
        ),
        "-1,'',NULL,NULL,'integer','text','null','null'\n\
         2,'12',1.0000000000000000047e+300,X'','integer','text','real','blob'\n\
         9007199254740993,'Grüße aus Köln 🎉 ''single'' \"double\"',0.10000000000000000555,X'00ff00','integer','text','real','blob'\n"
    );
    assert_eq!(
        sqlite3(
            &target.path,
            "SELECT name, strict FROM pragma_table_list WHERE name = 'plain_main'"
        ),
        "'plain_main',0\n"
    );
    assert_eq!(
        sqlite3(
            &target.path,
            "SELECT sql FROM sqlite_schema WHERE name = 'plain_main'"
        ),
        "'CREATE TABLE \"plain_main\" (\"id\" INTEGER NOT NULL, \"name\" TEXT NOT NULL, \"score\" REAL, \"payload\" BLOB, PRIMARY KEY (\"id\"))'\n"
    );

    // The plain table it made matches the mapping: the next run writes into it.
    db.client()
        .batch_execute("UPDATE public.plain SET name = 'renamed' WHERE id = 2")
        .unwrap();
    support::sync::<Plain>(&db, &target.path).unwrap();
    assert_eq!(
        sqlite3(&target.path, "SELECT name FROM plain_main WHERE id = 2"),
        "'renamed'\n"
    );
}

#[test]
fn strict_and_plain_tables_do_not_match() {
    let db = support::source_db();
    create_plain(&db);

    let plain_file = support::target_file();
    support::sync::<Plain>(&db, &plain_file.path).unwrap();
    let error = support::sync::<PlainStrict>(&db, &plain_file.path).unwrap_err();
    assert!(matches!(error, Error::SchemaMismatch { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        "target table `plain_main` does not match mapping `plain_strict`: the table is not STRICT, the mapping's is"
    );

    let strict_file = support::target_file();
    support::sync::<PlainStrict>(&db, &strict_file.path).unwrap();
    let error = support::sync::<Plain>(&db, &strict_file.path).unwrap_err();
    assert_eq!(
        error.to_string(),
        "target table `plain_main` does not match mapping `plain`: the table is STRICT, the mapping's is not (`strict = false`)"
    );
    // Both files are as their own mapping left them.
    assert_eq!(
        sqlite3(
            &strict_file.path,
            "SELECT strict, (SELECT count(*) FROM plain_main) FROM pragma_table_list WHERE name = 'plain_main'"
        ),
        "1,3\n"
    );
}
