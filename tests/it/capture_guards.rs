//! The guards full and incremental runs have, for change capture too: a first copy
//! that would empty a populated target is refused without `--allow-empty`, a drain
//! from another source than the target's is refused, and a role that row-level
//! security would filter is refused before anything is created; each leaves the
//! target as it was.

use std::path::Path;

use sync_runtime::{SourceConfig, SyncOptions};

use crate::capture::{sync_log, target_live_users, users_source};
use crate::generated::UsersLog;
use crate::support::{self, TestDb};

fn run_log(url: &str, target: &Path, options: &SyncOptions) -> sync_runtime::Result<()> {
    let source = SourceConfig::parse(url).unwrap();
    sync_runtime::sync::<UsersLog>(&source, target, options).map(drop)
}

fn full() -> SyncOptions {
    SyncOptions {
        full: true,
        ..SyncOptions::default()
    }
}

#[test]
fn a_first_copy_does_not_empty_a_populated_target_without_allow_empty() {
    let db = users_source(5);
    let target = support::target_file();
    sync_log(&db, &target.path).unwrap();
    let before = target_live_users(&target.path);
    assert_eq!(before.len(), 5);
    db.client()
        .batch_execute("DELETE FROM public.users")
        .unwrap();

    let error = run_log(&db.url(), &target.path, &full()).unwrap_err();
    assert_eq!(error.kind(), "would_empty");
    assert_eq!(
        error.to_string(),
        "mapping `users_log`: the first copy of change capture would delete every row of the \
         targets: the source `public.users` has no rows to write; rerun with `--allow-empty` to \
         empty them"
    );
    assert_eq!(target_live_users(&target.path), before);

    let allowed = SyncOptions {
        allow_empty: true,
        ..full()
    };
    run_log(&db.url(), &target.path, &allowed).unwrap();
    assert!(target_live_users(&target.path).is_empty());
}

#[test]
fn a_drain_from_another_source_is_refused() {
    let db = users_source(5);
    let other: TestDb = users_source(3);
    let target = support::target_file();
    sync_log(&db, &target.path).unwrap();
    let before = target_live_users(&target.path);

    let error = run_log(&other.url(), &target.path, &SyncOptions::default()).unwrap_err();
    assert_eq!(error.kind(), "other_source", "{error}");
    let message = error.to_string();
    assert!(
        message.starts_with(
            "mapping `users_log`: the target was synced from another source (database `"
        ),
        "{message}"
    );
    assert!(
        message.ends_with("rerun with `--full` to rebuild it from this source"),
        "{message}"
    );
    assert!(
        message.contains(&format!("database `{}`", db.name())),
        "{message}"
    );
    assert!(
        message.contains(&format!("database `{}`", other.name())),
        "{message}"
    );
    assert_eq!(target_live_users(&target.path), before);
    // The right source again: nothing was lost.
    db.client()
        .batch_execute("UPDATE public.users SET username = 'changed' WHERE id = 2")
        .unwrap();
    sync_log(&db, &target.path).unwrap();
    crate::capture::assert_same_users(&db, &target.path);
}

#[test]
fn a_role_row_level_security_filters_is_refused_before_the_first_copy() {
    let db = users_source(6);
    let target = support::target_file();
    sync_log(&db, &target.path).unwrap();
    let before = target_live_users(&target.path);
    let slots_before = crate::capture::slots(&db);
    db.client()
        .batch_execute(
            "CREATE ROLE capture_rls LOGIN REPLICATION;
             GRANT SELECT ON public.users TO capture_rls;
             ALTER TABLE public.users ENABLE ROW LEVEL SECURITY;
             CREATE POLICY even_only ON public.users FOR SELECT USING (id % 2 = 0);",
        )
        .unwrap();
    let url = db.url().replacen("postgres@", "capture_rls@", 1);
    let error = run_log(&url, &target.path, &full()).unwrap_err();
    assert_eq!(error.kind(), "row_security", "{error}");
    assert_eq!(
        error.to_string(),
        "mapping `users_log`: row-level security hides rows of `public.users` from this role, and \
         a sync reads every row (with `row_security = off`, as pg_dump does): run it as a role \
         that bypasses the policies (the table's owner, or one given `ALTER ROLE ... BYPASSRLS`)"
    );
    assert_eq!(target_live_users(&target.path), before);
    assert_eq!(crate::capture::slots(&db), slots_before, "the slot is kept");
    db.client()
        .batch_execute("DROP OWNED BY capture_rls; DROP ROLE capture_rls;")
        .unwrap();
}
