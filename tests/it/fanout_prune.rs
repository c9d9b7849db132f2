//! `--prune` over a fan-out template is incremental: the source's keys are merged
//! with the routing index's, and each key gone from the source is deleted from the
//! file the index names; files with nothing to delete are not opened. A read-only
//! file fails alone; a shard worker prunes its own files only; a source that came
//! back empty is refused.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use rusqlite::types::Value;
use sync_runtime::{Mapping, Selection, Shard, SourceConfig, SyncOptions};

use crate::fanout::{
    assert_files_equal_tenants, create_orders, file_rows, source_rows, template, tenants,
};
use crate::generated::{FanoutOrders, FanoutTasks};
use crate::support::{self, TestDb};

fn run(
    db: &TestDb,
    directory: &Path,
    selection: Selection,
    prune: bool,
) -> sync_runtime::Result<sync_runtime::FanoutSummary> {
    let source = SourceConfig::parse(&db.url()).unwrap();
    let options = SyncOptions {
        batch_size: 7,
        selection,
        prune,
        ..SyncOptions::default()
    };
    sync_runtime::fanout::<FanoutOrders>(&source, &template(directory), &options)
}

/// Each file's modification time and `_data_sync_state`, after a checkpoint (so
/// that reading them later writes nothing).
fn snapshot(db: &TestDb, directory: &Path) -> BTreeMap<String, (SystemTime, Vec<Vec<Value>>)> {
    tenants(db)
        .into_iter()
        .map(|tenant| {
            let path = directory.join(format!("{tenant}.sqlite"));
            support::checkpoint(&path);
            let state = support::sqlite_rows(
                &path,
                "SELECT mode, started_at, watermark_cursor, rows FROM _data_sync_state",
            );
            let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
            (tenant, (modified, state))
        })
        .collect()
}

fn deleted(summary: &sync_runtime::FanoutSummary) -> u64 {
    summary.partitions.iter().map(|p| p.deleted).sum()
}

/// The tenants whose files a run wrote.
fn written(summary: &sync_runtime::FanoutSummary) -> Vec<String> {
    let mut names: Vec<String> = summary
        .partitions
        .iter()
        .map(|p| {
            let path = p.path.as_ref().unwrap();
            path.file_stem().unwrap().to_str().unwrap().to_owned()
        })
        .collect();
    names.sort();
    names
}

#[test]
fn prune_over_a_template_is_incremental_and_leaves_other_files_alone() {
    let db = support::source_db();
    create_orders(&db, 30);
    // Negative keys sort after the others in the routing index's byte order.
    db.client()
        .batch_execute(
            "INSERT INTO public.fanout_orders VALUES
                 (-7, 't03', 'negative', 1), (-3, 't04', NULL, 2), (-1, 't03', 'minus one', 3);",
        )
        .unwrap();
    let directory = tempfile::tempdir().unwrap();
    assert_eq!(
        run(&db, directory.path(), Selection::All, false)
            .unwrap()
            .mode,
        "full"
    );
    let before = snapshot(&db, directory.path());
    // Rows of four tenants are deleted (5 of `t02`, `t11` and `t25`; every row of
    // `t03` but two, one with a negative key), and one row of a fifth changes.
    let gone = db
        .client()
        .execute(
            "DELETE FROM public.fanout_orders
             WHERE (tenant_id IN ('t02', 't11', 't25') AND id > 150)
                OR (tenant_id = 't03' AND id NOT IN (3, -1))",
            &[],
        )
        .unwrap();
    db.client()
        .batch_execute(
            "UPDATE public.fanout_orders SET item = 'changed', revision = 9000 WHERE id = 8",
        )
        .unwrap();
    let summary = run(&db, directory.path(), Selection::All, true).unwrap();
    // Not a full run: only the one changed row was read.
    assert_eq!(summary.mode, "incremental");
    assert_eq!(summary.rows_read, 1);
    assert_eq!(summary.failures().count(), 0);
    assert_eq!(deleted(&summary), gone);
    assert_eq!(written(&summary), ["t02", "t03", "t08", "t11", "t25"]);
    let after = snapshot(&db, directory.path());
    for (tenant, state) in &before {
        if ["t02", "t03", "t08", "t11", "t25"].contains(&tenant.as_str()) {
            assert_ne!(&after[tenant], state, "{tenant}");
            assert_eq!(after[tenant].1[0][0], Value::Text("incremental".into()));
        } else {
            // Not opened: the same modification time and state.
            assert_eq!(&after[tenant], state, "{tenant}");
        }
    }
    assert_files_equal_tenants(&db, directory.path());
    assert_eq!(
        file_rows(&directory.path().join("t03.sqlite"))
            .into_iter()
            .map(|row| row[0].clone())
            .collect::<Vec<_>>(),
        [Value::Integer(-1), Value::Integer(3)]
    );
    // The index forgot the deleted keys: the next prune deletes nothing and opens
    // no file.
    let summary = run(&db, directory.path(), Selection::All, true).unwrap();
    assert_eq!(summary.mode, "incremental");
    assert_eq!(summary.rows_read, 0);
    assert!(summary.partitions.is_empty(), "{:?}", summary.partitions);
    // A full run and an incremental one after it agree.
    db.client()
        .batch_execute("DELETE FROM public.fanout_orders WHERE id = 4")
        .unwrap();
    let summary = run(&db, directory.path(), Selection::All, true).unwrap();
    assert_eq!(
        (summary.mode.as_str(), deleted(&summary)),
        ("incremental", 1)
    );
    assert_files_equal_tenants(&db, directory.path());
    let source = SourceConfig::parse(&db.url()).unwrap();
    let full = SyncOptions {
        full: true,
        ..SyncOptions::default()
    };
    let summary =
        sync_runtime::fanout::<FanoutOrders>(&source, &template(directory.path()), &full).unwrap();
    assert_eq!(summary.mode, "full");
    assert_files_equal_tenants(&db, directory.path());
}

#[test]
fn prune_deletes_hard_deleted_rows_beside_soft_deleted_and_filtered_ones() {
    let db = support::source_db();
    crate::fanout::create_tasks(&db);
    let directory = tempfile::tempdir().unwrap();
    let template = template(directory.path());
    let source = SourceConfig::parse(&db.url()).unwrap();
    let options = SyncOptions {
        batch_size: 4,
        prune: true,
        ..SyncOptions::default()
    };
    let run = || sync_runtime::fanout::<FanoutTasks>(&source, &template, &options).unwrap();
    // `--prune` without an index is a full run.
    assert_eq!(run().mode, "full");
    // 7 (d) and 12 (a) are hard-deleted, 15 (d, void: in no file) too; 9 (b) is
    // soft-deleted, and 13 (b) becomes void.
    db.client()
        .batch_execute(
            "DELETE FROM public.fanout_tasks WHERE id IN (7, 12, 15);
             UPDATE public.fanout_tasks SET deleted_at = 1, revision = 101 WHERE id = 9;
             UPDATE public.fanout_tasks SET status = 'void', revision = 102 WHERE id = 13;",
        )
        .unwrap();
    let summary = run();
    assert_eq!(summary.mode, "incremental");
    assert_eq!(summary.rows_read, 2);
    assert_eq!(summary.failures().count(), 0);
    assert_eq!(deleted(&summary), 4);
    for tenant in ["a", "b", "c", "d"] {
        let path = directory.path().join(format!("{tenant}.sqlite"));
        assert_eq!(
            crate::fanout::file_tasks(&path),
            crate::fanout::source_tasks(&db, tenant),
            "{tenant}"
        );
    }
    // The soft-deleted row is still in the source (and so in the index's view of
    // "present"), but in no file.
    assert_eq!(written(&summary), ["a", "b", "d"]);
}

#[test]
fn a_read_only_file_fails_alone_under_prune_and_catches_up() {
    let db = support::source_db();
    create_orders(&db, 5);
    let directory = tempfile::tempdir().unwrap();
    run(&db, directory.path(), Selection::All, false).unwrap();
    let read_only = directory.path().join("t02.sqlite");
    support::checkpoint(&read_only);
    let before = file_rows(&read_only);
    db.client()
        .batch_execute("DELETE FROM public.fanout_orders WHERE id IN (2, 3, 7, 12, 13)")
        .unwrap();
    let summary = {
        let _read_only = crate::faults::ReadOnly::new(&read_only);
        run(&db, directory.path(), Selection::All, true).unwrap()
    };
    assert_eq!(summary.mode, "incremental");
    let failed: Vec<_> = summary.failures().collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        failed[0].path.as_deref(),
        Some(read_only.as_path()),
        "{failed:?}"
    );
    assert_eq!(failed[0].error.as_ref().unwrap().kind(), "target");
    assert_eq!(file_rows(&read_only), before);
    // 3 and 13 (t03) are deleted; 2, 7 and 12 (t02) are not.
    assert_eq!(deleted(&summary), 2);
    for tenant in ["t00", "t01", "t03", "t04"] {
        assert_eq!(
            file_rows(&directory.path().join(format!("{tenant}.sqlite"))),
            source_rows(&db, tenant)
        );
    }
    let error = summary.into_result(FanoutOrders::SPEC).unwrap_err();
    assert_eq!(error.kind(), "partition");
    // The failed file's keys stayed in the index: the next prune deletes them.
    let summary = run(&db, directory.path(), Selection::All, true).unwrap();
    assert_eq!(summary.mode, "incremental");
    assert_eq!(summary.failures().count(), 0);
    assert_eq!(deleted(&summary), 3);
    assert_eq!(written(&summary), ["t02"]);
    assert_files_equal_tenants(&db, directory.path());
}

#[test]
fn a_shard_worker_prunes_only_its_own_files() {
    let db = support::source_db();
    create_orders(&db, 30);
    let directory = tempfile::tempdir().unwrap();
    let shard = |index| Selection::Shard(Shard { index, count: 4 });
    for index in 0..4 {
        assert_eq!(
            run(&db, directory.path(), shard(index), false)
                .unwrap()
                .mode,
            "full"
        );
    }
    let shard_of = |tenant: &str| crate::fanout::shard_of(&db, tenant, 4);
    // Every tenant loses 5 of its 10 rows.
    db.client()
        .batch_execute("DELETE FROM public.fanout_orders WHERE id % 60 < 30")
        .unwrap();
    let before = snapshot(&db, directory.path());
    let summary = run(&db, directory.path(), shard(1), true).unwrap();
    assert_eq!(summary.mode, "incremental");
    assert_eq!(summary.rows_read, 0);
    assert_eq!(summary.failures().count(), 0);
    let own: Vec<String> = tenants(&db)
        .into_iter()
        .filter(|tenant| shard_of(tenant) == 1)
        .collect();
    assert_eq!(written(&summary), own);
    let after = snapshot(&db, directory.path());
    for tenant in tenants(&db) {
        let path = directory.path().join(format!("{tenant}.sqlite"));
        if shard_of(&tenant) == 1 {
            assert_eq!(file_rows(&path), source_rows(&db, &tenant), "{tenant}");
        } else {
            // Another shard's file: not opened, still holding its deleted rows.
            assert_eq!(after[&tenant], before[&tenant], "{tenant}");
            assert!(file_rows(&path).len() > source_rows(&db, &tenant).len());
        }
    }
    // The other workers' prunes catch their files up; each keeps its index.
    for index in [0, 2, 3] {
        let summary = run(&db, directory.path(), shard(index), true).unwrap();
        assert_eq!(summary.mode, "incremental", "shard {index}");
    }
    assert_files_equal_tenants(&db, directory.path());
}

#[test]
fn prune_of_a_source_that_came_back_empty_is_refused() {
    let db = support::source_db();
    create_orders(&db, 3);
    let directory = tempfile::tempdir().unwrap();
    run(&db, directory.path(), Selection::All, false).unwrap();
    let before: Vec<_> = tenants(&db)
        .iter()
        .map(|tenant| file_rows(&directory.path().join(format!("{tenant}.sqlite"))))
        .collect();
    db.client()
        .batch_execute("DELETE FROM public.fanout_orders")
        .unwrap();
    let error = run(&db, directory.path(), Selection::All, true).unwrap_err();
    assert_eq!(error.kind(), "would_empty");
    for (tenant, rows) in ["t00", "t01", "t02"].iter().zip(&before) {
        assert_eq!(
            &file_rows(&directory.path().join(format!("{tenant}.sqlite"))),
            rows
        );
    }
    // With `--allow-empty` every file is emptied (and kept).
    let source = SourceConfig::parse(&db.url()).unwrap();
    let options = SyncOptions {
        prune: true,
        allow_empty: true,
        ..SyncOptions::default()
    };
    let summary =
        sync_runtime::fanout::<FanoutOrders>(&source, &template(directory.path()), &options)
            .unwrap();
    assert_eq!(summary.mode, "incremental");
    assert_eq!(deleted(&summary), 30);
    for tenant in ["t00", "t01", "t02"] {
        assert!(file_rows(&directory.path().join(format!("{tenant}.sqlite"))).is_empty());
    }
}

#[test]
fn a_tenant_whose_rows_are_all_deleted_has_its_file_emptied_and_kept() {
    let db = support::source_db();
    create_orders(&db, 3);
    let directory = tempfile::tempdir().unwrap();
    run(&db, directory.path(), Selection::All, false).unwrap();
    db.client()
        .batch_execute("DELETE FROM public.fanout_orders WHERE tenant_id = 't02'")
        .unwrap();
    let summary = run(&db, directory.path(), Selection::All, true).unwrap();
    assert_eq!(summary.mode, "incremental");
    assert_eq!(written(&summary), ["t02"]);
    assert_eq!(deleted(&summary), 10);
    let emptied = directory.path().join("t02.sqlite");
    assert!(file_rows(&emptied).is_empty());
    assert_eq!(
        support::sqlite_rows(&emptied, "SELECT mode FROM _data_sync_state"),
        [[Value::Text("incremental".into())]]
    );
    for tenant in ["t00", "t01"] {
        assert_eq!(
            file_rows(&directory.path().join(format!("{tenant}.sqlite"))),
            source_rows(&db, tenant)
        );
    }
}
