//! The one error type of the runtime.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::__private::BindError;
use crate::source::{DecodeError, SourceRow, row_key};
use crate::spec::MappingSpec;

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can stop a run. Each variant names what it was working on
/// (mapping, table, key, column, file); none carries a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The source connection string or environment is unusable.
    #[error("source configuration: {message}")]
    Config {
        /// What is wrong, with the offending key named.
        message: String,
    },

    /// Connecting to PostgreSQL failed.
    #[error(
        "cannot connect to the source {endpoint}: {}",
        describe_postgres(source)
    )]
    Connect {
        /// `host:port/database`, without user or password.
        endpoint: String,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },

    /// The runtime a source connection runs on could not start (the system refused
    /// a thread, a timer or an event queue).
    #[error("cannot start the source connection's runtime: {source}")]
    Runtime {
        /// The system's error.
        #[source]
        source: io::Error,
    },

    /// Reading the source failed.
    #[error(
        "reading `{table}` for mapping `{mapping}`: {}",
        describe_postgres(source)
    )]
    Source {
        /// The mapping being run.
        mapping: String,
        /// The source table.
        table: String,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },

    /// The COPY stream broke off or was malformed.
    #[error("reading `{table}` for mapping `{mapping}`: {source}")]
    SourceStream {
        /// The mapping being run.
        mapping: String,
        /// The source table.
        table: String,
        /// What went wrong in the stream.
        #[source]
        source: io::Error,
    },

    /// The source took too long: PostgreSQL cancelled a statement (SQLSTATE 57014,
    /// as `--statement-timeout` does; 55P03, `lock_timeout`), or sent nothing for
    /// the read timeout (`--read-timeout`).
    #[error("reading `{table}` for mapping `{mapping}`: {message}")]
    Timeout {
        /// The mapping being run.
        mapping: String,
        /// The source table.
        table: String,
        /// PostgreSQL's message with its SQLSTATE, or the read timeout that passed.
        message: String,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },

    /// A source column has a type the field cannot be read from.
    #[error(
        "mapping `{mapping}`: source column `{column}` of `{table}` is `{actual}`, but field `{field}: {rust_type}` reads `{expected}`"
    )]
    ColumnType {
        /// The mapping being run.
        mapping: Box<str>,
        /// The source table.
        table: Box<str>,
        /// The source column.
        column: Box<str>,
        /// The field it is read into.
        field: Box<str>,
        /// The field's Rust type.
        rust_type: Box<str>,
        /// The type the mapping declares.
        expected: Box<str>,
        /// The type PostgreSQL reports.
        actual: Box<str>,
    },

    /// A value could not be read from the source.
    #[error(
        "mapping `{mapping}`: cannot read column `{column}` of `{table}` at key {key}: {source}"
    )]
    Decode {
        /// The mapping being run.
        mapping: String,
        /// The source table.
        table: String,
        /// The row's key, as text.
        key: String,
        /// The source column.
        column: String,
        /// Why.
        #[source]
        source: crate::value::BoxError,
    },

    /// A value has no form in its SQLite column.
    #[error(
        "mapping `{mapping}`: cannot write column `{column}` of `{table}` at key {key}: {source}"
    )]
    Encode {
        /// The mapping being run.
        mapping: String,
        /// The target table.
        table: String,
        /// The row's key, as text.
        key: String,
        /// The target column.
        column: String,
        /// Why.
        #[source]
        source: crate::value::BoxError,
    },

    /// A computed column's function returned an `Err` for a row.
    #[error(
        "mapping `{mapping}`: computed column `{table}.{column}` (`{function}`) failed at key {key}: {source}"
    )]
    Computed {
        /// The mapping being run.
        mapping: String,
        /// The target table.
        table: &'static str,
        /// The computed column.
        column: &'static str,
        /// The function, as written in the mapping.
        function: &'static str,
        /// The row's key, as text.
        key: String,
        /// The function's error.
        #[source]
        source: crate::value::BoxError,
    },

    /// SQLite refused an operation on the target file.
    #[error("target {}: {}", path.display(), describe_sqlite(source))]
    Target {
        /// The target file.
        path: PathBuf,
        /// SQLite's error (boxed: it is large, and errors are rare).
        #[source]
        source: Box<rusqlite::Error>,
    },

    /// SQLite refused a row.
    #[error("mapping `{mapping}`: writing `{table}` at key {key}: {source}")]
    Write {
        /// The mapping being run.
        mapping: String,
        /// The target table.
        table: String,
        /// The row's key, as text.
        key: String,
        /// SQLite's error (boxed: it is large, and errors are rare).
        #[source]
        source: Box<rusqlite::Error>,
    },

    /// An existing target table does not match the mapping.
    #[error("target table `{table}` does not match mapping `{mapping}`: {}", differences.join("; "))]
    SchemaMismatch {
        /// The mapping being run.
        mapping: String,
        /// The target table.
        table: String,
        /// Each difference, as a sentence fragment.
        differences: Vec<String>,
    },

    /// The source or target could not be read or written as a file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },

    /// The mapping's definition changed since its targets were last built, and the
    /// run was not asked to rebuild them.
    #[error(
        "mapping `{mapping}` changed since the target was last synced: {changes}; rerun with `--full` to rebuild its targets"
    )]
    MappingChanged {
        /// The mapping being run.
        mapping: String,
        /// What changed that a run cannot migrate in place (which table, column,
        /// type, nullability, key), `; `-separated.
        changes: String,
    },

    /// The parameters of the run do not fit the mapping's filter: one is missing, or
    /// a value does not read as its column's type. Nothing was read or written.
    #[error("mapping `{mapping}`: {source}")]
    Param {
        /// The mapping being run.
        mapping: String,
        /// What is wrong, naming the parameter.
        #[source]
        source: crate::filter::ParamError,
    },

    /// The targets hold the rows of other parameter values than this run's, and the
    /// run was not asked to rebuild them.
    #[error(
        "mapping `{mapping}`: the target holds the rows of {stored}, not of {given}: rerun with `--full` to rebuild its targets for {given}, or sync into another file"
    )]
    ParamsChanged {
        /// The mapping being run.
        mapping: String,
        /// The parameters the targets were built with (`tenant=7`, or `no parameters`).
        stored: String,
        /// This run's parameters, spelled the same way.
        given: String,
    },

    /// A source row has no cursor value, so incremental sync cannot place it.
    #[error(
        "mapping `{mapping}`: cursor column `{column}` of `{table}` is NULL at key {key}: incremental sync orders rows by the cursor and would never read this row; give it a value (a NOT NULL constraint keeps it from happening again)"
    )]
    NullCursor {
        /// The mapping being run.
        mapping: String,
        /// The source table.
        table: String,
        /// The cursor column.
        column: String,
        /// The row's key, as text.
        key: String,
    },

    /// A source row's cursor is `infinity`: the watermark would stop there, and no
    /// later change would ever be read.
    #[error(
        "mapping `{mapping}`: cursor column `{column}` of `{table}` is infinity at key {key}: the watermark would stop there and incremental sync would never read a later change; give it a finite value"
    )]
    InfiniteCursor {
        /// The mapping being run.
        mapping: String,
        /// The source table.
        table: String,
        /// The cursor column.
        column: String,
        /// The row's key, as text.
        key: String,
    },

    /// Row-level security would hide rows of the source table from this role, so a
    /// run would sync a subset (and delete the rest from the targets).
    #[error(
        "mapping `{mapping}`: row-level security hides rows of `{table}` from this role, and a sync reads every row (with `row_security = off`, as pg_dump does): run it as a role that bypasses the policies (the table's owner, or one given `ALTER ROLE ... BYPASSRLS`)"
    )]
    RowSecurity {
        /// The mapping being run.
        mapping: String,
        /// The source table.
        table: String,
    },

    /// The target was synced from another source (server, database or table) than
    /// the one this run reads: continuing would mix the two.
    #[error(
        "mapping `{mapping}`: the target was synced from another source ({stored}), not from this one ({current}): rerun with `--full` to rebuild it from this source"
    )]
    OtherSource {
        /// The mapping being run.
        mapping: String,
        /// The source the stored state names.
        stored: String,
        /// The source this run reads.
        current: String,
    },

    /// The mapping's key is not backed by a unique index or constraint of the source,
    /// so duplicate keys would silently collapse into one target row.
    #[error(
        "mapping `{mapping}`: the key ({key}) of `{table}` is not backed by a unique index or constraint, so rows with the same key would be merged silently: add a primary key or unique constraint on it, or pass `--assume-unique-key` if it is unique anyway"
    )]
    KeyNotUnique {
        /// The mapping being run.
        mapping: String,
        /// The source table.
        table: String,
        /// The key columns, each in backticks.
        key: String,
    },

    /// A run would leave targets that hold rows empty (a full sync of an empty
    /// source, or a `--prune` of every row), and `--allow-empty` was not given.
    #[error(
        "mapping `{mapping}`: {run} would delete every row of the targets: the source `{table}` has no rows to write; rerun with `--allow-empty` to empty them"
    )]
    WouldEmpty {
        /// The mapping being run.
        mapping: String,
        /// The source table.
        table: String,
        /// `a full sync` or `` `--prune` ``.
        run: &'static str,
    },

    /// Incremental sync cannot go on from the stored state as asked (an overlap the
    /// cursor's type has no arithmetic for, a watermark of another type).
    #[error("mapping `{mapping}`: {message}")]
    Incremental {
        /// The mapping being run.
        mapping: String,
        /// What is wrong, and the fix.
        message: String,
    },

    /// Another run of the same mapping wrote to the target while this one ran.
    #[error(
        "mapping `{mapping}`: another run of this mapping took over the target; this run stopped (its committed batches are kept)"
    )]
    ConcurrentRun {
        /// The mapping being run.
        mapping: String,
    },

    /// The reader thread stopped without saying why (it panicked).
    #[error("mapping `{mapping}`: the source reader stopped unexpectedly")]
    ReaderPanicked {
        /// The mapping being run.
        mapping: String,
    },

    /// SIGINT or SIGTERM stopped the run; what it had not committed was rolled back.
    #[error(
        "mapping `{mapping}`: interrupted by {signal}; the batch in flight was rolled back and the next run resumes"
    )]
    Interrupted {
        /// The mapping being run.
        mapping: String,
        /// `SIGINT` or `SIGTERM`.
        signal: &'static str,
    },

    /// Change capture cannot go on: a prerequisite of the source is missing (the
    /// message says what to change), the slot is gone or busy, or the source table
    /// changed so that the mapping no longer matches it.
    #[error("mapping `{mapping}`: {message}")]
    Capture {
        /// The mapping being run.
        mapping: String,
        /// What is wrong and what to change.
        message: String,
    },

    /// A partitioned mapping (`partition_by`) cannot run as asked: its target is not
    /// a template with the partition column's placeholder, a partition value is
    /// NULL, `--partition` or `--shard` do not read, or some partitions failed (each
    /// named, with its error).
    #[error("mapping `{mapping}`: {message}")]
    Partition {
        /// The mapping being run.
        mapping: String,
        /// What is wrong and what to change.
        message: String,
    },

    /// The catalogue's mappings do not fit together: a reference to another
    /// mapping's target names no table, a column that is not its whole primary key,
    /// or one of another type, or references between mappings form a cycle.
    #[error("catalogue: {message}")]
    Catalogue {
        /// Every problem found, `; `-separated.
        message: String,
    },

    /// Mappings synced together (one references the other's targets) would commit
    /// a target row whose foreign key finds no parent row; nothing of them was
    /// committed.
    #[error("mapping `{mapping}`: {message}")]
    ForeignKey {
        /// The mapping whose target holds the row.
        mapping: String,
        /// The table and row, and what to check.
        message: String,
    },

    /// A mapping synced in one transaction with linked mappings was not committed,
    /// since another of them failed.
    #[error(
        "mapping `{mapping}`: not committed, since `{failed}`, synced with it in one transaction, failed"
    )]
    NotCommitted {
        /// The mapping not committed.
        mapping: String,
        /// The mapping that failed.
        failed: String,
    },
}

impl Error {
    /// A stable, lowercase name for the kind of error: the `error.kind` of
    /// `data-sync sync --json`, documented in `docs/cli.md`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Config { .. } => "config",
            Error::Connect { .. } => "connect",
            Error::Runtime { .. } => "runtime",
            Error::Source { .. } => "source",
            Error::SourceStream { .. } => "source_stream",
            Error::Timeout { .. } => "timeout",
            Error::ColumnType { .. } => "column_type",
            Error::Decode { .. } => "decode",
            Error::Encode { .. } | Error::Computed { .. } => "encode",
            Error::Target { .. } => "target",
            Error::Write { .. } => "write",
            Error::SchemaMismatch { .. } => "schema_mismatch",
            Error::Io { .. } => "io",
            Error::MappingChanged { .. } => "mapping_changed",
            Error::Param { .. } => "param",
            Error::ParamsChanged { .. } => "params_changed",
            Error::NullCursor { .. } => "null_cursor",
            Error::Incremental { .. } => "incremental",
            Error::ConcurrentRun { .. } => "concurrent_run",
            Error::ReaderPanicked { .. } => "reader_panicked",
            Error::Interrupted { .. } => "interrupted",
            Error::InfiniteCursor { .. } => "infinite_cursor",
            Error::RowSecurity { .. } => "row_security",
            Error::OtherSource { .. } => "other_source",
            Error::KeyNotUnique { .. } => "key_not_unique",
            Error::WouldEmpty { .. } => "would_empty",
            Error::Capture { .. } => "capture",
            Error::Partition { .. } => "partition",
            Error::Catalogue { .. } => "catalogue",
            Error::ForeignKey { .. } => "foreign_key",
            Error::NotCommitted { .. } => "not_committed",
        }
    }
}

/// The error for a failed write of the row `key` names to target `target` (an
/// index into `spec.targets`).
pub(crate) fn write_error(
    spec: &MappingSpec,
    target: usize,
    key: &dyn Fn() -> String,
    source: rusqlite::Error,
) -> Error {
    Error::Write {
        mapping: spec.name.to_owned(),
        table: spec.targets[target].name.to_owned(),
        key: key(),
        source: Box::new(source),
    }
}

/// The error for a value of target `target` (an index into `spec.targets`) that
/// could not be bound.
pub(crate) fn bind_error(
    spec: &MappingSpec,
    target: usize,
    key: &dyn Fn() -> String,
    error: BindError,
) -> Error {
    let index = target;
    let target = &spec.targets[index];
    match error {
        BindError::Encode { column, cause } => Error::Encode {
            mapping: spec.name.to_owned(),
            table: target.name.to_owned(),
            key: key(),
            column: target.columns[column].name.to_owned(),
            source: cause,
        },
        BindError::Computed { column, message } => Error::Computed {
            mapping: spec.name.to_owned(),
            table: target.name,
            column: target.columns[column].name,
            function: target.columns[column].computed.unwrap_or_default(),
            key: key(),
            source: message.into(),
        },
        BindError::Sqlite(source) => write_error(spec, index, key, source),
        BindError::Decode(error) => Error::Decode {
            mapping: spec.name.to_owned(),
            table: spec.source.display_name(),
            key: key(),
            column: spec.source.columns[spec.source.key[error.field]]
                .name
                .to_owned(),
            source: error.cause,
        },
    }
}

/// The error for a field of `row` that could not be decoded; a NULL cursor gets its
/// own error, since the field cannot be an `Option`.
pub(crate) fn decode_error(spec: &MappingSpec, row: &SourceRow<'_>, error: DecodeError) -> Error {
    let key = row_key(spec, row);
    let column = spec.source.columns[error.field].name.to_owned();
    if spec.source.cursor == Some(error.field) && row.raw(error.field).is_none() {
        return Error::NullCursor {
            mapping: spec.name.to_owned(),
            table: spec.source.display_name(),
            column,
            key,
        };
    }
    Error::Decode {
        mapping: spec.name.to_owned(),
        table: spec.source.display_name(),
        key,
        column,
        source: error.cause,
    }
}

impl Error {
    /// A [`Error::Source`] or [`Error::SourceStream`] that is a timeout (see
    /// [`Error::Timeout`]) as that; any other error as it is.
    pub(crate) fn with_timeouts(self, read_timeout: Duration) -> Error {
        match self {
            Error::Source {
                mapping,
                table,
                source,
            } => match timeout_message(&source, read_timeout) {
                Some(message) => Error::Timeout {
                    mapping,
                    table,
                    message,
                    source,
                },
                None => Error::Source {
                    mapping,
                    table,
                    source,
                },
            },
            Error::SourceStream {
                mapping,
                table,
                source,
            } => {
                let message = source
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<tokio_postgres::Error>())
                    .and_then(|inner| timeout_message(inner, read_timeout));
                let Some(message) = message else {
                    return Error::SourceStream {
                        mapping,
                        table,
                        source,
                    };
                };
                let source = source
                    .into_inner()
                    .and_then(|inner| inner.downcast::<tokio_postgres::Error>().ok())
                    .expect("the inner error was just read as a tokio_postgres::Error");
                Error::Timeout {
                    mapping,
                    table,
                    message,
                    source: *source,
                }
            }
            other => other,
        }
    }

    /// A [`Error::Write`] whose cause is the file's, not the row's (read-only, full,
    /// corrupt, locked, an I/O error), as the [`Error::Target`] of `path` it is;
    /// any other error as it is.
    pub(crate) fn with_file_faults_of(self, path: &Path) -> Error {
        match self {
            Error::Write { source, .. } if is_file_fault(&source) => Error::Target {
                path: path.to_owned(),
                source,
            },
            other => other,
        }
    }
}

/// What timed out, when `error` is a timeout: PostgreSQL's message with its
/// SQLSTATE for a cancelled statement, the read timeout for a server that sent
/// nothing.
fn timeout_message(error: &tokio_postgres::Error, read_timeout: Duration) -> Option<String> {
    if is_read_timeout(error) {
        return Some(format!(
            "the source sent nothing for {} (--read-timeout): the server or the network is stuck",
            display_duration(read_timeout)
        ));
    }
    let db = error.as_db_error()?;
    let code = db.code().code();
    matches!(code, "57014" | "55P03").then(|| format!("{} {code}: {}", db.severity(), db.message()))
}

/// A duration as the command line takes it: `3s`, `10m`, `1500ms`.
fn display_duration(duration: Duration) -> String {
    let milliseconds = duration.as_millis();
    if milliseconds.is_multiple_of(60_000) && milliseconds > 0 {
        format!("{}m", milliseconds / 60_000)
    } else if milliseconds.is_multiple_of(1000) {
        format!("{}s", milliseconds / 1000)
    } else {
        format!("{milliseconds}ms")
    }
}

/// SQLite's error as one line; for a damaged file, with what to do.
fn describe_sqlite(error: &rusqlite::Error) -> String {
    if error.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseCorrupt) {
        return format!(
            "{error}: the file is damaged; `data-sync check` runs SQLite's integrity check on the targets, and `data-sync sync --full --target NEW.sqlite` builds a sound copy"
        );
    }
    error.to_string()
}

/// Whether SQLite's `error` is about the file rather than the row written.
fn is_file_fault(error: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode;

    matches!(
        error.sqlite_error_code(),
        Some(
            ErrorCode::ReadOnly
                | ErrorCode::DiskFull
                | ErrorCode::SystemIoFailure
                | ErrorCode::DatabaseCorrupt
                | ErrorCode::NotADatabase
                | ErrorCode::CannotOpen
                | ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::PermissionDenied
                | ErrorCode::OutOfMemory
        )
    )
}

/// The error of a wait for the source that reached the read timeout (see
/// `source::client`): the driver's own timeout error, as the `postgres` crate makes
/// it for its timeouts (see [`is_read_timeout`]).
pub(crate) fn read_timeout_error() -> tokio_postgres::Error {
    tokio_postgres::Error::__private_api_timeout()
}

/// Whether `error` is a wait that reached the read timeout.
pub(crate) fn is_read_timeout(error: &tokio_postgres::Error) -> bool {
    error.as_db_error().is_none() && error.to_string() == read_timeout_error().to_string()
}

/// A PostgreSQL error as one line: the server's message with its detail and hint, or
/// the driver's error with its causes (the driver's own Display says only "db error").
pub(crate) fn describe_postgres(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        let mut text = format!("{}: {}", db.severity(), db.message());
        if let Some(detail) = db.detail() {
            text.push_str(&format!(" ({detail})"));
        }
        if let Some(hint) = db.hint() {
            text.push_str(&format!("; hint: {hint}"));
        }
        return text;
    }
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        cause = inner.source();
    }
    text
}
