//! Running a mapping: the reader thread streams the source snapshot through a bounded
//! queue, the writer applies it to every target in one SQLite transaction and commits
//! only once the reader has reached the end of the snapshot without error.

use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Instant;

use postgres::types::Type;
use rusqlite::{Connection, TransactionBehavior};

use crate::batch;
use crate::config::SourceConfig;
use crate::error::{Error, Result};
use crate::incremental;
use crate::source::reader::{self, ReaderClient};
use crate::source::{CopyReader, SourceRow};
use crate::spec::MappingSpec;
use crate::state::{self, MappingState};
use crate::swap;
use crate::target;
use crate::watermark::{Overlap, RawField, Watermark};
use crate::{__private::BindError, Mapping};

/// How many batches may wait between the reader and the writer: enough to keep both
/// busy, few enough that memory stays flat however large the table.
const QUEUE_DEPTH: usize = 4;

/// Options of one run.
#[derive(Clone, Debug)]
pub struct SyncOptions {
    /// Rebuild every target from the whole source, even where an incremental run is
    /// possible. Mappings without a cursor, and the first run of one with a cursor,
    /// always sync in full.
    pub full: bool,
    /// Rows per batch handed from the reader to the writer; for incremental runs
    /// also the rows per SQLite transaction (each commits its watermark).
    pub batch_size: usize,
    /// After an incremental run, delete the target rows whose key has left the
    /// source (read from the same snapshot).
    pub prune: bool,
    /// How far below the watermark an incremental run reads again, for transactions
    /// that commit late; `None` is the default: 5 minutes for a time cursor, none
    /// for other cursors. See `docs/sync.md`.
    pub overlap: Option<Overlap>,
    /// An observer of the run's progress (rows so far, the row estimate, the end),
    /// or `None`; see [`Progress`](crate::Progress).
    pub progress: Option<std::sync::Arc<dyn crate::progress::Progress>>,
    /// How the run retries after a transient source fault (a dropped connection, a
    /// restarting server); see [`RetryPolicy`](crate::RetryPolicy).
    pub retry: crate::retry::RetryPolicy,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            full: false,
            batch_size: 10_000,
            prune: false,
            overlap: None,
            progress: None,
            retry: crate::retry::RetryPolicy::default(),
        }
    }
}

/// What one run did.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Summary {
    /// The mapping name.
    pub mapping: String,
    /// `full` or `incremental`.
    pub mode: String,
    /// Rows read from the source.
    pub rows_read: u64,
    /// Rows written, per target table, parents first.
    pub targets: Vec<TargetSummary>,
    /// Wall-clock seconds of the run.
    pub seconds: f64,
}

/// Rows written into one target table.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TargetSummary {
    /// The target table.
    pub table: String,
    /// Rows written: inserted, or updated with a changed value.
    pub rows: u64,
    /// Rows deleted (soft deletes and `--prune`).
    pub deleted: u64,
}

/// A compiled-in mapping, as the catalogue registers it for the command line.
#[derive(Clone, Copy)]
pub struct Registered {
    /// The mapping's static description.
    pub spec: &'static MappingSpec,
    sync: fn(&SourceConfig, &Path, &SyncOptions) -> Result<Summary>,
    accepts: fn(usize, &Type) -> bool,
    verify: fn(&SourceConfig, &Path, usize) -> Result<crate::verify::Verification>,
}

impl Registered {
    /// Registers mapping `M`.
    pub const fn of<M: Mapping>() -> Registered {
        Registered {
            spec: M::SPEC,
            sync: sync::<M>,
            accepts: M::accepts,
            verify: crate::verify::verify::<M>,
        }
    }

    /// Whether field `field` can decode a source column of type `ty`
    /// (`data-sync check`).
    pub(crate) fn accepts(&self, field: usize, ty: &Type) -> bool {
        (self.accepts)(field, ty)
    }

    /// Runs the mapping; see [`sync`].
    ///
    /// # Errors
    ///
    /// As [`sync`].
    pub fn sync(
        &self,
        source: &SourceConfig,
        target: &Path,
        options: &SyncOptions,
    ) -> Result<Summary> {
        (self.sync)(source, target, options)
    }

    /// Compares the mapping's targets with the source; see
    /// [`verify`](crate::verify()).
    ///
    /// # Errors
    ///
    /// As [`verify`](crate::verify()).
    pub fn verify(
        &self,
        source: &SourceConfig,
        target: &Path,
        max_keys: usize,
    ) -> Result<crate::verify::Verification> {
        (self.verify)(source, target, max_keys)
    }
}

impl std::fmt::Debug for Registered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registered")
            .field("mapping", &self.spec.name)
            .finish()
    }
}

/// Syncs mapping `M` from `source` into the SQLite file `target`: every target table
/// is replaced by the source's rows in one transaction, so a reader sees the old
/// contents or the new, never a mix, and a failure leaves the old contents intact.
///
/// # Errors
///
/// Any [`Error`]: connection, source, type, value or target problems. Nothing of a
/// failed run is committed.
pub fn sync<M: Mapping>(
    source: &SourceConfig,
    target: &Path,
    options: &SyncOptions,
) -> Result<Summary> {
    let spec = M::SPEC;
    let started = Instant::now();
    let started_at = now();
    let progress = crate::progress::observer(options);
    let mut mode = None;
    let mut connection = match target::open(target) {
        Ok(connection) => connection,
        Err(error) => {
            let result = Err(error);
            let seconds = started.elapsed().as_secs_f64();
            crate::progress::log_run(spec, None, seconds, &result);
            return result;
        }
    };
    // One attempt. A transient source fault runs it again (see `retry`): an
    // incremental run resumes from its last committed batch, a full run starts over.
    let mut attempt = || {
        crate::signal::check(spec)?;
        incremental::previous::<M>(&connection, target, options).and_then(|previous| {
            let run_mode = if previous.is_some() {
                "incremental"
            } else {
                "full"
            };
            mode = Some(run_mode);
            progress.start(spec, run_mode);
            match previous {
                Some(previous) => {
                    let mut client = source.connect()?;
                    let _cancel = crate::signal::cancel_on_signal(source, &client);
                    incremental::sync::<M>(
                        &mut client,
                        &mut connection,
                        target,
                        options,
                        &previous,
                        &started_at,
                    )
                }
                None => {
                    // A `tokio-postgres` connection: the COPY stream without a
                    // `block_on` per row (issue 7; see `source::reader`).
                    let mut client = source.connect_reader()?;
                    let _cancel = crate::signal::cancel_reader_on_signal(source, &client);
                    full_sync::<M>(&mut client, &mut connection, target, options, &started_at).map(
                        |(rows_read, rows_written)| Summary {
                            mapping: spec.name.to_owned(),
                            mode: "full".to_owned(),
                            rows_read,
                            targets: spec
                                .targets
                                .iter()
                                .map(|target| TargetSummary {
                                    table: target.name.to_owned(),
                                    rows: rows_written,
                                    deleted: 0,
                                })
                                .collect(),
                            seconds: 0.0,
                        },
                    )
                }
            }
        })
    };
    let result = crate::retry::run(spec, &options.retry, &mut attempt);
    // A run a signal stopped reports that, whatever error the stop caused.
    let result = crate::signal::classify(spec, result);
    let seconds = started.elapsed().as_secs_f64();
    let result = result.map(|mut summary| {
        summary.seconds = seconds;
        summary
    });
    if let Err(error) = &result {
        // Best effort: the run's own transaction is gone, and an error here must
        // not hide the one that stopped the run.
        let outcome = crate::signal::outcome(error);
        let _ = state::record_failure(&connection, spec.name, &now(), &outcome);
    }
    crate::progress::log_run(spec, mode, seconds, &result);
    progress.finish(spec, result.as_ref());
    result
}

/// One full sync; returns the rows read and the rows written (fewer by the rows a
/// soft-delete column marks deleted).
fn full_sync<M: Mapping>(
    client: &mut ReaderClient,
    connection: &mut Connection,
    path: &Path,
    options: &SyncOptions,
    started_at: &str,
) -> Result<(u64, u64)> {
    let spec = M::SPEC;
    let target_error = |source| Error::Target {
        path: path.to_owned(),
        source: Box::new(source),
    };
    // Fast path (issue 7): rollback journal and, where they hold by construction,
    // no foreign-key checks for the load; see `swap`.
    let bulk_load = swap::BulkLoad::begin(connection, spec);
    let result = std::thread::scope(|scope| {
        let (sender, receiver) = sync_channel(QUEUE_DEPTH);
        let batch_size = options.batch_size.max(1);
        let progress = crate::progress::observer(options);
        let reader = scope.spawn(move || read_source::<M>(client, batch_size, progress, &sender));

        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(target_error)?;
        let written = prepare_full(&transaction, spec)
            .map_err(target_error)
            .and_then(|prepared| prepared)
            .and_then(|()| write_rows::<M>(&transaction, receiver, path, progress));
        let read = reader.join().unwrap_or_else(|_| {
            Err(Error::ReaderPanicked {
                mapping: spec.name.to_owned(),
            })
        });
        // A reader error explains a writer that stopped early, so it comes first.
        let read = read?;
        let rows_read = read.rows;
        let rows_written = written?;
        debug_assert_eq!(rows_read, rows_written + read.skipped);
        let watermark = read.watermark.as_ref();
        swap::drop_set_aside(&transaction, spec).map_err(target_error)?;
        state::record(
            &transaction,
            &MappingState {
                mapping: spec.name.to_owned(),
                fingerprint: spec.fingerprint.to_owned(),
                mode: "full".to_owned(),
                watermark_cursor: watermark.map(Watermark::display_cursor),
                watermark_key: watermark.map(Watermark::display_key),
                watermark_raw: watermark.map(Watermark::to_blob),
                rows: i64::try_from(rows_read).unwrap_or(i64::MAX),
                started_at: started_at.to_owned(),
                finished_at: Some(now()),
                last_attempt_at: now(),
                last_outcome: "ok".to_owned(),
            },
        )
        .map_err(target_error)?;
        transaction.commit().map_err(target_error)?;
        Ok((rows_read, rows_written))
    });
    bulk_load.end(connection);
    result
}

/// Creates or checks the targets, then sets the old ones aside and creates them
/// afresh (see `swap`).
fn prepare_full(transaction: &Connection, spec: &MappingSpec) -> rusqlite::Result<Result<()>> {
    state::ensure(transaction)?;
    if let Err(error) = target::ensure_tables(transaction, spec)? {
        return Ok(Err(error));
    }
    swap::set_aside(transaction, spec)?;
    Ok(Ok(()))
}

/// Writes every row the reader sends into every target; returns the rows written.
fn write_rows<M: Mapping>(
    connection: &Connection,
    receiver: Receiver<batch::RawBatch>,
    path: &Path,
    progress: &dyn crate::progress::Progress,
) -> Result<u64> {
    // Raw rows bound straight into multi-row INSERTs (issue 7); see `batch`.
    batch::write::<M>(connection, receiver, path, progress)
}

/// The error for a value of target `target` (an index into `spec.targets`) that
/// could not be bound.
pub(crate) fn bind_error(
    spec: &MappingSpec,
    target: usize,
    key: &dyn Fn() -> String,
    error: BindError,
) -> Error {
    let target = &spec.targets[target];
    match error {
        BindError::Encode { column, cause } => Error::Encode {
            mapping: spec.name.to_owned(),
            table: target.name.to_owned(),
            key: key(),
            column: target.columns[column].name.to_owned(),
            source: cause,
        },
        BindError::Sqlite(source) => Error::Write {
            mapping: spec.name.to_owned(),
            table: target.name.to_owned(),
            key: key(),
            source: Box::new(source),
        },
        BindError::Decode(error) => Error::Decode {
            mapping: spec.name.to_owned(),
            table: spec.source.display_name(),
            key: key(),
            column: spec.source.columns[spec.source.key[error.field]]
                .name
                .to_owned(),
            source: error.cause,
        },
    }
}

/// Decodes `row` as `M`, with an error naming the row's key and the column; a NULL
/// cursor gets its own error, since the field cannot be an `Option`.
pub(crate) fn decode_row<M: Mapping>(row: &SourceRow<'_>) -> Result<M> {
    M::decode(row).map_err(|error| decode_error(M::SPEC, row, error))
}

/// The error for a field of `row` that could not be decoded (see [`decode_row`]).
pub(crate) fn decode_error(
    spec: &MappingSpec,
    row: &SourceRow<'_>,
    error: crate::__private::DecodeError,
) -> Error {
    let key = crate::batch::row_key(spec, row);
    let column = spec.source.columns[error.field].name.to_owned();
    if spec.source.cursor == Some(error.field) && row.raw(error.field).is_none() {
        return Error::NullCursor {
            mapping: spec.name.to_owned(),
            table: spec.source.display_name(),
            column,
            key,
        };
    }
    Error::Decode {
        mapping: spec.name.to_owned(),
        table: spec.source.display_name(),
        key,
        column,
        source: error.cause,
    }
}

/// What the reader of a full sync read.
struct Read {
    /// Rows read.
    rows: u64,
    /// Rows not sent, since their soft-delete column marks them deleted.
    skipped: u64,
    /// The greatest `(cursor, key)` of the snapshot, for a mapping with a cursor.
    watermark: Option<Watermark>,
}

/// The reader thread: snapshot, type check, COPY, decode, send in batches. Returns
/// the rows read; errors are returned, and also stop the writer by closing the queue.
fn read_source<M: Mapping>(
    client: &mut ReaderClient,
    batch_size: usize,
    progress: &dyn crate::progress::Progress,
    sender: &SyncSender<batch::RawBatch>,
) -> Result<Read> {
    let spec = M::SPEC;
    let table = spec.source.display_name();
    let source_error = |source| Error::Source {
        mapping: spec.name.to_owned(),
        table: table.clone(),
        source,
    };
    let ReaderClient { driver, client } = client;
    // Each `block_on` drives the connection too; an error of either is the source's.
    let transaction = driver.run(reader::snapshot(client)).map_err(source_error)?;
    if let Some(rows) = driver
        .run(crate::progress::estimate(&transaction, spec))
        .map_err(source_error)?
    {
        progress.estimate(spec, rows);
    }
    let statement = driver
        .run(transaction.prepare(spec.source.select))
        .map_err(source_error)?;
    let types: Vec<Type> = crate::source::column_types(statement.columns());
    check_types::<M>(&types)?;

    let copy = crate::source::copy_out_sql(spec.source.select);
    let stream = driver
        .run(transaction.copy_out(copy.as_str()))
        .map_err(source_error)?;
    let stream_error = |source| Error::SourceStream {
        mapping: spec.name.to_owned(),
        table: table.clone(),
        source,
    };
    // Many COPY messages (rows) per `block_on`, parsed where they are.
    let mut reader =
        CopyReader::new(reader::CopyStream::new(driver, stream), types).map_err(stream_error)?;
    // Rows checked and sent raw, in recycled batches (issue 7); see `batch`.
    let batches = batch::read::<M, _>(&mut reader, batch_size, sender, &stream_error)?;
    let mut read = Read {
        rows: batches.rows,
        skipped: batches.skipped,
        watermark: None,
    };
    if batches.writer_stopped {
        // The writer stopped; its error is the one to report.
        return Ok(read);
    }
    drop(reader);
    // The watermark comes from the same snapshot: the next run goes on after it.
    if let Some(incremental) = &spec.source.incremental {
        let row = driver
            .run(transaction.query_opt(incremental.watermark, &[]))
            .map_err(source_error)?;
        if let Some(row) = row {
            let types: Vec<Type> = row.columns().iter().map(|c| c.type_().clone()).collect();
            let fields = (0..row.len())
                .map(|index| row.try_get::<_, RawField<'_>>(index).map(|field| field.0))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(source_error)?;
            read.watermark = Watermark::from_fields(&types, &fields);
            if read.watermark.is_none() {
                return Err(driver
                    .block_on(incremental::null_cursor_error(spec, &transaction))
                    .map_err(source_error)??);
            }
        }
    }
    driver.run(transaction.commit()).map_err(source_error)?;
    Ok(read)
}

/// Checks, before reading a row, that each source column's live type is one its
/// field can decode.
pub(crate) fn check_types<M: Mapping>(types: &[Type]) -> Result<()> {
    let spec = M::SPEC;
    for (index, ty) in types.iter().enumerate() {
        if !M::accepts(index, ty) {
            let column = &spec.source.columns[index];
            return Err(Error::ColumnType {
                mapping: spec.name.into(),
                table: spec.source.display_name().into(),
                column: column.name.into(),
                field: column.field.into(),
                rust_type: column.rust_type.replace(' ', "").into(),
                expected: column.pg_type.into(),
                actual: ty.name().into(),
            });
        }
    }
    Ok(())
}

/// Now, as RFC 3339 UTC with microseconds.
fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
