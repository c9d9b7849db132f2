//! The SQLite side: opening the target file with the pragmas data-sync relies on,
//! creating the target tables, and refusing existing tables that do not match; the
//! sync state kept in the file ([`state`]) and the full sync's swap of the tables
//! ([`swap`]).

pub(crate) mod model;
pub(crate) mod state;
pub(crate) mod statement;
pub(crate) mod swap;

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension};

use crate::error::{Error, Result};
use crate::spec::{MappingSpec, TargetSpec};

/// How long a statement waits for another connection's lock on the target file
/// before it fails with `database is locked`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The wait between two attempts at a lock.
const BUSY_STEP: Duration = Duration::from_millis(10);

/// SQLite's busy handler for the target: waits [`BUSY_STEP`] per attempt, up to
/// [`BUSY_TIMEOUT`], and reports a wait longer than a tenth of a second once.
///
/// In WAL mode a run never waits for a reader (readers and the one writer do not
/// block each other, and the automatic checkpoint skips what readers still use);
/// what can hold it is another writer, or a reader of a file another tool left in a
/// rollback journal, while `journal_mode` is switched to WAL.
fn busy(attempts: i32) -> bool {
    let waited = BUSY_STEP * u32::try_from(attempts).unwrap_or(0);
    if waited >= BUSY_TIMEOUT {
        return false;
    }
    if attempts == 10 {
        tracing::warn!(
            "another connection holds a lock on the target file; waiting up to {} s for it",
            BUSY_TIMEOUT.as_secs()
        );
    }
    std::thread::sleep(BUSY_STEP);
    true
}

/// How much of a WAL file is kept once a checkpoint has copied it back: a full sync
/// writes its whole data through the WAL, which would otherwise stay that large.
const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// Makes the directory `path` is to be created in, with its parents, unless it
/// is the current directory.
///
/// # Errors
///
/// [`Error::Io`] naming the directory when it cannot be made.
pub(crate) fn create_parent(path: &Path) -> Result<()> {
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(|source| Error::Io {
            path: parent.to_owned(),
            source,
        })?;
    }
    Ok(())
}

/// Opens (creating if needed) the target file: WAL journal, so that readers keep
/// reading the previous contents during every run and never see a half-written
/// one; foreign keys enforced; a bounded, reported wait for other connections'
/// locks (see [`busy`]).
pub(crate) fn open(path: &Path) -> Result<Connection> {
    let connection = connect(path, path)?;
    set_wal(&connection, path)?;
    connection
        .execute_batch("PRAGMA synchronous = normal; PRAGMA foreign_keys = on;")
        .map_err(target_error(path))?;
    Ok(connection)
}

/// Prepares (cached) the statement `sql` picks of each target of `spec`, in the
/// targets' order: the upserts or the deletes by key a batch runs per row.
pub(crate) fn prepare_each<'c>(
    connection: &'c Connection,
    spec: &MappingSpec,
    sql: fn(&TargetSpec) -> &'static str,
) -> rusqlite::Result<Vec<rusqlite::CachedStatement<'c>>> {
    spec.targets
        .iter()
        .map(|target| connection.prepare_cached(sql(target)))
        .collect()
}

/// Makes a SQLite error on the target file at `path` an [`Error::Target`] naming it:
/// `.map_err(target_error(path))`.
pub(crate) fn target_error(path: &Path) -> impl Fn(rusqlite::Error) -> Error + Copy + '_ {
    move |source| Error::Target {
        path: path.to_owned(),
        source: Box::new(source),
    }
}

/// Opens `file` (creating it if needed) with the bounded wait for other
/// connections' locks; errors name `path`, the target `file` stands for.
fn connect(path: &Path, file: &Path) -> Result<Connection> {
    let mut connection = Connection::open(file).map_err(target_error(path))?;
    connection
        .busy_handler(Some(busy))
        .map_err(target_error(path))?;
    Ok(connection)
}

/// Puts the file in WAL mode with its WAL's size limit; errors name `path`.
fn set_wal(connection: &Connection, path: &Path) -> Result<()> {
    connection
        .pragma_update(None, "journal_mode", "wal")
        .and_then(|()| connection.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT))
        .map_err(target_error(path))
}

/// A target file that does not exist yet, built under a temporary name beside it
/// and renamed into place whole (fan-out's first run into a file, see
/// `docs/fanout.md`).
///
/// Until the rename nobody can read the file, so its build needs neither WAL nor a
/// journal on disk nor any `fsync` but one: the journal is kept in memory (a
/// failure still rolls back) and `synchronous` is off. [`NewFile::finish`] sets WAL,
/// closes the file, syncs it once and renames it into place; the caller syncs the
/// directory ([`sync_directory`]) before it reports the run done. A run killed
/// before the rename leaves the temporary file, which the next build deletes, and
/// no file at `path`: the old state.
pub(crate) struct NewFile {
    /// The file's own path, named by errors.
    pub(crate) path: std::path::PathBuf,
    /// `.data-sync-new-<file name>` in the same directory.
    temporary: std::path::PathBuf,
}

impl NewFile {
    /// The new file for `path`, which must not exist; deletes a temporary file a
    /// killed run left, and opens a fresh one.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] or [`Error::Target`] naming `path`.
    pub(crate) fn begin(path: &Path) -> Result<(NewFile, Connection)> {
        let mut name = std::ffi::OsString::from(".data-sync-new-");
        name.push(path.file_name().unwrap_or_default());
        let temporary = path.with_file_name(name);
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut file = temporary.as_os_str().to_owned();
            file.push(suffix);
            match std::fs::remove_file(&file) {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(Error::Io {
                        path: file.into(),
                        source,
                    });
                }
            }
        }
        let connection = connect(path, &temporary)?;
        connection
            .execute_batch(
                "PRAGMA journal_mode = memory; PRAGMA synchronous = off; PRAGMA foreign_keys = on;",
            )
            .map_err(target_error(path))?;
        Ok((
            NewFile {
                path: path.to_owned(),
                temporary,
            },
            connection,
        ))
    }

    /// Sets the file's journal to WAL (what [`open`] gives every target), closes
    /// it, syncs it and renames it to its path.
    ///
    /// # Errors
    ///
    /// [`Error::Target`] or [`Error::Io`] naming the file's path; the file is then
    /// not in place.
    pub(crate) fn finish(self, connection: Connection) -> Result<()> {
        set_wal(&connection, &self.path)?;
        connection
            .close()
            .map_err(|(_, source)| target_error(&self.path)(source))?;
        sync_and_rename(&self.temporary, &self.path)
    }
}

/// Syncs the closed file `temporary` to disk and renames it to `path`: a file built
/// aside is put in place whole. The caller syncs the directory
/// ([`sync_directory`]) before it reports the file written.
///
/// # Errors
///
/// [`Error::Io`] naming `temporary` (the sync) or `path` (the rename).
pub(crate) fn sync_and_rename(temporary: &Path, path: &Path) -> Result<()> {
    std::fs::File::open(temporary)
        .and_then(|file| file.sync_all())
        .map_err(|source| Error::Io {
            path: temporary.to_owned(),
            source,
        })?;
    std::fs::rename(temporary, path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })
}

/// Syncs `directory`, so that the files renamed into it stay there after a crash.
///
/// # Errors
///
/// [`Error::Io`] naming the directory.
pub(crate) fn sync_directory(directory: &Path) -> Result<()> {
    let directory = if directory.as_os_str().is_empty() {
        Path::new(".")
    } else {
        directory
    };
    std::fs::File::open(directory)
        .and_then(|file| file.sync_all())
        .map_err(|source| Error::Io {
            path: directory.to_owned(),
            source,
        })
}

/// Opens an existing target file for reading (`status`, `check`, `verify`).
///
/// A run killed in the middle of a transaction leaves a hot journal, which the next
/// connection to the file must roll back before it can read; a connection opened
/// read-only cannot, and fails with `attempt to write a readonly database`. So the
/// file is opened read-write where the user may write it (the rollback restores the
/// contents the killed run started from), with `query_only` so that nothing else is
/// ever written, and read-only where not.
///
/// # Errors
///
/// [`Error::Target`] when the file cannot be opened.
pub(crate) fn open_for_reading(path: &Path) -> Result<Connection> {
    use rusqlite::OpenFlags;

    let flags = OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = match Connection::open_with_flags(
        path,
        flags | OpenFlags::SQLITE_OPEN_READ_WRITE,
    )
    .and_then(|connection| {
        // SQLite opens a file it may not write read-only without saying so.
        if connection.is_readonly(rusqlite::MAIN_DB)? {
            Err(rusqlite::Error::InvalidPath(path.to_owned()))
        } else {
            Ok(connection)
        }
    }) {
        Ok(connection) => connection,
        Err(_) => Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(target_error(path))?,
    };
    connection
        .pragma_update(None, "query_only", true)
        .map_err(target_error(path))?;
    connection
        .busy_timeout(Duration::from_secs(5))
        .map_err(target_error(path))?;
    Ok(connection)
}

/// The target tables of `spec` that the file at `path` does not hold (all of them
/// when there is no file): the next run of the mapping into that file is then a
/// full one, whatever the stored state says.
///
/// # Errors
///
/// [`Error::Target`] when the file cannot be opened or read.
pub fn missing_targets(path: &Path, spec: &MappingSpec) -> Result<Vec<&'static str>> {
    if !path.exists() {
        return Ok(spec.targets.iter().map(|target| target.name).collect());
    }
    let connection = open_for_reading(path)?;
    let mut missing = Vec::new();
    for target in spec.targets {
        let exists = table_exists(&connection, target.name).map_err(target_error(path))?;
        if !exists {
            missing.push(target.name);
        }
    }
    Ok(missing)
}

/// Whether the file has a table named `name`.
pub(crate) fn table_exists(connection: &Connection, name: &str) -> rusqlite::Result<bool> {
    connection
        .query_row(
            "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            [name],
            |_| Ok(()),
        )
        .optional()
        .map(|found| found.is_some())
}

/// Creates every missing target table of `spec`, and checks that the existing ones
/// are what the mapping would create.
pub(crate) fn ensure_tables(
    transaction: &Connection,
    spec: &MappingSpec,
) -> rusqlite::Result<Result<()>> {
    for target in spec.targets {
        let exists = table_exists(transaction, target.name)?;
        if exists {
            let differences = differences(transaction, target)?;
            if !differences.is_empty() {
                return Ok(Err(Error::SchemaMismatch {
                    mapping: spec.name.to_owned(),
                    table: target.name.to_owned(),
                    differences,
                }));
            }
        } else {
            transaction.execute_batch(target.create)?;
        }
    }
    Ok(Ok(()))
}

/// How the existing table `target.name` differs from the mapping, one sentence
/// fragment each; empty when it matches.
pub(crate) fn differences(
    connection: &Connection,
    target: &TargetSpec,
) -> rusqlite::Result<Vec<String>> {
    let mut differences = Vec::new();
    let mut statement = connection.prepare(
        "SELECT name, type, \"notnull\", pk FROM pragma_table_xinfo(?1) WHERE hidden = 0 ORDER BY cid",
    )?;
    let existing: Vec<(String, String, bool, i64)> = statement
        .query_map([target.name], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })?
        .collect::<rusqlite::Result<_>>()?;

    // A lone INTEGER PRIMARY KEY is SQLite's rowid, which can never be NULL, whether
    // or not it was declared NOT NULL.
    let rowid_alias = |sqlite_type: &str, pk: i64| {
        pk == 1
            && sqlite_type.eq_ignore_ascii_case("INTEGER")
            && existing.iter().filter(|(.., pk)| *pk > 0).count() == 1
    };
    for column in target.columns {
        match existing.iter().find(|(name, ..)| name == column.name) {
            None => differences.push(format!("column `{}` is missing", column.name)),
            Some((_, sqlite_type, not_null, pk)) => {
                let not_null = *not_null || rowid_alias(sqlite_type, *pk);
                if !sqlite_type.eq_ignore_ascii_case(column.sqlite_type) {
                    differences.push(format!(
                        "column `{}` is {sqlite_type}, the mapping writes {}",
                        column.name, column.sqlite_type
                    ));
                }
                if not_null != column.not_null {
                    differences.push(format!(
                        "column `{}` is {}, the mapping's is {}",
                        column.name,
                        nullability(not_null),
                        nullability(column.not_null)
                    ));
                }
            }
        }
    }
    for (name, ..) in &existing {
        if !target.columns.iter().any(|column| column.name == name) {
            differences.push(format!("column `{name}` is not in the mapping"));
        }
    }

    let mut existing_key: Vec<(i64, &str)> = existing
        .iter()
        .filter(|(.., pk)| *pk > 0)
        .map(|(name, .., pk)| (*pk, name.as_str()))
        .collect();
    existing_key.sort();
    let existing_key: Vec<&str> = existing_key.into_iter().map(|(_, name)| name).collect();
    let mapping_key: Vec<&str> = target
        .columns
        .iter()
        .filter(|column| column.primary_key)
        .map(|column| column.name)
        .collect();
    let mut sorted_existing = existing_key.clone();
    sorted_existing.sort_unstable();
    let mut sorted_mapping = mapping_key.clone();
    sorted_mapping.sort_unstable();
    if sorted_existing != sorted_mapping {
        differences.push(format!(
            "primary key is ({}), the mapping's is ({})",
            backticked(&existing_key),
            backticked(&mapping_key)
        ));
    }

    let strict: Option<bool> = connection
        .query_row(
            "SELECT strict FROM pragma_table_list(?1)",
            [target.name],
            |row| row.get(0),
        )
        .optional()?;
    match strict {
        Some(false) if target.strict => {
            differences.push("the table is not STRICT, the mapping's is".to_owned());
        }
        Some(true) if !target.strict => differences
            .push("the table is STRICT, the mapping's is not (`strict = false`)".to_owned()),
        _ => {}
    }

    let mut statement = connection
        .prepare("SELECT \"table\", \"from\", \"to\" FROM pragma_foreign_key_list(?1)")?;
    let foreign_keys: Vec<(String, String, Option<String>)> = statement
        .query_map([target.name], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    for column in target.columns {
        if let Some(reference) = &column.references {
            let found = foreign_keys.iter().any(|(table, from, to)| {
                table == reference.table
                    && from == column.name
                    && to.as_deref().is_none_or(|to| to == reference.column)
            });
            if !found {
                differences.push(format!(
                    "foreign key `{}` -> `{}.{}` is missing",
                    column.name, reference.table, reference.column
                ));
            }
        }
    }
    for (table, from, _) in &foreign_keys {
        let declared = target.columns.iter().any(|column| {
            column.name == from
                && column
                    .references
                    .as_ref()
                    .is_some_and(|reference| reference.table == table)
        });
        if !declared {
            differences.push(format!(
                "foreign key `{from}` -> `{table}` is not in the mapping"
            ));
        }
    }
    Ok(differences)
}

/// `NOT NULL` or `nullable`, as messages name a column's nullability.
pub(crate) fn nullability(not_null: bool) -> &'static str {
    if not_null { "NOT NULL" } else { "nullable" }
}

fn backticked(names: &[&str]) -> String {
    names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A run's write transaction on the target: `BEGIN IMMEDIATE` .. `COMMIT` on a
/// connection in autocommit mode, or a savepoint inside the transaction of a group
/// of linked mappings (see `sync::group`), which commits them all at once. Dropped
/// without [`Txn::commit`], it rolls back.
pub(crate) struct Txn<'c> {
    connection: &'c Connection,
    /// Whether this is a savepoint inside an outer transaction.
    nested: bool,
    /// Whether it was committed (or released).
    done: bool,
}

/// The savepoint name of a nested [`Txn`]; SQLite releases the innermost of a name.
const SAVEPOINT: &str = "data_sync_run";

impl<'c> Txn<'c> {
    /// Begins a transaction on `connection`, or a savepoint when one is open.
    pub(crate) fn begin(connection: &'c Connection) -> rusqlite::Result<Txn<'c>> {
        let nested = !connection.is_autocommit();
        if nested {
            connection.execute_batch(&format!("SAVEPOINT {SAVEPOINT}"))?;
        } else {
            connection.execute_batch("BEGIN IMMEDIATE")?;
        }
        Ok(Txn {
            connection,
            nested,
            done: false,
        })
    }

    /// Commits the transaction, or releases the savepoint into the outer one.
    pub(crate) fn commit(mut self) -> rusqlite::Result<()> {
        if self.nested {
            self.connection
                .execute_batch(&format!("RELEASE {SAVEPOINT}"))?;
        } else {
            self.connection.execute_batch("COMMIT")?;
        }
        self.done = true;
        Ok(())
    }
}

impl std::ops::Deref for Txn<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.connection
    }
}

impl Drop for Txn<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // Best effort, as rusqlite's own `Transaction` does: the error that ends
        // the transaction is the one to report.
        if self.nested {
            let _ = self
                .connection
                .execute_batch(&format!("ROLLBACK TO {SAVEPOINT}; RELEASE {SAVEPOINT}"));
        } else if !self.connection.is_autocommit() {
            let _ = self.connection.execute_batch("ROLLBACK");
        }
    }
}

/// The first row of the target file whose foreign key finds no parent, as the name
/// of the mapping of `specs` that holds it (the first for a table of none) and a
/// message; inside the failed transaction.
pub(crate) fn broken_row(
    connection: &Connection,
    specs: &[&MappingSpec],
) -> rusqlite::Result<Option<(String, String)>> {
    let found: Option<(String, i64, String)> = connection
        .query_row(
            "SELECT \"table\", \"rowid\", \"parent\" FROM pragma_foreign_key_check LIMIT 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()?;
    let quote = sync_sql::ident::quote;
    let Some((table, rowid, parent)) = found else {
        return Ok(None);
    };
    let member = specs
        .iter()
        .find(|spec| spec.targets.iter().any(|t| t.name == table));
    let message = match member {
        Some(_) => format!(
            "row {rowid} of {} would reference a row {} does not have, so nothing was committed; the source breaks this foreign key",
            quote(&table),
            quote(&parent)
        ),
        None => format!(
            "row {rowid} of {} would lose its parent row in {}, so nothing was committed; sync the mapping of {} in the same run (`data-sync sync`, or name it with `--mapping` too)",
            quote(&table),
            quote(&parent),
            quote(&table)
        ),
    };
    Ok(Some((member.unwrap_or(&specs[0]).name.to_owned(), message)))
}
