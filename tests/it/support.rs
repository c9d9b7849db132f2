//! What every test needs: its own PostgreSQL database, its own SQLite file, the
//! `data-sync` binary, and exact reads of both sides.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rusqlite::types::Value;
use sync_runtime::{Mapping, SourceConfig, Summary, SyncOptions};
pub use testkit::TestDb;

/// A fresh database on the test server.
pub fn source_db() -> TestDb {
    testkit::PgServer::shared().create_database()
}

/// A temporary directory holding a not-yet-created SQLite file `target.sqlite`.
pub struct TargetFile {
    _dir: tempfile::TempDir,
    /// The file.
    pub path: PathBuf,
}

/// A fresh target file path.
pub fn target_file() -> TargetFile {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("target.sqlite");
    TargetFile { _dir: dir, path }
}

/// Runs mapping `M` with the library API, as a full sync.
pub fn sync<M: Mapping>(db: &TestDb, target: &Path) -> sync_runtime::Result<Summary> {
    let source = SourceConfig::parse(&db.url()).expect("test URL parses");
    let options = SyncOptions {
        full: true,
        ..SyncOptions::default()
    };
    sync_runtime::sync::<M>(&source, target, &options)
}

/// Runs the `data-sync` binary with `args`, source and target given by environment.
pub fn data_sync(db: &TestDb, target: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_data-sync"))
        .args(args)
        .env("DATA_SYNC_SOURCE", db.url())
        .env("DATA_SYNC_TARGET", target)
        .env_remove("RUST_LOG")
        .output()
        .expect("data-sync runs")
}

/// Every row of `query` on the SQLite file, as SQLite values.
pub fn sqlite_rows(target: &Path, query: &str) -> Vec<Vec<Value>> {
    let connection = rusqlite::Connection::open(target).expect("target opens");
    let mut statement = connection.prepare(query).expect("query prepares");
    let width = statement.column_count();
    statement
        .query_map([], |row| {
            (0..width).map(|index| row.get::<_, Value>(index)).collect()
        })
        .expect("query runs")
        .collect::<Result<_, _>>()
        .expect("rows read")
}

/// The source rows a sync keeps (not soft-deleted), as SQLite values, by key.
pub fn source_users(db: &TestDb) -> Vec<Vec<Value>> {
    let text = |value: Option<String>| value.map_or(Value::Null, Value::Text);
    db.client()
        .query(
            "SELECT id, username, email, bio, avatar_url FROM public.users
             WHERE deleted_at IS NULL ORDER BY id",
            &[],
        )
        .unwrap()
        .into_iter()
        .map(|row| {
            vec![
                Value::Integer(row.get(0)),
                Value::Text(row.get(1)),
                Value::Text(row.get(2)),
                text(row.get(3)),
                text(row.get(4)),
            ]
        })
        .collect()
}

/// The target's users, both tables joined, by key.
pub fn target_users(target: &std::path::Path) -> Vec<Vec<Value>> {
    let counts = sqlite_rows(
        target,
        "SELECT (SELECT count(*) FROM user_main), (SELECT count(*) FROM user_profile)",
    );
    assert_eq!(
        counts[0][0], counts[0][1],
        "both targets hold the same rows"
    );
    sqlite_rows(
        target,
        "SELECT m.id, m.username, m.email, p.bio, p.avatar_url
         FROM user_main AS m JOIN user_profile AS p ON p.id = m.id ORDER BY m.id",
    )
}

/// Starts the real `data-sync sync --mapping users --quiet ARGS` in a child process
/// (to be signalled or killed), its stderr piped.
pub fn spawn_users_sync(db: &TestDb, target: &Path, args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_data-sync"))
        .args(["sync", "--mapping", "users", "--quiet"])
        .args(args)
        .env("DATA_SYNC_SOURCE", db.url())
        .env("DATA_SYNC_TARGET", target)
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("data-sync starts")
}
