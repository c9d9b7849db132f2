//! Transforms (`with = "path::fn"`) against a real PostgreSQL: a function of the
//! catalogue's `custom::mask` (`mappings/src/custom/mask.rs`) masks a
//! column on the way to one target and not the other, incrementally too; a transform
//! that fails on a row stops the run with the mapping, table, key and column, and
//! nothing is committed.

use rusqlite::types::Value;
use sync_runtime::{Error, Mapping, SourceConfig, SyncOptions};

use crate::full_sync::create_users;
use crate::support::{self, TestDb};

/// The bio's length, refused for a bio longer than 40 characters.
pub fn short_bio(bio: &Option<String>) -> Result<Option<String>, String> {
    match bio {
        Some(bio) if bio.chars().count() > 40 => {
            Err(format!("a bio of {} characters", bio.chars().count()))
        }
        other => Ok(other.clone()),
    }
}

/// Users with a masked email in `user_public` and the real one in `user_private`.
#[derive(Debug, Clone, PartialEq, Mapping)]
#[sync(
    from = "public.users",
    name = "masked_users",
    key = "id",
    cursor = "updated_at"
)]
pub struct MaskedUsers {
    #[sync(to = "user_public", primary_key)]
    #[sync(to = "user_private", primary_key, references = "user_public.id")]
    pub id: i64,
    pub updated_at: sync_runtime::value::Timestamptz,
    #[sync(to = "user_public", with = "mappings::custom::mask::email")]
    #[sync(to = "user_private")]
    pub email: String,
}

/// A transform that fails on some rows.
#[derive(Debug, Clone, PartialEq, Mapping)]
#[sync(from = "public.users", name = "short_bios", key = "id")]
pub struct ShortBios {
    #[sync(to = "user_bio", primary_key)]
    pub id: i64,
    #[sync(to = "user_bio", with = "crate::transform::short_bio")]
    pub bio: Option<String>,
}

fn run<M: Mapping>(
    db: &TestDb,
    target: &std::path::Path,
) -> sync_runtime::Result<sync_runtime::Summary> {
    let source = SourceConfig::parse(&db.url()).unwrap();
    sync_runtime::sync::<M>(&source, target, &SyncOptions::default())
}

fn emails(db: &TestDb) -> Vec<(i64, String)> {
    db.client()
        .query("SELECT id, email FROM public.users ORDER BY id", &[])
        .unwrap()
        .into_iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

fn assert_masked(db: &TestDb, target: &std::path::Path) {
    let public = support::sqlite_rows(target, "SELECT id, email FROM user_public ORDER BY id");
    let private = support::sqlite_rows(target, "SELECT id, email FROM user_private ORDER BY id");
    let source = emails(db);
    assert_eq!(public.len(), source.len());
    for ((id, email), (public, private)) in source.iter().zip(public.iter().zip(&private)) {
        assert_eq!(
            public,
            &vec![
                Value::Integer(*id),
                Value::Text(mappings::custom::mask::email(email))
            ]
        );
        assert_eq!(
            private,
            &vec![Value::Integer(*id), Value::Text(email.clone())]
        );
    }
}

#[test]
fn a_transform_masks_one_placement_in_full_and_incremental_runs() {
    let db = support::source_db();
    create_users(&db, 50);
    let target = support::target_file();
    assert_eq!(run::<MaskedUsers>(&db, &target.path).unwrap().mode, "full");
    assert_masked(&db, &target.path);
    assert_eq!(
        support::sqlite_rows(&target.path, "SELECT email FROM user_public WHERE id = 1"),
        [[Value::Text("u***@example.org".into())]]
    );

    db.client()
        .batch_execute(
            "UPDATE public.users SET email = 'zed@example.com', updated_at = now() + interval '1 hour' WHERE id = 3",
        )
        .unwrap();
    assert_eq!(
        run::<MaskedUsers>(&db, &target.path).unwrap().mode,
        "incremental"
    );
    assert_masked(&db, &target.path);
    assert_eq!(
        support::sqlite_rows(&target.path, "SELECT email FROM user_public WHERE id = 3"),
        [[Value::Text("z***@example.com".into())]]
    );
}

#[test]
fn a_failing_transform_names_the_row_and_commits_nothing() {
    let db = support::source_db();
    create_users(&db, 10);
    // Bios of rows 1, 4, 7, 10 are longer than 40 characters.
    let target = support::target_file();
    let error = run::<ShortBios>(&db, &target.path).unwrap_err();
    assert!(matches!(error, Error::Encode { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        "mapping `short_bios`: cannot write column `bio` of `user_bio` at key 1: transform `crate::transform::short_bio` failed: a bio of 45 characters"
    );
    support::assert_nothing_committed(&target.path, "user_bio");
}
