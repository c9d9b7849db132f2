//! `_data_sync_state`: one row per mapping in every target file, written in the same
//! transaction as the rows a run commits, so the state never disagrees with the data.

use rusqlite::{Connection, OptionalExtension, params};

/// The state table's definition.
const CREATE: &str = "CREATE TABLE IF NOT EXISTS \"_data_sync_state\" (
    \"mapping\" TEXT NOT NULL PRIMARY KEY,
    \"fingerprint\" TEXT NOT NULL,
    \"mode\" TEXT NOT NULL,
    \"watermark\" TEXT,
    \"rows\" INTEGER NOT NULL,
    \"started_at\" TEXT NOT NULL,
    \"finished_at\" TEXT NOT NULL,
    \"last_attempt_at\" TEXT NOT NULL,
    \"last_outcome\" TEXT NOT NULL
) STRICT";

/// What the state table holds for one mapping.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MappingState {
    /// The mapping name.
    pub mapping: String,
    /// The fingerprint of the definition the targets were last built by.
    pub fingerprint: String,
    /// `full` or `incremental`: the mode of the last successful run.
    pub mode: String,
    /// The incremental watermark (JSON: cursor and key of the last row), if any.
    pub watermark: Option<String>,
    /// Rows read by the last successful run.
    pub rows: i64,
    /// When the last successful run started (RFC 3339, UTC).
    pub started_at: String,
    /// When the last successful run committed (RFC 3339, UTC).
    pub finished_at: String,
    /// When the last run, successful or not, ended.
    pub last_attempt_at: String,
    /// `ok`, or the error that stopped the last run.
    pub last_outcome: String,
}

/// Creates the state table if missing.
pub(crate) fn ensure(connection: &Connection) -> rusqlite::Result<()> {
    connection.execute_batch(CREATE)
}

/// Records a successful run; call inside the run's transaction.
pub(crate) fn record_success(
    connection: &Connection,
    state: &MappingState,
) -> rusqlite::Result<()> {
    connection.execute(
        "INSERT INTO \"_data_sync_state\" (\"mapping\", \"fingerprint\", \"mode\", \"watermark\", \"rows\",
             \"started_at\", \"finished_at\", \"last_attempt_at\", \"last_outcome\")
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, 'ok')
         ON CONFLICT (\"mapping\") DO UPDATE SET \"fingerprint\" = excluded.\"fingerprint\",
             \"mode\" = excluded.\"mode\", \"watermark\" = excluded.\"watermark\",
             \"rows\" = excluded.\"rows\", \"started_at\" = excluded.\"started_at\",
             \"finished_at\" = excluded.\"finished_at\",
             \"last_attempt_at\" = excluded.\"last_attempt_at\",
             \"last_outcome\" = excluded.\"last_outcome\"",
        params![
            state.mapping,
            state.fingerprint,
            state.mode,
            state.watermark,
            state.rows,
            state.started_at,
            state.finished_at,
        ],
    )?;
    Ok(())
}

/// Records that a run failed, after its transaction rolled back; the last
/// successful run's fields stay as they were.
pub(crate) fn record_failure(
    connection: &Connection,
    mapping: &str,
    at: &str,
    outcome: &str,
) -> rusqlite::Result<()> {
    connection.execute(
        "UPDATE \"_data_sync_state\" SET \"last_attempt_at\" = ?2, \"last_outcome\" = ?3 WHERE \"mapping\" = ?1",
        params![mapping, at, outcome],
    )?;
    Ok(())
}

/// The state of `mapping`, if it ever synced into this file.
pub(crate) fn load(
    connection: &Connection,
    mapping: &str,
) -> rusqlite::Result<Option<MappingState>> {
    let exists = connection
        .query_row(
            "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = '_data_sync_state'",
            [],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    if !exists {
        return Ok(None);
    }
    connection
        .query_row(
            "SELECT \"mapping\", \"fingerprint\", \"mode\", \"watermark\", \"rows\", \"started_at\",
                    \"finished_at\", \"last_attempt_at\", \"last_outcome\"
             FROM \"_data_sync_state\" WHERE \"mapping\" = ?1",
            [mapping],
            |row| {
                Ok(MappingState {
                    mapping: row.get(0)?,
                    fingerprint: row.get(1)?,
                    mode: row.get(2)?,
                    watermark: row.get(3)?,
                    rows: row.get(4)?,
                    started_at: row.get(5)?,
                    finished_at: row.get(6)?,
                    last_attempt_at: row.get(7)?,
                    last_outcome: row.get(8)?,
                })
            },
        )
        .optional()
}
