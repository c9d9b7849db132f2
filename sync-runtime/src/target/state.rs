//! `_data_sync_state`: one row per mapping in every target file, written in the same
//! transaction as the rows a run commits, so the state never disagrees with the data.
//!
//! For incremental sync that is what makes a run resumable: every batch commits its
//! rows together with the watermark they reach, so after a crash the stored watermark
//! is exactly as far as the committed rows go.

use rusqlite::{Connection, OptionalExtension, params};
use sync_sql::ident::{STATE_TABLE, quote};

use crate::spec::MappingSpec;
use crate::summary::ColumnMigration;
use crate::sync::watermark::Watermark;
use crate::target::model;
use crate::target::target_error;

/// The state table's definition.
const CREATE: &str = "CREATE TABLE IF NOT EXISTS \"_data_sync_state\" (
    \"mapping\" TEXT NOT NULL PRIMARY KEY,
    \"fingerprint\" TEXT NOT NULL,
    \"mode\" TEXT NOT NULL,
    \"watermark_cursor\" TEXT,
    \"watermark_key\" TEXT,
    \"watermark_raw\" BLOB,
    \"rows\" INTEGER NOT NULL,
    \"started_at\" TEXT NOT NULL,
    \"finished_at\" TEXT,
    \"last_attempt_at\" TEXT NOT NULL,
    \"last_outcome\" TEXT NOT NULL,
    \"source\" TEXT,
    \"params\" TEXT,
    \"model\" TEXT,
    \"migrated\" TEXT
) STRICT";

/// Every column a run writes, in [`CREATE`] order (`source` and `migrated` are
/// written by [`record_source`] and [`record_migration`]).
const COLUMNS: &str = "\"mapping\", \"fingerprint\", \"mode\", \"watermark_cursor\", \"watermark_key\",
    \"watermark_raw\", \"rows\", \"started_at\", \"finished_at\", \"last_attempt_at\", \"last_outcome\",
    \"params\", \"model\"";

/// The columns later versions added to the state table, each with its type: a
/// state table from before one gains it (see [`ensure`]), and reads it as NULL until
/// then. A row from before filter parameters was built without any, which is what
/// NULL says; one from before models has none recorded until its next run.
const ADDED_COLUMNS: [(&str, &str); 4] = [
    ("source", "TEXT"),
    ("params", "TEXT"),
    ("model", "TEXT"),
    ("migrated", "TEXT"),
];

/// The outcome of a run that is going on, or was killed.
pub const RUNNING: &str = "running";

/// The `mode` of a mapping whose runs into this file were all killed or failed
/// before one committed: it was never synced, and its next run is a full one.
pub const NEVER_SYNCED: &str = "none";

/// What the state table holds for one mapping.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MappingState {
    /// The mapping name.
    pub mapping: String,
    /// The fingerprint of the definition the targets were built by.
    pub fingerprint: String,
    /// The filter parameters the targets were built with (`tenant=7`), `None`
    /// without any: another value needs `--full`.
    pub params: Option<String>,
    /// `full` or `incremental`: the mode of the run that last committed.
    pub mode: String,
    /// The incremental watermark's cursor value, as text (times in RFC 3339 UTC).
    pub watermark_cursor: Option<String>,
    /// The incremental watermark's key values, as a JSON array.
    pub watermark_key: Option<String>,
    /// The watermark in PostgreSQL's binary form, as incremental runs read it.
    #[serde(skip)]
    pub(crate) watermark_raw: Option<Vec<u8>>,
    /// Rows read by the run that last committed (so far, while it runs).
    pub rows: i64,
    /// When the run that last committed started (RFC 3339, UTC).
    pub started_at: String,
    /// When it finished; `None` while it runs, or when it was killed or failed after
    /// committing some batches.
    pub finished_at: Option<String>,
    /// When the last run, successful or not, ended (or last committed a batch).
    pub last_attempt_at: String,
    /// `ok`, `running` (or killed), or the error that stopped the last run.
    pub last_outcome: String,
    /// The model of the mapping the targets were built by (see `target::model`), as
    /// JSON; `None` in a file an earlier version wrote, until the next run.
    #[serde(skip)]
    pub(crate) model: Option<String>,
    /// The last migration of the targets without a full sync: which columns were
    /// added or dropped, and when.
    pub migrated: Option<Migration>,
}

/// Columns added to or dropped from a mapping's targets in place, by one run.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Migration {
    /// When the run that migrated started (RFC 3339, UTC).
    pub at: String,
    /// The columns, in the order they were migrated.
    pub columns: Vec<ColumnMigration>,
}

impl MappingState {
    /// The state of a run of `spec` with filter parameters `params` in `mode`
    /// (`full`, `incremental`, `capture`) that started at `started_at`, has read
    /// `rows` rows and reached `watermark`: finished now (outcome `ok`), or still
    /// running (outcome `running`).
    pub(crate) fn of_run(
        spec: &MappingSpec,
        params: Option<String>,
        mode: &str,
        watermark: Option<&Watermark>,
        rows: u64,
        started_at: &str,
        finished: bool,
    ) -> MappingState {
        let now = now();
        MappingState {
            mapping: spec.name.to_owned(),
            fingerprint: spec.fingerprint.to_owned(),
            params,
            mode: mode.to_owned(),
            watermark_cursor: watermark.map(Watermark::display_cursor),
            watermark_key: watermark.map(Watermark::display_key),
            watermark_raw: watermark.map(Watermark::to_blob),
            rows: i64::try_from(rows).unwrap_or(i64::MAX),
            started_at: started_at.to_owned(),
            finished_at: finished.then(|| now.clone()),
            last_attempt_at: now,
            last_outcome: if finished { "ok" } else { RUNNING }.to_owned(),
            model: Some(crate::target::model::Model::of(spec).to_json()),
            migrated: None,
        }
    }

    /// What the next run of the compiled-in mapping `spec` does about the
    /// definition the targets were built by: nothing (empty) when it is the same,
    /// the columns it adds and drops in place, or the error naming what changed,
    /// which needs `--full`.
    ///
    /// # Errors
    ///
    /// [`crate::Error::MappingChanged`] for a change the next run does not migrate.
    pub fn migration_for(&self, spec: &MappingSpec) -> crate::Result<Vec<ColumnMigration>> {
        if self.fingerprint == spec.fingerprint {
            return Ok(Vec::new());
        }
        let stored = self.model.as_deref();
        let why = if spec.source.capture.is_some() {
            // Its copy and the changes it applies come from one position of the log.
            "a mapping with `capture: log` migrates only with `--full`"
        } else if spec.source.incremental.is_none() {
            "a mapping without a cursor rebuilds its targets in every run"
        } else {
            return model::compare(spec, &self.fingerprint, stored);
        };
        Err(model::needs_full(spec, &self.fingerprint, stored, why))
    }

    /// The stored watermark, if any.
    pub(crate) fn watermark(&self) -> Option<Watermark> {
        self.watermark_raw.as_deref().and_then(Watermark::from_blob)
    }
}

/// Creates the state table if missing. A state table of an earlier layout (before
/// watermarks) is replaced: it held no watermark, so nothing is lost but the
/// history, and the next run of each mapping is a full one.
pub(crate) fn ensure(connection: &Connection) -> rusqlite::Result<()> {
    let current: bool = connection.query_row(
        "SELECT count(*) = 0 OR sum(name = 'watermark_raw') = 1
         FROM pragma_table_info('_data_sync_state')",
        [],
        |row| row.get(0),
    )?;
    if !current {
        connection.execute_batch("DROP TABLE \"_data_sync_state\"")?;
    }
    connection.execute_batch(CREATE)?;
    for (column, ty) in ADDED_COLUMNS {
        if !has_column(connection, column)? {
            connection.execute_batch(&format!(
                "ALTER TABLE \"_data_sync_state\" ADD COLUMN {} {ty}",
                quote(column)
            ))?;
        }
    }
    Ok(())
}

/// Whether the state table has the column `name`.
fn has_column(connection: &Connection, name: &str) -> rusqlite::Result<bool> {
    connection.query_row(
        "SELECT count(*) = 1 FROM pragma_table_info('_data_sync_state') WHERE name = ?1",
        [name],
        |row| row.get(0),
    )
}

/// Records a finished run: its state, and which source (server, database, table;
/// the JSON of `source::guard`'s identity) its targets now hold; call inside the
/// run's last transaction.
pub(crate) fn record_finished(
    connection: &Connection,
    state: &MappingState,
    source: &str,
) -> rusqlite::Result<()> {
    record(connection, state)?;
    record_source(connection, &state.mapping, source)
}

/// Records which source the targets of `mapping` now hold.
fn record_source(connection: &Connection, mapping: &str, source: &str) -> rusqlite::Result<()> {
    connection.execute(
        "UPDATE \"_data_sync_state\" SET \"source\" = ?2 WHERE \"mapping\" = ?1",
        params![mapping, source],
    )?;
    Ok(())
}

/// The source the targets of `mapping` were synced from, if recorded.
pub(crate) fn load_source(
    connection: &Connection,
    mapping: &str,
) -> rusqlite::Result<Option<String>> {
    if !exists(connection)? || !has_column(connection, "source")? {
        return Ok(None);
    }
    connection
        .query_row(
            "SELECT \"source\" FROM \"_data_sync_state\" WHERE \"mapping\" = ?1",
            [mapping],
            |row| row.get(0),
        )
        .optional()
        .map(Option::flatten)
}

/// Records a run's state as given; call inside the run's (last) transaction.
pub(crate) fn record(connection: &Connection, state: &MappingState) -> rusqlite::Result<()> {
    connection.execute(
        &format!(
            "INSERT INTO \"_data_sync_state\" ({COLUMNS})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
             ON CONFLICT (\"mapping\") DO UPDATE SET \"fingerprint\" = excluded.\"fingerprint\",
                 \"mode\" = excluded.\"mode\", \"watermark_cursor\" = excluded.\"watermark_cursor\",
                 \"watermark_key\" = excluded.\"watermark_key\",
                 \"watermark_raw\" = excluded.\"watermark_raw\",
                 \"rows\" = excluded.\"rows\", \"started_at\" = excluded.\"started_at\",
                 \"finished_at\" = excluded.\"finished_at\",
                 \"last_attempt_at\" = excluded.\"last_attempt_at\",
                 \"last_outcome\" = excluded.\"last_outcome\",
                 \"params\" = excluded.\"params\", \"model\" = excluded.\"model\""
        ),
        params![
            state.mapping,
            state.fingerprint,
            state.mode,
            state.watermark_cursor,
            state.watermark_key,
            state.watermark_raw,
            state.rows,
            state.started_at,
            state.finished_at,
            state.last_attempt_at,
            state.last_outcome,
            state.params,
            state.model,
        ],
    )?;
    Ok(())
}

/// Records the columns a run migrated; call inside the run's (last) transaction.
/// The record stays until the next migration.
pub(crate) fn record_migration(
    connection: &Connection,
    mapping: &str,
    migration: &Migration,
) -> rusqlite::Result<()> {
    let text = serde_json::to_string(migration).expect("a migration serializes");
    connection.execute(
        "UPDATE \"_data_sync_state\" SET \"migrated\" = ?2 WHERE \"mapping\" = ?1",
        params![mapping, text],
    )?;
    Ok(())
}

/// Records the progress of an incremental run: the watermark its committed rows
/// reach. Call inside the transaction of the batch.
pub(crate) fn record_progress(
    connection: &Connection,
    spec: &MappingSpec,
    params: Option<&str>,
    watermark: Option<&Watermark>,
    rows: u64,
    started_at: &str,
) -> rusqlite::Result<()> {
    let state = MappingState::of_run(
        spec,
        params.map(str::to_owned),
        "incremental",
        watermark,
        rows,
        started_at,
        false,
    );
    record(connection, &state)
}

/// Records that a run of `mapping` starts, as `running`, in a transaction of its
/// own before the run's: a run killed before it commits then stays recorded as
/// `running`, whichever journal mode the file is in. The last committed run's fields
/// stay as they were; a mapping never synced into the file gets a row of mode
/// [`NEVER_SYNCED`].
pub(crate) fn record_attempt(
    connection: &mut Connection,
    mapping: &str,
    at: &str,
) -> rusqlite::Result<()> {
    let transaction = crate::target::Txn::begin(connection)?;
    ensure(&transaction)?;
    transaction.execute(
        "INSERT INTO \"_data_sync_state\" (\"mapping\", \"fingerprint\", \"mode\", \"rows\",
             \"started_at\", \"last_attempt_at\", \"last_outcome\")
         VALUES (?1, '', ?2, 0, ?3, ?3, ?4)
         ON CONFLICT (\"mapping\") DO UPDATE SET \"last_attempt_at\" = excluded.\"last_attempt_at\",
             \"last_outcome\" = excluded.\"last_outcome\"",
        params![mapping, NEVER_SYNCED, at, RUNNING],
    )?;
    transaction.commit()
}

/// Records that the run of each of `mappings` failed with `error`, after its
/// transaction rolled back; the last committed run's fields stay as they were.
/// Best effort: a failure to record is ignored, as it must not hide `error`, the
/// one that stopped the run.
pub(crate) fn record_failure<'a>(
    connection: &Connection,
    mappings: impl IntoIterator<Item = &'a str>,
    error: &crate::Error,
) {
    let outcome = outcome(error);
    for mapping in mappings {
        let _ = connection.execute(
            "UPDATE \"_data_sync_state\" SET \"last_attempt_at\" = ?2, \"last_outcome\" = ?3 WHERE \"mapping\" = ?1",
            params![mapping, now(), outcome],
        );
    }
}

/// What `last_outcome` records for a failed run: `interrupted`, or the error's
/// message.
fn outcome(error: &crate::Error) -> String {
    match error {
        crate::Error::Interrupted { .. } => "interrupted".to_owned(),
        error => error.to_string(),
    }
}

/// Whether the state table exists.
fn exists(connection: &Connection) -> rusqlite::Result<bool> {
    crate::target::table_exists(connection, STATE_TABLE)
}

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<MappingState> {
    Ok(MappingState {
        mapping: row.get(0)?,
        fingerprint: row.get(1)?,
        mode: row.get(2)?,
        watermark_cursor: row.get(3)?,
        watermark_key: row.get(4)?,
        watermark_raw: row.get(5)?,
        rows: row.get(6)?,
        started_at: row.get(7)?,
        finished_at: row.get(8)?,
        last_attempt_at: row.get(9)?,
        last_outcome: row.get(10)?,
        params: row.get(11)?,
        model: row.get(12)?,
        // An unreadable record (written by a later version) reads as none.
        migrated: row
            .get::<_, Option<String>>(13)?
            .and_then(|text| serde_json::from_str(&text).ok()),
    })
}

/// Whether the state table has this layout (an earlier one is replaced by
/// [`ensure`], by the next run).
fn is_current(connection: &Connection) -> rusqlite::Result<bool> {
    connection.query_row(
        "SELECT sum(name = 'watermark_raw') = 1 FROM pragma_table_info('_data_sync_state')",
        [],
        |row| row.get(0),
    )
}

/// The columns to read, [`COLUMNS`] then `migrated`: a column a state table from
/// before it lacks (which the next run's [`ensure`] adds) reads as NULL.
fn columns(connection: &Connection) -> rusqlite::Result<String> {
    let mut columns = Vec::new();
    for name in COLUMNS.split(',').chain(["\"migrated\""]) {
        let name = name.trim();
        let bare = name.trim_matches('"');
        columns.push(if has_column(connection, bare)? {
            name
        } else {
            "NULL"
        });
    }
    Ok(columns.join(", "))
}

/// The state of `mapping`, if it ever synced into this file.
pub(crate) fn load(
    connection: &Connection,
    mapping: &str,
) -> rusqlite::Result<Option<MappingState>> {
    if !exists(connection)? || !is_current(connection)? {
        return Ok(None);
    }
    let columns = columns(connection)?;
    connection
        .query_row(
            &format!("SELECT {columns} FROM \"_data_sync_state\" WHERE \"mapping\" = ?1"),
            [mapping],
            from_row,
        )
        .optional()
}

/// The state of every mapping that ever synced into this file, by name.
pub(crate) fn load_all(connection: &Connection) -> rusqlite::Result<Vec<MappingState>> {
    if !exists(connection)? || !is_current(connection)? {
        return Ok(Vec::new());
    }
    let columns = columns(connection)?;
    let mut statement = connection.prepare(&format!(
        "SELECT {columns} FROM \"_data_sync_state\" ORDER BY \"mapping\""
    ))?;
    statement.query_map([], from_row)?.collect()
}

/// The state of every mapping in the target file at `path`, writing nothing (the
/// journal a killed run left is rolled back first, where the user may write the
/// file); empty when the file does not exist.
///
/// # Errors
///
/// [`crate::Error::Target`] when the file cannot be read.
pub fn load_states(path: &std::path::Path) -> crate::Result<Vec<MappingState>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let connection = crate::target::open_for_reading(path)?;
    load_all(&connection).map_err(target_error(path))
}

/// Now, as RFC 3339 UTC with microseconds (from the system clock: chrono's `clock`
/// feature, with its time-zone crates, is not needed for UTC).
pub(crate) fn now() -> String {
    chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now())
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
