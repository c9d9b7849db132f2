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
