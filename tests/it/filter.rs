//! Row filters with parameters against a real PostgreSQL: the targets equal the
//! filtered source after a full run, after incremental runs in which rows enter and
//! leave the filter, after `--prune`, and for `verify`; parameters are checked before
//! anything runs and are part of the target's identity; the run-time evaluator of a
//! filter agrees with PostgreSQL on every row.

use std::path::Path;

use rusqlite::types::Value;
use sync_runtime::{Error, Mapping, SourceConfig, SyncOptions};

use crate::support::{self, TestDb};

/// Orders of one tenant, without the void ones; `status` may be NULL, which the
/// filter (`NULL <> 'void'` is unknown) leaves out.
#[derive(Debug, Clone, PartialEq, Mapping)]
#[sync(
    from = "public.orders",
    name = "tenant_orders",
    key = "id",
    cursor = "version",
    filter = "tenant_id = $tenant AND status <> 'void'"
)]
pub struct TenantOrders {
    #[sync(to = "tenant_order", primary_key)]
    pub id: i64,
    pub version: i64,
    pub tenant_id: i64,
    #[sync(to = "tenant_order")]
    pub status: Option<String>,
    #[sync(to = "tenant_order")]
    pub total: i32,
}

fn create_orders(db: &TestDb) {
    db.client()
        .batch_execute(
            "CREATE SEQUENCE public.order_versions;
             CREATE TABLE public.orders (
                 id bigint PRIMARY KEY,
                 version bigint NOT NULL DEFAULT nextval('public.order_versions'),
                 tenant_id bigint NOT NULL,
                 status text,
                 total integer NOT NULL
             );
             INSERT INTO public.orders (id, tenant_id, status, total)
             SELECT n, 7 + n % 2, CASE WHEN n % 5 = 0 THEN 'void' WHEN n % 7 = 0 THEN NULL ELSE 'paid' END, n * 10
             FROM generate_series(1, 40) AS n;",
        )
        .unwrap();
}

/// The rows of tenant `tenant` the filter keeps, as the target holds them.
fn source_orders(db: &TestDb, tenant: i64) -> Vec<Vec<Value>> {
    db.client()
        .query(
            "SELECT id, status, total FROM public.orders
             WHERE tenant_id = $1 AND status <> 'void' ORDER BY id",
            &[&tenant],
        )
        .unwrap()
        .into_iter()
        .map(|row| {
            vec![
                Value::Integer(row.get(0)),
                row.get::<_, Option<String>>(1)
                    .map_or(Value::Null, Value::Text),
                Value::Integer(i64::from(row.get::<_, i32>(2))),
            ]
        })
        .collect()
}

fn target_orders(target: &Path) -> Vec<Vec<Value>> {
    support::sqlite_rows(
        target,
        "SELECT id, status, total FROM tenant_order ORDER BY id",
    )
}

fn run(
    db: &TestDb,
    target: &Path,
    tenant: Option<&str>,
    full: bool,
    prune: bool,
) -> sync_runtime::Result<sync_runtime::Summary> {
    let source = SourceConfig::parse(&db.url()).unwrap();
    let mut options = SyncOptions {
        full,
        prune,
        ..SyncOptions::default()
    };
    if let Some(tenant) = tenant {
        options.params.set("tenant", tenant);
    }
    sync_runtime::sync::<TenantOrders>(&source, target, &options)
}

#[test]
fn targets_equal_the_filtered_source_in_every_mode() {
    let db = support::source_db();
    create_orders(&db);
    let target = support::target_file();

    let summary = run(&db, &target.path, Some("7"), false, false).unwrap();
    assert_eq!(summary.mode, "full");
    let expected = source_orders(&db, 7);
    assert_eq!(expected.len(), 14, "tenant 7 has 20 rows, 4 void, 2 NULL");
    assert_eq!(target_orders(&target.path), expected);

    // Rows leave the filter (voided, moved to tenant 8, status set to NULL) and
    // enter it (moved to tenant 7, un-voided); one tenant-8 row changes unseen.
    db.client()
        .batch_execute(
            "UPDATE public.orders SET status = 'void', version = nextval('public.order_versions') WHERE id = 4;
             UPDATE public.orders SET tenant_id = 8, version = nextval('public.order_versions') WHERE id = 6;
             UPDATE public.orders SET status = NULL, version = nextval('public.order_versions') WHERE id = 8;
             UPDATE public.orders SET tenant_id = 7, version = nextval('public.order_versions') WHERE id = 3;
             UPDATE public.orders SET status = 'paid', version = nextval('public.order_versions') WHERE id = 10;
             UPDATE public.orders SET total = -1, version = nextval('public.order_versions') WHERE id = 1;
             INSERT INTO public.orders (id, tenant_id, status, total) VALUES (41, 7, 'new', 410), (42, 8, 'new', 420);",
        )
        .unwrap();
    let summary = run(&db, &target.path, Some("7"), false, false).unwrap();
    assert_eq!(summary.mode, "incremental");
    assert_eq!(target_orders(&target.path), source_orders(&db, 7));
    let ids: Vec<Value> = target_orders(&target.path)
        .into_iter()
        .map(|row| row[0].clone())
        .collect();
    for gone in [4, 6, 8] {
        assert!(!ids.contains(&Value::Integer(gone)), "row {gone} left");
    }
    for came in [3, 10, 41] {
        assert!(ids.contains(&Value::Integer(came)), "row {came} entered");
    }

    // A hard delete is seen by --prune only, which streams the filtered keys.
    db.client()
        .batch_execute("DELETE FROM public.orders WHERE id IN (12, 16)")
        .unwrap();
    run(&db, &target.path, Some("7"), false, true).unwrap();
    assert_eq!(target_orders(&target.path), source_orders(&db, 7));

    // verify compares with the source filtered by the parameters the target holds.
    let source = SourceConfig::parse(&db.url()).unwrap();
    let verification = sync_runtime::verify::<TenantOrders>(&source, &target.path, 10).unwrap();
    assert!(verification.is_equal(), "{verification:?}");
    db.client()
        .batch_execute("UPDATE public.orders SET total = 0 WHERE id = 18")
        .unwrap();
    let verification = sync_runtime::verify::<TenantOrders>(&source, &target.path, 10).unwrap();
    assert!(!verification.is_equal());
    assert_eq!(verification.targets[0].source_rows, 12, "14 rows, 2 pruned");
    assert_eq!(source_orders(&db, 7).len(), 12);
}

#[test]
fn parameters_are_the_targets_identity() {
    let db = support::source_db();
    create_orders(&db);
    let target = support::target_file();
    run(&db, &target.path, Some("7"), false, false).unwrap();
    let tenant_7 = target_orders(&target.path);

    let error = run(&db, &target.path, Some("8"), false, false).unwrap_err();
    assert!(matches!(error, Error::ParamsChanged { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        "mapping `tenant_orders`: the target holds the rows of tenant=7, not of tenant=8: rerun with `--full` to rebuild its targets for tenant=8, or sync into another file"
    );
    assert_eq!(
        target_orders(&target.path),
        tenant_7,
        "target left as it was"
    );

    run(&db, &target.path, Some("8"), true, false).unwrap();
    assert_eq!(target_orders(&target.path), source_orders(&db, 8));
    // The same parameters again: incremental.
    let summary = run(&db, &target.path, Some("8"), false, false).unwrap();
    assert_eq!(summary.mode, "incremental");
}

#[test]
fn a_missing_or_unreadable_parameter_stops_before_anything_runs() {
    let db = support::source_db();
    create_orders(&db);
    let target = support::target_file();

    let error = run(&db, &target.path, None, false, false).unwrap_err();
    assert_eq!(error.kind(), "param");
    assert_eq!(
        error.to_string(),
        "mapping `tenant_orders`: the filter uses parameter `$tenant`: give it with `--param tenant=VALUE`"
    );
    let error = run(&db, &target.path, Some("seven"), false, false).unwrap_err();
    assert_eq!(
        error.to_string(),
        "mapping `tenant_orders`: parameter `tenant`: `seven` is not a `bigint` value: expected an integer such as `42`"
    );
    assert!(!target.path.exists(), "no target file was created");
}

/// The run-time evaluator (for change capture) and PostgreSQL agree on every row,
/// NULLs included.
#[test]
fn the_evaluator_agrees_with_postgresql() {
    let db = support::source_db();
    create_orders(&db);
    db.client()
        .batch_execute("UPDATE public.orders SET status = NULL WHERE id % 3 = 0")
        .unwrap();
    let filter = TenantOrders::SPEC.source.filter.as_ref().unwrap();
    for tenant in ["7", "8"] {
        let mut params = sync_runtime::Params::new();
        params.set("tenant", tenant);
        let settings = filter.settings(&params).unwrap();
        let mut client = db.client();
        let mut transaction = client.transaction().unwrap();
        for (name, value) in &settings {
            transaction
                .execute("SELECT set_config($1, $2, true)", &[name, value])
                .unwrap();
        }
        let rows = transaction
            .query(
                &format!(
                    "SELECT id::text, version::text, tenant_id::text, status, total::text, ({}) IS TRUE FROM public.orders ORDER BY id",
                    filter.condition
                ),
                &[],
            )
            .unwrap();
        assert_eq!(rows.len(), 40);
        for row in rows {
            let fields: Vec<Option<String>> = (0..5).map(|index| row.get(index)).collect();
            let kept: bool = row.get(5);
            let evaluated = filter
                .evaluate(&|index| fields[index].as_deref(), &settings)
                .unwrap();
            assert_eq!(evaluated == Some(true), kept, "row {fields:?}");
            if fields[3].is_none() {
                assert_eq!(
                    evaluated,
                    if fields[2].as_deref() == Some(tenant) {
                        None
                    } else {
                        Some(false)
                    }
                );
            }
        }
    }
}

#[test]
fn the_command_line_takes_param_and_explain_shows_the_filter() {
    let db = support::source_db();
    create_orders(&db);
    let target = support::target_file();
    // The binary's catalogue has no filtered mapping: a parameter none uses is an
    // error naming it.
    let output = support::data_sync(
        &db,
        &target.path,
        &["sync", "--mapping", "users", "--param", "tenant=7"],
    );
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).trim(),
        "error: parameter `tenant` is used by none of the mappings run (users): their filters use no parameters"
    );
    let output = support::data_sync(&db, &target.path, &["sync", "--param", "tenant"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("`tenant` is not NAME=VALUE, e.g. tenant=7"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `explain` of a filtered mapping (`tests/mappings/tenant_orders.yaml`) shows the
/// condition rendered as SQL, every literal and parameter with the setting that
/// binds it, and the statement that binds them.
#[test]
fn explain_shows_the_filter_as_sql_and_the_values_it_binds() {
    let db = support::source_db();
    let target = support::target_file();
    let output = crate::outcomes::data_sync_test_mappings(
        &db,
        &target.path,
        &["explain", "--mapping", "tenant_orders"],
    );
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    let filter_part = text.split("\n\n").take(3).collect::<Vec<_>>().join("\n\n");
    assert_eq!(
        filter_part,
        "-- mapping `tenant_orders` (struct TenantOrders): public.orders -> tenant_order\n\n\
         -- filter `tenant_id = $tenant AND status <> 'void' AND total BETWEEN 20 AND $max_total`: every value is bound, read back with current_setting\n\
         --   data_sync.f1 (bigint) = parameter $tenant (--param tenant=VALUE)\n\
         --   data_sync.f2 (text) = literal 'void'\n\
         --   data_sync.f3 (bigint) = literal '20'\n\
         --   data_sync.f4 (bigint) = parameter $max_total (--param max_total=VALUE)\n\
         -- PostgreSQL, first in the snapshot: $1 the settings, $2 their values\n\
         SELECT set_config(setting.name, setting.value, true) FROM unnest($1::text[], $2::text[]) AS setting(name, value);\n\n\
         -- PostgreSQL, full sync: in one REPEATABLE READ READ ONLY snapshot\n\
         COPY (SELECT \"tenant_id\", \"id\", \"status\", \"total\" FROM \"public\".\"orders\" \
         WHERE (((\"tenant_id\" = current_setting('data_sync.f1')::bigint) AND (\"status\" <> current_setting('data_sync.f2')::text)) \
         AND (\"total\" BETWEEN current_setting('data_sync.f3')::bigint AND current_setting('data_sync.f4')::bigint))) TO STDOUT (FORMAT binary);"
    );
}
