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
    data_sync_at(&db.url(), target, args)
}

/// Runs the `data-sync` binary with `args` against the source `url`.
pub fn data_sync_at(url: &str, target: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_data-sync"))
        .args(args)
        .env("DATA_SYNC_SOURCE", url)
        .env("DATA_SYNC_TARGET", target)
        .env_remove("RUST_LOG")
        .output()
        .expect("data-sync runs")
}

/// What a command wrote on stderr, as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// What a command wrote on stdout, as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// What a command wrote on stdout and then on stderr, as text.
pub fn printed(output: &Output) -> String {
    format!("{}{}", stdout(output), stderr(output))
}

/// Asserts that `output` is a success, showing its streams otherwise.
#[track_caller]
pub fn assert_ok(output: &Output) {
    assert_eq!(output.status.code(), Some(0), "{}", printed(output));
}

/// Asserts that `output` failed with exit code 1, and returns its stderr.
#[track_caller]
pub fn assert_fails(output: &Output) -> String {
    assert_eq!(output.status.code(), Some(1), "{}", printed(output));
    stderr(output)
}

/// Asserts that a failed run committed nothing into `table`: the table is missing
/// from the file, or empty.
#[track_caller]
pub fn assert_nothing_committed(target: &Path, table: &str) {
    let exists = sqlite_rows(
        target,
        &format!("SELECT count(*) FROM sqlite_master WHERE name = '{table}'"),
    );
    if exists != [[Value::Integer(0)]] {
        assert_eq!(
            sqlite_rows(target, &format!("SELECT count(*) FROM \"{table}\"")),
            [[Value::Integer(0)]],
            "nothing of the run was committed into `{table}`"
        );
    }
}

/// Every row of `query` on the source, as SQLite values: integers and booleans as
/// `Integer`, `text` as `Text`, `double precision` as `Real`, `bytea` as `Blob`,
/// NULL as `Null` (another column type panics, naming it).
pub fn pg_rows(
    db: &TestDb,
    query: &str,
    params: &[&(dyn postgres::types::ToSql + Sync)],
) -> Vec<Vec<Value>> {
    use postgres::types::Type;
    let value = |row: &postgres::Row, index: usize| -> Value {
        let ty = row.columns()[index].type_();
        let converted = match *ty {
            Type::INT2 => row
                .get::<_, Option<i16>>(index)
                .map(|v| Value::Integer(v.into())),
            Type::INT4 => row
                .get::<_, Option<i32>>(index)
                .map(|v| Value::Integer(v.into())),
            Type::INT8 => row.get::<_, Option<i64>>(index).map(Value::Integer),
            Type::BOOL => row
                .get::<_, Option<bool>>(index)
                .map(|v| Value::Integer(v.into())),
            Type::FLOAT8 => row.get::<_, Option<f64>>(index).map(Value::Real),
            Type::TEXT | Type::VARCHAR | Type::NAME => {
                row.get::<_, Option<String>>(index).map(Value::Text)
            }
            Type::BYTEA => row.get::<_, Option<Vec<u8>>>(index).map(Value::Blob),
            _ => panic!("pg_rows: column {index} is `{ty}`; cast it in the query"),
        };
        converted.unwrap_or(Value::Null)
    };
    db.client()
        .query(query, params)
        .expect("source query runs")
        .iter()
        .map(|row| (0..row.len()).map(|index| value(row, index)).collect())
        .collect()
}

/// Moves everything in the WAL of the SQLite file at `path` into the file itself
/// (`wal_checkpoint(TRUNCATE)`), so that the file alone holds its contents.
pub fn checkpoint(path: &Path) {
    rusqlite::Connection::open(path)
        .unwrap()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
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
    pg_rows(
        db,
        "SELECT id, username, email, bio, avatar_url FROM public.users
         WHERE deleted_at IS NULL ORDER BY id",
        &[],
    )
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

/// A `data-sync` child started with `-v --log-format json ARGS`, and its log: one
/// JSON object per stderr line, as they come.
pub struct Logged {
    /// The process.
    pub child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Logged {
    /// Starts it, source and target given by environment, stdout piped.
    pub fn spawn(db: &TestDb, target: &Path, args: &[&str]) -> Logged {
        let mut command = Command::new(env!("CARGO_BIN_EXE_data-sync"));
        command
            .args(["-v", "--log-format", "json"])
            .args(args)
            .env("DATA_SYNC_SOURCE", db.url())
            .env("DATA_SYNC_TARGET", target)
            .env_remove("RUST_LOG");
        Logged::start(command)
    }

    /// Starts `command` (whose arguments ask for JSON log lines), stdout piped.
    pub fn start(mut command: Command) -> Logged {
        let mut child = command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("data-sync starts");
        let (sender, lines) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().expect("stderr piped");
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Logged { child, lines }
    }

    /// The next log line whose `message` starts with `prefix` (30 s at most), skipping
    /// the others.
    pub fn until(&self, prefix: &str) -> serde_json::Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no log line `{prefix}...` within 30 s"));
            let json: serde_json::Value =
                serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"));
            if json["message"]
                .as_str()
                .is_some_and(|message| message.starts_with(prefix))
            {
                return json;
            }
        }
    }

    /// Sends SIGTERM and waits for the exit (30 s at most): its status and how long
    /// it took.
    pub fn terminate(&mut self) -> (std::process::ExitStatus, std::time::Duration) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let sent = std::time::Instant::now();
        loop {
            if let Some(exit) = self.child.try_wait().expect("child waits") {
                return (exit, sent.elapsed());
            }
            assert!(
                sent.elapsed() < std::time::Duration::from_secs(30),
                "no exit"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// `GET path` over a plain TCP connection to `address`, with `headers` (`Name:
/// value` lines): the status line, the header lines and the body.
pub fn http_get(address: &str, path: &str, headers: &[&str]) -> (String, Vec<String>, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).expect("metrics server answers");
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\n");
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).expect("request sent");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("response read to its end");
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head: {response:?}"));
    let mut lines = head.split("\r\n").map(str::to_owned);
    let status = lines.next().unwrap_or_default();
    (status, lines.collect(), body.to_owned())
}

/// What a run migrated in place: (table, column, change, rows backfilled).
pub fn migrated(summary: &Summary) -> Vec<(String, String, String, u64)> {
    summary
        .migrated
        .iter()
        .map(|column| {
            (
                column.table.clone(),
                column.column.clone(),
                column.change.clone(),
                column.backfilled,
            )
        })
        .collect()
}
