//! Incremental sync against a real PostgreSQL: watermark order across batch
//! boundaries, kills at any instant, late commits and the overlap window, soft and
//! hard deletes, NULL cursors, changed mappings, status.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::types::Value;
use sync_runtime::value::Timestamptz;
use sync_runtime::{Mapping, Overlap, SourceConfig, Summary, SyncOptions};

use crate::support::{self, TestDb};

/// `public.events` with an integer cursor fed by a sequence, and a soft-delete column.
#[derive(Debug, Clone, PartialEq, Mapping)]
#[sync(
    from = "public.events",
    name = "events",
    key = "id",
    cursor = "version",
    soft_delete = "deleted_at"
)]
pub struct Events {
    #[sync(to = "event_main", primary_key)]
    #[sync(to = "event_detail", primary_key, references = "event_main.id")]
    pub id: i64,
    pub version: i64,
    #[sync(to = "event_main")]
    pub title: String,
    #[sync(to = "event_detail")]
    pub body: Option<String>,
    pub deleted_at: Option<i64>,
}

/// The same mapping name with another definition (no `body`): another fingerprint,
/// which a run migrates to in place.
#[derive(Debug, Clone, PartialEq, Mapping)]
#[sync(
    from = "public.events",
    name = "events",
    key = "id",
    cursor = "version",
    soft_delete = "deleted_at"
)]
pub struct EventsChanged {
    #[sync(to = "event_main", primary_key)]
    #[sync(to = "event_detail", primary_key, references = "event_main.id")]
    pub id: i64,
    pub version: i64,
    #[sync(to = "event_main")]
    pub title: String,
    pub deleted_at: Option<i64>,
}

/// `public.posts` with a `timestamptz` cursor: the overlap window is a duration.
#[derive(Debug, Clone, PartialEq, Mapping)]
#[sync(
    from = "public.posts",
    name = "posts",
    key = "id",
    cursor = "updated_at"
)]
pub struct Posts {
    #[sync(to = "post", primary_key)]
    pub id: i64,
    #[sync(to = "post")]
    pub updated_at: Timestamptz,
    #[sync(to = "post")]
    pub title: String,
}

fn create_events(db: &TestDb, rows: i64) {
    let mut client = db.client();
    client
        .batch_execute(
            "CREATE SEQUENCE public.event_versions;
             CREATE TABLE public.events (
                 id bigint PRIMARY KEY,
                 version bigint NOT NULL DEFAULT nextval('public.event_versions'),
                 title text NOT NULL,
                 body text,
                 deleted_at bigint
             );
             CREATE INDEX ON public.events (version, id);",
        )
        .unwrap();
    insert_events(db, 1, rows);
}

/// Inserts events `first..first + count`, each with its own version.
fn insert_events(db: &TestDb, first: i64, count: i64) {
    db.client()
        .execute(
            "INSERT INTO public.events (id, title, body)
             SELECT g, 'event ' || g, CASE WHEN g % 3 = 0 THEN NULL ELSE 'body ' || g END
             FROM generate_series($1::bigint, $1::bigint + $2::bigint - 1) AS g",
            &[&first, &count],
        )
        .unwrap();
}

/// The live source events as the targets should hold them: `(id, title, body)`.
fn source_events(db: &TestDb) -> Vec<Vec<Value>> {
    support::pg_rows(
        db,
        "SELECT id, title, body FROM public.events WHERE deleted_at IS NULL ORDER BY id",
        &[],
    )
}

fn target_events(target: &Path) -> Vec<Vec<Value>> {
    let counts = support::sqlite_rows(
        target,
        "SELECT (SELECT count(*) FROM event_main), (SELECT count(*) FROM event_detail)",
    );
    assert_eq!(
        counts[0][0], counts[0][1],
        "both targets hold the same rows"
    );
    support::sqlite_rows(
        target,
        "SELECT m.id, m.title, d.body FROM event_main AS m JOIN event_detail AS d ON d.id = m.id ORDER BY m.id",
    )
}

fn assert_events_equal(db: &TestDb, target: &Path) {
    let expected = source_events(db);
    let actual = target_events(target);
    assert_eq!(actual.len(), expected.len(), "row count");
    assert!(actual == expected, "target differs from source");
}

fn options(batch_size: usize) -> SyncOptions {
    SyncOptions {
        batch_size,
        ..SyncOptions::default()
    }
}

fn run<M: Mapping>(
    db: &TestDb,
    target: &Path,
    options: &SyncOptions,
) -> sync_runtime::Result<Summary> {
    let source = SourceConfig::parse(&db.url()).unwrap();
    sync_runtime::sync::<M>(&source, target, options)
}

fn written(summary: &Summary) -> Vec<(u64, u64)> {
    summary
        .targets
        .iter()
        .map(|target| (target.rows, target.deleted))
        .collect()
}

fn state(target: &Path, mapping: &str) -> Vec<Value> {
    support::sqlite_rows(
        target,
        &format!(
            "SELECT mode, rows, watermark_cursor, watermark_key, last_outcome
             FROM _data_sync_state WHERE mapping = '{mapping}'"
        ),
    )
    .remove(0)
}

#[test]
fn equal_cursors_across_a_batch_boundary_are_neither_skipped_nor_repeated() {
    let db = support::source_db();
    create_events(&db, 5);
    let target = support::target_file();
    let first = run::<Events>(&db, &target.path, &options(3)).unwrap();
    assert_eq!(first.mode, "full");

    // Ten rows share one cursor value; the run stops at the eighth (a title it
    // cannot read) after committing two batches of three.
    let mut client = db.client();
    client
        .batch_execute(
            "ALTER TABLE public.events ALTER COLUMN title DROP NOT NULL;
             INSERT INTO public.events (id, version, title)
             SELECT g, 1000, 'same ' || g FROM generate_series(11, 20) AS g;
             UPDATE public.events SET title = NULL WHERE id = 17;",
        )
        .unwrap();
    let error = run::<Events>(&db, &target.path, &options(3))
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "mapping `events`: cannot read column `title` of `public.events` at key 17: unexpected NULL: make the field an `Option`"
    );
    assert_eq!(
        state(&target.path, "events")[..4],
        [
            Value::Text("incremental".into()),
            Value::Integer(6),
            Value::Text("1000".into()),
            Value::Text("[16]".into()),
        ]
    );
    assert_eq!(target_events(&target.path).len(), 5 + 6);

    // The row is fixed without moving its cursor: the next run starts exactly after
    // (1000, 16), inside the run of equal cursors.
    client
        .execute(
            "UPDATE public.events SET title = 'fixed' WHERE id = 17",
            &[],
        )
        .unwrap();
    let resumed = run::<Events>(&db, &target.path, &options(3)).unwrap();
    assert_eq!(resumed.mode, "incremental");
    assert_eq!(resumed.rows_read, 4);
    assert_eq!(written(&resumed), vec![(4, 0), (4, 0)]);
    assert_events_equal(&db, &target.path);
}

#[test]
fn a_second_run_without_changes_moves_zero_rows() {
    let db = support::source_db();
    create_events(&db, 1_000);
    let target = support::target_file();
    assert_eq!(
        run::<Events>(&db, &target.path, &options(100))
            .unwrap()
            .mode,
        "full"
    );
    let second = run::<Events>(&db, &target.path, &options(100)).unwrap();
    assert_eq!(second.mode, "incremental");
    assert_eq!(second.rows_read, 0);
    assert_eq!(written(&second), vec![(0, 0), (0, 0)]);

    // With an overlap the rows of the window are read again, and written never.
    let overlap = SyncOptions {
        overlap: Some(Overlap::Number(100)),
        ..options(7)
    };
    let third = run::<Events>(&db, &target.path, &overlap).unwrap();
    assert_eq!(third.rows_read, 101);
    assert_eq!(written(&third), vec![(0, 0), (0, 0)]);
    assert_events_equal(&db, &target.path);

    // One changed row moves one row.
    db.client()
        .execute(
            "UPDATE public.events SET body = 'new', version = nextval('public.event_versions') WHERE id = 500",
            &[],
        )
        .unwrap();
    let fourth = run::<Events>(&db, &target.path, &options(100)).unwrap();
    assert_eq!(fourth.rows_read, 1);
    assert_eq!(written(&fourth), vec![(0, 0), (1, 0)]);
    assert_events_equal(&db, &target.path);
}

#[test]
fn rows_updated_during_a_run_arrive_by_the_next_run() {
    let db = support::source_db();
    create_events(&db, 0);
    let target = support::target_file();
    run::<Events>(&db, &target.path, &options(100)).unwrap();
    insert_events(&db, 1, 20_000);

    let updater = {
        let mut client = db.client();
        std::thread::spawn(move || {
            for round in 0..50i64 {
                client
                    .execute(
                        "UPDATE public.events SET title = 'updated ' || $1::bigint,
                             version = nextval('public.event_versions')
                         WHERE id % 50 = $1::bigint % 50",
                        &[&round],
                    )
                    .unwrap();
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let during = run::<Events>(&db, &target.path, &options(500)).unwrap();
    updater.join().unwrap();
    assert!(during.rows_read >= 20_000, "{during:?}");
    run::<Events>(&db, &target.path, &options(500)).unwrap();
    assert_events_equal(&db, &target.path);
}

fn create_posts(db: &TestDb) {
    db.client()
        .batch_execute(
            "CREATE TABLE public.posts (
                 id bigint PRIMARY KEY,
                 updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
                 title text NOT NULL
             );
             INSERT INTO public.posts (id, updated_at, title)
             SELECT g, now() - interval '1 day' + g * interval '1 second', 'post ' || g
             FROM generate_series(1, 100) AS g;",
        )
        .unwrap();
}

fn post_ids(target: &Path) -> Vec<i64> {
    support::sqlite_rows(target, "SELECT id FROM post ORDER BY id")
        .into_iter()
        .map(|row| match row[0] {
            Value::Integer(id) => id,
            ref other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn a_late_commit_inside_the_overlap_window_is_picked_up() {
    let db = support::source_db();
    create_posts(&db);
    let target = support::target_file();
    run::<Posts>(&db, &target.path, &SyncOptions::default()).unwrap();

    // Transaction `late` takes its cursor value (`now()`, its start) first, and
    // commits only after a later row was synced past it.
    let mut late = db.client();
    let mut late = late.transaction().unwrap();
    late.execute(
        "INSERT INTO public.posts (id, updated_at, title) VALUES (1000, now(), 'late')",
        &[],
    )
    .unwrap();
    // A transaction that commits later than the window: its cursor is an hour old.
    late.execute(
        "INSERT INTO public.posts (id, updated_at, title)
         VALUES (2000, now() - interval '1 hour', 'too late')",
        &[],
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(20));
    db.client()
        .execute(
            "INSERT INTO public.posts (id, title) VALUES (1001, 'on time')",
            &[],
        )
        .unwrap();
    let before = run::<Posts>(&db, &target.path, &SyncOptions::default()).unwrap();
    assert_eq!(before.mode, "incremental");
    assert!(post_ids(&target.path).contains(&1001));
    assert!(!post_ids(&target.path).contains(&1000));
    late.commit().unwrap();

    // Without an overlap the late row would be lost: its cursor is below the
    // watermark.
    let no_overlap = SyncOptions {
        overlap: Some(Overlap::Number(0)),
        ..SyncOptions::default()
    };
    let missed = run::<Posts>(&db, &target.path, &no_overlap).unwrap();
    assert_eq!(missed.rows_read, 0);
    assert!(!post_ids(&target.path).contains(&1000));

    // The default window (5 minutes) re-reads it; rows already there are read, not
    // written.
    let caught = run::<Posts>(&db, &target.path, &SyncOptions::default()).unwrap();
    assert_eq!(caught.targets[0].rows, 1, "{caught:?}");
    let ids = post_ids(&target.path);
    assert!(ids.contains(&1000));
    // Documented limit: a cursor value older than the window when its transaction
    // commits is not seen by incremental runs; a full run (or `--overlap 2h`) is.
    assert!(!ids.contains(&2000));
    let wide = SyncOptions {
        overlap: Some("2h".parse().unwrap()),
        ..SyncOptions::default()
    };
    run::<Posts>(&db, &target.path, &wide).unwrap();
    assert!(post_ids(&target.path).contains(&2000));

    // A duration makes no sense for an integer cursor.
    let db2 = support::source_db();
    create_events(&db2, 3);
    let target2 = support::target_file();
    run::<Events>(&db2, &target2.path, &options(10)).unwrap();
    let error = run::<Events>(&db2, &target2.path, &wide)
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "mapping `events`: `--overlap 7200000ms` is a duration, but cursor `version` is `int8`: give a number of cursor values, e.g. `--overlap 1000`"
    );
}

#[test]
fn soft_deletes_remove_rows_from_every_target() {
    let db = support::source_db();
    create_events(&db, 50);
    db.client()
        .execute("UPDATE public.events SET deleted_at = 1 WHERE id = 50", &[])
        .unwrap();
    let target = support::target_file();
    let full = run::<Events>(&db, &target.path, &options(10)).unwrap();
    assert_eq!(full.rows_read, 50);
    assert_eq!(written(&full), vec![(49, 0), (49, 0)]);
    assert_events_equal(&db, &target.path);

    db.client()
        .batch_execute(
            "UPDATE public.events SET deleted_at = 7, version = nextval('public.event_versions')
                 WHERE id IN (3, 4, 5);
             UPDATE public.events SET deleted_at = NULL, version = nextval('public.event_versions')
                 WHERE id = 50;",
        )
        .unwrap();
    let incremental = run::<Events>(&db, &target.path, &options(2)).unwrap();
    assert_eq!(incremental.rows_read, 4);
    assert_eq!(written(&incremental), vec![(1, 3), (1, 3)]);
    assert_events_equal(&db, &target.path);
}

#[test]
fn prune_removes_rows_deleted_at_the_source() {
    let db = support::source_db();
    create_events(&db, 300);
    let target = support::target_file();
    run::<Events>(&db, &target.path, &options(100)).unwrap();
    db.client()
        .batch_execute(
            "DELETE FROM public.events WHERE id % 10 = 0;
             UPDATE public.events SET title = 'kept', version = nextval('public.event_versions') WHERE id = 1;",
        )
        .unwrap();
    let plain = run::<Events>(&db, &target.path, &options(100)).unwrap();
    assert_eq!(written(&plain), vec![(1, 0), (0, 0)]);
    assert_eq!(target_events(&target.path).len(), 300);

    let prune = SyncOptions {
        prune: true,
        ..options(7)
    };
    let pruned = run::<Events>(&db, &target.path, &prune).unwrap();
    assert_eq!(pruned.rows_read, 0);
    assert_eq!(written(&pruned), vec![(0, 30), (0, 30)]);
    assert_events_equal(&db, &target.path);
    assert_eq!(state(&target.path, "events")[4], Value::Text("ok".into()));
}

/// `--prune` of an integer key merges the source's keys with the target's, read in
/// pages (issue 17): deletions at both ends, across a page boundary (8192 keys) and
/// in runs are all found, and nothing else is touched.
#[test]
fn prune_merges_integer_keys_across_pages_and_at_both_ends() {
    let db = support::source_db();
    create_events(&db, 20_000);
    let target = support::target_file();
    run::<Events>(&db, &target.path, &options(5_000)).unwrap();
    let deleted = db
        .client()
        .execute(
            "DELETE FROM public.events
             WHERE id IN (1, 2, 19999, 20000) OR id BETWEEN 8190 AND 8200
                OR id BETWEEN 10000 AND 10100 OR id % 997 = 0",
            &[],
        )
        .unwrap();
    assert_eq!(deleted, 4 + 11 + 101 + 20);
    let prune = SyncOptions {
        prune: true,
        ..options(777)
    };
    assert_prunes_once(&db, &target.path, &prune, deleted);
}

/// Runs `prune` over `path`: it deletes `deleted` rows from each target and leaves
/// them equal to the source; a second run finds nothing left to prune.
fn assert_prunes_once(db: &TestDb, path: &Path, prune: &SyncOptions, deleted: u64) {
    let pruned = run::<Events>(db, path, prune).unwrap();
    assert_eq!(written(&pruned), vec![(0, deleted), (0, deleted)]);
    assert_events_equal(db, path);
    let again = run::<Events>(db, path, prune).unwrap();
    assert_eq!(written(&again), vec![(0, 0), (0, 0)]);
    assert_events_equal(db, path);
}

/// `--prune` of a batch of source keys with few gaps deletes each gap's range of
/// target keys, and of a batch with many merges key by key (issue 17): both
/// kinds of batch, negative keys and the ends of `bigint` give exact results.
#[test]
fn prune_deletes_gaps_by_range_and_sparse_keys_one_by_one() {
    let db = support::source_db();
    create_events(&db, 0);
    db.client()
        .batch_execute(
            "INSERT INTO public.events (id, title, body)
             SELECT g, 'event ' || g, CASE WHEN g % 3 = 0 THEN NULL ELSE 'body ' || g END
             FROM (SELECT (-9223372036854775808)::bigint AS g
                   UNION ALL SELECT -9223372036854775807
                   UNION ALL SELECT generate_series(-3000, 0)
                   UNION ALL SELECT generate_series(2, 4000, 2)
                   UNION ALL SELECT generate_series(10001, 13000)
                   UNION ALL SELECT 9223372036854775806
                   UNION ALL SELECT 9223372036854775807) AS keys ORDER BY g",
        )
        .unwrap();
    let target = support::target_file();
    run::<Events>(&db, &target.path, &options(1_000)).unwrap();
    assert_eq!(
        target_events(&target.path).len(),
        2 + 3001 + 2000 + 3000 + 2
    );
    let deleted = db
        .client()
        .execute(
            "DELETE FROM public.events
             WHERE id IN (-9223372036854775808, -2000, 0, 12000, 9223372036854775807)
                OR id BETWEEN -1500 AND -1490
                OR (id BETWEEN 2 AND 4000 AND id % 40 = 0)
                OR id BETWEEN 12500 AND 12510",
            &[],
        )
        .unwrap();
    assert_eq!(deleted, 5 + 11 + 100 + 11);
    let prune = SyncOptions {
        prune: true,
        ..options(640)
    };
    assert_prunes_once(&db, &target.path, &prune, deleted);
}

/// A source whose keys all lie above the target's (rows below the watermark,
/// which the incremental read skips) would empty the targets by range deletes:
/// refused and rolled back, as when merged key by key.
#[test]
fn a_prune_by_range_that_would_empty_the_targets_is_refused() {
    let db = support::source_db();
    create_events(&db, 1_000);
    let target = support::target_file();
    run::<Events>(&db, &target.path, &options(1_000)).unwrap();
    db.client()
        .batch_execute(
            "DELETE FROM public.events;
             INSERT INTO public.events (id, version, title)
             SELECT g, 0, 'event ' || g FROM generate_series(5001, 7000) AS g;",
        )
        .unwrap();
    let prune = SyncOptions {
        prune: true,
        ..options(1_000)
    };
    let error = run::<Events>(&db, &target.path, &prune).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("`--prune` would delete every row of the targets"),
        "{error}"
    );
    assert_eq!(target_events(&target.path).len(), 1_000);
}

/// `public.labels`, keyed by text: `--prune` keeps its table of source keys, since
/// PostgreSQL's text order need not be SQLite's.
#[derive(Debug, Clone, PartialEq, Mapping)]
#[sync(
    from = "public.labels",
    name = "labels",
    key = "code",
    cursor = "version"
)]
pub struct Labels {
    #[sync(to = "label", primary_key)]
    pub code: String,
    pub version: i64,
    #[sync(to = "label")]
    pub title: String,
}

#[test]
fn prune_of_a_text_key_removes_exactly_the_deleted_rows() {
    let db = support::source_db();
    db.client()
        .batch_execute(
            "CREATE TABLE public.labels (code text PRIMARY KEY, version bigint NOT NULL, title text NOT NULL);
             INSERT INTO public.labels
             SELECT 'Code-' || g, g, 'title ' || g FROM generate_series(1, 500) AS g;
             INSERT INTO public.labels VALUES ('a', 501, 'lower'), ('B', 502, 'upper'), ('ä', 503, 'umlaut');",
        )
        .unwrap();
    let target = support::target_file();
    run::<Labels>(&db, &target.path, &options(100)).unwrap();
    db.client()
        .batch_execute("DELETE FROM public.labels WHERE code IN ('a', 'ä', 'Code-1', 'Code-250')")
        .unwrap();
    let prune = SyncOptions {
        prune: true,
        ..options(64)
    };
    let pruned = run::<Labels>(&db, &target.path, &prune).unwrap();
    assert_eq!(pruned.targets[0].deleted, 4);
    let expected: Vec<Vec<Value>> = db
        .client()
        .query("SELECT code, title FROM public.labels", &[])
        .unwrap()
        .into_iter()
        .map(|row| vec![Value::Text(row.get(0)), Value::Text(row.get(1))])
        .collect();
    let mut expected = expected;
    expected.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    let mut actual = support::sqlite_rows(&target.path, "SELECT code, title FROM label");
    actual.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    assert_eq!(actual.len(), 499);
    assert!(actual == expected, "target differs from source");
}

#[test]
fn a_null_cursor_is_refused_with_key_and_column() {
    let db = support::source_db();
    create_events(&db, 10);
    let target = support::target_file();
    run::<Events>(&db, &target.path, &options(100)).unwrap();
    db.client()
        .batch_execute(
            "ALTER TABLE public.events ALTER COLUMN version DROP NOT NULL;
             UPDATE public.events SET version = NULL WHERE id = 7;",
        )
        .unwrap();
    let expected = "mapping `events`: cursor column `version` of `public.events` is NULL at key 7: incremental sync orders rows by the cursor and would never read this row; give it a value (a NOT NULL constraint keeps it from happening again)";
    let error = run::<Events>(&db, &target.path, &options(100)).unwrap_err();
    assert_eq!(error.to_string(), expected);
    let full = SyncOptions {
        full: true,
        ..options(100)
    };
    let error = run::<Events>(&db, &target.path, &full).unwrap_err();
    assert_eq!(error.to_string(), expected);
    assert_events_equal_but(&db, &target.path);
}

/// The target still holds the rows of the last good run (row 7 unchanged).
fn assert_events_equal_but(db: &TestDb, target: &Path) {
    assert_eq!(target_events(target).len(), source_events(db).len());
}

#[test]
fn a_column_dropped_and_added_back_migrates_both_ways() {
    let db = support::source_db();
    create_events(&db, 10);
    let target = support::target_file();
    run::<Events>(&db, &target.path, &options(100)).unwrap();
    let detail_columns = || {
        support::sqlite_rows(
            &target.path,
            "SELECT name FROM pragma_table_info('event_detail') ORDER BY cid",
        )
    };
    // `body` left the mapping: dropped in place, no `--full` needed.
    let summary = run::<EventsChanged>(&db, &target.path, &options(100)).unwrap();
    assert_eq!(summary.mode, "incremental");
    assert_eq!(
        support::migrated(&summary),
        vec![(
            "event_detail".to_owned(),
            "body".to_owned(),
            "dropped".to_owned(),
            0
        )]
    );
    assert_eq!(detail_columns(), vec![vec![Value::Text("id".into())]]);
    // `--full` still rebuilds the targets in the definition's shape (issue 18).
    let full = SyncOptions {
        full: true,
        ..options(100)
    };
    let summary = run::<EventsChanged>(&db, &target.path, &full).unwrap();
    assert_eq!((summary.mode.as_str(), summary.rows_read), ("full", 10));
    assert!(summary.migrated.is_empty());
    // Back to the original definition: `body` comes back, backfilled for the ten
    // rows, then runs are plain incremental ones.
    let summary = run::<Events>(&db, &target.path, &options(100)).unwrap();
    assert_eq!(
        support::migrated(&summary),
        vec![(
            "event_detail".to_owned(),
            "body".to_owned(),
            "added".to_owned(),
            10
        )]
    );
    assert_events_equal(&db, &target.path);
    let summary = run::<Events>(&db, &target.path, &options(100)).unwrap();
    assert_eq!(summary.mode, "incremental");
    assert!(summary.migrated.is_empty());
    assert_events_equal(&db, &target.path);
}

#[test]
fn status_json_shows_the_watermark() {
    let db = support::source_db();
    create_events(&db, 12);
    let target = support::target_file();
    run::<Events>(&db, &target.path, &options(5)).unwrap();
    let output = support::data_sync(&db, &target.path, &["status", "--json"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let events = json["mappings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|mapping| mapping["mapping"] == "events")
        .expect("events in the status");
    assert_eq!(events["mode"], "full");
    assert_eq!(events["rows"], 12);
    assert_eq!(events["last_outcome"], "ok");
    assert_eq!(events["compiled_in"], false);
    assert_eq!(events["watermark"]["cursor"], "12");
    assert_eq!(events["watermark"]["key"], serde_json::json!([12]));

    let output = support::data_sync(&db, &target.path, &["status"]);
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.lines()
            .any(|line| line.starts_with("events: last full sync started ")
                && line.contains(", 12 rows, watermark 12 key [12], ")),
        "{text}"
    );
}

/// Rows the state says the current run of `users` has committed, if it is running.
fn committed_rows(target: &Path) -> Option<i64> {
    let connection = rusqlite::Connection::open(target).ok()?;
    connection
        .query_row(
            "SELECT rows FROM _data_sync_state WHERE mapping = 'users' AND last_outcome = 'running'",
            [],
            |row| row.get(0),
        )
        .ok()
}

fn no_overlap(batch_size: usize) -> SyncOptions {
    SyncOptions {
        overlap: Some(Overlap::Number(0)),
        ..options(batch_size)
    }
}

#[test]
fn a_run_killed_mid_way_resumes_with_nothing_lost_or_repeated() {
    let db = support::source_db();
    crate::full_sync::create_users(&db, 0);
    let target = support::target_file();
    run::<mappings::Users>(&db, &target.path, &options(100)).unwrap();
    // One statement: 100,000 rows that all share one `updated_at`, so every batch
    // boundary falls between equal cursor values.
    db.client()
        .execute(
            "INSERT INTO public.users (id, username, email, bio)
             SELECT g, 'user ' || g, g || '@example.org', CASE WHEN g % 3 = 0 THEN NULL ELSE 'bio ' || g END
             FROM generate_series(1, 100000) AS g",
            &[],
        )
        .unwrap();

    let mut child = support::spawn_users_sync(
        &db,
        &target.path,
        &["--batch-size", "200", "--overlap", "0"],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if committed_rows(&target.path).is_some_and(|rows| rows >= 2_000) {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the child finished before the kill"
        );
        assert!(Instant::now() < deadline, "the child committed nothing");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let committed = committed_rows(&target.path).expect("the killed run's state");
    assert!(committed < 100_000, "{committed}");
    assert_eq!(support::target_users(&target.path).len() as i64, committed);

    let resumed = run::<mappings::Users>(&db, &target.path, &no_overlap(1_000)).unwrap();
    assert_eq!(resumed.mode, "incremental");
    assert_eq!(
        resumed.rows_read as i64,
        100_000 - committed,
        "nothing read twice"
    );
    assert_eq!(written(&resumed)[0].0 as i64, 100_000 - committed);
    assert_eq!(
        support::target_users(&target.path),
        support::source_users(&db)
    );
}

/// A small deterministic generator (xorshift64*), so a failing seed can be rerun.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: u64) -> i64 {
        (self.next() % bound) as i64
    }
}

#[test]
fn random_interleavings_end_with_target_equal_to_source() {
    let seed = std::env::var("DATA_SYNC_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or(0x5eed_u64);
    let mut random = Random(seed);
    let db = support::source_db();
    crate::full_sync::create_users(&db, 2_000);
    let target = support::target_file();
    run::<mappings::Users>(&db, &target.path, &options(500)).unwrap();
    let mut next_id = 2_001;
    let mut client = db.client();
    for round in 0..20 {
        let inserts = random.below(300);
        client
            .execute(
                "INSERT INTO public.users (id, username, email, bio, updated_at)
                 SELECT g, 'user ' || g, g || '@example.org', CASE WHEN g % 3 = 0 THEN NULL ELSE 'bio ' || g END, clock_timestamp()
                 FROM generate_series($1::bigint, $1::bigint + $2::bigint - 1) AS g",
                &[&next_id, &inserts],
            )
            .unwrap();
        next_id += inserts;
        for _ in 0..random.below(5) {
            let (modulus, rest) = (random.below(40) + 2, random.below(40));
            let statement = match random.below(4) {
                0 => {
                    "UPDATE public.users SET username = username || '+', updated_at = clock_timestamp() WHERE id % $1::bigint = $2::bigint % $1::bigint"
                }
                1 => {
                    "UPDATE public.users SET deleted_at = clock_timestamp(), updated_at = clock_timestamp() WHERE id % $1::bigint = $2::bigint % $1::bigint"
                }
                2 => {
                    "UPDATE public.users SET deleted_at = NULL, bio = NULL, updated_at = clock_timestamp() WHERE deleted_at IS NOT NULL AND id % $1 = $2 % $1"
                }
                _ => {
                    "DELETE FROM public.users WHERE id % ($1::bigint * 3) = $2::bigint % ($1::bigint * 3)"
                }
            };
            client.execute(statement, &[&modulus, &rest]).unwrap();
        }
        let batch_size = 1 + random.below(300);
        let prune = random.below(3) == 0;
        if random.below(3) == 0 {
            let batch = batch_size.to_string();
            let mut args = vec!["--batch-size", batch.as_str()];
            if prune {
                args.push("--prune");
            }
            let mut child = support::spawn_users_sync(&db, &target.path, &args);
            std::thread::sleep(Duration::from_millis(random.below(40) as u64));
            child.kill().unwrap();
            child.wait().unwrap();
        } else {
            let options = SyncOptions {
                prune,
                ..options(batch_size as usize)
            };
            run::<mappings::Users>(&db, &target.path, &options)
                .unwrap_or_else(|error| panic!("seed {seed} round {round}: {error}"));
        }
    }
    let last = SyncOptions {
        prune: true,
        ..options(97)
    };
    run::<mappings::Users>(&db, &target.path, &last).unwrap();
    assert!(
        support::target_users(&target.path) == support::source_users(&db),
        "seed {seed}: target differs from source"
    );
    let again = run::<mappings::Users>(&db, &target.path, &no_overlap(97)).unwrap();
    assert_eq!(again.rows_read, 0);
    assert_eq!(written(&again), vec![(0, 0), (0, 0)]);
}
