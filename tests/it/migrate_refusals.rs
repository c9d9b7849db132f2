//! What a run does not migrate in place (issue 15 item 5): an added NOT NULL,
//! key, transformed or computed column, a transform that changed, and any change
//! of a capture mapping. Each stops the run before it writes, with one message
//! naming the table, the column and `--full`, and leaves the target file as it was.

use std::path::Path;

use rusqlite::types::Value;
use sync_runtime::{Mapping, SourceConfig, Summary, SyncOptions};

use crate::support::{self, TestDb};

/// The first definition every other one changes: `thing (id, name)`.
#[derive(Debug, Clone, PartialEq, Mapping)]
#[sync(
    from = "public.things",
    name = "things",
    key = "id",
    cursor = "version"
)]
pub struct Things {
    #[sync(to = "thing", primary_key)]
    pub id: i64,
    pub version: i64,
    #[sync(to = "thing")]
    pub name: String,
}

/// Adds `score`, NOT NULL.
#[derive(Debug, Clone, PartialEq, Mapping)]
#[sync(
    from = "public.things",
    name = "things",
    key = "id",
    cursor = "version"
)]
pub struct ThingsNotNull {
    #[sync(to = "thing", primary_key)]
    pub id: i64,
    pub version: i64,
    #[sync(to = "thing")]
    pub name: String,
    #[sync(to = "thing")]
    pub score: i64,
}

/// Adds `other` to the key and the target's primary key.
#[derive(Debug, Clone, PartialEq, Mapping)]
#[sync(
    from = "public.things",
    name = "things",
    key("id", "other"),
    cursor = "version"
)]
pub struct ThingsKey {
    #[sync(to = "thing", primary_key)]
    pub id: i64,
    #[sync(to = "thing", primary_key)]
    pub other: i64,
    pub version: i64,
    #[sync(to = "thing")]
    pub name: String,
}

/// Adds `note`, nullable, through a transform.
#[derive(Debug, Clone, PartialEq, Mapping)]
#[sync(
    from = "public.things",
    name = "things",
    key = "id",
    cursor = "version"
)]
pub struct ThingsTransformed {
    #[sync(to = "thing", primary_key)]
    pub id: i64,
    pub version: i64,
    #[sync(to = "thing")]
    pub name: String,
    #[sync(to = "thing", with = "crate::migrate_refusals::shout")]
    pub note: Option<String>,
}

/// Adds `label`, nullable, computed from the row.
#[derive(Debug, Clone, PartialEq, Mapping)]
#[sync(
    from = "public.things",
    name = "things",
    key = "id",
    cursor = "version"
)]
#[sync(computed(
    to = "thing",
    column = "label",
    with = "crate::migrate_refusals::label",
    type = "text",
    nullable
))]
pub struct ThingsComputed {
    #[sync(to = "thing", primary_key)]
    pub id: i64,
    pub version: i64,
    #[sync(to = "thing")]
    pub name: String,
}

/// [`ThingsTransformed`] with another transform of `note`: the same columns and
/// types, another function.
#[derive(Debug, Clone, PartialEq, Mapping)]
#[sync(
    from = "public.things",
    name = "things",
    key = "id",
    cursor = "version"
)]
pub struct ThingsOtherTransform {
    #[sync(to = "thing", primary_key)]
    pub id: i64,
    pub version: i64,
    #[sync(to = "thing")]
    pub name: String,
    #[sync(to = "thing", with = "crate::migrate_refusals::whisper")]
    pub note: Option<String>,
}

/// A capture mapping of the same table: `thing_log (id, name)`.
#[derive(Debug, Clone, PartialEq, Mapping)]
#[sync(
    from = "public.things",
    name = "things_log",
    key = "id",
    capture = "log"
)]
pub struct ThingsLog {
    #[sync(to = "thing_log", primary_key)]
    pub id: i64,
    #[sync(to = "thing_log")]
    pub name: String,
}

/// [`ThingsLog`] gaining `note`, nullable: what a cursor mapping migrates in place.
#[derive(Debug, Clone, PartialEq, Mapping)]
#[sync(
    from = "public.things",
    name = "things_log",
    key = "id",
    capture = "log"
)]
pub struct ThingsLogWithNote {
    #[sync(to = "thing_log", primary_key)]
    pub id: i64,
    #[sync(to = "thing_log")]
    pub name: String,
    #[sync(to = "thing_log")]
    pub note: Option<String>,
}

/// A transform: the note in capitals.
pub fn shout(note: &Option<String>) -> Option<String> {
    note.as_ref().map(|note| note.to_uppercase())
}

/// A transform: the note in small letters.
pub fn whisper(note: &Option<String>) -> Option<String> {
    note.as_ref().map(|note| note.to_lowercase())
}

/// A computed column: the name and key.
pub fn label(row: &ThingsComputed) -> Option<String> {
    Some(format!("{} #{}", row.name, row.id))
}

fn create_things(db: &TestDb) {
    db.client()
        .batch_execute(
            "CREATE SEQUENCE public.thing_versions;
             CREATE TABLE public.things (
                 id bigint PRIMARY KEY,
                 version bigint NOT NULL DEFAULT nextval('public.thing_versions'),
                 name text NOT NULL,
                 note text,
                 score bigint NOT NULL DEFAULT 0,
                 other bigint NOT NULL DEFAULT 1
             );
             INSERT INTO public.things (id, name, note, score)
             SELECT n, 'thing ' || n, CASE WHEN n % 2 = 0 THEN 'Note ' || n END, n * 3
             FROM generate_series(1, 20) n;",
        )
        .expect("things");
}

fn run<M: Mapping>(db: &TestDb, target: &Path, full: bool) -> sync_runtime::Result<Summary> {
    let source = SourceConfig::parse(&db.url()).expect("test URL parses");
    sync_runtime::sync::<M>(
        &source,
        target,
        &SyncOptions {
            full,
            ..SyncOptions::default()
        },
    )
}

/// The whole target file but the state's times: the schema, every row of every
/// table.
fn contents(target: &Path) -> Vec<Vec<Value>> {
    let mut all = support::sqlite_rows(
        target,
        "SELECT type, name, sql FROM sqlite_schema ORDER BY name",
    );
    for table in ["thing", "thing_log"] {
        let exists = support::sqlite_rows(
            target,
            &format!("SELECT count(*) FROM sqlite_schema WHERE name = '{table}'"),
        );
        if exists[0][0] == Value::Integer(1) {
            all.extend(support::sqlite_rows(
                target,
                &format!("SELECT * FROM \"{table}\" ORDER BY id"),
            ));
        }
    }
    all.extend(support::sqlite_rows(
        target,
        "SELECT mapping, fingerprint, model, mode, rows, watermark_raw, migrated FROM _data_sync_state ORDER BY mapping",
    ));
    all
}

/// Syncs [`Things`] in full, then runs `M`, which must fail with `message` and
/// change nothing; then `--full` rebuilds with `M`.
#[track_caller]
fn refused<M: Mapping>(message: &str) {
    let db = support::source_db();
    create_things(&db);
    let target = support::target_file();
    assert_eq!(
        run::<Things>(&db, &target.path, false).unwrap().mode,
        "full"
    );
    // A change for the next run to read, which it must not apply.
    db.client()
        .batch_execute(
            "UPDATE public.things SET name = 'changed', version = nextval('public.thing_versions') WHERE id = 3",
        )
        .unwrap();
    let before = contents(&target.path);
    let error = run::<M>(&db, &target.path, false).expect_err("the run is refused");
    assert_eq!(error.to_string(), message);
    assert_eq!(error.kind(), "mapping_changed");
    assert_eq!(
        contents(&target.path),
        before,
        "the target file is as it was"
    );
    assert_eq!(run::<M>(&db, &target.path, true).unwrap().mode, "full");
}

#[test]
fn an_added_not_null_column_needs_full() {
    refused::<ThingsNotNull>(
        "mapping `things` changed since the target was last synced: column `thing`.`score` is new and NOT NULL (only a nullable column is added in place); rerun with `--full` to rebuild its targets",
    );
}

#[test]
fn an_added_key_column_needs_full() {
    refused::<ThingsKey>(
        "mapping `things` changed since the target was last synced: the key is (`id`, `other`), was (`id`); column `thing`.`other` is new and NOT NULL (only a nullable column is added in place); rerun with `--full` to rebuild its targets",
    );
}

#[test]
fn an_added_transformed_column_needs_full() {
    refused::<ThingsTransformed>(
        "mapping `things` changed since the target was last synced: column `thing`.`note` is new and written through transform `crate::migrate_refusals::shout`; rerun with `--full` to rebuild its targets",
    );
}

#[test]
fn an_added_computed_column_needs_full() {
    refused::<ThingsComputed>(
        "mapping `things` changed since the target was last synced: column `thing`.`label` is new and computed by `crate::migrate_refusals::label`; rerun with `--full` to rebuild its targets",
    );
}

/// The fingerprint covers each column's transform: another function over the same
/// columns and types is another mapping, not the same one.
#[test]
fn a_changed_transform_needs_full() {
    assert_ne!(
        ThingsTransformed::SPEC.fingerprint,
        ThingsOtherTransform::SPEC.fingerprint
    );
    let db = support::source_db();
    create_things(&db);
    let target = support::target_file();
    run::<ThingsTransformed>(&db, &target.path, false).unwrap();
    assert_eq!(
        support::sqlite_rows(&target.path, "SELECT note FROM thing WHERE id = 2"),
        [[Value::Text("NOTE 2".into())]]
    );
    let before = contents(&target.path);
    let error =
        run::<ThingsOtherTransform>(&db, &target.path, false).expect_err("the run is refused");
    assert_eq!(
        error.to_string(),
        "mapping `things` changed since the target was last synced: column `thing`.`note` goes through transform `crate::migrate_refusals::whisper`, was `crate::migrate_refusals::shout`; rerun with `--full` to rebuild its targets"
    );
    assert_eq!(
        contents(&target.path),
        before,
        "the target file is as it was"
    );
    run::<ThingsOtherTransform>(&db, &target.path, true).unwrap();
    assert_eq!(
        support::sqlite_rows(&target.path, "SELECT note FROM thing WHERE id = 2"),
        [[Value::Text("note 2".into())]]
    );
}

/// A capture mapping is not migrated in place: its copy and the changes it applies
/// come from one position of the log, and a backfill read now would be of another.
#[test]
fn a_capture_mapping_gaining_a_nullable_column_needs_full() {
    let db = support::source_db();
    create_things(&db);
    let target = support::target_file();
    assert_eq!(
        run::<ThingsLog>(&db, &target.path, false).unwrap().mode,
        "full"
    );
    db.client()
        .batch_execute("UPDATE public.things SET name = 'changed' WHERE id = 3")
        .unwrap();
    let before = contents(&target.path);
    let error = run::<ThingsLogWithNote>(&db, &target.path, false).expect_err("the run is refused");
    assert_eq!(
        error.to_string(),
        "mapping `things_log` changed since the target was last synced: column `thing_log`.`note` was added (a mapping with `capture: log` migrates only with `--full`); rerun with `--full` to rebuild its targets"
    );
    assert_eq!(
        contents(&target.path),
        before,
        "the target file is as it was"
    );
    assert_eq!(
        run::<ThingsLogWithNote>(&db, &target.path, true)
            .unwrap()
            .mode,
        "full"
    );
    assert_eq!(
        support::sqlite_rows(
            &target.path,
            "SELECT name, note FROM thing_log WHERE id IN (2, 3) ORDER BY id"
        ),
        [
            [Value::Text("thing 2".into()), Value::Text("Note 2".into())],
            [Value::Text("changed".into()), Value::Null],
        ]
    );
}
