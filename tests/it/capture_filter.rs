//! Change capture with a row filter: the filter (with its `--param` values) is judged
//! on every changed row, so rows enter and leave a tenant's target by update, deletes
//! and key changes arrive, and a filter column the log sends as "unchanged" (TOAST)
//! is judged on the row read again; after every run each target equals its filtered
//! source exactly.

use std::path::Path;

use rusqlite::types::Value;
use sync_runtime::{Mapping, SourceConfig, Summary, SyncOptions};

use crate::capture::BIG_TEXT;
use crate::support::{self, TestDb};

/// One tenant's items whose note starts with `keep`; `note` is large (TOASTed) on
/// some rows, so an update of another column sends it as "unchanged".
#[derive(Debug, Clone, PartialEq, Mapping)]
#[sync(
    from = "public.items",
    name = "tenant_items_log",
    key = "id",
    capture = "log",
    filter = "tenant_id = $tenant AND note LIKE 'keep%'"
)]
pub struct TenantItemsLog {
    #[sync(to = "tenant_item", primary_key)]
    pub id: i64,
    pub tenant_id: i64,
    #[sync(to = "tenant_item")]
    pub label: String,
    #[sync(to = "tenant_item")]
    pub note: Option<String>,
}

fn create_items(db: &TestDb) {
    let mut client = db.client();
    client.batch_execute(BIG_TEXT).unwrap();
    client
        .batch_execute(
            "CREATE TABLE public.items (
                 id bigint PRIMARY KEY,
                 tenant_id bigint NOT NULL,
                 label text NOT NULL,
                 note text
             );
             INSERT INTO public.items (id, tenant_id, label, note)
             SELECT n, 7 + n % 2, 'item ' || n,
                    CASE WHEN n % 5 = 0 THEN 'keep ' || big_text(n)
                         WHEN n % 7 = 0 THEN NULL
                         WHEN n % 3 = 0 THEN 'drop ' || n
                         ELSE 'keep ' || n END
             FROM generate_series(1, 40) AS n;",
        )
        .unwrap();
}

fn run(db: &TestDb, target: &Path, tenant: &str) -> sync_runtime::Result<Summary> {
    let source = SourceConfig::parse(&db.url()).unwrap();
    let mut options = SyncOptions::default();
    options.params.set("tenant", tenant);
    sync_runtime::sync::<TenantItemsLog>(&source, target, &options)
}

/// The rows of `tenant` the filter keeps, as the target holds them.
fn source_items(db: &TestDb, tenant: i64) -> Vec<Vec<Value>> {
    support::pg_rows(
        db,
        "SELECT id, label, note FROM public.items
         WHERE tenant_id = $1 AND note LIKE 'keep%' ORDER BY id",
        &[&tenant],
    )
}

fn assert_filtered(db: &TestDb, seven: &Path, eight: &Path, when: &str) {
    for (target, tenant) in [(seven, 7), (eight, 8)] {
        let expected = source_items(db, tenant);
        assert!(!expected.is_empty(), "{when}: tenant {tenant} has rows");
        assert_eq!(
            support::sqlite_rows(
                target,
                "SELECT id, label, note FROM tenant_item ORDER BY id"
            ),
            expected,
            "{when}: tenant {tenant}"
        );
    }
}

#[test]
fn rows_enter_and_leave_a_filtered_capture_target() {
    let db = support::source_db();
    create_items(&db);
    let seven = support::target_file();
    let eight = support::target_file();
    for (target, tenant) in [(&seven, "7"), (&eight, "8")] {
        let summary = run(&db, &target.path, tenant).unwrap();
        assert_eq!(summary.mode, "full", "the first copy");
    }
    assert_filtered(&db, &seven.path, &eight.path, "first copy");

    let mut client = db.client();
    client
        .batch_execute(
            // 1 (tenant 8, keep) moves to tenant 7; 2 (tenant 7, keep) leaves by its
            // note; 3 (tenant 8, drop) enters by its note; 4 is deleted; 16 (tenant 7)
            // changes key and stays; 8 (tenant 7) changes key and leaves; 10 (tenant
            // 7, TOASTed keep note) changes label only: the note is not sent; 15
            // (tenant 8, TOASTed) moves to tenant 7 with its note not sent; 14 (tenant
            // 7, NULL note: unknown) gets a keep note; new rows for both tenants, one
            // filtered out.
            "BEGIN;
             UPDATE public.items SET tenant_id = 7 WHERE id = 1;
             UPDATE public.items SET note = 'drop now' WHERE id = 2;
             UPDATE public.items SET note = 'keep now' WHERE id = 3;
             COMMIT;
             DELETE FROM public.items WHERE id = 4;
             UPDATE public.items SET id = 116 WHERE id = 16;
             UPDATE public.items SET id = 108, note = 'gone' WHERE id = 8;
             UPDATE public.items SET label = 'relabelled' WHERE id = 10;
             UPDATE public.items SET tenant_id = 7 WHERE id = 15;
             UPDATE public.items SET note = 'keep at last' WHERE id = 14;
             INSERT INTO public.items VALUES (200, 7, 'new', 'keep new'),
                 (201, 8, 'new', 'keep new'), (202, 7, 'new', 'other');",
        )
        .unwrap();
    for (target, tenant) in [(&seven, "7"), (&eight, "8")] {
        let summary = run(&db, &target.path, tenant).unwrap();
        assert_eq!(summary.mode, "capture");
    }
    assert_filtered(&db, &seven.path, &eight.path, "after the first changes");
    let ids = |target: &Path| -> Vec<Value> {
        support::sqlite_rows(target, "SELECT id FROM tenant_item ORDER BY id")
            .into_iter()
            .map(|mut row| row.remove(0))
            .collect()
    };
    // The cases above, as they should land.
    let seven_ids = ids(&seven.path);
    for id in [1, 10, 14, 15, 116, 200] {
        assert!(seven_ids.contains(&Value::Integer(id)), "{id} in tenant 7");
    }
    for id in [2, 4, 8, 16, 108, 202] {
        assert!(
            !seven_ids.contains(&Value::Integer(id)),
            "{id} not in tenant 7"
        );
    }
    let eight_ids = ids(&eight.path);
    for id in [1, 3, 15, 201] {
        assert_eq!(
            eight_ids.contains(&Value::Integer(id)),
            id == 3 || id == 201,
            "{id} in tenant 8"
        );
    }

    // Back out again, within one transaction and across the two tenants; the
    // TOASTed row 20 leaves by tenant with its note not sent.
    client
        .batch_execute(
            "BEGIN;
             UPDATE public.items SET tenant_id = 8 WHERE id IN (1, 200);
             UPDATE public.items SET note = NULL WHERE id = 3;
             UPDATE public.items SET tenant_id = 8 WHERE id = 20;
             UPDATE public.items SET id = 300, tenant_id = 8 WHERE id = 116;
             DELETE FROM public.items WHERE id IN (10, 201);
             COMMIT;",
        )
        .unwrap();
    for (target, tenant) in [(&seven, "7"), (&eight, "8")] {
        run(&db, &target.path, tenant).unwrap();
    }
    assert_filtered(&db, &seven.path, &eight.path, "after the second changes");

    // The target holds tenant 7's rows: another tenant is refused, the rows kept.
    let before = support::sqlite_rows(&seven.path, "SELECT * FROM tenant_item ORDER BY id");
    let error = run(&db, &seven.path, "8").unwrap_err();
    assert_eq!(error.kind(), "params_changed", "{error}");
    assert_eq!(
        support::sqlite_rows(&seven.path, "SELECT * FROM tenant_item ORDER BY id"),
        before
    );
}
