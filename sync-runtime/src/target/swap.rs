//! The full sync's atomic replacement of the target tables, in place.
//!
//! Inside the run's one transaction, each existing target is dropped and created
//! afresh under its own name, then filled; the user's own indexes and triggers on it
//! are created again after the load, from the SQL `sqlite_schema` kept for them. No
//! table is ever renamed, so SQLite rewrites nothing that names a target: the user's
//! views, triggers and other tables' foreign keys keep naming it, and work on the new
//! table. (A rename-aside swap made SQLite point them at the set-aside table.)
//!
//! In WAL mode (see `target::open`) readers keep reading the old tables until the
//! commit, and a failure rolls back to them. The dropped tables' pages go to the
//! freelist and the fresh tables reuse them, so the file does not grow by a copy.
//!
//! [`BulkLoad`] turns foreign-key enforcement off for the run where the mapping's
//! foreign keys hold by construction: then no check runs per row, and dropping a
//! parent that a user's table references neither fails nor cascades into it.

use rusqlite::{Connection, OptionalExtension};
use sync_sql::ident::quote;

use crate::error::Error;
use crate::spec::MappingSpec;

/// The suffix earlier versions gave a target set aside during a full sync; a table
/// so named is a leftover and is dropped.
const SET_ASIDE: &str = "__data_sync_old";

/// An index or trigger the user created on a target table, kept across a rebuild.
#[derive(Debug)]
struct UserObject {
    /// `index` or `trigger`.
    kind: String,
    name: String,
    table: String,
    sql: String,
}

/// What [`replace`] found before it dropped the old tables.
#[derive(Debug)]
pub(crate) struct Replaced {
    /// Whether the first (parent) target held rows.
    pub(crate) had_rows: bool,
    user_objects: Vec<UserObject>,
}

/// Drops every existing target of `spec` and creates it afresh, empty; call inside
/// the run's transaction. An existing table that does not match the mapping is an
/// [`Error::SchemaMismatch`] unless `rebuild` (this mapping built the table, by its
/// state row): then it is rebuilt in the mapping's shape.
pub(crate) fn replace(
    transaction: &Connection,
    spec: &MappingSpec,
    rebuild: bool,
) -> rusqlite::Result<Result<Replaced, Error>> {
    let mut had_rows = false;
    let mut user_objects = Vec::new();
    for (index, target) in spec.targets.iter().enumerate() {
        // A table of that name can only be left by an earlier version that crashed
        // outside a transaction; it holds nothing the mapping needs.
        transaction.execute_batch(&format!(
            "DROP TABLE IF EXISTS {}",
            quote(&format!("{}{SET_ASIDE}", target.name))
        ))?;
        if !crate::target::table_exists(transaction, target.name)? {
            continue;
        }
        let differences = crate::target::differences(transaction, target)?;
        if !differences.is_empty() && !rebuild {
            return Ok(Err(Error::SchemaMismatch {
                mapping: spec.name.to_owned(),
                table: target.name.to_owned(),
                differences,
            }));
        }
        if index == 0 {
            had_rows = transaction
                .query_row(
                    &format!("SELECT 1 FROM {} LIMIT 1", quote(target.name)),
                    [],
                    |_| Ok(()),
                )
                .optional()?
                .is_some();
        }
        let mut statement = transaction.prepare(
            "SELECT type, name, tbl_name, sql FROM sqlite_schema
             WHERE tbl_name = ?1 AND type IN ('index', 'trigger') AND sql IS NOT NULL
             ORDER BY rowid",
        )?;
        let objects = statement.query_map([target.name], |row| {
            Ok(UserObject {
                kind: row.get(0)?,
                name: row.get(1)?,
                table: row.get(2)?,
                sql: row.get(3)?,
            })
        })?;
        for object in objects {
            user_objects.push(object?);
        }
    }
    // Children first: with foreign keys enforced (see `BulkLoad`) a parent dropped
    // before its child would fail.
    for target in spec.targets.iter().rev() {
        transaction.execute_batch(&format!("DROP TABLE IF EXISTS {}", quote(target.name)))?;
    }
    for target in spec.targets {
        transaction.execute_batch(target.create)?;
    }
    Ok(Ok(Replaced {
        had_rows,
        user_objects,
    }))
}

impl Replaced {
    /// Creates the user's indexes and triggers again on the filled tables; call
    /// inside the run's transaction, once every row is written. One that no longer
    /// applies (it names a column the mapping dropped) is left out, with a warning.
    pub(crate) fn restore(
        &self,
        transaction: &Connection,
        spec: &MappingSpec,
    ) -> rusqlite::Result<()> {
        for object in &self.user_objects {
            transaction.execute_batch("SAVEPOINT data_sync_user_object")?;
            match transaction.execute_batch(&object.sql) {
                Ok(()) => transaction.execute_batch("RELEASE data_sync_user_object")?,
                Err(error) => {
                    transaction.execute_batch(
                        "ROLLBACK TO data_sync_user_object; RELEASE data_sync_user_object",
                    )?;
                    tracing::warn!(
                        mapping = spec.name,
                        "mapping `{}`: the {} `{}` on `{}` no longer applies to the rebuilt table and was dropped: {error}",
                        spec.name,
                        object.kind,
                        object.name,
                        object.table
                    );
                }
            }
        }
        Ok(())
    }
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
    foreign_keys: bool,
    /// Whether the load runs with a rollback journal, WAL to be set again after.
    rollback_journal: bool,
    /// `temp_store` before the load, when the load keeps its statement journals in
    /// memory (see [`BulkLoad::begin`]); `None` once set back.
    temp_store: Option<i64>,
}

impl BulkLoad {
    /// Prepares `connection`, outside any transaction, for a full sync: no
    /// foreign-key enforcement when `spec`'s foreign keys hold by construction. The
    /// journal stays WAL, so readers keep reading the old contents meanwhile, unless
    /// the file has no contents yet (then a rollback journal, see below).
    pub(crate) fn begin(connection: &Connection, spec: &MappingSpec) -> BulkLoad {
        let mut bulk = BulkLoad {
            foreign_keys: false,
            rollback_journal: false,
            temp_store: None,
        };
        // A file that holds nothing but data-sync's own state (a first run into a new
        // file) has no contents a reader could be reading: its load goes through a
        // rollback journal, which writes each new page once (pages beyond the old end
        // of the file are not journaled), where WAL writes it twice, to the log and
        // again at the checkpoint. WAL is set again once the run ends. SQLite keeps
        // WAL when another connection has the file open, and so does the run.
        let fresh: bool = connection
            .query_row(
                "SELECT NOT EXISTS (SELECT 1 FROM sqlite_schema
                                    WHERE tbl_name NOT LIKE '\\_data\\_sync\\_%' ESCAPE '\\')",
                [],
                |row| row.get(0),
            )
            .unwrap_or(false);
        // A file built under a temporary name (`target::NewFile`) keeps its journal
        // in memory: only a WAL file changes its journal for the load.
        let wal = connection
            .pragma_query_value(None, "journal_mode", |row| row.get::<_, String>(0))
            .is_ok_and(|mode| mode.eq_ignore_ascii_case("wal"));
        if fresh && wal {
            let mode: String = connection
                .pragma_update_and_check(None, "journal_mode", "delete", |row| row.get(0))
                .unwrap_or_default();
            bulk.rollback_journal = mode.eq_ignore_ascii_case("delete");
        }
        // Each multi-row `INSERT` keeps a statement journal: a copy of every page it
        // changes that existed when it began. Replacing tables, those are the pages
        // the dropped tables freed, reused, so a copy of nearly every page goes to
        // the journal, which SQLite moves to a temporary file past 64 KiB: at
        // 1,000,000 rows 553,000 of the run's 735,000 `pwrite64` calls. In memory
        // (`temp_store`) each journal is dropped at the end of its statement. Set
        // back before the user's indexes are built again, whose sort would then be
        // held in memory whole (see [`BulkLoad::inserts_done`]), and only when the
        // connection has no temporary database open, since `temp_store` cannot
        // change inside a transaction once one is. Not for a new file's load: its
        // pages are new, journaled rarely, and an in-memory journal grows in 1 KiB
        // chunks where the default one starts with 64 KiB (3.8% more instructions
        // for 100,000 `users` rows).
        let temp_open = connection
            .prepare("SELECT 1 FROM pragma_database_list WHERE name = 'temp'")
            .and_then(|mut statement| statement.exists([]))
            .unwrap_or(true);
        if !bulk.rollback_journal
            && wal
            && !temp_open
            && let Ok(store) = connection.pragma_query_value(None, "temp_store", |row| row.get(0))
            && connection
                .pragma_update(None, "temp_store", "memory")
                .is_ok()
        {
            bulk.temp_store = Some(store);
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

    /// Sets `temp_store` back once the rows are written, inside the run's
    /// transaction, before [`Replaced::restore`] builds the user's indexes again.
    ///
    /// # Errors
    ///
    /// SQLite's error setting the pragma.
    pub(crate) fn inserts_done(&mut self, transaction: &Connection) -> rusqlite::Result<()> {
        if let Some(store) = self.temp_store.take() {
            transaction.pragma_update(None, "temp_store", store)?;
        }
        Ok(())
    }

    /// Restores what [`BulkLoad::begin`] changed; call after the transaction ended.
    pub(crate) fn end(self, connection: &Connection) {
        if let Some(store) = self.temp_store {
            let _ = connection.pragma_update(None, "temp_store", store);
        }
        // Best effort: the run's outcome is decided, and the setting only matters to
        // later statements on this connection, which `target::open` sets up anew.
        if self.foreign_keys {
            let _ = connection.pragma_update(None, "foreign_keys", "on");
        }
        // Best effort too: a file left in rollback mode (a reader of the new file
        // held it open) gets WAL again from the next run's `target::open`.
        if self.rollback_journal {
            let _ = connection.pragma_update(None, "journal_mode", "wal");
        }
    }
}
