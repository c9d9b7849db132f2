//! The routing index of a fan-out template: which file holds each source key.
//!
//! An incremental fan-out run reads the rows changed since the last run; a changed
//! row carries its new partition value only, so the file it was in comes from
//! here. The index is one SQLite file per mapping beside the template's files,
//! `<directory>/.data-sync-routes-<mapping>.sqlite` (a name no partition file can
//! have: an escaped value never starts with `.`), holding
//!
//! - `routes (key, name)`: the source key (its fields' binary form, each with its
//!   length) and the escaped partition value of a file that may hold it. A key has
//!   one row, or briefly two while it moves: the new file is added before any file
//!   is written and the old one removed after both were, so that a kill at any
//!   instant leaves the index a superset of where the key really is;
//! - `state`: the template, the mapping's fingerprint and filter parameters, the
//!   source identity, and the watermark up to which every file of the template has
//!   every change (the next incremental run reads from it).
//!
//! A full run of every partition deletes the index first and writes a new one
//! beside it (renamed into place at the end, when every partition succeeded), so
//! the index exists only when it is complete. A `--shard I/N` run keeps its own
//! index the same way (`+shard-I-of-N` in its name), over its shard's keys only,
//! and a `--partition VALUE` run over its partition's keys
//! (`+partition-<escaped VALUE>`).
//! A run deletes the indexes of the other selections whose files it writes (see
//! `delete_overlapping`): their next run is a full one.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension};

use crate::error::{Error, Result};
use crate::partition::{self, Selection, Shard, Template};
use crate::source::SourceRow;
use crate::spec::MappingSpec;
use crate::target::target_error;

/// The tables of a routing index.
const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS \"routes\" (
    \"key\" BLOB NOT NULL,
    \"name\" TEXT NOT NULL,
    PRIMARY KEY (\"key\", \"name\")
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS \"state\" (
    \"mapping\" TEXT PRIMARY KEY,
    \"template\" TEXT NOT NULL,
    \"fingerprint\" TEXT NOT NULL,
    \"params\" TEXT,
    \"source\" TEXT NOT NULL,
    \"watermark\" BLOB,
    \"updated_at\" TEXT NOT NULL
);";

/// The index of `routes` by file, for the list of every file routed to.
const NAME_INDEX: &str = "CREATE INDEX IF NOT EXISTS \"routes_name\" ON \"routes\" (\"name\");";

/// The routing index file of `spec` for `template` and the runs of `selection`:
/// `.data-sync-routes-<mapping>.sqlite` for every partition,
/// `.data-sync-routes-<mapping>+shard-I-of-N.sqlite` for shard `I/N`,
/// `.data-sync-routes-<mapping>+partition-<escaped VALUE>.sqlite` for one
/// partition (`+` is escaped in a mapping's name, so no other index has this
/// name). `None` for a `--partition` value not in its text form (see
/// [`canonical`]) or whose index name would be too long for a file name, or a
/// template with placeholders before its last component (no one directory holds
/// its files), whose runs are all full.
pub(crate) fn path(
    template: &Template,
    spec: &MappingSpec,
    selection: &Selection,
) -> Option<PathBuf> {
    let suffix = match selection {
        Selection::All => String::new(),
        Selection::Shard(shard) => format!("+shard-{}-of-{}", shard.index, shard.count),
        Selection::One(value) if canonical(spec, value) => {
            format!("+partition-{}", partition::file_name(value.as_bytes()))
        }
        Selection::One(_) => return None,
    };
    let name = format!("{}{suffix}.sqlite", prefix(spec));
    // NAME_MAX of common file systems.
    if name.len() > 255 {
        return None;
    }
    template.directory().map(|directory| directory.join(name))
}

/// Whether `value` is the text form PostgreSQL prints for the partition column
/// (`42`, not `042` or ` 42`, for an integer; the lowercase hyphenated form of a
/// uuid): the text form an incremental run compares each changed row's value with.
/// Any value of a text column is.
pub(crate) fn canonical(spec: &MappingSpec, value: &str) -> bool {
    let Some(index) = spec.source.partition_by else {
        return false;
    };
    match spec.source.columns[index]
        .pg_type
        .to_ascii_lowercase()
        .as_str()
    {
        "bigint" | "integer" | "smallint" | "int8" | "int4" | "int2" | "int" => value
            .parse::<i64>()
            .is_ok_and(|number| number.to_string() == value),
        "uuid" => {
            value.len() == 36
                && value.bytes().enumerate().all(|(index, byte)| {
                    if [8, 13, 18, 23].contains(&index) {
                        byte == b'-'
                    } else {
                        byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte)
                    }
                })
        }
        _ => true,
    }
}

/// The start of the name of every routing index of `spec`.
fn prefix(spec: &MappingSpec) -> String {
    format!(
        ".data-sync-routes-{}",
        partition::file_name(spec.name.as_bytes())
    )
}

/// Deletes the routing indexes of `spec` beside `template` that a run of
/// `selection` makes wrong, because it writes files they route keys to: every
/// other index for a run of every partition; for one partition, the index of
/// every partition and those of the shards (another partition's index routes keys
/// to its own file only); for shard `I/N`, the index of every partition, those
/// of one partition, and those of shards of another count (shard `J/N` with
/// `J != I` holds other files). An index that does not know a file
/// changed could later fail to delete a row from it, so it must go; the next run
/// of its selection is then full.
///
/// # Errors
///
/// [`Error::Io`] when the directory cannot be listed or an index deleted.
pub(crate) fn delete_overlapping(
    template: &Template,
    spec: &MappingSpec,
    selection: &Selection,
) -> Result<()> {
    let Some(directory) = template.directory() else {
        return Ok(());
    };
    let own = path(template, spec, selection);
    let prefix = prefix(spec);
    let entries = match std::fs::read_dir(&directory) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(Error::Io {
                path: directory,
                source,
            });
        }
    };
    for entry in entries {
        let entry = entry.map_err(|source| Error::Io {
            path: directory.clone(),
            source,
        })?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name
            .strip_prefix(prefix.as_str())
            .and_then(|rest| rest.strip_suffix(".sqlite"))
        else {
            continue;
        };
        let overlaps = match (rest, selection) {
            ("", Selection::All) => false,
            ("", _) => true,
            // One partition's index routes keys to its file only: runs of other
            // partitions write other files; runs of every partition or a shard may
            // write it.
            (one, _) if one.starts_with("+partition-") => !matches!(selection, Selection::One(_)),
            (shard, Selection::Shard(own)) => match shard_of_name(shard) {
                Some(other) => other.count != own.count,
                None => false,
            },
            (shard, _) => shard_of_name(shard).is_some(),
        };
        let path = directory.join(name);
        if overlaps && own.as_deref() != Some(path.as_path()) {
            tracing::info!(
                mapping = spec.name,
                index = %path.display(),
                "this run writes files of another routing index; it is deleted (its next run is full)"
            );
            delete(&path)?;
        }
    }
    Ok(())
}

/// The shard of an index name's suffix `+shard-I-of-N`.
fn shard_of_name(suffix: &str) -> Option<Shard> {
    let (index, count) = suffix.strip_prefix("+shard-")?.split_once("-of-")?;
    Some(Shard {
        index: index.parse().ok()?,
        count: count.parse().ok()?,
    })
}

/// What the index's `state` row holds.
#[derive(Clone, Debug)]
pub(crate) struct Stored {
    pub(crate) template: String,
    pub(crate) fingerprint: String,
    pub(crate) params: Option<String>,
    pub(crate) source: String,
    pub(crate) watermark: Option<Vec<u8>>,
}

/// Deletes the index at `path` (and SQLite's files beside it), if there is one.
///
/// # Errors
///
/// [`Error::Io`] when a file exists and cannot be deleted.
pub(crate) fn delete(path: &Path) -> Result<()> {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let file = PathBuf::from(file);
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(Error::Io { path: file, source }),
        }
    }
    Ok(())
}

/// Opens the index at `path` and reads its state for `spec`; `None` when there is
/// no index, or it holds no state of the mapping.
///
/// # Errors
///
/// [`Error::Target`] when the file exists and cannot be read.
pub(crate) fn open(path: &Path, spec: &MappingSpec) -> Result<Option<(Connection, Stored)>> {
    if !path.exists() {
        return Ok(None);
    }
    let connection = crate::target::open(path)?;
    connection
        .execute_batch(SCHEMA)
        .and_then(|()| connection.execute_batch(NAME_INDEX))
        .map_err(target_error(path))?;
    let stored = connection
        .query_row(
            "SELECT \"template\", \"fingerprint\", \"params\", \"source\", \"watermark\"
             FROM \"state\" WHERE \"mapping\" = ?1",
            [spec.name],
            |row| {
                Ok(Stored {
                    template: row.get(0)?,
                    fingerprint: row.get(1)?,
                    params: row.get(2)?,
                    source: row.get(3)?,
                    watermark: row.get(4)?,
                })
            },
        )
        .optional()
        .map_err(target_error(path))?;
    Ok(stored.map(|stored| (connection, stored)))
}

/// Records `stored` as the state of `spec` (inside the caller's transaction).
pub(crate) fn record(
    connection: &Connection,
    spec: &MappingSpec,
    stored: &Stored,
) -> rusqlite::Result<()> {
    connection.execute(
        "INSERT OR REPLACE INTO \"state\"
         (\"mapping\", \"template\", \"fingerprint\", \"params\", \"source\", \"watermark\", \"updated_at\")
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        rusqlite::params![
            spec.name,
            stored.template,
            stored.fingerprint,
            stored.params,
            stored.source,
            stored.watermark,
            crate::target::state::now(),
        ],
    )?;
    Ok(())
}

/// The routing key of `row`: each key field's length (4 bytes, big-endian) and
/// binary form, in key order.
pub(crate) fn key(spec: &MappingSpec, row: &SourceRow<'_>) -> Vec<u8> {
    let mut key = Vec::with_capacity(12 * spec.source.key.len());
    for &index in spec.source.key {
        push_field(&mut key, row.raw(index));
    }
    key
}

/// Appends one field of a routing key (a key field is never NULL; `u32::MAX` would
/// say it was).
pub(crate) fn push_field(key: &mut Vec<u8>, raw: Option<&[u8]>) {
    match raw {
        Some(raw) => {
            key.extend_from_slice(&u32::try_from(raw.len()).unwrap_or(u32::MAX).to_be_bytes());
            key.extend_from_slice(raw);
        }
        None => key.extend_from_slice(&u32::MAX.to_be_bytes()),
    }
}

/// The files (escaped names) the index says may hold `key`.
pub(crate) fn names_of(connection: &Connection, key: &[u8]) -> rusqlite::Result<Vec<String>> {
    let mut statement =
        connection.prepare_cached("SELECT \"name\" FROM \"routes\" WHERE \"key\" = ?1")?;
    let names = statement
        .query_map([key], |row| row.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(names)
}

/// Adds the file `name` for `key`.
pub(crate) fn add(connection: &Connection, key: &[u8], name: &str) -> rusqlite::Result<()> {
    let mut statement = connection
        .prepare_cached("INSERT OR IGNORE INTO \"routes\" (\"key\", \"name\") VALUES (?1, ?2)")?;
    statement.execute(rusqlite::params![key, name])?;
    Ok(())
}

/// Keeps only the file `name` for `key` (none for `None`: the key left every file).
pub(crate) fn keep_only(
    connection: &Connection,
    key: &[u8],
    name: Option<&str>,
) -> rusqlite::Result<()> {
    let mut statement = connection
        .prepare_cached("DELETE FROM \"routes\" WHERE \"key\" = ?1 AND \"name\" IS NOT ?2")?;
    statement.execute(rusqlite::params![key, name])?;
    Ok(())
}

/// Forgets that `key` is in the file `name` (a key `--prune` deleted from it).
pub(crate) fn remove(connection: &Connection, key: &[u8], name: &str) -> rusqlite::Result<()> {
    let mut statement =
        connection.prepare_cached("DELETE FROM \"routes\" WHERE \"key\" = ?1 AND \"name\" = ?2")?;
    statement.execute(rusqlite::params![key, name])?;
    Ok(())
}

/// The next (at most `limit`) distinct keys after `after`, in byte order (the
/// order of the primary key), for the merge of `--prune`.
pub(crate) fn keys_after(
    connection: &Connection,
    after: &[u8],
    limit: i64,
) -> rusqlite::Result<Vec<Vec<u8>>> {
    let mut statement = connection.prepare_cached(
        "SELECT DISTINCT \"key\" FROM \"routes\" WHERE \"key\" > ?1 ORDER BY \"key\" LIMIT ?2",
    )?;
    statement
        .query_map(rusqlite::params![after, limit], |row| row.get(0))?
        .collect()
}

/// The value of a routing key of one integer field (`smallint`, `integer` or
/// `bigint`, big-endian), `None` for any other key.
pub(crate) fn integer_key(key: &[u8]) -> Option<i64> {
    let (length, raw) = key.split_at_checked(4)?;
    if u32::from_be_bytes(length.try_into().ok()?) as usize != raw.len() {
        return None;
    }
    match raw.len() {
        8 => Some(i64::from_be_bytes(raw.try_into().ok()?)),
        4 => Some(i64::from(i32::from_be_bytes(raw.try_into().ok()?))),
        2 => Some(i64::from(i16::from_be_bytes(raw.try_into().ok()?))),
        _ => None,
    }
}

/// Every file (escaped name) the index routes some key to.
pub(crate) fn names(connection: &Connection) -> rusqlite::Result<Vec<String>> {
    // One seek of the index on names per distinct name, not a scan of every key.
    let mut names = Vec::new();
    let mut statement =
        connection.prepare_cached("SELECT min(\"name\") FROM \"routes\" WHERE \"name\" > ?1")?;
    let mut last = String::new();
    loop {
        let next: Option<String> = statement.query_row([&last], |row| row.get(0))?;
        let Some(next) = next else { break };
        names.push(next.clone());
        last = next;
    }
    Ok(names)
}

/// A new index, written beside the old place by a full run of every partition and
/// renamed into it when the run succeeded for every partition.
pub(crate) struct Builder {
    connection: Connection,
    temporary: PathBuf,
    path: PathBuf,
}

impl Builder {
    /// Deletes the index at `path` (the files are about to change under it) and
    /// begins a new one beside it.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] or [`Error::Target`] when the files cannot be deleted or made.
    pub(crate) fn begin(path: &Path) -> Result<Builder> {
        delete(path)?;
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(".new");
        let temporary = PathBuf::from(temporary);
        delete(&temporary)?;
        crate::target::create_parent(path)?;
        let error = target_error(&temporary);
        let connection = Connection::open(&temporary).map_err(error)?;
        // The file is renamed into place only when complete, so it needs no journal.
        connection
            .execute_batch(
                "PRAGMA journal_mode = off; PRAGMA synchronous = off; PRAGMA cache_size = -65536;",
            )
            .map_err(error)?;
        connection.execute_batch(SCHEMA).map_err(error)?;
        connection.execute_batch("BEGIN").map_err(error)?;
        Ok(Builder {
            connection,
            temporary,
            path: path.to_owned(),
        })
    }

    /// Routes `key` to the file `name`.
    ///
    /// # Errors
    ///
    /// [`Error::Target`] naming the index.
    pub(crate) fn add(&self, key: &[u8], name: &str) -> Result<()> {
        add(&self.connection, key, name).map_err(target_error(&self.temporary))
    }

    /// Records the state, and renames the index into place.
    ///
    /// # Errors
    ///
    /// [`Error::Target`] or [`Error::Io`] naming the index.
    pub(crate) fn finish(self, spec: &MappingSpec, stored: &Stored) -> Result<()> {
        let error = target_error(&self.temporary);
        record(&self.connection, spec, stored).map_err(&error)?;
        // Built once the keys are in, which is cheaper than keeping it up to date.
        self.connection.execute_batch(NAME_INDEX).map_err(&error)?;
        self.connection.execute_batch("COMMIT").map_err(&error)?;
        self.connection
            .execute_batch("PRAGMA journal_mode = delete")
            .map_err(&error)?;
        drop(self.connection);
        crate::target::sync_and_rename(&self.temporary, &self.path)
    }

    /// Deletes the unfinished index.
    pub(crate) fn abandon(self) {
        drop(self.connection);
        let _ = delete(&self.temporary);
    }
}
