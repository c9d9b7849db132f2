//! Fan-out: one pass over the source writes one SQLite file per value of the
//! mapping's `partition_by` column.
//!
//! The reader is the full sync's (`full::open`, `batch::read`): one snapshot, the
//! rows ordered by the partition column and then the key, batches split where the
//! partition changes. The writer takes the batches of one partition at a time and
//! writes them into that partition's file with the full sync's batch writer, in the
//! file's own transaction, with its own `_data_sync_state` row: each file is old or
//! new, never half, and one file is open at a time (the rows of a partition arrive
//! together), so memory and descriptors stay flat however many partitions there
//! are. A file that fails (read-only, locked, a value SQLite refuses) is recorded
//! and skipped; the pass goes on with the next partition.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Instant;

use sync_sql::ident::quote;
use tokio_postgres::types::Type;

use crate::Mapping;
use crate::error::{Error, Result};
use crate::options::{QUEUE_DEPTH, SyncOptions};
use crate::partition::{self, Selection, Template};
use crate::source::client::Client;
use crate::source::config::SourceConfig;
use crate::source::guard::SourceIdentity;
use crate::source::{self, CopyReader, row_key};
use crate::summary::{Summary, TargetSummary};
use crate::sync::batch::{self, RawBatch};
use crate::sync::watermark::Watermark;
use crate::sync::{fanout_changes, full, retry, routes, signal};
use crate::target::state::{self, MappingState};
use crate::target::{self, Txn, swap, target_error};

/// What a fan-out run did.
#[derive(Debug)]
pub struct FanoutSummary {
    /// The mapping name.
    pub mapping: String,
    /// `full` (every selected file rebuilt from the snapshot) or `incremental` (the
    /// changes since the last run, routed to the files they touch).
    pub mode: String,
    /// Rows read from the source (every partition the run selected).
    pub rows_read: u64,
    /// Every partition the source had for this run, in the order written (an
    /// incremental run: every file it touched, by name).
    pub partitions: Vec<PartitionOutcome>,
    /// Files of the template whose partition the source no longer has (left as they
    /// were); listed only by runs of every partition.
    pub stale: Vec<PathBuf>,
    /// Wall-clock seconds of the run.
    pub seconds: f64,
}

/// How one partition's file fared.
#[derive(Debug)]
pub struct PartitionOutcome {
    /// The partition value's text form (lossy for bytes that are not UTF-8),
    /// `None` for NULL.
    pub value: Option<String>,
    /// Its file; `None` for a NULL value, which names none.
    pub path: Option<PathBuf>,
    /// Rows written into the file.
    pub rows: u64,
    /// Rows deleted from the file (incremental runs: deleted rows, rows that left
    /// the filter or moved to another partition).
    pub deleted: u64,
    /// The error that left the file as it was, if any.
    pub error: Option<Error>,
}

impl FanoutSummary {
    /// The partitions that failed.
    pub fn failures(&self) -> impl Iterator<Item = &PartitionOutcome> {
        self.partitions
            .iter()
            .filter(|partition| partition.error.is_some())
    }

    /// The run as a [`Summary`] when every partition succeeded, else
    /// [`Error::Partition`] naming each failed partition, its file and its error.
    ///
    /// # Errors
    ///
    /// [`Error::Partition`] when some partitions failed.
    pub fn into_result(self, spec: &crate::spec::MappingSpec) -> Result<Summary> {
        let failed: Vec<String> = self
            .failures()
            .map(|partition| {
                let value = partition.value.as_deref().unwrap_or("NULL");
                let error = partition.error.as_ref().expect("a failure");
                match &partition.path {
                    Some(path) => format!("`{value}` ({}): {error}", path.display()),
                    None => format!("{value}: {error}"),
                }
            })
            .collect();
        if !failed.is_empty() {
            return Err(Error::Partition {
                mapping: spec.name.to_owned(),
                message: format!(
                    "{} of {} partitions failed, the others were synced: {}",
                    failed.len(),
                    self.partitions.len(),
                    failed.join("; ")
                ),
            });
        }
        let rows: u64 = self.partitions.iter().map(|partition| partition.rows).sum();
        let deleted: u64 = self
            .partitions
            .iter()
            .map(|partition| partition.deleted)
            .sum();
        Ok(Summary {
            mapping: self.mapping,
            mode: self.mode,
            rows_read: self.rows_read,
            targets: spec
                .targets
                .iter()
                .map(|target| TargetSummary {
                    table: target.name.to_owned(),
                    rows,
                    deleted,
                })
                .collect(),
            seconds: self.seconds,
            migrated: Vec::new(),
        })
    }
}

/// Syncs partitioned mapping `M` from `source` into one file per partition value,
/// named by `template` (`out/{tenant_id}.sqlite`), in one pass over the source: the
/// partitions `options.selection` picks, each file replaced in its own transaction.
/// A mapping with a cursor, run for every partition or for a shard after a full run
/// of the same selection that succeeded, reads only the changes since and routes
/// each to the files it touches
/// (see `docs/fanout.md`).
///
/// # Errors
///
/// [`Error::Partition`] for a template without the partition column's placeholder
/// or with another column's, or a bad `--partition` value; a source error stops the
/// pass (the files written before it stay as written). A partition whose file fails
/// does not stop the pass: it is in [`FanoutSummary::partitions`] with its error.
pub fn fanout<M: Mapping>(
    source: &SourceConfig,
    template: &Path,
    options: &SyncOptions,
) -> Result<FanoutSummary> {
    let spec = M::SPEC;
    let started = Instant::now();
    let template = Template::parse(spec, template)?;
    let filter = options.filter_settings(spec)?;
    let progress = options.observer();
    progress.start(spec, "full");
    let read_timeout = source.read_timeout();
    let result = retry::run(spec, &options.retry, &mut || {
        pass::<M>(source, &template, options, &filter)
            .map_err(|error| error.with_timeouts(read_timeout))
    })
    .map_err(|error| crate::source::guard::classify(spec, error));
    let result = signal::classify(spec, result);
    let result = result.map(|mut summary| {
        summary.seconds = started.elapsed().as_secs_f64();
        if options.selection == Selection::All && summary.mode == "full" {
            summary.stale = stale(&template, &summary);
        }
        for path in &summary.stale {
            tracing::warn!(
                mapping = spec.name,
                file = %path.display(),
                "the source has no rows of this file's partition any more; the file is left as it was"
            );
        }
        for failure in summary.failures() {
            tracing::warn!(
                mapping = spec.name,
                partition = failure.value.as_deref().unwrap_or("NULL"),
                error = %failure.error.as_ref().expect("a failure"),
                "partition failed"
            );
        }
        summary
    });
    match &result {
        Ok(summary) => {
            let failed = summary.failures().count();
            tracing::info!(
                mapping = spec.name,
                mode = summary.mode,
                rows = summary.rows_read,
                partitions = summary.partitions.len(),
                failed,
                seconds = summary.seconds,
                outcome = if failed == 0 { "ok" } else { "error" },
                "fan-out finished"
            );
        }
        Err(error) => {
            tracing::info!(mapping = spec.name, mode = "full", outcome = "error", error = %error, "fan-out failed");
        }
    }
    result
}

/// The files of `template` that no partition of this run wrote.
fn stale(template: &Template, summary: &FanoutSummary) -> Vec<PathBuf> {
    let written: HashSet<&Path> = summary
        .partitions
        .iter()
        .filter_map(|partition| partition.path.as_deref())
        .collect();
    template
        .existing()
        .unwrap_or_default()
        .into_iter()
        .map(|(_, path)| path)
        .filter(|path| !written.contains(path.as_path()))
        .collect()
}

/// What the reader tells every file: the watermark and source of the snapshot.
struct Snapshot {
    watermark: Option<Watermark>,
    identity: SourceIdentity,
}

/// One pass: the reader thread streams the selected partitions, the writer (this
/// thread) writes each into its file.
fn pass<M: Mapping>(
    source: &SourceConfig,
    template: &Template,
    options: &SyncOptions,
    filter: &[(&'static str, String)],
) -> Result<FanoutSummary> {
    let spec = M::SPEC;
    let incremental = fanout_changes::plan::<M>(template, options)?;
    let mut client = source.connect()?;
    let _cancel = signal::cancel_on_signal(source, &client);
    let started_at = state::now();
    if let Some(incremental) = incremental {
        return fanout_changes::pass::<M>(&mut client, template, options, incremental, &started_at);
    }
    // A full run of every partition, of a shard or of one partition writes a new
    // routing index of its selection (for the incremental runs after it), and
    // deletes the indexes of the other selections whose files it rewrites.
    routes::delete_overlapping(template, spec, &options.selection)?;
    let routes_path = routes::path(template, spec, &options.selection);
    let mut builder = match &routes_path {
        Some(path) if spec.source.incremental.is_some() => Some(routes::Builder::begin(path)?),
        Some(path) => {
            routes::delete(path)?;
            None
        }
        None => None,
    };
    let summary = std::thread::scope(|scope| {
        let (sender, receiver) = sync_channel(QUEUE_DEPTH);
        let (snapshot_sender, snapshot_receiver) = sync_channel(1);
        let client = &mut client;
        let reader = scope
            .spawn(move || read_source::<M>(client, filter, options, &snapshot_sender, &sender));
        let written = match snapshot_receiver.recv() {
            Ok((snapshot, ty)) => write_partitions::<M>(
                receiver,
                template,
                options,
                &snapshot,
                &ty,
                &started_at,
                builder.as_ref(),
            )
            .map(|outcomes| (outcomes, Some(snapshot))),
            // The reader stopped before the snapshot was read; its error says why.
            Err(_) => Ok((Vec::new(), None)),
        };
        let read = reader.join().unwrap_or_else(|_| {
            Err(Error::ReaderPanicked {
                mapping: spec.name.to_owned(),
            })
        });
        // A reader error explains a writer that stopped early, so it comes first.
        let rows_read = read?;
        let (partitions, snapshot) = written?;
        Ok((
            FanoutSummary {
                mapping: spec.name.to_owned(),
                mode: "full".to_owned(),
                rows_read,
                partitions,
                stale: Vec::new(),
                seconds: 0.0,
            },
            snapshot,
        ))
    });
    let (summary, snapshot) = match summary {
        Ok(done) => done,
        Err(error) => {
            if let Some(builder) = builder.take() {
                builder.abandon();
            }
            return Err(error);
        }
    };
    if let Some(builder) = builder.take() {
        // The index is complete only when every partition's file was written.
        match snapshot {
            Some(snapshot) if summary.failures().count() == 0 => builder.finish(
                spec,
                &routes::Stored {
                    template: template.to_string(),
                    fingerprint: spec.fingerprint.to_owned(),
                    params: crate::filter::identity(spec.source.filter.as_ref(), &options.params),
                    source: snapshot.identity.to_json(),
                    watermark: snapshot.watermark.as_ref().map(Watermark::to_blob),
                },
            )?,
            _ => builder.abandon(),
        }
    }
    Ok(summary)
}

/// The reader thread: the full sync's snapshot and checks, then the watermark
/// (every file records it before the copy ends), then the selected rows ordered by
/// partition and key, in batches of one partition each. Returns the rows read.
fn read_source<M: Mapping>(
    client: &mut Client,
    filter: &[(&'static str, String)],
    options: &SyncOptions,
    snapshot_sender: &SyncSender<(Snapshot, Type)>,
    sender: &SyncSender<RawBatch>,
) -> Result<u64> {
    let spec = M::SPEC;
    let partition_index = spec.source.partition_by.expect("a partitioned mapping");
    let table = spec.source.display_name();
    let source_error = |source| Error::Source {
        mapping: spec.name.to_owned(),
        table: table.clone(),
        source,
    };
    let full::Opened {
        mut transaction,
        identity,
        types,
        ..
    } = full::open::<M>(
        client,
        filter,
        options.assume_unique_key,
        options.observer(),
    )?;
    let ty = types[partition_index].clone();
    partition::check_supported(spec, partition_index, &ty)?;
    // The selection's values are settings of the snapshot, bound like the filter's.
    let condition = options.selection.condition(spec, &ty)?;
    if let Some((_, settings)) = &condition {
        transaction.bind_settings(settings).map_err(source_error)?;
    }
    let watermark = full::watermark::<M>(&mut transaction)?;
    if snapshot_sender
        .send((
            Snapshot {
                watermark,
                identity,
            },
            ty,
        ))
        .is_err()
    {
        return Ok(0);
    }
    let copy = copy_sql(
        spec,
        condition.as_ref().map(|(condition, _)| condition.as_str()),
    );
    let stream = transaction.copy_out(&copy).map_err(source_error)?;
    let stream_error = |source| Error::SourceStream {
        mapping: spec.name.to_owned(),
        table: table.clone(),
        source,
    };
    let mut reader = CopyReader::new(stream, types).map_err(stream_error)?;
    let batches = batch::read::<M, _>(
        &mut reader,
        options.batch_size.max(1),
        Some(partition_index),
        sender,
        &stream_error,
    )?;
    if batches.writer_stopped {
        // The writer stopped; its error is the one to report.
        return Ok(batches.rows);
    }
    drop(reader);
    transaction.commit().map_err(source_error)?;
    Ok(batches.rows)
}

/// What a fan-out of a mapping with `partition_by` runs, for `data-sync explain`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FanoutPlan {
    /// The partition column.
    pub column: &'static str,
    /// The `COPY` of a run of every partition: the rows ordered by partition, then
    /// key.
    pub copy: String,
    /// The condition `--partition VALUE` adds, `VALUE` bound as a setting.
    pub partition_condition: String,
    /// The condition `--shard I/N` adds, `I` and `N` bound as settings.
    pub shard_condition: String,
}

/// The [`FanoutPlan`] of `spec`, `None` for a mapping without `partition_by`. The
/// conditions are those of the column's declared type (a run uses its live type).
pub fn fanout_plan(spec: &crate::spec::MappingSpec) -> Option<FanoutPlan> {
    let column = &spec.source.columns[spec.source.partition_by?];
    let ty = match column.pg_type {
        "smallint" | "int2" | "integer" | "int" | "int4" | "bigint" | "int8" => Type::INT8,
        "uuid" => Type::UUID,
        _ => Type::TEXT,
    };
    let condition = |selection: Selection| {
        selection
            .condition(spec, &ty)
            .ok()
            .flatten()
            .map(|(condition, _)| condition)
            .unwrap_or_default()
    };
    Some(FanoutPlan {
        column: column.name,
        copy: copy_sql(spec, None),
        partition_condition: condition(Selection::One("0".to_owned())),
        shard_condition: condition(Selection::Shard(partition::Shard { index: 0, count: 1 })),
    })
}

/// `COPY (SELECT .. [WHERE filter AND selection] ORDER BY "partition", "key"..) TO
/// STDOUT (FORMAT binary)`: the mapping's generated `SELECT` (whose only `WHERE` is
/// its filter's) with the selection's condition and the order of a fan-out.
pub(crate) fn copy_sql(spec: &crate::spec::MappingSpec, condition: Option<&str>) -> String {
    let partition = quote(spec.source.columns[spec.source.partition_by.expect("partitioned")].name);
    let mut select = spec.source.select.to_owned();
    if let Some(condition) = condition {
        let joiner = if spec.source.filter.is_some() {
            " AND "
        } else {
            " WHERE "
        };
        select.push_str(joiner);
        select.push('(');
        select.push_str(condition);
        select.push(')');
    }
    let mut order = vec![partition];
    order.extend(
        spec.source
            .key
            .iter()
            .map(|&index| quote(spec.source.columns[index].name)),
    );
    select.push_str(" ORDER BY ");
    select.push_str(&order.join(", "));
    source::copy_out_sql(&select)
}

/// Adds the keys of `batch` to the routing index being built, routed to `name`.
fn route(
    spec: &crate::spec::MappingSpec,
    routes: Option<&routes::Builder>,
    name: &str,
    batch: &RawBatch,
) -> Result<()> {
    let Some(routes) = routes else {
        return Ok(());
    };
    for index in 0..batch.len() {
        routes.add(&routes::key(spec, &batch.row(index)), name)?;
    }
    Ok(())
}

/// The writer: the batches of each partition into its file, one file at a time.
/// Returns every partition's outcome; an interrupt stops it with an error.
fn write_partitions<M: Mapping>(
    receiver: Receiver<RawBatch>,
    template: &Template,
    options: &SyncOptions,
    snapshot: &Snapshot,
    ty: &Type,
    started_at: &str,
    routes: Option<&routes::Builder>,
) -> Result<Vec<PartitionOutcome>> {
    let spec = M::SPEC;
    let partition_index = spec.source.partition_by.expect("a partitioned mapping");
    let progress = options.observer();
    let mut outcomes = Vec::new();
    let mut directories = std::collections::BTreeSet::new();
    let mut rows_so_far = 0;
    let mut batches = receiver.into_iter().peekable();
    while let Some(first) = batches.next() {
        signal::check(spec)?;
        let raw = first.row(0).raw(partition_index).map(<[u8]>::to_vec);
        let mut rest = std::iter::from_fn(|| {
            batches.next_if(|next| next.row(0).raw(partition_index) == raw.as_deref())
        });
        let text = raw
            .as_deref()
            .map(|raw| partition::text_form(ty, raw).unwrap_or_else(|| raw.to_vec()));
        let value = text
            .as_deref()
            .map(|text| String::from_utf8_lossy(text).into_owned());
        let outcome = match &text {
            None => {
                let key = row_key(spec, &first.row(0));
                let column = spec.source.columns[partition_index].name;
                first.recycle();
                PartitionOutcome {
                    value,
                    path: None,
                    rows: 0,
                    deleted: 0,
                    error: Some(Error::Partition {
                        mapping: spec.name.to_owned(),
                        message: format!(
                            "the row with key {key} has a NULL `{column}`, which names no file; \
                             give it a value in the source, or leave such rows out with a `filter` \
                             (`{column} IS NOT NULL`)"
                        ),
                    }),
                }
            }
            Some(text) => {
                let path = template.path(text);
                let name = partition::file_name(text);
                // A new file is renamed into place: its directory is synced at the end.
                if std::fs::symlink_metadata(&path).is_err() {
                    directories.insert(path.parent().map(Path::to_path_buf).unwrap_or_default());
                }
                let result = write_partition::<M>(
                    &path,
                    first,
                    &mut rest,
                    options,
                    snapshot,
                    started_at,
                    &mut |batch, rows| {
                        progress.advance(spec, rows_so_far + rows);
                        route(spec, routes, &name, batch)
                    },
                );
                let (rows, error) = match result {
                    Ok(rows) => (rows, None),
                    Err(error) if error.kind() == "interrupted" => return Err(error),
                    Err(error) => (0, Some(error.with_file_faults_of(&path))),
                };
                rows_so_far += rows;
                PartitionOutcome {
                    value,
                    path: Some(path),
                    rows,
                    deleted: 0,
                    error,
                }
            }
        };
        // What is left of a failed partition is passed over.
        for batch in rest {
            batch.recycle();
        }
        outcomes.push(outcome);
    }
    // The renames of new files last a crash once their directories are synced.
    for directory in &directories {
        target::sync_directory(directory)?;
    }
    Ok(outcomes)
}

/// One partition's batches (`first`, then `rest`) into the file `path`, replacing
/// its targets in one transaction that also records the run; returns the rows
/// written. `written` is told each batch written and the rows so far. A failure is
/// recorded in the file when it can be.
fn write_partition<M: Mapping>(
    path: &Path,
    first: RawBatch,
    rest: &mut dyn Iterator<Item = RawBatch>,
    options: &SyncOptions,
    snapshot: &Snapshot,
    started_at: &str,
    written: &mut dyn FnMut(&RawBatch, u64) -> Result<()>,
) -> Result<u64> {
    let spec = M::SPEC;
    let target_error = target_error(path);
    target::create_parent(path)?;
    // A file that does not exist yet is built under a temporary name and renamed
    // into place whole (see `target::NewFile`); an existing one is replaced in
    // place, in WAL mode, so that its readers keep reading the old contents.
    let (new_file, mut connection) = if std::fs::symlink_metadata(path).is_err() {
        let (new_file, connection) = target::NewFile::begin(path)?;
        (Some(new_file), connection)
    } else {
        (None, target::open(path)?)
    };
    state::record_attempt(&mut connection, spec.name, started_at).map_err(target_error)?;
    let mut bulk_load = swap::BulkLoad::begin(&connection, spec);
    let result = (|| {
        let transaction = Txn::begin(&connection).map_err(target_error)?;
        let replaced = full::prepare_full(&transaction, spec).map_err(target_error)??;
        let mut writer = batch::Writer::new::<M>(&transaction, path)?;
        writer.write::<M>(&first)?;
        written(&first, writer.rows)?;
        first.recycle();
        for batch in rest {
            signal::check(spec)?;
            writer.write::<M>(&batch)?;
            written(&batch, writer.rows)?;
            batch.recycle();
        }
        let rows = writer.rows;
        drop(writer);
        bulk_load.inserts_done(&transaction).map_err(target_error)?;
        replaced.restore(&transaction, spec).map_err(target_error)?;
        state::record_finished(
            &transaction,
            &MappingState::of_run(
                spec,
                crate::filter::identity(spec.source.filter.as_ref(), &options.params),
                "full",
                snapshot.watermark.as_ref(),
                rows,
                started_at,
                true,
            ),
            &snapshot.identity.to_json(),
        )
        .map_err(target_error)?;
        transaction.commit().map_err(target_error)?;
        Ok(rows)
    })();
    bulk_load.end(&connection);
    if let Err(error) = &result {
        state::record_failure(&connection, [spec.name], error);
    }
    // A new file is put in place whatever the outcome, as an existing one keeps
    // its recorded failure: `status` lists it.
    if let Some(new_file) = new_file {
        new_file.finish(connection)?;
    }
    result
}
