//! What a target file keeps of a capture mapping, in `_data_sync_state`: the slot
//! (named at creation from the mapping and a random id, so that two target files of
//! one mapping get two slots), the publication and whether data-sync created it,
//! and the position the committed rows reach.
//!
//! The columns are added to the state table of earlier versions in place.

use rusqlite::{Connection, OptionalExtension, params};
use sync_sql::ident::{STATE_TABLE, quote};

use super::lsn::Lsn;

/// The columns change capture adds to `_data_sync_state`.
const COLUMNS: [&str; 4] = [
    "capture_slot",
    "capture_publication",
    "capture_owns_publication",
    "capture_position",
];

/// A capture mapping's slot and position in one target file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CaptureState {
    /// The replication slot's name.
    pub(crate) slot: String,
    /// The publication the slot reads.
    pub(crate) publication: String,
    /// Whether data-sync created the publication (and `drop-slot` drops it).
    pub(crate) owns_publication: bool,
    /// The position the target's rows reach: every source transaction that
    /// committed before it is applied, none after; `None` before the first copy
    /// committed.
    pub(crate) position: Option<Lsn>,
}

/// Adds the capture columns to the state table where missing; call after
/// `state::ensure`.
pub(crate) fn ensure(connection: &Connection) -> rusqlite::Result<()> {
    for column in COLUMNS {
        let present: bool = connection.query_row(
            "SELECT count(*) = 1 FROM pragma_table_info(?1) WHERE name = ?2",
            [STATE_TABLE, column],
            |row| row.get(0),
        )?;
        if !present {
            let ty = if column == "capture_owns_publication" {
                "INTEGER"
            } else {
                "TEXT"
            };
            // Constant names and types: nothing from outside in the statement.
            connection.execute_batch(&format!(
                "ALTER TABLE {} ADD COLUMN {} {ty}",
                quote(STATE_TABLE),
                quote(column)
            ))?;
        }
    }
    Ok(())
}

/// The capture state of `mapping`, if it has a slot.
pub(crate) fn load(
    connection: &Connection,
    mapping: &str,
) -> rusqlite::Result<Option<CaptureState>> {
    let has_columns: bool = connection.query_row(
        "SELECT count(*) = 4 FROM pragma_table_info(?1)
         WHERE name IN ('capture_slot', 'capture_publication', 'capture_owns_publication',
                        'capture_position')",
        [STATE_TABLE],
        |row| row.get(0),
    )?;
    if !has_columns {
        return Ok(None);
    }
    let row = connection
        .query_row(
            &format!(
                "SELECT \"capture_slot\", \"capture_publication\", \"capture_owns_publication\",
                        \"capture_position\"
                 FROM {} WHERE \"mapping\" = ?1 AND \"capture_slot\" IS NOT NULL",
                quote(STATE_TABLE)
            ),
            [mapping],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, Option<String>>(1)?,
                    row.get::<_, Option<bool>>(2)?,
                    row.get::<_, Option<String>>(3)?,
                ))
            },
        )
        .optional()?;
    Ok(row.map(|(slot, publication, owns, position)| CaptureState {
        publication: publication.unwrap_or_else(|| slot.clone()),
        slot,
        owns_publication: owns.unwrap_or(false),
        position: position.and_then(|text| text.parse().ok()),
    }))
}

/// Records the slot and publication of `mapping` and clears its position (nothing
/// copied yet); the mapping's state row must exist.
pub(crate) fn record_slot(
    connection: &Connection,
    mapping: &str,
    state: &CaptureState,
) -> rusqlite::Result<()> {
    connection.execute(
        &format!(
            "UPDATE {} SET \"capture_slot\" = ?2, \"capture_publication\" = ?3,
                 \"capture_owns_publication\" = ?4, \"capture_position\" = ?5
             WHERE \"mapping\" = ?1",
            quote(STATE_TABLE)
        ),
        params![
            mapping,
            state.slot,
            state.publication,
            state.owns_publication,
            state.position.map(|lsn| lsn.to_string()),
        ],
    )?;
    Ok(())
}

/// Records the position the committed rows of `mapping` reach; call in the
/// transaction of those rows.
pub(crate) fn record_position(
    connection: &Connection,
    mapping: &str,
    position: Lsn,
) -> rusqlite::Result<()> {
    connection.execute(
        &format!(
            "UPDATE {} SET \"capture_position\" = ?2 WHERE \"mapping\" = ?1",
            quote(STATE_TABLE)
        ),
        params![mapping, position.to_string()],
    )?;
    Ok(())
}

/// Moves the stored position of `mapping` from `from` to `to`; `false` when it was
/// not at `from` (another run of the mapping moved it). Call in the transaction of
/// the rows that reach `to`.
pub(crate) fn move_position(
    connection: &Connection,
    mapping: &str,
    from: Lsn,
    to: Lsn,
) -> rusqlite::Result<bool> {
    let moved = connection.execute(
        &format!(
            "UPDATE {} SET \"capture_position\" = ?3 WHERE \"mapping\" = ?1 AND \"capture_position\" = ?2",
            quote(STATE_TABLE)
        ),
        params![mapping, from.to_string(), to.to_string()],
    )?;
    Ok(moved == 1)
}

/// Forgets the slot `slot` (after `drop-slot`) for every mapping that reads it: the
/// members of a group share one.
pub(crate) fn clear_slot(connection: &Connection, slot: &str) -> rusqlite::Result<()> {
    connection.execute(
        &format!(
            "UPDATE {} SET \"capture_slot\" = NULL, \"capture_publication\" = NULL,
                 \"capture_owns_publication\" = NULL, \"capture_position\" = NULL
             WHERE \"capture_slot\" = ?1",
            quote(STATE_TABLE)
        ),
        [slot],
    )?;
    Ok(())
}
