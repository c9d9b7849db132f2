//! Incremental fan-out: the rows changed since the last run of every partition,
//! each routed to its partition's file.
//!
//! The reader is the incremental sync's (`incremental::read`): one snapshot, the
//! rows after the watermark of the routing index (see `routes`) in `(cursor, key)`
//! order, each with its routing key and partition value. Each batch is applied in
//! three steps:
//!
//! 1. the routing index learns each changed key's new file (added beside the old
//!    one), and commits;
//! 2. the batch's changes are grouped by file, and each file touched gets its own
//!    transaction, one file open at a time: upserts into the row's partition's file,
//!    deletes (soft deletes, rows that left the filter, and rows whose partition
//!    changed) from every other file the index names for the key, and the file's
//!    `_data_sync_state` with the batch's watermark, committed together;
//! 3. the index forgets the files a key left and, when every file of the run so far
//!    succeeded, records the batch's watermark, and commits.
//!
//! With `--prune` (a key of one integer column), the reader then streams every
//! source key of the same snapshot in the index's key order; the writer merges
//! them with the index's keys ([`KeyMerge`]), and deletes each key the source no
//! longer has from the files the index names, one transaction per file with its
//! state, then from the index.
//!
//! A kill at any instant leaves each file old or new, and the index a superset of
//! where each key is, with a watermark no file is behind of: the next run reads
//! those changes again and converges. A file that fails is left as it was (and
//! skipped for the rest of the run); the index's watermark then stays where it
//! was, so the next run reads the same changes again for it.

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, sync_channel};

use rusqlite::Connection;
use tokio_postgres::types::Type;

use crate::Mapping;
use crate::error::{Error, Result, bind_error, write_error};
use crate::options::{QUEUE_DEPTH, SyncOptions};
use crate::partition::{self, Template};
use crate::source::client::Client;
use crate::source::guard::SourceIdentity;
use crate::sync::fanout::{FanoutSummary, PartitionOutcome};
use crate::sync::incremental::{self, Change, Message};
use crate::sync::key_merge::{KeyMerge, MERGE_PAGE, MergeTarget};
use crate::sync::routes::{self, Stored};
use crate::sync::signal;
use crate::sync::watermark::Watermark;
use crate::target::state::{self, MappingState};
use crate::target::{self, Txn, target_error};

/// The routing index and its state when this run of `template` can be incremental,
/// `None` when it must be full: asked for (`--full`, or `--prune` of a mapping
/// whose key is not one integer column), a mapping without a cursor, a
/// `--partition` value not in its text form (`042` for `42`), no index of this selection (never run, or the last
/// full run did not finish or had a failed partition, or a run of another
/// selection rewrote its files), another template, definition or set of filter
/// parameters, or a file the index routes keys to is missing.
///
/// # Errors
///
/// [`Error::Target`] when the index exists and cannot be read.
pub(crate) fn plan<M: Mapping>(
    template: &Template,
    options: &SyncOptions,
) -> Result<Option<(Connection, Stored, PathBuf)>> {
    let spec = M::SPEC;
    // `--prune` merges the source's keys with the index's, for an integer key.
    if options.full
        || (options.prune && incremental::routing_merge_key(spec).is_none())
        || spec.source.incremental.is_none()
    {
        return Ok(None);
    }
    let Some(path) = routes::path(template, spec, &options.selection) else {
        return Ok(None);
    };
    let Some((connection, stored)) = routes::open(&path, spec)? else {
        return Ok(None);
    };
    let why = if stored.template != template.to_string() {
        Some("the routing index was written for another template".to_owned())
    } else if stored.fingerprint != spec.fingerprint {
        Some("the mapping changed since the last full run".to_owned())
    } else if stored.params != crate::filter::identity(spec.source.filter.as_ref(), &options.params)
    {
        Some("the filter parameters changed since the last full run".to_owned())
    } else {
        let names = routes::names(&connection).map_err(target_error(&path))?;
        names
            .iter()
            .map(|name| template.path_of_name(name))
            .find(|file| !file.exists())
            .map(|file| format!("the file {} is missing", file.display()))
    };
    if let Some(why) = why {
        tracing::info!(mapping = spec.name, reason = %why, "fan-out runs in full");
        return Ok(None);
    }
    // This run writes files other indexes may route keys to.
    routes::delete_overlapping(template, spec, &options.selection)?;
    Ok(Some((connection, stored, path)))
}

/// One incremental pass over the changes since the index's watermark.
pub(crate) fn pass<M: Mapping>(
    client: &mut Client,
    template: &Template,
    options: &SyncOptions,
    (connection, stored, routes_path): (Connection, Stored, PathBuf),
    started_at: &str,
) -> Result<FanoutSummary> {
    let spec = M::SPEC;
    let identity = incremental::check_source(client, spec, options, Some(&stored.source))?;
    let start = match &stored.watermark {
        Some(blob) => Some(
            Watermark::from_blob(blob).ok_or_else(|| Error::Incremental {
                mapping: spec.name.to_owned(),
                message: format!(
                    "the watermark of the routing index {} is unreadable; rerun with `--full`",
                    routes_path.display()
                ),
            })?,
        ),
        None => None,
    };
    let batch_size = options.batch_size.max(1);
    std::thread::scope(|scope| {
        let (sender, receiver) = sync_channel(QUEUE_DEPTH);
        let reader_start = start.clone();
        let reader = scope.spawn(move || {
            incremental::read::<M>(client, options, reader_start, batch_size, &sender)
        });
        let mut writer = Writer::<M> {
            template,
            routes: &connection,
            routes_path: &routes_path,
            options,
            stored,
            watermark: start,
            identity,
            started_at,
            rows_read: 0,
            failed: HashSet::new(),
            outcomes: BTreeMap::new(),
            prune: options.prune.then(Prune::default),
            _mapping: std::marker::PhantomData,
        };
        let written = writer.write(receiver);
        let read = reader.join().unwrap_or_else(|_| {
            Err(Error::ReaderPanicked {
                mapping: spec.name.to_owned(),
            })
        });
        // A reader error explains a writer that stopped early, so it comes first.
        read?;
        written?;
        writer.prune()?;
        Ok(writer.finish())
    })
}

/// The state of `--prune` during a run.
#[derive(Default)]
struct Prune {
    merge: KeyMerge<Vec<u8>>,
    /// The index's keys the source does not have.
    missing: Vec<Vec<u8>>,
    /// The length of the source's routing keys.
    width: Option<usize>,
}

/// The routing index's keys, for [`KeyMerge`]: read in byte order in pages, and a
/// key the source does not have collected.
struct IndexKeys<'a> {
    connection: &'a Connection,
    missing: &'a mut Vec<Vec<u8>>,
}

impl MergeTarget for IndexKeys<'_> {
    type Key = Vec<u8>;

    fn page(&mut self, after: Option<&Vec<u8>>) -> rusqlite::Result<Vec<Vec<u8>>> {
        routes::keys_after(
            self.connection,
            after.map_or(&[][..], Vec::as_slice),
            MERGE_PAGE,
        )
    }

    fn missing(&mut self, key: Vec<u8>) -> rusqlite::Result<()> {
        self.missing.push(key);
        Ok(())
    }
}

/// One change's effect on one file: upsert or delete change `index` of the batch.
#[derive(Clone, Copy)]
struct Operation {
    index: usize,
    upsert: bool,
}

struct Writer<'a, M> {
    template: &'a Template,
    routes: &'a Connection,
    routes_path: &'a Path,
    options: &'a SyncOptions,
    stored: Stored,
    /// The index's watermark: every file has every change up to it.
    watermark: Option<Watermark>,
    identity: SourceIdentity,
    started_at: &'a str,
    rows_read: u64,
    /// The files that failed in this run (skipped for the rest of it).
    failed: HashSet<String>,
    /// Every file touched, by escaped name, and how it fared.
    outcomes: BTreeMap<String, PartitionOutcome>,
    /// `--prune`: the merge of the source's keys with the index's.
    prune: Option<Prune>,
    _mapping: std::marker::PhantomData<M>,
}

impl<M: Mapping> Writer<'_, M> {
    /// Whether the partition whose text form is `value` is one this run writes.
    fn owns(&self, value: &[u8]) -> bool {
        match &self.options.selection {
            partition::Selection::Shard(shard) => shard.holds(value),
            partition::Selection::One(own) => own.as_bytes() == value,
            partition::Selection::All => true,
        }
    }

    fn write(&mut self, receiver: Receiver<Message<M>>) -> Result<()> {
        let progress = self.options.observer();
        for message in receiver {
            match message {
                Message::Rows { rows, watermark } => {
                    self.write_rows(&rows, watermark)?;
                    progress.advance(M::SPEC, self.rows_read);
                }
                Message::Keys {
                    types,
                    buffer,
                    ranges,
                } => self.merge_keys(&types, &buffer, &ranges)?,
            }
        }
        Ok(())
    }

    /// `--prune`: merges source keys (in the index's order, see
    /// `incremental::read`) with the index's; the index's keys the source skipped
    /// are collected, to be deleted by [`Writer::prune`].
    fn merge_keys(
        &mut self,
        types: &[Type],
        buffer: &[u8],
        ranges: &[Option<Range<usize>>],
    ) -> Result<()> {
        let spec = M::SPEC;
        let incremental_error = |message: &str| Error::Incremental {
            mapping: spec.name.to_owned(),
            message: message.to_owned(),
        };
        if types.len() != 1 || !incremental::is_integer(&types[0]) {
            return Err(incremental_error(
                "`--prune` over a template merges integer keys, and the key column is no longer one; rerun with `--full`",
            ));
        }
        let routes_error = target_error(self.routes_path);
        let prune = self.prune.as_mut().expect("`--prune` asked for");
        let mut index = IndexKeys {
            connection: self.routes,
            missing: &mut prune.missing,
        };
        for range in ranges {
            let Some(range) = range.clone() else {
                return Err(incremental_error("`--prune` read a NULL key"));
            };
            let mut key = Vec::with_capacity(4 + range.len());
            routes::push_field(&mut key, Some(&buffer[range]));
            prune.width = Some(key.len());
            if !prune.merge.source_in_order(&key) {
                return Err(incremental_error(
                    "`--prune` read the source's keys out of order; rerun",
                ));
            }
            prune
                .merge
                .advance(&mut index, Some(&key))
                .map_err(routes_error)?;
        }
        Ok(())
    }

    /// `--prune`: deletes every key of the index the source no longer has from the
    /// files the index names for it, each file in one transaction with its
    /// `_data_sync_state`, and then from the index. A file that fails is left as it
    /// was (its keys stay in the index, for the next `--prune`).
    fn prune(&mut self) -> Result<()> {
        let spec = M::SPEC;
        let Some(mut prune) = self.prune.take() else {
            return Ok(());
        };
        let routes_error = target_error(self.routes_path);
        // The index's keys after the source's last key are missing too.
        let mut index = IndexKeys {
            connection: self.routes,
            missing: &mut prune.missing,
        };
        prune
            .merge
            .advance(&mut index, None)
            .map_err(routes_error)?;
        // A source that came back empty (truncated, or the wrong one) is no reason
        // to empty the files.
        if prune.merge.pruned > 0 && prune.merge.kept == 0 && !self.options.allow_empty {
            return Err(Error::WouldEmpty {
                mapping: spec.name.to_owned(),
                table: spec.source.display_name(),
                run: "`--prune`",
            });
        }
        let mut files: BTreeMap<String, Vec<(&[u8], i64)>> = BTreeMap::new();
        for key in &prune.missing {
            let value = routes::integer_key(key)
                .filter(|_| prune.width.is_none_or(|width| width == key.len()))
                .ok_or_else(|| Error::Incremental {
                    mapping: spec.name.to_owned(),
                    message: format!(
                        "the routing index {} holds a key of another type than the source's key column; rerun with `--full`",
                        self.routes_path.display()
                    ),
                })?;
            for name in routes::names_of(self.routes, key).map_err(routes_error)? {
                files.entry(name).or_default().push((key, value));
            }
        }
        signal::check(spec)?;
        for (name, keys) in files {
            if self.failed.contains(&name) {
                continue;
            }
            let path = self.template.path_of_name(&name);
            let values: Vec<i64> = keys.iter().map(|(_, value)| *value).collect();
            match self.prune_file(&path, &values) {
                Ok(deleted) => {
                    self.outcome(&name, &[], &[]).deleted += deleted;
                    let transaction = Txn::begin(self.routes).map_err(routes_error)?;
                    for (key, _) in &keys {
                        routes::remove(&transaction, key, &name).map_err(routes_error)?;
                    }
                    transaction.commit().map_err(routes_error)?;
                }
                Err(error) => {
                    if error.kind() == "interrupted" {
                        return Err(error);
                    }
                    self.failed.insert(name.clone());
                    self.outcome(&name, &[], &[]).error = Some(error.with_file_faults_of(&path));
                }
            }
        }
        Ok(())
    }

    /// Deletes the rows of `keys` from the file at `path` (children first), with
    /// its state, in one transaction; returns the parent rows deleted.
    fn prune_file(&self, path: &Path, keys: &[i64]) -> Result<u64> {
        let spec = M::SPEC;
        if !path.exists() {
            // Nothing to delete from a file that is not there.
            return Ok(0);
        }
        let target_error = target_error(path);
        let (_, deleted) = self.in_file(path, true, None, keys.len() as u64, |transaction| {
            let mut deletes =
                target::prepare_each(transaction, spec, |target| target.delete_by_key)
                    .map_err(target_error)?;
            let mut deleted = 0;
            for key in keys {
                for (index, statement) in deletes.iter_mut().enumerate().rev() {
                    statement.raw_bind_parameter(1, key).map_err(target_error)?;
                    let count = statement
                        .raw_execute()
                        .map_err(|source| write_error(spec, index, &|| key.to_string(), source))?;
                    if index == 0 {
                        deleted += count as u64;
                    }
                }
            }
            Ok((0, deleted))
        })?;
        Ok(deleted)
    }

    /// Applies one batch: the index, the files, the index again.
    fn write_rows(&mut self, rows: &[Change<M>], watermark: Option<Watermark>) -> Result<()> {
        let spec = M::SPEC;
        signal::check(spec)?;
        // 1. Where each key was, and where it goes.
        let mut was = Vec::with_capacity(rows.len());
        let mut goes = Vec::with_capacity(rows.len());
        {
            let transaction = Txn::begin(self.routes).map_err(target_error(self.routes_path))?;
            for change in rows {
                let (key, value) = change.route.as_ref().expect("a partitioned mapping");
                let names =
                    routes::names_of(&transaction, key).map_err(target_error(self.routes_path))?;
                // A row of another shard's (or partition's) partition leaves this
                // run's files.
                let name = match value {
                    Some(value) if !change.deleted && self.owns(value) => {
                        Some(partition::file_name(value))
                    }
                    _ => None,
                };
                if let Some(name) = &name {
                    routes::add(&transaction, key, name).map_err(target_error(self.routes_path))?;
                }
                was.push(names);
                goes.push(name);
            }
            transaction
                .commit()
                .map_err(target_error(self.routes_path))?;
        }
        // 2. Each file's changes in its own transaction.
        let mut files: BTreeMap<&str, Vec<Operation>> = BTreeMap::new();
        for (index, change) in rows.iter().enumerate() {
            for name in &was[index] {
                if goes[index].as_ref() != Some(name) {
                    files.entry(name).or_default().push(Operation {
                        index,
                        upsert: false,
                    });
                }
            }
            if let Some(name) = &goes[index] {
                files.entry(name).or_default().push(Operation {
                    index,
                    upsert: true,
                });
            }
            let (_, value) = change.route.as_ref().expect("a partitioned mapping");
            // A NULL names no shard either: only a run of every partition reports it.
            if value.is_none()
                && !change.deleted
                && self.options.selection == partition::Selection::All
            {
                self.null_partition(&change.row);
            }
        }
        let mut complete = vec![true; rows.len()];
        for (name, operations) in files {
            let result = if self.failed.contains(name) {
                Err(None)
            } else {
                let path = self.template.path_of_name(name);
                self.write_file(&path, rows, &operations, watermark.as_ref())
                    .map_err(|error| Some((path, error)))
            };
            match result {
                Ok(written) => {
                    let outcome = self.outcome(name, rows, &operations);
                    outcome.rows += written.0;
                    outcome.deleted += written.1;
                }
                Err(error) => {
                    if let Some((path, error)) = error {
                        if error.kind() == "interrupted" {
                            return Err(error);
                        }
                        self.failed.insert(name.to_owned());
                        let outcome = self.outcome(name, rows, &operations);
                        outcome.error = Some(error.with_file_faults_of(&path));
                    }
                    for operation in &operations {
                        complete[operation.index] = false;
                    }
                }
            }
        }
        // 3. The index forgets the files each key left, and moves its watermark.
        let transaction = Txn::begin(self.routes).map_err(target_error(self.routes_path))?;
        for (index, change) in rows.iter().enumerate() {
            if complete[index] {
                let (key, _) = change.route.as_ref().expect("a partitioned mapping");
                routes::keep_only(&transaction, key, goes[index].as_deref())
                    .map_err(target_error(self.routes_path))?;
            }
        }
        self.rows_read += rows.len() as u64;
        if self.failed.is_empty() && self.outcomes.values().all(|o| o.error.is_none()) {
            if watermark.is_some() {
                self.watermark = watermark;
            }
            self.stored.watermark = self.watermark.as_ref().map(Watermark::to_blob);
            self.stored.source = self.identity.to_json();
            routes::record(&transaction, M::SPEC, &self.stored)
                .map_err(target_error(self.routes_path))?;
        }
        transaction.commit().map_err(target_error(self.routes_path))
    }

    /// The outcome of the file `name`, made on first use.
    fn outcome(
        &mut self,
        name: &str,
        rows: &[Change<M>],
        operations: &[Operation],
    ) -> &mut PartitionOutcome {
        let path = self.template.path_of_name(name);
        self.outcomes.entry(name.to_owned()).or_insert_with(|| {
            // The value's text form where a row of the batch goes there, else the
            // escaped name (a file only left).
            let value = operations
                .iter()
                .find(|operation| operation.upsert)
                .and_then(|operation| rows[operation.index].route.as_ref())
                .and_then(|(_, value)| value.as_deref())
                .map_or_else(
                    || name.to_owned(),
                    |value| String::from_utf8_lossy(value).into_owned(),
                );
            PartitionOutcome {
                value: Some(value),
                path: Some(path),
                rows: 0,
                deleted: 0,
                error: None,
            }
        })
    }

    /// Records a row whose partition value is NULL: it names no file (it left the
    /// file it was in).
    fn null_partition(&mut self, row: &M) {
        let spec = M::SPEC;
        let column = spec.source.columns[spec.source.partition_by.expect("partitioned")].name;
        self.outcomes.insert(
            format!("\u{0}NULL {}", row.key()),
            PartitionOutcome {
                value: None,
                path: None,
                rows: 0,
                deleted: 0,
                error: Some(Error::Partition {
                    mapping: spec.name.to_owned(),
                    message: format!(
                        "the row with key {} has a NULL `{column}`, which names no file; \
                         give it a value in the source, or leave such rows out with a `filter` \
                         (`{column} IS NOT NULL`)",
                        row.key()
                    ),
                }),
            },
        );
    }

    /// One file's operations and state in one transaction; returns the rows upserted
    /// and deleted. A file that does not exist yet (a new partition) is created: every
    /// row of a partition the index does not know changed since its watermark.
    fn write_file(
        &self,
        path: &Path,
        rows: &[Change<M>],
        operations: &[Operation],
        watermark: Option<&Watermark>,
    ) -> Result<(u64, u64)> {
        let spec = M::SPEC;
        let target_error = target_error(path);
        let exists = path.exists();
        if !exists {
            if !operations.iter().any(|operation| operation.upsert) {
                // Nothing to delete from a file that is not there.
                return Ok((0, 0));
            }
            target::create_parent(path)?;
        }
        self.in_file(
            path,
            exists,
            watermark,
            operations.len() as u64,
            |transaction| {
                let mut upserts = target::prepare_each(transaction, spec, |target| target.upsert)
                    .map_err(target_error)?;
                let mut deletes =
                    target::prepare_each(transaction, spec, |target| target.delete_by_key)
                        .map_err(target_error)?;
                let (mut written, mut deleted) = (0, 0);
                for operation in operations {
                    let row = &rows[operation.index].row;
                    let key = || row.key();
                    if operation.upsert {
                        for (index, statement) in upserts.iter_mut().enumerate() {
                            row.bind(index, statement)
                                .map_err(|error| bind_error(spec, index, &key, error))?;
                            statement
                                .raw_execute()
                                .map_err(|source| write_error(spec, index, &key, source))?;
                        }
                        written += 1;
                    } else {
                        // Children first, so that foreign keys hold at every statement.
                        for (index, statement) in deletes.iter_mut().enumerate().rev() {
                            row.bind_key(statement)
                                .map_err(|error| bind_error(spec, index, &key, error))?;
                            let count = statement
                                .raw_execute()
                                .map_err(|source| write_error(spec, index, &key, source))?;
                            if index == 0 {
                                deleted += count as u64;
                            }
                        }
                    }
                }
                Ok((written, deleted))
            },
        )
    }

    /// Opens the file at `path` (checking that this mapping's fan-out wrote it, or
    /// building its tables when it is new), runs `body` in one transaction with the
    /// file's `_data_sync_state` (mode `incremental`, `watermark` or the index's,
    /// `rows`), and commits; returns what `body` returns. A failure is recorded in
    /// the file where it can be.
    fn in_file(
        &self,
        path: &Path,
        exists: bool,
        watermark: Option<&Watermark>,
        rows: u64,
        body: impl FnOnce(&Connection) -> Result<(u64, u64)>,
    ) -> Result<(u64, u64)> {
        let spec = M::SPEC;
        let target_error = target_error(path);
        let connection = target::open(path)?;
        let result = (|| {
            // A file this mapping's fan-out wrote, or a new one (made here, or left
            // empty by a run killed before its first commit).
            let new = !exists || self.is_empty_file(&connection, path)?;
            if !new {
                self.check_file(&connection, path)?;
            }
            let transaction = Txn::begin(&connection).map_err(target_error)?;
            if new {
                state::ensure(&transaction).map_err(target_error)?;
                target::ensure_tables(&transaction, spec).map_err(target_error)??;
            }
            let written = body(&transaction)?;
            let watermark = watermark.or(self.watermark.as_ref());
            state::record_finished(
                &transaction,
                &MappingState::of_run(
                    spec,
                    self.stored.params.clone(),
                    "incremental",
                    watermark,
                    rows,
                    self.started_at,
                    true,
                ),
                &self.identity.to_json(),
            )
            .map_err(target_error)?;
            // On SIGINT or SIGTERM the file in flight is rolled back, not committed.
            signal::check(spec)?;
            transaction.commit().map_err(target_error)?;
            Ok(written)
        })();
        if let Err(error) = &result {
            state::record_failure(&connection, [spec.name], error);
        }
        result
    }

    /// Whether the file holds no table at all.
    fn is_empty_file(&self, connection: &Connection, path: &Path) -> Result<bool> {
        let tables: i64 = connection
            .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
            .map_err(target_error(path))?;
        Ok(tables == 0)
    }

    /// Checks that an existing file holds this mapping's targets, as built by the
    /// same definition with the same filter parameters.
    fn check_file(&self, connection: &Connection, path: &Path) -> Result<()> {
        let spec = M::SPEC;
        let target_error = target_error(path);
        let previous = state::load(connection, spec.name).map_err(target_error)?;
        let mut tables = true;
        for target in spec.targets {
            tables &= target::table_exists(connection, target.name).map_err(target_error)?;
        }
        let matches = previous.as_ref().is_some_and(|previous| {
            previous.mode != state::NEVER_SYNCED
                && previous.fingerprint == spec.fingerprint
                && previous.params == self.stored.params
        });
        if matches && tables {
            return Ok(());
        }
        Err(Error::Partition {
            mapping: spec.name.to_owned(),
            message: format!(
                "the file {} does not hold this mapping's tables as its last full run wrote them; \
                 rebuild every file with `data-sync sync --mapping {} --target '{}' --full`",
                path.display(),
                spec.name,
                self.template.to_string().replace(
                    "{}",
                    &format!(
                        "{{{}}}",
                        spec.source.columns[spec.source.partition_by.expect("partitioned")].name
                    )
                )
            ),
        })
    }

    /// The run's summary; records the finished run in the index when every file
    /// succeeded.
    fn finish(self) -> FanoutSummary {
        FanoutSummary {
            mapping: M::SPEC.name.to_owned(),
            mode: "incremental".to_owned(),
            rows_read: self.rows_read,
            partitions: self.outcomes.into_values().collect(),
            stale: Vec::new(),
            seconds: 0.0,
        }
    }
}
