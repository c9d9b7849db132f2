//! Columns added or dropped without a rebuild (issue 15 item 5): two definitions of
//! one mapping, the second gaining a nullable column in two targets and losing
//! another; a run of the second migrates the targets in place and backfills from a
//! read of the key and the new column only. The source is a view whose guarded
//! columns raise an error when a run reads what it must not.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use rusqlite::types::Value;
use sync_runtime::value::{Numeric, NumericReal};
use sync_runtime::{Mapping, SourceConfig, Summary, SyncOptions};

use crate::support::{self, TestDb};

/// The first definition: `member (id, name, rating)` and `member_contact (id, fax)`.
#[derive(Debug, Clone, PartialEq, Mapping)]
#[sync(
    from = "public.members",
    name = "members",
    key = "id",
    cursor = "version",
    filter = "id <> 13"
)]
pub struct MembersV1 {
    #[sync(to = "member", primary_key)]
    #[sync(to = "member_contact", primary_key, references = "member.id")]
    pub id: i64,
    pub version: i64,
    #[sync(to = "member")]
    pub name: String,
    #[sync(to = "member")]
    pub rating: Option<Numeric>,
    #[sync(to = "member_contact")]
    pub fax: Option<String>,
}

/// The second: `fax` dropped, `nickname` added to both targets (as `nick` in
/// `member_contact`).
#[derive(Debug, Clone, PartialEq, Mapping)]
#[sync(
    from = "public.members",
    name = "members",
    key = "id",
    cursor = "version",
    filter = "id <> 13"
)]
pub struct MembersV2 {
    #[sync(to = "member", primary_key)]
    #[sync(to = "member_contact", primary_key, references = "member.id")]
    pub id: i64,
    pub version: i64,
    #[sync(to = "member")]
    pub name: String,
    #[sync(to = "member")]
    pub rating: Option<Numeric>,
    #[sync(to = "member")]
    #[sync(to = "member_contact", column = "nick")]
    pub nickname: Option<String>,
}

/// The first definition with `rating` read as a double: a type change.
#[derive(Debug, Clone, PartialEq, Mapping)]
#[sync(
    from = "public.members",
    name = "members",
    key = "id",
    cursor = "version",
    filter = "id <> 13"
)]
pub struct MembersRatingReal {
    #[sync(to = "member", primary_key)]
    #[sync(to = "member_contact", primary_key, references = "member.id")]
    pub id: i64,
    pub version: i64,
    #[sync(to = "member")]
    pub name: String,
    #[sync(to = "member")]
    pub rating: Option<NumericReal>,
    #[sync(to = "member_contact")]
    pub fax: Option<String>,
}

/// `public.member_rows` (40 rows, row 13 outside the mappings' filter) behind the
/// view `public.members`, whose `name` raises an error for a row at or below
/// `public.read_guard.upto` (so a run that reads `name` of the rows it already has
/// fails), and whose `nickname` raises for row 13 (which the filter leaves out)
/// and sleeps 20 ms per row while `public.read_guard.slow`. The functions are
/// `STABLE`, so that PostgreSQL leaves out the columns a query does not select (it
/// computes every column of a view with a `VOLATILE` one).
fn create_members(db: &TestDb) {
    db.client()
        .batch_execute(
            "CREATE SEQUENCE public.member_versions;
             CREATE TABLE public.member_rows (
                 id bigint PRIMARY KEY,
                 version bigint NOT NULL DEFAULT nextval('public.member_versions'),
                 name text NOT NULL,
                 rating numeric,
                 fax text,
                 nickname text
             );
             INSERT INTO public.member_rows (id, name, rating, fax, nickname)
             SELECT g, 'member ' || g, CASE WHEN g % 4 = 0 THEN NULL ELSE g * 1.25 END,
                    'fax ' || g,
                    CASE WHEN g % 3 = 0 THEN NULL
                         WHEN g = 13 THEN 'boom'
                         WHEN g = 7 THEN ''
                         WHEN g = 8 THEN 'Zoë \"O''Brien\" 🦀'
                         ELSE 'nick ' || g END
             FROM generate_series(1, 40) AS g;
             CREATE TABLE public.read_guard (upto bigint, slow boolean NOT NULL);
             INSERT INTO public.read_guard VALUES (NULL, false);
             CREATE FUNCTION public.guarded_name(id bigint, version bigint, value text)
             RETURNS text LANGUAGE plpgsql STABLE AS $$
             BEGIN
                 IF version <= (SELECT upto FROM public.read_guard) THEN
                     RAISE EXCEPTION 'name of member % was read', id;
                 END IF;
                 RETURN value;
             END $$;
             CREATE FUNCTION public.guarded_nickname(id bigint, value text)
             RETURNS text LANGUAGE plpgsql STABLE AS $$
             BEGIN
                 IF id = 13 THEN
                     RAISE EXCEPTION 'nickname of member 13 was read';
                 END IF;
                 IF (SELECT slow FROM public.read_guard) THEN
                     PERFORM pg_sleep(0.02);
                 END IF;
                 RETURN value;
             END $$;
             CREATE VIEW public.members AS
             SELECT id, version, public.guarded_name(id, version, name) AS name, rating, fax,
                    public.guarded_nickname(id, nickname) AS nickname
             FROM public.member_rows;",
        )
        .unwrap();
}

/// A view has no unique index for the key: the tests vouch for it.
fn options() -> SyncOptions {
    SyncOptions {
        assume_unique_key: true,
        ..SyncOptions::default()
    }
}

fn run<M: Mapping>(db: &TestDb, target: &Path) -> sync_runtime::Result<Summary> {
    let source = SourceConfig::parse(&db.url()).unwrap();
    sync_runtime::sync::<M>(&source, target, &options())
}

/// Every name, nickname and rating of the rows the mappings hold, by id.
fn source_members(db: &TestDb) -> Vec<Vec<Value>> {
    db.client()
        .query(
            "SELECT id, name, rating::text, nickname FROM public.member_rows
             WHERE id <> 13 ORDER BY id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| {
            vec![
                Value::Integer(row.get(0)),
                Value::Text(row.get(1)),
                row.get::<_, Option<String>>(2)
                    .map_or(Value::Null, Value::Text),
                row.get::<_, Option<String>>(3)
                    .map_or(Value::Null, Value::Text),
            ]
        })
        .collect()
}

/// The same from the targets of the second definition, `member` joined with
/// `member_contact` (whose `nick` must equal `member.nickname`).
fn target_members(target: &Path) -> Vec<Vec<Value>> {
    let rows = support::sqlite_rows(
        target,
        "SELECT m.id, m.name, m.rating, m.nickname, c.nick IS m.nickname
         FROM member m JOIN member_contact c USING (id) ORDER BY m.id",
    );
    for row in &rows {
        assert_eq!(
            row[4],
            Value::Integer(1),
            "member_contact.nick of {:?}",
            row[0]
        );
    }
    rows.into_iter()
        .map(|mut row| {
            row.truncate(4);
            row
        })
        .collect()
}

fn columns(target: &Path, table: &str) -> Vec<Value> {
    support::sqlite_rows(
        target,
        &format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid"),
    )
    .into_iter()
    .map(|mut row| row.remove(0))
    .collect()
}

fn text(values: &[&str]) -> Vec<Value> {
    values
        .iter()
        .map(|value| Value::Text((*value).to_owned()))
        .collect()
}

/// Makes reading `name` of every row there is now fail.
fn guard_names(db: &TestDb) {
    db.client()
        .batch_execute(
            "UPDATE public.read_guard SET upto = (SELECT max(version) FROM public.member_rows)",
        )
        .unwrap();
}

/// The whole target file: schema and every row of both targets and the state's
/// fingerprint and model.
fn snapshot(target: &Path) -> Vec<Vec<Value>> {
    let mut all = support::sqlite_rows(
        target,
        "SELECT type, name, sql FROM sqlite_schema ORDER BY name",
    );
    all.extend(support::sqlite_rows(
        target,
        "SELECT * FROM member ORDER BY id",
    ));
    all.extend(support::sqlite_rows(
        target,
        "SELECT * FROM member_contact ORDER BY id",
    ));
    all.extend(support::sqlite_rows(
        target,
        "SELECT fingerprint, model, mode, migrated FROM _data_sync_state",
    ));
    all
}

#[test]
fn a_mapping_that_gains_and_loses_columns_migrates_without_full() {
    let db = support::source_db();
    create_members(&db);
    let target = support::target_file();
    assert_eq!(run::<MembersV1>(&db, &target.path).unwrap().mode, "full");
    guard_names(&db);
    // Changes after the first run: an update and new rows, read by the
    // incremental part of the migrating run.
    db.client()
        .batch_execute(
            "UPDATE public.member_rows SET name = 'renamed', nickname = 'new nick',
                 version = nextval('public.member_versions') WHERE id = 5;",
        )
        .unwrap();
    db.client()
        .batch_execute(
            "INSERT INTO public.member_rows (id, name, nickname) VALUES (41, 'member 41', NULL),
                 (42, 'member 42', 'nick 42');",
        )
        .unwrap();
    // The guard holds: reading `name` of the rows the targets already have fails.
    let error = db
        .client()
        .query("SELECT name FROM public.members WHERE id = 1", &[])
        .unwrap_err();
    assert!(
        format!("{error:?}").contains("name of member 1 was read"),
        "{error:?}"
    );

    let summary = run::<MembersV2>(&db, &target.path).unwrap();
    assert_eq!(summary.mode, "incremental");
    // Rows 1..40 but 13 were there to backfill; 41 and 42 arrived by the
    // incremental read, which read `name` only of rows 5, 41 and 42.
    let column = |table: &str, column: &str, change: &str, backfilled: u64| {
        (
            table.to_owned(),
            column.to_owned(),
            change.to_owned(),
            backfilled,
        )
    };
    assert_eq!(
        support::migrated(&summary),
        vec![
            column("member_contact", "fax", "dropped", 0),
            column("member", "nickname", "added", 39),
            column("member_contact", "nick", "added", 39),
        ]
    );
    assert_eq!(summary.rows_read, 3);
    assert_eq!(
        columns(&target.path, "member"),
        text(&["id", "name", "rating", "nickname"])
    );
    assert_eq!(
        columns(&target.path, "member_contact"),
        text(&["id", "nick"])
    );
    assert_eq!(target_members(&target.path), source_members(&db));
    // The exact values: empty text, unicode and quotes, NULL.
    let nicknames = support::sqlite_rows(
        &target.path,
        "SELECT nickname FROM member WHERE id IN (3, 7, 8) ORDER BY id",
    );
    assert_eq!(
        nicknames,
        vec![
            vec![Value::Null],
            vec![Value::Text(String::new())],
            vec![Value::Text("Zoë \"O'Brien\" 🦀".to_owned())],
        ]
    );
    assert!(support::sqlite_rows(&target.path, "PRAGMA foreign_key_check").is_empty());

    // The state records the migration; `status` shows it.
    let states = sync_runtime::load_states(&target.path).unwrap();
    let migration = states[0].migrated.as_ref().expect("a migration recorded");
    assert_eq!(migration.columns, summary.migrated);
    assert_eq!(states[0].fingerprint, MembersV2::SPEC.fingerprint);
    let output = support::data_sync(&db, &target.path, &["status", "--json"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let members = json["mappings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|mapping| mapping["mapping"] == "members")
        .expect("members in the status");
    assert_eq!(
        members["migrated"]["columns"][1],
        serde_json::json!({"table": "member", "column": "nickname", "change": "added", "backfilled": 39})
    );
    let output = support::data_sync(&db, &target.path, &["status"]);
    let status = String::from_utf8(output.stdout).unwrap();
    assert!(
        status.contains("members: migrated by the run started ")
            && status.contains(": column `member_contact`.`fax` dropped\n")
            && status.contains(": column `member`.`nickname` added, 39 rows backfilled\n"),
        "{status}"
    );

    // The next run is a plain incremental one.
    db.client()
        .batch_execute(
            "UPDATE public.member_rows SET nickname = 'later',
                 version = nextval('public.member_versions') WHERE id = 42",
        )
        .unwrap();
    let summary = run::<MembersV2>(&db, &target.path).unwrap();
    assert_eq!(
        (summary.mode.as_str(), summary.rows_read),
        ("incremental", 1)
    );
    assert!(summary.migrated.is_empty());
    assert_eq!(target_members(&target.path), source_members(&db));
}

#[test]
fn a_type_change_names_the_column_and_both_types_and_changes_nothing() {
    let db = support::source_db();
    create_members(&db);
    let target = support::target_file();
    run::<MembersV1>(&db, &target.path).unwrap();
    let before = snapshot(&target.path);
    let error = run::<MembersRatingReal>(&db, &target.path).unwrap_err();
    assert_eq!(error.kind(), "mapping_changed");
    assert_eq!(
        error.to_string(),
        "mapping `members` changed since the target was last synced: column `member`.`rating` \
         is REAL, was TEXT; column `member`.`rating` is read as `Option<NumericReal>`, was \
         `Option<Numeric>`; rerun with `--full` to rebuild its targets"
    );
    assert_eq!(snapshot(&target.path), before);
    // With `--full` it rebuilds.
    let source = SourceConfig::parse(&db.url()).unwrap();
    let full = SyncOptions {
        full: true,
        ..options()
    };
    let summary = sync_runtime::sync::<MembersRatingReal>(&source, &target.path, &full).unwrap();
    assert_eq!((summary.mode.as_str(), summary.rows_read), ("full", 39));
    assert_eq!(
        support::sqlite_rows(&target.path, "SELECT rating FROM member WHERE id = 2"),
        vec![vec![Value::Real(2.5)]]
    );
}

#[test]
fn a_file_without_a_model_needs_full_once_then_migrates() {
    let db = support::source_db();
    create_members(&db);
    let target = support::target_file();
    run::<MembersV1>(&db, &target.path).unwrap();
    // As an earlier version left it: the fingerprint only.
    let connection = rusqlite::Connection::open(&target.path).unwrap();
    connection
        .execute_batch("UPDATE _data_sync_state SET model = NULL")
        .unwrap();
    drop(connection);
    let error = run::<MembersV2>(&db, &target.path).unwrap_err().to_string();
    assert!(
        error.starts_with(
            "mapping `members` changed since the target was last synced: its targets were built \
             by an earlier version of data-sync, which recorded only the mapping's fingerprint ("
        ),
        "{error}"
    );
    // A run of the unchanged definition records the model; then the change migrates.
    assert_eq!(
        run::<MembersV1>(&db, &target.path).unwrap().mode,
        "incremental"
    );
    let summary = run::<MembersV2>(&db, &target.path).unwrap();
    assert_eq!(summary.migrated.len(), 3);
    assert_eq!(target_members(&target.path), source_members(&db));
}

#[test]
fn a_dropped_column_an_index_uses_is_an_error_naming_it() {
    let db = support::source_db();
    create_members(&db);
    let target = support::target_file();
    run::<MembersV1>(&db, &target.path).unwrap();
    let connection = rusqlite::Connection::open(&target.path).unwrap();
    connection
        .execute_batch("CREATE INDEX user_fax ON member_contact (fax)")
        .unwrap();
    drop(connection);
    let before = snapshot(&target.path);
    let error = run::<MembersV2>(&db, &target.path).unwrap_err().to_string();
    assert!(
        error.starts_with(
            "mapping `members` changed since the target was last synced: column \
             `member_contact`.`fax` was dropped, but SQLite cannot do that in place: "
        ) && error.contains("user_fax")
            && error.ends_with("rerun with `--full` to rebuild its targets"),
        "{error}"
    );
    assert_eq!(snapshot(&target.path), before);
}

/// The environment variable that makes [`child_runs_the_second_definition`] run.
const CHILD_TARGET: &str = "DATA_SYNC_MIGRATE_CHILD_TARGET";

/// In a child process (see [`a_kill_during_the_migration_leaves_the_old_shape`]):
/// a run of the second definition; nothing otherwise.
#[test]
fn child_runs_the_second_definition() {
    let (Ok(target), Ok(url)) = (
        std::env::var(CHILD_TARGET),
        std::env::var("DATA_SYNC_SOURCE"),
    ) else {
        return;
    };
    let source = SourceConfig::parse(&url).unwrap();
    let result = sync_runtime::sync::<MembersV2>(&source, Path::new(&target), &options());
    println!("child finished: {:?}", result.map(|summary| summary.mode));
}

#[test]
fn a_kill_during_the_migration_leaves_the_old_shape() {
    let db = support::source_db();
    create_members(&db);
    let target = support::target_file();
    run::<MembersV1>(&db, &target.path).unwrap();
    let before = snapshot(&target.path);
    // 39 rows at 20 ms each: the backfill takes about 0.8 s.
    db.client()
        .batch_execute("UPDATE public.read_guard SET slow = true")
        .unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "migrate::child_runs_the_second_definition",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_TARGET, &target.path)
        .env("DATA_SYNC_SOURCE", db.url())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Killed once the backfill has read (and the child written) some rows.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reading: bool = db
            .client()
            .query_one(
                "SELECT count(*) > 0 FROM pg_stat_activity
                 WHERE query LIKE 'COPY (SELECT \"id\", \"nickname\" FROM%' AND state = 'active'",
                &[],
            )
            .unwrap()
            .get(0);
        if reading {
            break;
        }
        assert!(Instant::now() < deadline, "the backfill never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains("child finished"), "{stdout}");

    // The old shape, rows and state; the attempt shows as killed.
    assert_eq!(snapshot(&target.path), before);
    let outcome = support::sqlite_rows(&target.path, "SELECT last_outcome FROM _data_sync_state");
    assert_eq!(outcome, vec![vec![Value::Text("running".to_owned())]]);
    // And the next run migrates.
    db.client()
        .batch_execute("UPDATE public.read_guard SET slow = false")
        .unwrap();
    let summary = run::<MembersV2>(&db, &target.path).unwrap();
    assert_eq!(summary.migrated.len(), 3);
    assert_eq!(target_members(&target.path), source_members(&db));
}
