//! An incremental `--partition VALUE` run: after a full run of the partition, the
//! next runs read only the rows changed since (every partition's: a row that left
//! the partition must leave its file) and write only the partition's file, from
//! the partition's own routing index.

use std::collections::BTreeSet;
use std::path::Path;

use rusqlite::types::Value;
use sync_runtime::{Selection, SourceConfig, SyncOptions};

use crate::fanout::{
    assert_files_equal_tenants, create_orders, file_rows, files, source_rows, template,
};
use crate::generated::FanoutOrders;
use crate::support::{self, TestDb};

fn run(
    db: &TestDb,
    directory: &Path,
    selection: Selection,
    prune: bool,
) -> sync_runtime::FanoutSummary {
    let source = SourceConfig::parse(&db.url()).unwrap();
    let options = SyncOptions {
        batch_size: 3,
        selection,
        prune,
        ..SyncOptions::default()
    };
    sync_runtime::fanout::<FanoutOrders>(&source, &template(directory), &options).unwrap()
}

fn one() -> Selection {
    Selection::One("t05".to_owned())
}

#[test]
fn an_incremental_partition_run_reads_only_changed_rows_and_stays_exact() {
    let db = support::source_db();
    create_orders(&db, 30);
    let directory = tempfile::tempdir().unwrap();
    let index = directory
        .path()
        .join(".data-sync-routes-fanout_orders+partition-t05.sqlite");
    let first = run(&db, directory.path(), one(), false);
    assert_eq!((first.mode.as_str(), first.rows_read), ("full", 10));
    assert!(index.exists());
    let t05 = directory.path().join("t05.sqlite");
    assert_eq!(file_rows(&t05), source_rows(&db, "t05"));
    // 5 and 35 change in `t05`, 65 leaves it for `t06`, 7 enters it from `t07`, and
    // 8 (`t08`) changes elsewhere.
    db.client()
        .batch_execute(
            "UPDATE public.fanout_orders SET item = 'changed', revision = revision + 1000 WHERE id IN (5, 35, 8);
             UPDATE public.fanout_orders SET tenant_id = 't06', revision = revision + 1000 WHERE id = 65;
             UPDATE public.fanout_orders SET tenant_id = 't05', revision = revision + 1000 WHERE id = 7;",
        )
        .unwrap();
    let summary = run(&db, directory.path(), one(), false);
    // Only the 5 changed rows were read; only the partition's file was written.
    assert_eq!(summary.mode, "incremental");
    assert_eq!(summary.rows_read, 5);
    assert_eq!(summary.failures().count(), 0);
    assert_eq!(summary.partitions.len(), 1);
    assert_eq!(summary.partitions[0].path.as_deref(), Some(t05.as_path()));
    assert_eq!(summary.partitions[0].deleted, 1);
    assert_eq!(file_rows(&t05), source_rows(&db, "t05"));
    assert_eq!(
        files(directory.path()),
        BTreeSet::from(["t05.sqlite".to_owned()])
    );
    assert_eq!(
        support::sqlite_rows(&t05, "SELECT mode FROM _data_sync_state"),
        [[Value::Text("incremental".into())]]
    );
    // Nothing changed: nothing read, nothing written.
    let summary = run(&db, directory.path(), one(), false);
    assert_eq!(
        (summary.mode.as_str(), summary.rows_read),
        ("incremental", 0)
    );
    assert!(summary.partitions.is_empty());
    // `--prune` of the partition is incremental too.
    db.client()
        .batch_execute("DELETE FROM public.fanout_orders WHERE id IN (95, 96)")
        .unwrap();
    let summary = run(&db, directory.path(), one(), true);
    assert_eq!(summary.mode, "incremental");
    assert_eq!(summary.partitions.len(), 1);
    assert_eq!(summary.partitions[0].deleted, 1);
    assert_eq!(file_rows(&t05), source_rows(&db, "t05"));
    // A full run of every partition rewrites the partition's file: it deletes the
    // partition's index. It and the incremental run after it agree with the source.
    let full = run(&db, directory.path(), Selection::All, false);
    assert_eq!(full.mode, "full");
    assert!(!index.exists());
    assert_files_equal_tenants(&db, directory.path());
    db.client()
        .batch_execute(
            "UPDATE public.fanout_orders SET tenant_id = 't05', revision = revision + 5000 WHERE id IN (9, 10);
             UPDATE public.fanout_orders SET item = NULL, revision = revision + 5000 WHERE id = 15;",
        )
        .unwrap();
    let incremental = run(&db, directory.path(), Selection::All, false);
    assert_eq!(
        (incremental.mode.as_str(), incremental.rows_read),
        ("incremental", 3)
    );
    assert_files_equal_tenants(&db, directory.path());
    // The partition's next run is full again (and writes its index), then
    // incremental; the run of every partition after it is full (its index was
    // deleted by the partition's run).
    assert_eq!(run(&db, directory.path(), one(), false).mode, "full");
    assert!(index.exists());
    db.client()
        .batch_execute(
            "UPDATE public.fanout_orders SET item = 'again', revision = revision + 9000 WHERE id = 45",
        )
        .unwrap();
    let summary = run(&db, directory.path(), one(), false);
    assert_eq!(
        (summary.mode.as_str(), summary.rows_read),
        ("incremental", 1)
    );
    assert_eq!(file_rows(&t05), source_rows(&db, "t05"));
    assert_eq!(
        run(&db, directory.path(), Selection::All, false).mode,
        "full"
    );
    assert_files_equal_tenants(&db, directory.path());
}

#[test]
fn runs_of_two_partitions_keep_each_others_indexes() {
    let db = support::source_db();
    create_orders(&db, 30);
    let directory = tempfile::tempdir().unwrap();
    let two = || Selection::One("t06".to_owned());
    assert_eq!(run(&db, directory.path(), one(), false).mode, "full");
    assert_eq!(run(&db, directory.path(), two(), false).mode, "full");
    // 5 moves from `t05` to `t06`: the `t06` run adds it to its file, the `t05`
    // run deletes it from its own.
    db.client()
        .batch_execute(
            "UPDATE public.fanout_orders SET tenant_id = 't06', revision = revision + 1000 WHERE id = 5",
        )
        .unwrap();
    for selection in [two(), one()] {
        let summary = run(&db, directory.path(), selection, false);
        assert_eq!(
            (summary.mode.as_str(), summary.rows_read),
            ("incremental", 1)
        );
    }
    for tenant in ["t05", "t06"] {
        assert_eq!(
            file_rows(&directory.path().join(format!("{tenant}.sqlite"))),
            source_rows(&db, tenant),
            "{tenant}"
        );
    }
}
