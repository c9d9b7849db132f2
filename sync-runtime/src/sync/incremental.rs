//! Incremental sync of a mapping with a cursor, after a first full sync.
//!
//! The reader thread opens one `REPEATABLE READ READ ONLY` snapshot and streams, through
//! a binary portal, the rows after the stored watermark (less the overlap window)
//! ordered by `(cursor, key)`. The writer applies each batch in its own SQLite
//! transaction: upserts (parents first) or, for rows whose soft-delete column is set,
//! deletes (children first), and the watermark of the batch's last row, so that a
//! kill at any instant leaves rows and watermark in agreement. `--prune` then streams
//! every source key of the same snapshot and deletes the target rows whose key is
//! not among them, in one last transaction: an integer key by merging both sides'
//! keys in key order ([`KeyMerge`]), any other through a temporary table of the
//! source keys. See `docs/sync.md`.

use std::ops::Range;
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use rusqlite::{Connection, OptionalExtension};
use tokio_postgres::Statement;
use tokio_postgres::types::Type;

use crate::Mapping;
use crate::error::{Error, Result, bind_error, write_error};
use crate::options::{QUEUE_DEPTH, SyncOptions};
use crate::progress::Progress;
use crate::source::client::{Client, Snapshot};
use crate::source::decode::{check_types, decode_row};
use crate::source::guard::{self, SourceIdentity};
use crate::source::{self, CopyReader, SourceRow};
use crate::spec::{IncrementalSpec, MappingSpec, TargetSpec};
use crate::summary::{ColumnMigration, Summary, TargetSummary};
use crate::sync::key_merge::{self, KeyMerge, MERGE_PAGE, MergeTarget};
use crate::sync::watermark::{self, RawField, RawValue, Watermark};
use crate::target::state::{self, MappingState};
use crate::target::{self, Txn, target_error};

/// What the reader hands the writer.
pub(crate) enum Message<M> {
    /// Changed rows in `(cursor, key)` order, and the watermark the last of them
    /// reaches (`None` when every row lies in the overlap, below the stored one).
    Rows {
        rows: Vec<Change<M>>,
        watermark: Option<Watermark>,
    },
    /// Source keys for `--prune`: field `i` of key `n` is
    /// `buffer[ranges[n * width + i]]`.
    Keys {
        types: Vec<Type>,
        buffer: Vec<u8>,
        ranges: Vec<Option<Range<usize>>>,
    },
}

/// One row read, and whether its soft-delete column marks it deleted.
pub(crate) struct Change<M> {
    pub(crate) row: M,
    pub(crate) deleted: bool,
    /// For a partitioned mapping (fan-out), the row's routing key and its
    /// partition value's text form (`None` for NULL); see `routes`.
    pub(crate) route: Option<(Vec<u8>, Option<Vec<u8>>)>,
}

/// Checks that `params` are the parameters a target's state recorded (`stored`, as
/// [`crate::filter::identity`] spells them): the targets hold the rows of one set of
/// values, and another is never mixed in, nor silently swapped in (`--full` rebuilds
/// them). Capture runs check the same.
///
/// # Errors
///
/// [`Error::ParamsChanged`] naming both.
pub(crate) fn check_params(
    spec: &MappingSpec,
    stored: Option<&str>,
    params: &crate::filter::Params,
) -> Result<()> {
    let given = crate::filter::identity(spec.source.filter.as_ref(), params);
    if stored == given.as_deref() {
        return Ok(());
    }
    Err(Error::ParamsChanged {
        mapping: spec.name.to_owned(),
        stored: crate::filter::spell_identity(stored),
        given: crate::filter::spell_identity(given.as_deref()),
    })
}

/// The previous state of `M` in the target file when this run can be incremental,
/// `None` when it must be full (asked for, no cursor, never synced, a target missing:
/// a missing target is rebuilt by a full run even after the mapping changed), with
/// the columns to migrate first when the mapping only gained nullable columns or
/// lost some since (see `target::model`).
///
/// # Errors
///
/// [`Error::MappingChanged`] when the targets were built by another definition of
/// the mapping that differs otherwise, [`Error::ParamsChanged`] when with other
/// filter parameters: mixing the two is never silent, `--full` rebuilds them.
pub(crate) fn previous<M: Mapping>(
    connection: &Connection,
    path: &Path,
    options: &SyncOptions,
) -> Result<Option<(MappingState, Vec<ColumnMigration>)>> {
    let spec = M::SPEC;
    if options.full {
        return Ok(None);
    }
    let target_error = target_error(path);
    let Some(previous) = state::load(connection, spec.name).map_err(target_error)? else {
        return Ok(None);
    };
    if previous.mode == state::NEVER_SYNCED {
        return Ok(None);
    }
    // The targets hold the rows of one set of parameter values, even for a mapping
    // that always runs in full.
    check_params(spec, previous.params.as_deref(), &options.params)?;
    if spec.source.incremental.is_none() {
        return Ok(None);
    }
    // A missing target is rebuilt by a full run, whatever built the others.
    for target in spec.targets {
        let exists = crate::target::table_exists(connection, target.name).map_err(target_error)?;
        if !exists {
            return Ok(None);
        }
    }
    // Columns added or dropped are migrated in place by this run (see `migrate`).
    let migrations = previous.migration_for(spec)?;
    Ok(Some((previous, migrations)))
}

/// One incremental run from the state `previous`.
pub(crate) fn sync<M: Mapping>(
    client: &mut Client,
    connection: &mut Connection,
    path: &Path,
    options: &SyncOptions,
    previous: &MappingState,
    started_at: &str,
) -> Result<Summary> {
    let spec = M::SPEC;
    let target_error = target_error(path);
    let start = previous.watermark();
    if previous.watermark_raw.is_some() && start.is_none() {
        return Err(Error::Incremental {
            mapping: spec.name.to_owned(),
            message: "the stored watermark is unreadable; rerun with `--full`".to_owned(),
        });
    }
    if let Some(start) = &start
        && guard::is_infinity(
            &Type::from_oid(start.values[0].oid).unwrap_or(Type::UNKNOWN),
            &start.values[0].bytes,
        )
    {
        return Err(Error::Incremental {
            mapping: spec.name.to_owned(),
            message: format!(
                "the stored watermark is infinity (at key {}), so no later change would be read; give that row a finite cursor and rerun with `--full`",
                start.display_key()
            ),
        });
    }
    {
        let transaction = Txn::begin(connection).map_err(target_error)?;
        state::ensure(&transaction).map_err(target_error)?;
        target::ensure_tables(&transaction, spec).map_err(target_error)??;
        transaction.commit().map_err(target_error)?;
    }
    let stored = state::load_source(connection, spec.name).map_err(target_error)?;
    let identity = check_source(client, spec, options, stored.as_deref())?;
    let batch_size = options.batch_size.max(1);
    std::thread::scope(|scope| {
        let (sender, receiver) = sync_channel(QUEUE_DEPTH);
        let reader_start = start.clone();
        let reader =
            scope.spawn(move || read::<M>(client, options, reader_start, batch_size, &sender));
        let mut writer = Writer::<M>::new(connection, path, start, started_at, identity);
        // `previous` checked that this run's parameters are the stored ones.
        writer.params = previous.params.clone();
        let progress = options.observer();
        let written = writer.write(receiver, progress);
        let read = reader.join().unwrap_or_else(|_| {
            Err(Error::ReaderPanicked {
                mapping: spec.name.to_owned(),
            })
        });
        // A reader error explains a writer that stopped early, so it comes first.
        read?;
        written?;
        writer.finish(options.prune, options.allow_empty)
    })
}

/// Reads the source's identity and checks it against the one the targets were
/// built from (`stored`, as JSON), and that the key is unique, before anything is
/// read.
pub(crate) fn check_source(
    client: &mut Client,
    spec: &MappingSpec,
    options: &SyncOptions,
    stored: Option<&str>,
) -> Result<SourceIdentity> {
    let source_error = |source| Error::Source {
        mapping: spec.name.to_owned(),
        table: spec.source.display_name(),
        source,
    };
    let (schema, table) = (spec.source.schema, spec.source.table);
    let identity = crate::source::identity(client, spec).map_err(source_error)?;
    if let Some(stored) = stored.and_then(SourceIdentity::from_json)
        && identity.differs(&stored)
    {
        return Err(identity.other_source_error(spec, &stored));
    }
    // A missing table is left to the row query, whose error names it.
    if !options.assume_unique_key && identity.oid.is_some() {
        let unique: bool = client
            .query_one(
                guard::KEY_IS_UNIQUE,
                &[&schema, &table, &guard::key_columns(spec)],
            )
            .map_err(source_error)?
            .get(0);
        if !unique {
            return Err(guard::key_not_unique(spec));
        }
    }
    Ok(identity)
}

/// The writer: one SQLite transaction per batch, and a last one for `--prune` and
/// the final state.
struct Writer<'a, M> {
    connection: &'a Connection,
    path: &'a Path,
    started_at: &'a str,
    /// The filter parameters the targets hold the rows of.
    params: Option<String>,
    watermark: Option<Watermark>,
    rows_read: u64,
    written: Vec<u64>,
    deleted: Vec<u64>,
    /// Whether this run has committed a batch, and so owns the state row.
    claimed: bool,
    /// The open transaction of `--prune`, once the first keys arrived.
    prune: Option<Txn<'a>>,
    /// `--prune` as a merge of the source's and the parent target's keys, for a
    /// mapping whose key is one integer column (see [`KeyMerge`]); `None` keeps
    /// the temporary table of keys.
    merge: Option<(KeyMerge<i64>, &'static str)>,
    /// The source read, recorded with the final state.
    identity: SourceIdentity,
    _mapping: std::marker::PhantomData<M>,
}

impl<'a, M: Mapping> Writer<'a, M> {
    fn new(
        connection: &'a Connection,
        path: &'a Path,
        watermark: Option<Watermark>,
        started_at: &'a str,
        identity: SourceIdentity,
    ) -> Self {
        let targets = M::SPEC.targets.len();
        Writer {
            connection,
            path,
            started_at,
            params: None,
            watermark,
            rows_read: 0,
            written: vec![0; targets],
            deleted: vec![0; targets],
            claimed: false,
            prune: None,
            merge: merge_key(M::SPEC).map(|column| (KeyMerge::new(), column)),
            identity,
            _mapping: std::marker::PhantomData,
        }
    }

    fn write(&mut self, receiver: Receiver<Message<M>>, progress: &dyn Progress) -> Result<()> {
        for message in receiver {
            match message {
                Message::Rows { rows, watermark } => {
                    self.write_rows(rows, watermark)?;
                    progress.advance(M::SPEC, self.rows_read);
                }
                Message::Keys {
                    types,
                    buffer,
                    ranges,
                } => self.write_keys(&types, &buffer, &ranges)?,
            }
        }
        Ok(())
    }

    /// Applies one batch and its watermark in one transaction.
    fn write_rows(&mut self, rows: Vec<Change<M>>, watermark: Option<Watermark>) -> Result<()> {
        let spec = M::SPEC;
        let transaction = Txn::begin(self.connection).map_err(target_error(self.path))?;
        self.check_claim(&transaction)?;
        let mut upserts = target::prepare_each(&transaction, spec, |target| target.upsert)
            .map_err(target_error(self.path))?;
        let mut deletes = target::prepare_each(&transaction, spec, |target| target.delete_by_key)
            .map_err(target_error(self.path))?;
        let count = rows.len() as u64;
        for Change { row, deleted, .. } in rows {
            let key = || row.key();
            if deleted {
                // Children first, so that foreign keys hold at every statement.
                for (index, statement) in deletes.iter_mut().enumerate().rev() {
                    row.bind_key(statement)
                        .map_err(|error| bind_error(spec, index, &key, error))?;
                    self.deleted[index] += statement
                        .raw_execute()
                        .map_err(|source| write_error(spec, index, &key, source))?
                        as u64;
                }
            } else {
                for (index, statement) in upserts.iter_mut().enumerate() {
                    row.bind(index, statement)
                        .map_err(|error| bind_error(spec, index, &key, error))?;
                    self.written[index] += statement
                        .raw_execute()
                        .map_err(|source| write_error(spec, index, &key, source))?
                        as u64;
                }
            }
        }
        drop((upserts, deletes));
        if watermark.is_some() {
            self.watermark = watermark;
        }
        self.rows_read += count;
        state::record_progress(
            &transaction,
            spec,
            self.params.as_deref(),
            self.watermark.as_ref(),
            self.rows_read,
            self.started_at,
        )
        .map_err(target_error(self.path))?;
        // On SIGINT or SIGTERM the batch in flight is rolled back, not committed.
        crate::sync::signal::check(spec)?;
        transaction.commit().map_err(target_error(self.path))?;
        self.claimed = true;
        Ok(())
    }

    /// Stops when another run committed to this mapping's state since this run's
    /// last batch: two runs interleaving batches could write older values over newer.
    fn check_claim(&self, transaction: &Connection) -> Result<()> {
        if !self.claimed {
            return Ok(());
        }
        let started_at: Option<String> = transaction
            .query_row(
                "SELECT \"started_at\" FROM \"_data_sync_state\" WHERE \"mapping\" = ?1",
                [M::SPEC.name],
                |row| row.get(0),
            )
            .optional()
            .map_err(target_error(self.path))?;
        if started_at.as_deref() != Some(self.started_at) {
            return Err(Error::ConcurrentRun {
                mapping: M::SPEC.name.to_owned(),
            });
        }
        Ok(())
    }

    /// Adds source keys to the temporary table of `--prune`.
    fn write_keys(
        &mut self,
        types: &[Type],
        buffer: &[u8],
        ranges: &[Option<Range<usize>>],
    ) -> Result<()> {
        let spec = M::SPEC;
        if self.merge.is_some() && !types.first().is_some_and(is_integer) {
            // The key column is no longer an integer: the keys go into the table.
            self.merge = None;
        }
        if self.merge.is_some() {
            return self.merge_keys(types, buffer, ranges);
        }
        let incremental = incremental_spec(spec);
        let path = self.path;
        let transaction = self.prune_transaction()?;
        let mut insert = transaction
            .prepare_cached(incremental.prune_keys_insert)
            .map_err(target_error(path))?;
        let width = types.len().max(1);
        for fields in ranges.chunks(width) {
            let row = SourceRow::from_ranges(types, buffer, fields);
            let key = || source::key_text(&row);
            M::bind_key_row(&row, &mut insert).map_err(|error| bind_error(spec, 0, &key, error))?;
            insert
                .raw_execute()
                .map_err(|source| write_error(spec, 0, &key, source))?;
        }
        Ok(())
    }

    /// Merges source keys (in key order) with the parent target's: every target
    /// key below the next source key is missing from the source and is deleted.
    fn merge_keys(
        &mut self,
        types: &[Type],
        buffer: &[u8],
        ranges: &[Option<Range<usize>>],
    ) -> Result<()> {
        let spec = M::SPEC;
        self.prune_transaction()?;
        let transaction = self.prune.as_ref().expect("just begun");
        let (merge, column) = self.merge.as_mut().expect("merging");
        let mut table = TableKeys::new(spec, transaction, column, &mut self.deleted);
        let previous = merge.last_source().copied();
        let width = types.len().max(1);
        let mut keys = Vec::with_capacity(ranges.len() / width);
        for fields in ranges.chunks(width) {
            let key = fields[0]
                .clone()
                .and_then(|range| integer(&types[0], &buffer[range]));
            let Some(key) = key else {
                return Err(Error::Incremental {
                    mapping: spec.name.to_owned(),
                    message: "`--prune` read a NULL or malformed key".to_owned(),
                });
            };
            if !merge.source_in_order(&key) {
                return Err(Error::Incremental {
                    mapping: spec.name.to_owned(),
                    message: format!(
                        "`--prune` read the source's keys out of order (key {key}); rerun"
                    ),
                });
            }
            keys.push(key);
        }
        // Few gaps: each gap's target rows are deleted by range, and the target's
        // keys up to the batch's last are never read.
        if let Some(gaps) = table
            .range_deletes
            .is_some()
            .then(|| key_merge::dense(previous, &keys))
            .flatten()
        {
            for (after, before) in gaps {
                merge.pruned += table
                    .missing_range(after, before)
                    .map_err(target_error(self.path))?;
            }
            if let Some(last) = keys.last() {
                merge.skip_to(last);
            }
            return Ok(());
        }
        for key in keys {
            merge
                .advance(&mut table, Some(&key))
                .map_err(target_error(self.path))?;
        }
        Ok(())
    }

    /// The transaction of `--prune`, begun (with an empty key table, unless the keys
    /// are merged) on first use.
    fn prune_transaction(&mut self) -> Result<&Txn<'a>> {
        if self.prune.is_none() {
            let incremental = incremental_spec(M::SPEC);
            let transaction = Txn::begin(self.connection).map_err(target_error(self.path))?;
            if self.merge.is_none() {
                transaction
                    .execute_batch(&format!(
                        "{}; {}",
                        incremental.prune_keys_drop, incremental.prune_keys_create
                    ))
                    .map_err(target_error(self.path))?;
            }
            self.prune = Some(transaction);
        }
        Ok(self.prune.as_ref().expect("just begun"))
    }

    /// Prunes (children first) if asked, and records the finished run, in one
    /// transaction.
    fn finish(mut self, prune: bool, allow_empty: bool) -> Result<Summary> {
        let spec = M::SPEC;
        let incremental = incremental_spec(spec);
        if prune {
            self.prune_transaction()?;
        }
        let transaction = match self.prune.take() {
            Some(transaction) => transaction,
            None => Txn::begin(self.connection).map_err(target_error(self.path))?,
        };
        self.check_claim(&transaction)?;
        if prune {
            let mut pruned = 0;
            if let Some((merge, column)) = &mut self.merge {
                // The target keys after the source's last key are missing too.
                let mut table = TableKeys::new(spec, &transaction, column, &mut self.deleted);
                merge
                    .advance(&mut table, None)
                    .map_err(target_error(self.path))?;
                pruned = merge.pruned;
            } else {
                for (index, statement) in incremental.prune.iter().enumerate().rev() {
                    let deleted = transaction
                        .execute(statement, [])
                        .map_err(target_error(self.path))? as u64;
                    self.deleted[index] += deleted;
                    pruned += deleted;
                }
            }
            // A source that came back empty (truncated, or the wrong one) is no
            // reason to empty the targets; the transaction rolls back on return.
            if pruned > 0 && !allow_empty {
                let parent = sync_sql::ident::quote(spec.targets[0].name);
                let left: bool = transaction
                    .query_row(
                        &format!("SELECT EXISTS (SELECT 1 FROM {parent})"),
                        [],
                        |row| row.get(0),
                    )
                    .map_err(target_error(self.path))?;
                if !left {
                    return Err(Error::WouldEmpty {
                        mapping: spec.name.to_owned(),
                        table: spec.source.display_name(),
                        run: "`--prune`",
                    });
                }
            }
            if self.merge.is_none() {
                transaction
                    .execute_batch(incremental.prune_keys_drop)
                    .map_err(target_error(self.path))?;
            }
        }
        let watermark = self.watermark.as_ref();
        state::record_finished(
            &transaction,
            &MappingState::of_run(
                spec,
                self.params.clone(),
                "incremental",
                watermark,
                self.rows_read,
                self.started_at,
                true,
            ),
            &self.identity.to_json(),
        )
        .map_err(target_error(self.path))?;
        transaction.commit().map_err(target_error(self.path))?;
        Ok(Summary {
            mapping: spec.name.to_owned(),
            mode: "incremental".to_owned(),
            rows_read: self.rows_read,
            targets: spec
                .targets
                .iter()
                .enumerate()
                .map(|(index, target)| TargetSummary {
                    table: target.name.to_owned(),
                    rows: self.written[index],
                    deleted: self.deleted[index],
                })
                .collect(),
            seconds: 0.0,
            migrated: Vec::new(),
        })
    }
}

/// The parent target's key column when `--prune` can merge: the mapping's key is
/// one source column, and the parent's one primary-key column, fed by it, is an
/// INTEGER. PostgreSQL's order of integers is SQLite's, so both sides can be read
/// in key order (PostgreSQL along the key's unique index, SQLite along its rowid or
/// primary key) and compared as two sorted streams.
fn merge_key(spec: &MappingSpec) -> Option<&'static str> {
    integer_key(spec, spec.targets.first()?)
}

/// `target`'s key column when it is its one primary-key column, an INTEGER fed by
/// the mapping's one key column: SQLite then orders and compares its values as
/// PostgreSQL does the source's integers.
fn integer_key(spec: &MappingSpec, target: &TargetSpec) -> Option<&'static str> {
    let [key] = spec.source.key else {
        return None;
    };
    let mut primary = target.columns.iter().filter(|column| column.primary_key);
    let column = primary.next()?;
    (primary.next().is_none() && column.sqlite_type == "INTEGER" && column.field == Some(*key))
        .then_some(column.name)
}

/// The key column of a partitioned mapping whose `--prune` merges the source's keys
/// with the routing index's (see `fanout_changes`): the key is one integer column.
pub(crate) fn routing_merge_key(spec: &MappingSpec) -> Option<&'static str> {
    let [key] = spec.source.key else {
        return None;
    };
    let column = &spec.source.columns[*key];
    [
        "bigint", "integer", "smallint", "int8", "int4", "int2", "int",
    ]
    .contains(&column.pg_type.to_ascii_lowercase().as_str())
    .then_some(column.name)
}

pub(crate) fn is_integer(ty: &Type) -> bool {
    [Type::INT2, Type::INT4, Type::INT8].contains(ty)
}

/// An integer key from its binary form.
fn integer(ty: &Type, raw: &[u8]) -> Option<i64> {
    match *ty {
        Type::INT8 => Some(i64::from_be_bytes(raw.try_into().ok()?)),
        Type::INT4 => Some(i64::from(i32::from_be_bytes(raw.try_into().ok()?))),
        Type::INT2 => Some(i64::from(i16::from_be_bytes(raw.try_into().ok()?))),
        _ => None,
    }
}

/// The parent target's keys, for [`KeyMerge`]: read in key order in pages, and a
/// key the source does not have deleted from every target, children first.
struct TableKeys<'t> {
    spec: &'static MappingSpec,
    transaction: &'t Connection,
    /// The first page, and the page after `?1`.
    first_page: String,
    next_page: String,
    /// Per target (in the targets' order), the deletes of the keys in a gap of the
    /// source's keys: after `?1` and before `?2`, and before `?1`; `None` unless
    /// every target's key is one INTEGER column fed by the mapping's key.
    range_deletes: Option<Vec<(String, String)>>,
    deleted: &'t mut [u64],
}

impl<'t> TableKeys<'t> {
    fn new(
        spec: &'static MappingSpec,
        transaction: &'t Connection,
        column: &str,
        deleted: &'t mut [u64],
    ) -> TableKeys<'t> {
        let column = sync_sql::ident::quote(column);
        let parent = sync_sql::ident::quote(spec.targets[0].name);
        TableKeys {
            spec,
            transaction,
            first_page: format!(
                "SELECT {column} FROM {parent} ORDER BY {column} LIMIT {MERGE_PAGE}"
            ),
            next_page: format!(
                "SELECT {column} FROM {parent} WHERE {column} > ?1 ORDER BY {column} LIMIT {MERGE_PAGE}"
            ),
            range_deletes: range_deletes(spec),
            deleted,
        }
    }

    /// Deletes from every target (children first) the rows whose key lies after
    /// `after` (with no lower bound for `None`) and before `before`: keys the
    /// source does not have. Returns the parent's rows deleted.
    fn missing_range(&mut self, after: Option<i64>, before: i64) -> rusqlite::Result<u64> {
        let deletes = self.range_deletes.as_ref().expect("range deletes");
        let mut parent = 0;
        for (index, (between, below)) in deletes.iter().enumerate().rev() {
            let deleted = match after {
                Some(after) => self
                    .transaction
                    .prepare_cached(between)?
                    .execute([after, before])?,
                None => self.transaction.prepare_cached(below)?.execute([before])?,
            } as u64;
            self.deleted[index] += deleted;
            if index == 0 {
                parent = deleted;
            }
        }
        Ok(parent)
    }
}

/// The range deletes of [`TableKeys`]: every target's key must be its
/// [`integer_key`].
fn range_deletes(spec: &MappingSpec) -> Option<Vec<(String, String)>> {
    spec.targets
        .iter()
        .map(|target| {
            let (table, column) = (
                sync_sql::ident::quote(target.name),
                sync_sql::ident::quote(integer_key(spec, target)?),
            );
            Some((
                format!("DELETE FROM {table} WHERE {column} > ?1 AND {column} < ?2"),
                format!("DELETE FROM {table} WHERE {column} < ?1"),
            ))
        })
        .collect()
}

impl MergeTarget for TableKeys<'_> {
    type Key = i64;

    fn page(&mut self, after: Option<&i64>) -> rusqlite::Result<Vec<i64>> {
        match after {
            None => {
                let mut statement = self.transaction.prepare_cached(&self.first_page)?;
                statement.query_map([], |row| row.get(0))?.collect()
            }
            Some(last) => {
                let mut statement = self.transaction.prepare_cached(&self.next_page)?;
                statement.query_map([last], |row| row.get(0))?.collect()
            }
        }
    }

    fn missing(&mut self, key: i64) -> rusqlite::Result<()> {
        // Children first, so that foreign keys hold at every statement.
        for (index, target_spec) in self.spec.targets.iter().enumerate().rev() {
            let mut statement = self.transaction.prepare_cached(target_spec.delete_by_key)?;
            statement.raw_bind_parameter(1, key)?;
            self.deleted[index] += statement.raw_execute()? as u64;
        }
        Ok(())
    }
}

fn incremental_spec(spec: &MappingSpec) -> &IncrementalSpec {
    spec.source
        .incremental
        .as_ref()
        .expect("incremental runs are only planned for mappings with a cursor")
}

/// The reader thread: one snapshot; the changed rows in batches, then (for
/// `--prune`) every key.
pub(crate) fn read<M: Mapping>(
    client: &mut Client,
    options: &SyncOptions,
    start: Option<Watermark>,
    batch_size: usize,
    sender: &SyncSender<Message<M>>,
) -> Result<()> {
    let spec = M::SPEC;
    let source_error = |source| Error::Source {
        mapping: spec.name.to_owned(),
        table: spec.source.display_name(),
        source,
    };
    let filter = options.filter_settings(spec)?;
    let mut transaction = client.snapshot(&filter).map_err(source_error)?;
    // The row query would skip NULL cursors silently, so they are looked for first.
    if let Some(error) = null_cursor(spec, &mut transaction)? {
        return Err(error);
    }

    let (statement, parameters, has_beyond) = plan(spec, &mut transaction, options, start)?;
    let types: Vec<Type> = source::column_types(statement.columns());
    let fields = spec.source.columns.len();
    check_types::<M>(&types[..fields])?;
    let watermark_fields = fields..fields + 1 + spec.source.key.len();
    // With a filter, whether the row matches it follows the watermark: a row that
    // stopped matching leaves the targets as a deleted row does.
    let matches_field = spec.source.filter.is_some().then_some(watermark_fields.end);

    let mut rows = transaction
        .query_raw(&statement, parameters.iter())
        .map_err(source_error)?;
    let mut batch = Vec::with_capacity(batch_size.min(1024));
    let mut batch_bytes = 0;
    let mut batch_watermark = None;
    let mut warned = false;
    while let Some(row) = rows.next().map_err(source_error)? {
        let values = (0..row.len())
            .map(|index| row.try_get::<_, RawField<'_>>(index).map(|field| field.0))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(source_error)?;
        batch_bytes += values
            .iter()
            .flatten()
            .map(|value| value.len())
            .sum::<usize>();
        let source_row = SourceRow::from_slices(&types, &values);
        let decoded = decode_row::<M>(&source_row)?;
        let left_filter = matches_field.is_some_and(|index| values[index] != Some(&[1u8][..]));
        let deleted = left_filter
            || spec
                .source
                .soft_delete
                .is_some_and(|index| values[index].is_some());
        // Rows of the overlap (at or below the stored watermark) are applied again,
        // but never move the watermark back.
        let beyond = !has_beyond || values.last().copied().flatten() == Some(&[1u8][..]);
        if beyond {
            batch_watermark = Watermark::from_fields(
                &types[watermark_fields.clone()],
                &values[watermark_fields.clone()],
            );
            if let Some(watermark) = &batch_watermark {
                guard::check_cursor(
                    spec,
                    &types[fields],
                    values[fields].unwrap_or_default(),
                    &watermark.display_cursor(),
                    &|| crate::source::row_key(spec, &source_row),
                    &mut warned,
                )?;
            }
        }
        let route = spec.source.partition_by.map(|index| {
            let value = values[index].map(|raw| {
                crate::partition::text_form(&types[index], raw).unwrap_or_else(|| raw.to_vec())
            });
            (super::routes::key(spec, &source_row), value)
        });
        batch.push(Change {
            row: decoded,
            deleted,
            route,
        });
        // As a full sync's batches: at most `batch_size` rows or about
        // `BATCH_BYTES` of row data (see `batch`).
        if batch.len() == batch_size || batch_bytes >= super::batch::BATCH_BYTES {
            batch_bytes = 0;
            let message = Message::Rows {
                rows: std::mem::replace(&mut batch, Vec::with_capacity(batch_size.min(1024))),
                watermark: batch_watermark.take(),
            };
            if sender.send(message).is_err() {
                // The writer stopped; its error is the one to report.
                return Ok(());
            }
        }
    }
    drop(rows);
    if !batch.is_empty() {
        let message = Message::Rows {
            rows: batch,
            watermark: batch_watermark.take(),
        };
        if sender.send(message).is_err() {
            return Ok(());
        }
    }
    if options.prune {
        let order = if spec.source.partition_by.is_some() {
            routing_merge_key(spec).map_or(KeyOrder::Any, KeyOrder::Routing)
        } else {
            merge_key(spec).map_or(KeyOrder::Any, KeyOrder::Key)
        };
        read_keys(spec, &mut transaction, batch_size, sender, order)?;
    }
    transaction.commit().map_err(source_error)?;
    Ok(())
}

/// The order `--prune` reads the source's keys in.
enum KeyOrder {
    /// Any order (the keys go into a temporary table).
    Any,
    /// The order of the key column, for a merge with the parent target's keys.
    Key(&'static str),
    /// The order of the routing index's keys (a fan-out's, see `routes::key`) for
    /// an integer key column: its binary form is big-endian two's complement, whose
    /// byte order puts the keys `>= 0` in order, then the negative ones in order.
    Routing(&'static str),
}

/// Streams every source key of the snapshot with binary COPY, in batches; in the
/// order of `order` (along the key's unique index) when the writer merges them.
fn read_keys<M>(
    spec: &MappingSpec,
    transaction: &mut Snapshot<'_>,
    batch_size: usize,
    sender: &SyncSender<Message<M>>,
    order: KeyOrder,
) -> Result<()> {
    let incremental = incremental_spec(spec);
    let source_error = |source| Error::Source {
        mapping: spec.name.to_owned(),
        table: spec.source.display_name(),
        source,
    };
    let stream_error = |source| Error::SourceStream {
        mapping: spec.name.to_owned(),
        table: spec.source.display_name(),
        source,
    };
    let statement = transaction
        .prepare(incremental.select_keys)
        .map_err(source_error)?;
    let types: Vec<Type> = source::column_types(statement.columns());
    if !matches!(order, KeyOrder::Any) {
        // An index scan, which streams, rather than a sort of every key first.
        transaction
            .batch_execute("SET LOCAL enable_sort = off")
            .map_err(source_error)?;
    }
    let copy = match order {
        KeyOrder::Key(key) => source::copy_out_sql(&format!(
            "{} ORDER BY {}",
            incremental.select_keys,
            sync_sql::ident::quote(key)
        )),
        KeyOrder::Routing(key) => {
            // Appended in this order; the writer checks the order it receives.
            let (keys, key) = (incremental.select_keys, sync_sql::ident::quote(key));
            source::copy_out_sql(&format!(
                "(SELECT * FROM ({keys}) AS \"k\" WHERE {key} >= 0 ORDER BY {key}) \
                 UNION ALL (SELECT * FROM ({keys}) AS \"k\" WHERE {key} < 0 ORDER BY {key})"
            ))
        }
        KeyOrder::Any => source::copy_out_sql(incremental.select_keys),
    };
    let stream = transaction.copy_out(copy.as_str()).map_err(source_error)?;
    let mut reader = CopyReader::new(stream, types.clone()).map_err(stream_error)?;
    let mut buffer = Vec::new();
    let mut ranges = Vec::new();
    let mut count = 0;
    loop {
        let row = reader.next_row().map_err(stream_error)?;
        let Some(row) = row else { break };
        for index in 0..row.len() {
            ranges.push(row.raw(index).map(|raw| {
                let start = buffer.len();
                buffer.extend_from_slice(raw);
                start..buffer.len()
            }));
        }
        count += 1;
        if count == batch_size || buffer.len() >= super::batch::BATCH_BYTES {
            count = 0;
            let message = Message::Keys {
                types: types.clone(),
                buffer: std::mem::take(&mut buffer),
                ranges: std::mem::take(&mut ranges),
            };
            if sender.send(message).is_err() {
                return Ok(());
            }
        }
    }
    if count > 0 {
        let _ = sender.send(Message::Keys {
            types,
            buffer,
            ranges,
        });
    }
    Ok(())
}

/// The row query of this run and its parameters: every row (no watermark yet), the
/// rows after the watermark (no overlap), or the rows from the watermark's cursor
/// less the overlap, with a last column telling which lie after the watermark.
fn plan(
    spec: &MappingSpec,
    transaction: &mut Snapshot<'_>,
    options: &SyncOptions,
    start: Option<Watermark>,
) -> Result<(Statement, Vec<RawValue>, bool)> {
    let incremental = incremental_spec(spec);
    let source_error = |source| Error::Source {
        mapping: spec.name.to_owned(),
        table: spec.source.display_name(),
        source,
    };
    let Some(start) = start else {
        let statement = transaction
            .prepare(incremental.select_all)
            .map_err(source_error)?;
        return Ok((statement, Vec::new(), false));
    };
    let cursor_column = spec
        .source
        .cursor
        .map_or("", |index| spec.source.columns[index].name);
    let from = transaction
        .prepare(incremental.select_from)
        .map_err(source_error)?;
    check_parameters(spec, &from.params()[1..], &start)?;
    let cursor_type = from.params()[0].clone();
    let lowered = watermark::lower_bound(
        options.overlap,
        cursor_column,
        &cursor_type,
        &start.values[0],
    )
    .map_err(|message| Error::Incremental {
        mapping: spec.name.to_owned(),
        message,
    })?;
    match lowered {
        Some(lower) => {
            let mut parameters = vec![lower];
            parameters.extend(start.values);
            Ok((from, parameters, true))
        }
        None => {
            let after = transaction
                .prepare(incremental.select_after)
                .map_err(source_error)?;
            Ok((after, start.values, false))
        }
    }
}

/// Checks that the stored watermark's values have the types the columns have now.
fn check_parameters(spec: &MappingSpec, types: &[Type], start: &Watermark) -> Result<()> {
    let matches = types.len() == start.values.len()
        && types
            .iter()
            .zip(&start.values)
            .all(|(ty, value)| ty.oid() == value.oid);
    if matches {
        return Ok(());
    }
    Err(Error::Incremental {
        mapping: spec.name.to_owned(),
        message: "the cursor or key columns changed type since the watermark was stored; rerun with `--full`"
            .to_owned(),
    })
}

/// The error naming a source row whose cursor is NULL, if there is one in the
/// snapshot: the row query skips such rows silently (no comparison holds for NULL),
/// and a full sync's watermark query cannot place them.
pub(crate) fn null_cursor(
    spec: &MappingSpec,
    transaction: &mut Snapshot<'_>,
) -> Result<Option<Error>> {
    let row = transaction
        .query_opt(incremental_spec(spec).null_cursor, &[])
        .map_err(|source| Error::Source {
            mapping: spec.name.to_owned(),
            table: spec.source.display_name(),
            source,
        })?;
    let Some(row) = row else {
        return Ok(None);
    };
    let key = (0..row.len())
        .map(|index| {
            row.try_get::<_, Option<String>>(index)
                .ok()
                .flatten()
                .unwrap_or_else(|| "NULL".to_owned())
        })
        .collect::<Vec<_>>()
        .join(", ");
    Ok(Some(Error::NullCursor {
        mapping: spec.name.to_owned(),
        table: spec.source.display_name(),
        column: spec
            .source
            .cursor
            .map_or("", |index| spec.source.columns[index].name)
            .to_owned(),
        key,
    }))
}
