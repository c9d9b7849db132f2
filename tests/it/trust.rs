//! Faults that used to lose data silently (issue 19 items 1, 3-6, issue 14 item 6):
//! row-level security, an `infinity` cursor, another source database, a key without
//! a unique index, and a run that would empty a populated target. Each one is now
//! an error naming what is wrong and the way out, and leaves the target as it was.

use std::path::Path;

use rusqlite::types::Value;

use crate::full_sync::create_users;
use crate::support::{self, TestDb, assert_fails, assert_ok, data_sync_at, stderr, stdout};

/// The ids in `user_main` and `user_profile`, in order.
fn target_ids(target: &Path) -> Vec<Vec<Value>> {
    support::sqlite_rows(
        target,
        "SELECT 'main', id FROM user_main UNION ALL SELECT 'profile', id FROM user_profile ORDER BY 1, 2",
    )
}

/// `url` with its user replaced by `user`.
fn url_as(url: &str, user: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let rest = rest.split_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{user}@{rest}")
}

/// A login role of its own for `db` (roles are global to the server, so it is named
/// after the database), without superuser rights, allowed to read `public.users`.
fn reader_role(db: &TestDb) -> String {
    let role = format!("{}_reader", db.name());
    db.client()
        .batch_execute(&format!(
            "CREATE ROLE \"{role}\" LOGIN NOSUPERUSER NOBYPASSRLS;
             GRANT USAGE ON SCHEMA public TO \"{role}\";
             GRANT SELECT ON public.users TO \"{role}\";"
        ))
        .unwrap();
    role
}

#[test]
fn row_level_security_is_an_error_not_a_subset() {
    let db = support::source_db();
    create_users(&db, 10);
    let role = reader_role(&db);
    db.client()
        .batch_execute(&format!(
            "ALTER TABLE public.users ENABLE ROW LEVEL SECURITY;
             CREATE POLICY even_only ON public.users FOR SELECT TO \"{role}\" USING (id % 2 = 0);"
        ))
        .unwrap();
    let target = support::target_file();
    // The owner (a superuser here) is not under the policy: every row.
    assert_ok(&support::data_sync(
        &db,
        &target.path,
        &["sync", "--mapping", "users"],
    ));
    let all = target_ids(&target.path);
    assert_eq!(all.len(), 20);

    let role_url = url_as(&db.url(), &role);
    for args in [
        &["sync", "--mapping", "users", "--full"][..],
        &["sync", "--mapping", "users", "--prune"][..],
    ] {
        let error = assert_fails(&data_sync_at(&role_url, &target.path, args));
        assert!(error.contains("row-level security"), "{args:?}: {error}");
        assert!(error.contains("`public.users`"), "{args:?}: {error}");
        assert!(error.contains("BYPASSRLS"), "{args:?}: {error}");
        assert_eq!(
            target_ids(&target.path),
            all,
            "{args:?}: the target is kept"
        );
    }

    let output = data_sync_at(&role_url, &target.path, &["verify", "--mapping", "users"]);
    let error = assert_fails(&output);
    assert!(error.contains("row-level security"), "{error}");

    let output = data_sync_at(&role_url, &target.path, &["check", "--mapping", "users"]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(
        stdout(&output).contains("row-level security"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn an_infinity_cursor_is_refused_naming_the_key() {
    let db = support::source_db();
    create_users(&db, 10);
    let target = support::target_file();
    assert_ok(&support::data_sync(
        &db,
        &target.path,
        &["sync", "--mapping", "users"],
    ));

    let mut client = db.client();
    client
        .batch_execute(
            "UPDATE public.users SET updated_at = 'infinity', username = 'forever' WHERE id = 3",
        )
        .unwrap();
    let error = assert_fails(&support::data_sync(
        &db,
        &target.path,
        &["sync", "--mapping", "users"],
    ));
    assert!(error.contains("infinity"), "{error}");
    assert!(error.contains("key 3"), "{error}");
    assert!(error.contains("`updated_at`"), "{error}");
    // A full run refuses it too: the watermark it would store freezes later runs.
    let error = assert_fails(&support::data_sync(
        &db,
        &target.path,
        &["sync", "--mapping", "users", "--full"],
    ));
    assert!(error.contains("key 3"), "{error}");

    // Given a real value again, the row and later changes are read.
    client
        .batch_execute(
            "UPDATE public.users SET updated_at = now() WHERE id = 3;
             UPDATE public.users SET username = 'later', updated_at = now() WHERE id = 4;",
        )
        .unwrap();
    assert_ok(&support::data_sync(
        &db,
        &target.path,
        &["sync", "--mapping", "users"],
    ));
    assert_eq!(
        support::target_users(&target.path),
        support::source_users(&db)
    );
}

#[test]
fn a_cursor_far_in_the_future_is_a_warning_naming_the_key() {
    let db = support::source_db();
    create_users(&db, 10);
    let target = support::target_file();
    assert_ok(&support::data_sync(
        &db,
        &target.path,
        &["sync", "--mapping", "users"],
    ));
    db.client()
        .batch_execute(
            "UPDATE public.users SET updated_at = now() + interval '10 years' WHERE id = 5",
        )
        .unwrap();
    let output = support::data_sync(&db, &target.path, &["sync", "--mapping", "users"]);
    assert_ok(&output);
    let warning = stderr(&output);
    assert!(warning.contains("in the future"), "{warning}");
    assert!(warning.contains("key 5"), "{warning}");
    assert!(warning.contains("`updated_at`"), "{warning}");
}

#[test]
fn another_source_database_is_refused_without_full() {
    let first = support::source_db();
    create_users(&first, 10);
    let second = support::source_db();
    create_users(&second, 4);
    second
        .client()
        .batch_execute("UPDATE public.users SET username = 'second_' || id")
        .unwrap();
    let target = support::target_file();
    assert_ok(&support::data_sync(
        &first,
        &target.path,
        &["sync", "--mapping", "users"],
    ));
    let before = support::target_users(&target.path);

    let error = assert_fails(&support::data_sync(
        &second,
        &target.path,
        &["sync", "--mapping", "users"],
    ));
    assert!(error.contains("another source"), "{error}");
    assert!(error.contains(first.name()), "{error}");
    assert!(error.contains(second.name()), "{error}");
    assert!(error.contains("--full"), "{error}");
    assert_eq!(support::target_users(&target.path), before);

    assert_ok(&support::data_sync(
        &second,
        &target.path,
        &["sync", "--mapping", "users", "--full"],
    ));
    assert_eq!(
        support::target_users(&target.path),
        support::source_users(&second)
    );
    // The rebuilt target belongs to the second database now.
    assert_ok(&support::data_sync(
        &second,
        &target.path,
        &["sync", "--mapping", "users"],
    ));
    let error = assert_fails(&support::data_sync(
        &first,
        &target.path,
        &["sync", "--mapping", "users"],
    ));
    assert!(error.contains("another source"), "{error}");
}

#[test]
fn a_key_without_a_unique_index_is_refused_unless_assumed() {
    let db = support::source_db();
    create_users(&db, 10);
    db.client()
        .batch_execute("ALTER TABLE public.users DROP CONSTRAINT users_pkey")
        .unwrap();
    let target = support::target_file();

    let output = support::data_sync(&db, &target.path, &["check", "--mapping", "users"]);
    assert!(
        stdout(&output).contains("unique index or constraint"),
        "{}",
        stdout(&output)
    );
    assert!(
        stdout(&output).contains("--assume-unique-key"),
        "{}",
        stdout(&output)
    );
    let output = support::data_sync(
        &db,
        &target.path,
        &["check", "--mapping", "users", "--assume-unique-key"],
    );
    assert!(
        !stdout(&output).contains("unique index or constraint"),
        "{}",
        stdout(&output)
    );

    let error = assert_fails(&support::data_sync(
        &db,
        &target.path,
        &["sync", "--mapping", "users"],
    ));
    assert!(error.contains("unique index or constraint"), "{error}");
    assert!(error.contains("`id`"), "{error}");
    assert!(error.contains("--assume-unique-key"), "{error}");
    let tables = support::sqlite_rows(
        &target.path,
        "SELECT name FROM sqlite_schema WHERE name IN ('user_main', 'user_profile')",
    );
    assert!(tables.is_empty(), "nothing is created: {tables:?}");

    assert_ok(&support::data_sync(
        &db,
        &target.path,
        &["sync", "--mapping", "users", "--assume-unique-key"],
    ));
    assert_eq!(target_ids(&target.path).len(), 20);
    // An incremental run on a key that lost its index would merge duplicates: refused too.
    let error = assert_fails(&support::data_sync(
        &db,
        &target.path,
        &["sync", "--mapping", "users"],
    ));
    assert!(error.contains("unique index or constraint"), "{error}");

    // A unique index that is not the primary key is enough.
    db.client()
        .batch_execute("CREATE UNIQUE INDEX users_id ON public.users (id)")
        .unwrap();
    assert_ok(&support::data_sync(
        &db,
        &target.path,
        &["sync", "--mapping", "users"],
    ));
    let output = support::data_sync(&db, &target.path, &["check", "--mapping", "users"]);
    assert!(
        !stdout(&output).contains("unique index or constraint"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn a_full_sync_of_an_empty_source_keeps_a_populated_target() {
    let db = support::source_db();
    create_users(&db, 10);
    let target = support::target_file();
    assert_ok(&support::data_sync(
        &db,
        &target.path,
        &["sync", "--mapping", "users"],
    ));
    let before = target_ids(&target.path);
    db.client().batch_execute("TRUNCATE public.users").unwrap();

    let error = assert_fails(&support::data_sync(
        &db,
        &target.path,
        &["sync", "--mapping", "users", "--full"],
    ));
    assert!(error.contains("no rows"), "{error}");
    assert!(error.contains("--allow-empty"), "{error}");
    assert_eq!(target_ids(&target.path), before);

    assert_ok(&support::data_sync(
        &db,
        &target.path,
        &["sync", "--mapping", "users", "--full", "--allow-empty"],
    ));
    assert!(target_ids(&target.path).is_empty());
    // An empty target replaced by an empty source is no wipe.
    assert_ok(&support::data_sync(
        &db,
        &target.path,
        &["sync", "--mapping", "users", "--full"],
    ));
}

#[test]
fn a_prune_that_would_delete_every_row_is_refused() {
    let db = support::source_db();
    create_users(&db, 10);
    let target = support::target_file();
    assert_ok(&support::data_sync(
        &db,
        &target.path,
        &["sync", "--mapping", "users"],
    ));
    let before = target_ids(&target.path);
    db.client()
        .batch_execute("DELETE FROM public.users")
        .unwrap();

    let error = assert_fails(&support::data_sync(
        &db,
        &target.path,
        &["sync", "--mapping", "users", "--prune"],
    ));
    assert!(error.contains("every row"), "{error}");
    assert!(error.contains("--allow-empty"), "{error}");
    assert_eq!(target_ids(&target.path), before);

    assert_ok(&support::data_sync(
        &db,
        &target.path,
        &["sync", "--mapping", "users", "--prune", "--allow-empty"],
    ));
    assert!(target_ids(&target.path).is_empty());
}

#[test]
fn a_role_that_may_not_read_the_system_identifier_still_records_its_source() {
    let db = support::source_db();
    create_users(&db, 5);
    let role = reader_role(&db);
    // Managed services often revoke it; the identity is then database and table.
    db.client()
        .batch_execute("REVOKE EXECUTE ON FUNCTION pg_catalog.pg_control_system() FROM PUBLIC")
        .unwrap();
    let role_url = url_as(&db.url(), &role);
    let target = support::target_file();
    assert_ok(&data_sync_at(
        &role_url,
        &target.path,
        &["sync", "--mapping", "users"],
    ));
    assert_ok(&data_sync_at(
        &role_url,
        &target.path,
        &["sync", "--mapping", "users"],
    ));
    let source = support::sqlite_rows(
        &target.path,
        "SELECT json_extract(source, '$.system'), json_extract(source, '$.database'),
                json_extract(source, '$.table'), json_extract(source, '$.oid') > 0
         FROM _data_sync_state WHERE mapping = 'users'",
    );
    assert_eq!(
        source,
        vec![vec![
            Value::Null,
            Value::Text(db.name().to_owned()),
            Value::Text("public.users".to_owned()),
            Value::Integer(1),
        ]]
    );
    // The owner may read it: the same database and table are the same source.
    assert_ok(&support::data_sync(
        &db,
        &target.path,
        &["sync", "--mapping", "users"],
    ));
}
