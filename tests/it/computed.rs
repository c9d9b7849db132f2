//! Computed columns (`#[sync(computed(..))]`) against a real PostgreSQL: a column no
//! single source column feeds, computed from the whole row by a function of the
//! catalogue (`mappings/src/custom/email.rs`) or of this crate, written exactly in
//! full, incremental and change capture runs, checked and repaired by `verify`; a
//! function that fails on a row stops the run naming the column, the function and
//! the key, and nothing is committed.

use rusqlite::types::Value;
use sync_runtime::{Error, Mapping, SourceConfig, SyncOptions};

use crate::full_sync::create_users;
use crate::support::{self, TestDb};

/// `username <email>`, or just the username for an empty email.
pub fn label(row: &ComputedUsers) -> String {
    if row.email.is_empty() {
        row.username.clone()
    } else {
        format!("{} <{}>", row.username, row.email)
    }
}

/// Users with two computed columns: `domain` (nullable) and `label`. Clippy reads
/// their equal `to` and `type` as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(Debug, Clone, PartialEq, Mapping)]
#[sync(
    from = "public.users",
    name = "computed_users",
    key = "id",
    cursor = "updated_at"
)]
#[sync(computed(
    to = "user_contact",
    column = "domain",
    with = "mappings::custom::email::domain",
    type = "text",
    nullable
))]
#[sync(computed(
    to = "user_contact",
    column = "label",
    with = "crate::computed::label",
    type = "text"
))]
pub struct ComputedUsers {
    #[sync(to = "user_contact", primary_key)]
    pub id: i64,
    pub updated_at: sync_runtime::value::Timestamptz,
    pub username: String,
    #[sync(to = "user_contact")]
    pub email: String,
}

impl mappings::custom::email::HasEmail for ComputedUsers {
    fn email(&self) -> &str {
        &self.email
    }
}

/// Fails for the rows whose id is a multiple of 4.
pub fn refuse_fourth(row: &RefusedRows) -> Result<i64, String> {
    if row.id % 4 == 0 {
        Err(format!("{} is a multiple of 4", row.id))
    } else {
        Ok(row.id * 10)
    }
}

/// A computed column whose function fails on some rows.
#[derive(Debug, Clone, PartialEq, Mapping)]
#[sync(from = "public.users", name = "refused_rows", key = "id")]
#[sync(computed(
    to = "user_times_ten",
    column = "times_ten",
    with = "crate::computed::refuse_fourth",
    type = "bigint"
))]
pub struct RefusedRows {
    #[sync(to = "user_times_ten", primary_key)]
    pub id: i64,
}

fn run<M: Mapping>(
    db: &TestDb,
    target: &std::path::Path,
) -> sync_runtime::Result<sync_runtime::Summary> {
    let source = SourceConfig::parse(&db.url()).unwrap();
    sync_runtime::sync::<M>(&source, target, &SyncOptions::default())
}

/// What the target must hold, computed here from the source rows.
fn expected(db: &TestDb) -> Vec<Vec<Value>> {
    db.client()
        .query(
            "SELECT id, username, email FROM public.users ORDER BY id",
            &[],
        )
        .unwrap()
        .into_iter()
        .map(|row| {
            let (id, username, email): (i64, String, String) = (row.get(0), row.get(1), row.get(2));
            let domain = match email.rsplit_once('@') {
                Some((_, domain)) if !domain.is_empty() => Value::Text(domain.to_lowercase()),
                _ => Value::Null,
            };
            let label = if email.is_empty() {
                username.clone()
            } else {
                format!("{username} <{email}>")
            };
            vec![
                Value::Integer(id),
                Value::Text(email),
                domain,
                Value::Text(label),
            ]
        })
        .collect()
}

fn contacts(target: &std::path::Path) -> Vec<Vec<Value>> {
    support::sqlite_rows(
        target,
        "SELECT id, email, domain, label FROM user_contact ORDER BY id",
    )
}

#[test]
fn computed_columns_are_written_exactly_in_full_and_incremental_runs() {
    let db = support::source_db();
    create_users(&db, 30);
    let target = support::target_file();
    assert_eq!(
        run::<ComputedUsers>(&db, &target.path).unwrap().mode,
        "full"
    );
    assert_eq!(contacts(&target.path), expected(&db));
    // Row 7's email is empty: no domain (NULL), the label is the username alone.
    assert_eq!(
        support::sqlite_rows(
            &target.path,
            "SELECT domain, label FROM user_contact WHERE id IN (1, 7) ORDER BY id"
        ),
        [
            vec![
                Value::Text("example.org".into()),
                Value::Text("user_1 <u1@example.org>".into())
            ],
            vec![Value::Null, Value::Text("user_7".into())],
        ]
    );
    // The table declares both columns, after the fed ones.
    assert_eq!(
        support::sqlite_rows(
            &target.path,
            "SELECT name, type, \"notnull\" FROM pragma_table_info('user_contact') ORDER BY cid"
        ),
        [
            vec![
                Value::Text("id".into()),
                Value::Text("INTEGER".into()),
                Value::Integer(1)
            ],
            vec![
                Value::Text("email".into()),
                Value::Text("TEXT".into()),
                Value::Integer(1)
            ],
            vec![
                Value::Text("domain".into()),
                Value::Text("TEXT".into()),
                Value::Integer(0)
            ],
            vec![
                Value::Text("label".into()),
                Value::Text("TEXT".into()),
                Value::Integer(1)
            ],
        ]
    );

    // A changed email and a changed username change the computed values.
    db.client()
        .batch_execute(
            "UPDATE public.users SET email = 'Zed@Élan.Example', updated_at = now() + interval '1 hour' WHERE id = 3;
             UPDATE public.users SET username = 'renamed', updated_at = now() + interval '1 hour' WHERE id = 7;
             UPDATE public.users SET email = '', updated_at = now() + interval '1 hour' WHERE id = 8;",
        )
        .unwrap();
    assert_eq!(
        run::<ComputedUsers>(&db, &target.path).unwrap().mode,
        "incremental"
    );
    assert_eq!(contacts(&target.path), expected(&db));
    assert_eq!(
        support::sqlite_rows(
            &target.path,
            "SELECT domain, label FROM user_contact WHERE id IN (3, 7, 8) ORDER BY id"
        ),
        [
            vec![
                Value::Text("élan.example".into()),
                Value::Text("user_3 <Zed@Élan.Example>".into())
            ],
            vec![Value::Null, Value::Text("renamed".into())],
            vec![Value::Null, Value::Text("user_8".into())],
        ]
    );
}

#[test]
fn verify_computes_the_expected_value_and_repair_restores_it() {
    let db = support::source_db();
    create_users(&db, 12);
    let target = support::target_file();
    run::<ComputedUsers>(&db, &target.path).unwrap();
    let source = SourceConfig::parse(&db.url()).unwrap();
    assert!(
        sync_runtime::verify::<ComputedUsers>(&source, &target.path, 10)
            .unwrap()
            .is_equal()
    );

    rusqlite::Connection::open(&target.path)
        .unwrap()
        .execute_batch("UPDATE user_contact SET label = 'tampered' WHERE id = 5")
        .unwrap();
    let found = sync_runtime::verify::<ComputedUsers>(&source, &target.path, 10).unwrap();
    assert_eq!(found.targets[0].changed, 1);
    assert_eq!(found.targets[0].differences[0].key, "5");

    let repaired = sync_runtime::repair::<ComputedUsers>(&source, &target.path, 10).unwrap();
    assert_eq!(repaired.targets[0].repaired.unwrap().copied, 1);
    assert_eq!(contacts(&target.path), expected(&db));
}

#[test]
fn a_failing_computed_column_names_the_row_and_commits_nothing() {
    let db = support::source_db();
    create_users(&db, 10);
    let target = support::target_file();
    let error = run::<RefusedRows>(&db, &target.path).unwrap_err();
    assert!(matches!(error, Error::Computed { .. }), "{error:?}");
    assert_eq!(error.kind(), "encode");
    assert_eq!(
        error.to_string(),
        "mapping `refused_rows`: computed column `user_times_ten.times_ten` (`crate::computed::refuse_fourth`) failed at key 4: 4 is a multiple of 4"
    );
    support::assert_nothing_committed(&target.path, "user_times_ten");
}

/// `username <email>` of a captured row.
pub fn captured_label(row: &CapturedLabels) -> String {
    format!("{} <{}>", row.username, row.email)
}

/// A change capture mapping whose only written value besides the key is computed
/// from two fields that go to no target.
#[derive(Debug, Clone, PartialEq, Mapping)]
#[sync(
    from = "public.users",
    name = "captured_labels",
    key = "id",
    capture = "log"
)]
#[sync(computed(
    to = "user_label",
    column = "label",
    with = "crate::computed::captured_label",
    type = "text"
))]
pub struct CapturedLabels {
    #[sync(to = "user_label", primary_key)]
    pub id: i64,
    pub username: String,
    pub email: String,
}

#[test]
fn change_capture_recomputes_a_computed_column_when_its_source_row_changes() {
    let db = crate::capture::users_source(12);
    let target = support::target_file();
    let labels = |db: &TestDb| -> Vec<Vec<Value>> {
        db.client()
            .query(
                "SELECT id, username || ' <' || email || '>' FROM public.users ORDER BY id",
                &[],
            )
            .unwrap()
            .into_iter()
            .map(|row| vec![Value::Integer(row.get(0)), Value::Text(row.get(1))])
            .collect()
    };
    let written = |target: &std::path::Path| {
        support::sqlite_rows(target, "SELECT id, label FROM user_label ORDER BY id")
    };
    assert_eq!(
        run::<CapturedLabels>(&db, &target.path).unwrap().mode,
        "full"
    );
    assert_eq!(written(&target.path), labels(&db));

    db.client()
        .batch_execute(
            "UPDATE public.users SET username = 'renamed' WHERE id = 3;
             UPDATE public.users SET email = 'moved@example.org' WHERE id = 5;
             UPDATE public.users SET bio = 'only the bio' WHERE id = 6;
             INSERT INTO public.users (id, username, email) VALUES (100, 'new', 'new@example.org');
             DELETE FROM public.users WHERE id = 2;",
        )
        .unwrap();
    assert_eq!(
        run::<CapturedLabels>(&db, &target.path).unwrap().mode,
        "capture"
    );
    assert_eq!(written(&target.path), labels(&db));
    assert_eq!(
        support::sqlite_rows(
            &target.path,
            "SELECT label FROM user_label WHERE id IN (3, 5, 100) ORDER BY id"
        ),
        [
            vec![Value::Text("renamed <user3@example.com>".into())],
            vec![Value::Text("user5 <moved@example.org>".into())],
            vec![Value::Text("new <new@example.org>".into())],
        ]
    );
}
