//! The full sync's fast, atomic replacement of the target tables.
//!
//! Inside the run's one transaction, each existing target is renamed aside, a fresh
//! table is created under its name and filled, and the old one is dropped just
//! before the commit. The fresh tables take pages the file does not use yet (its
//! freelist from earlier runs, or new pages at its end), so in rollback-journal mode
//! SQLite journals almost nothing: only pages that existed at the start of the
//! transaction are copied to the journal, and the old tables' pages are never
//! overwritten. A reader sees the old tables or the new, and a failure rolls back to
//! the old ones.
//!
//! [`BulkLoad`] switches the connection to that mode for the run, and back.

use rusqlite::Connection;
use sync_sql::ident::quote;

use crate::spec::MappingSpec;

/// The suffix of a target table while it is set aside during a full sync.
const SET_ASIDE: &str = "__data_sync_old";

fn set_aside_name(name: &str) -> String {
    format!("{name}{SET_ASIDE}")
}

/// Renames every existing target of `spec` aside and creates it afresh, parents
/// first; call inside the run's transaction, after the existing tables were checked
/// against the mapping.
pub(crate) fn set_aside(transaction: &Connection, spec: &MappingSpec) -> rusqlite::Result<()> {
    for target in spec.targets {
        let aside = set_aside_name(target.name);
        // A table of that name can only be left by a tool that crashed outside a
        // transaction; it holds nothing the mapping needs.
        transaction.execute_batch(&format!("DROP TABLE IF EXISTS {}", quote(&aside)))?;
        let exists = crate::target::table_exists(transaction, target.name)?;
        if exists {
            transaction.execute_batch(&format!(
                "ALTER TABLE {} RENAME TO {}",
                quote(target.name),
                quote(&aside)
            ))?;
        }
    }
    for target in spec.targets {
        transaction.execute_batch(target.create)?;
    }
    Ok(())
}

/// Drops the tables [`set_aside`] renamed, children first; call inside the run's
/// transaction, once every row is written.
pub(crate) fn drop_set_aside(transaction: &Connection, spec: &MappingSpec) -> rusqlite::Result<()> {
    for target in spec.targets.iter().rev() {
        transaction.execute_batch(&format!(
            "DROP TABLE IF EXISTS {}",
            quote(&set_aside_name(target.name))
        ))?;
    }
    Ok(())
}

/// Whether every foreign key of `spec` holds by construction: each referencing
/// column is fed by the same source field as the parent column it references, and
/// every source row is written to every target, so the parent row is always there.
pub(crate) fn references_hold_by_construction(spec: &MappingSpec) -> bool {
    spec.targets.iter().all(|target| {
        target.columns.iter().all(|column| {
            let Some(reference) = &column.references else {
                return true;
            };
            spec.targets
                .iter()
                .find(|parent| parent.name == reference.table)
                .and_then(|parent| {
                    parent
                        .columns
                        .iter()
                        .find(|parent_column| parent_column.name == reference.column)
                })
                .is_some_and(|parent_column| parent_column.field == column.field)
        })
    })
}

/// The connection settings of a full sync's bulk load, and what to restore after.
#[derive(Debug)]
pub(crate) struct BulkLoad {
    journal_mode: Option<String>,
    foreign_keys: bool,
}

impl BulkLoad {
    /// Prepares `connection`, outside any transaction, for a full sync: a rollback
    /// journal (with `synchronous = FULL`, which that journal needs to be safe on a
    /// power loss) instead of WAL, where every page would be written twice, and no
    /// foreign-key enforcement when `spec`'s foreign keys hold by construction.
    /// Where another connection keeps the file in WAL mode, WAL stays: slower, just
    /// as atomic.
    pub(crate) fn begin(connection: &Connection, spec: &MappingSpec) -> BulkLoad {
        let mut bulk = BulkLoad {
            journal_mode: None,
            foreign_keys: false,
        };
        let current: Option<String> = connection
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .ok();
        if let Some(current) = current
            && !current.eq_ignore_ascii_case("delete")
        {
            let switched: Option<String> = connection
                .pragma_update_and_check(None, "journal_mode", "delete", |row| row.get(0))
                .ok();
            if switched.is_some_and(|mode| mode.eq_ignore_ascii_case("delete")) {
                let _ = connection.pragma_update(None, "synchronous", "full");
                bulk.journal_mode = Some(current);
            }
        }
        if references_hold_by_construction(spec) {
            let enforced: bool = connection
                .pragma_query_value(None, "foreign_keys", |row| row.get(0))
                .unwrap_or(false);
            if enforced
                && connection
                    .pragma_update(None, "foreign_keys", "off")
                    .is_ok()
            {
                bulk.foreign_keys = true;
            }
        }
        bulk
    }

    /// Restores what [`BulkLoad::begin`] changed; call after the transaction ended.
    pub(crate) fn end(self, connection: &Connection) {
        // Best effort: the run's outcome is decided, and the settings only matter to
        // later statements on this connection, which `target::open` sets up anew.
        if let Some(mode) = &self.journal_mode {
            let _ = connection.pragma_update(None, "journal_mode", mode);
            let _ = connection.pragma_update(None, "synchronous", "normal");
        }
        if self.foreign_keys {
            let _ = connection.pragma_update(None, "foreign_keys", "on");
        }
    }
}
