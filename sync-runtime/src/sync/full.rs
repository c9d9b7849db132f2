//! A full run: the reader thread streams the source snapshot through a bounded
//! queue, the writer applies it to every target in one SQLite transaction and commits
//! only once the reader has reached the end of the snapshot without error.

use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use rusqlite::Connection;
use sync_sql::ident::{quote, quote_qualified};
use tokio_postgres::types::Type;

use crate::Mapping;
use crate::error::{Error, Result};
use crate::options::{QUEUE_DEPTH, SyncOptions};
use crate::progress::Progress;
use crate::source::client::{Client, Snapshot};
use crate::source::guard::{self, SourceIdentity};
use crate::source::{self, CopyReader, SourceRow, decode};
use crate::spec::MappingSpec;
use crate::sync::batch;
use crate::sync::incremental;
use crate::sync::watermark::{RawField, Watermark};
use crate::target::Txn;
use crate::target::state::{self, MappingState};
use crate::target::swap;
use crate::target::target_error;

/// One full sync; returns the rows read and the rows written (fewer by the rows a
/// soft-delete column marks deleted).
pub(crate) fn sync<M: Mapping>(
    client: &mut Client,
    connection: &mut Connection,
    path: &Path,
    options: &SyncOptions,
    started_at: &str,
) -> Result<(u64, u64)> {
    let spec = M::SPEC;
    let target_error = target_error(path);
    let filter = options.filter_settings(spec)?;
    // No foreign-key checks for the load where they hold by construction; see `swap`.
    let mut bulk_load = swap::BulkLoad::begin(connection, spec);
    let result = std::thread::scope(|scope| {
        let (sender, receiver) = sync_channel(QUEUE_DEPTH);
        let batch_size = options.batch_size.max(1);
        let progress = options.observer();
        let assume_unique_key = options.assume_unique_key;
        let filter = &filter;
        let reader = scope.spawn(move || {
            read_source::<M>(
                client,
                filter,
                batch_size,
                assume_unique_key,
                progress,
                &sender,
            )
        });

        let transaction = Txn::begin(connection).map_err(target_error)?;
        let mut replaced = None;
        let written = prepare_full(&transaction, spec)
            .map_err(target_error)
            .and_then(|prepared| prepared)
            .and_then(|prepared| {
                replaced = Some(prepared);
                write_rows::<M>(&transaction, receiver, path, progress)
            });
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
        let replaced = replaced.expect("the writer ran");
        if rows_written == 0 && replaced.had_rows && !options.allow_empty {
            return Err(Error::WouldEmpty {
                mapping: spec.name.to_owned(),
                table: spec.source.display_name(),
                run: "a full sync",
            });
        }
        bulk_load.inserts_done(&transaction).map_err(target_error)?;
        replaced.restore(&transaction, spec).map_err(target_error)?;
        let watermark = read.watermark.as_ref();
        state::record_finished(
            &transaction,
            &MappingState::of_run(
                spec,
                crate::filter::identity(spec.source.filter.as_ref(), &options.params),
                "full",
                watermark,
                rows_read,
                started_at,
                true,
            ),
            &read.identity.to_json(),
        )
        .map_err(target_error)?;
        transaction.commit().map_err(target_error)?;
        Ok((rows_read, rows_written))
    });
    bulk_load.end(connection);
    result
}

/// Replaces the targets with empty ones (see `swap`): a table of another shape is
/// rebuilt when this mapping built it (its state row is there), and refused when
/// something else did.
pub(crate) fn prepare_full(
    transaction: &Connection,
    spec: &MappingSpec,
) -> rusqlite::Result<Result<swap::Replaced>> {
    state::ensure(transaction)?;
    let rebuild =
        state::load(transaction, spec.name)?.is_some_and(|state| state.mode != state::NEVER_SYNCED);
    swap::replace(transaction, spec, rebuild)
}

/// Writes every row the reader sends into every target; returns the rows written.
fn write_rows<M: Mapping>(
    connection: &Connection,
    receiver: Receiver<batch::RawBatch>,
    path: &Path,
    progress: &dyn Progress,
) -> Result<u64> {
    // Raw rows bound straight into multi-row INSERTs (issue 7); see `batch`.
    batch::write::<M>(connection, receiver, path, progress)
}

/// What the reader of a full sync read.
struct Read {
    /// Rows read.
    rows: u64,
    /// Rows not sent, since their soft-delete column marks them deleted.
    skipped: u64,
    /// The greatest `(cursor, key)` of the snapshot, for a mapping with a cursor.
    watermark: Option<Watermark>,
    /// The source read.
    identity: SourceIdentity,
}

/// The reader thread: snapshot, type check, COPY, decode, send in batches. Returns
/// the rows read; errors are returned, and also stop the writer by closing the queue.
fn read_source<M: Mapping>(
    client: &mut Client,
    filter: &[(&str, String)],
    batch_size: usize,
    assume_unique_key: bool,
    progress: &dyn Progress,
    sender: &SyncSender<batch::RawBatch>,
) -> Result<Read> {
    let spec = M::SPEC;
    let table = spec.source.display_name();
    let source_error = |source| Error::Source {
        mapping: spec.name.to_owned(),
        table: table.clone(),
        source,
    };
    let Opened {
        mut transaction,
        identity,
        key_indexed,
        types,
    } = open::<M>(client, filter, assume_unique_key, progress)?;

    // In key order along the key's unique index, when the table has one: the
    // targets' primary-key b-trees then grow at their right edge, however the rows
    // lie in the table (see `ordered_copy_sql`).
    let ordered = key_indexed
        .then(|| ordered_copy_sql(spec, &types))
        .flatten();
    let copy = ordered
        .clone()
        .unwrap_or_else(|| source::copy_out_sql(spec.source.select));
    if ordered.is_some() {
        // A scan of the index, which streams, rather than a sort of the whole table
        // before the first row; the planner prefers the sort for a key uncorrelated
        // with the rows' physical order.
        transaction
            .batch_execute("SET LOCAL enable_sort = off")
            .map_err(source_error)?;
    }
    // Many COPY messages (rows) per `block_on`, parsed where they are.
    let stream = transaction.copy_out(&copy).map_err(source_error)?;
    let stream_error = |source| Error::SourceStream {
        mapping: spec.name.to_owned(),
        table: table.clone(),
        source,
    };
    let mut reader = CopyReader::new(stream, types).map_err(stream_error)?;
    // Rows checked and sent raw, in recycled batches (issue 7); see `batch`.
    let batches = batch::read::<M, _>(&mut reader, batch_size, None, sender, &stream_error)?;
    let mut read = Read {
        rows: batches.rows,
        skipped: batches.skipped,
        watermark: None,
        identity,
    };
    if batches.writer_stopped {
        // The writer stopped; its error is the one to report.
        return Ok(read);
    }
    drop(reader);
    if ordered.is_some() {
        transaction
            .batch_execute("SET LOCAL enable_sort = on")
            .map_err(source_error)?;
    }
    // The watermark comes from the same snapshot: the next run goes on after it.
    read.watermark = watermark::<M>(&mut transaction)?;
    transaction.commit().map_err(source_error)?;
    Ok(read)
}

/// A source snapshot opened for a full read, checked.
pub(crate) struct Opened<'c> {
    /// The snapshot.
    pub(crate) transaction: Snapshot<'c>,
    /// The source it reads.
    pub(crate) identity: SourceIdentity,
    /// Whether a unique index backs the key (checked unless the user vouched).
    pub(crate) key_indexed: bool,
    /// The live types of the columns `select` reads, checked against the mapping.
    pub(crate) types: Vec<Type>,
}

/// Opens the run's snapshot with the `filter` settings bound, reads the source's
/// identity, checks that a unique index backs the key (unless `assume_unique_key`)
/// and that the live column types fit the mapping, and reports the row estimate.
pub(crate) fn open<'c, M: Mapping>(
    client: &'c mut Client,
    filter: &[(&str, String)],
    assume_unique_key: bool,
    progress: &dyn Progress,
) -> Result<Opened<'c>> {
    let spec = M::SPEC;
    let table = spec.source.display_name();
    let source_error = |source| Error::Source {
        mapping: spec.name.to_owned(),
        table: table.clone(),
        source,
    };
    let mut transaction = client.snapshot(filter).map_err(source_error)?;
    let (schema, table_name) = (spec.source.schema, spec.source.table);
    let identity = transaction
        .query_one(guard::IDENTITY, &[&schema, &table_name])
        .map_err(source_error)?;
    let system = if identity.get::<_, bool>(0) {
        transaction
            .query_one(guard::SYSTEM_IDENTIFIER, &[])
            .map_err(source_error)?
            .get(0)
    } else {
        None
    };
    let identity = SourceIdentity::new(spec, system, identity.get(1), identity.get(2));
    // A missing table is left to the SELECT, whose error names it.
    let mut key_indexed = false;
    if !assume_unique_key && identity.oid.is_some() {
        let key = guard::key_columns(spec);
        let unique: bool = transaction
            .query_one(guard::KEY_IS_UNIQUE, &[&schema, &table_name, &key])
            .map_err(source_error)?
            .get(0);
        if !unique {
            return Err(guard::key_not_unique(spec));
        }
        key_indexed = true;
    }
    if let Some(rows) = estimate(&mut transaction, spec).map_err(source_error)? {
        progress.estimate(spec, rows);
    }
    let statement = transaction
        .prepare(spec.source.select)
        .map_err(source_error)?;
    let types: Vec<Type> = source::column_types(statement.columns());
    decode::check_types::<M>(&types)?;
    Ok(Opened {
        transaction,
        identity,
        key_indexed,
        types,
    })
}

/// The greatest `(cursor, key)` of the snapshot, for a mapping with a cursor
/// (`None` without one, or for a source without rows).
///
/// # Errors
///
/// A NULL or `infinity` cursor, named by key; a source error.
pub(crate) fn watermark<M: Mapping>(transaction: &mut Snapshot<'_>) -> Result<Option<Watermark>> {
    let spec = M::SPEC;
    let source_error = |source| Error::Source {
        mapping: spec.name.to_owned(),
        table: spec.source.display_name(),
        source,
    };
    let mut found = None;
    if let Some(incremental) = &spec.source.incremental {
        let row = transaction
            .query_opt(incremental.watermark, &[])
            .map_err(source_error)?;
        if let Some(row) = row {
            let types: Vec<Type> = row.columns().iter().map(|c| c.type_().clone()).collect();
            let fields = (0..row.len())
                .map(|index| row.try_get::<_, RawField<'_>>(index).map(|field| field.0))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(source_error)?;
            found = Watermark::from_fields(&types, &fields);
            let Some(watermark) = &found else {
                return Err(
                    incremental::null_cursor(spec, transaction)?.unwrap_or_else(|| {
                        Error::Incremental {
                            mapping: spec.name.to_owned(),
                            message: "the greatest cursor of the source could not be read"
                                .to_owned(),
                        }
                    }),
                );
            };
            // The greatest cursor: `infinity` would freeze every later run there.
            let key_row = SourceRow::from_slices(&types[1..], &fields[1..]);
            let key = || source::key_text(&key_row);
            guard::check_cursor(
                spec,
                &types[0],
                fields[0].unwrap_or_default(),
                &watermark.display_cursor(),
                &key,
                &mut false,
            )?;
        }
    }
    Ok(found)
}

/// The full sync's `COPY` in key order, `COPY (SELECT .. ORDER BY "k1", ..) TO
/// STDOUT (FORMAT binary)`, when every key column is read as it is stored (`types`
/// are the live column types), so that PostgreSQL can read it along the key's
/// unique index; `None` for a key read through a cast to text (`interval`, `inet`),
/// which would be sorted instead.
///
/// Rows in key order cost SQLite one b-tree append each: in random order (uuid
/// keys, hashes) every row's key lands on a random page of the primary-key b-tree,
/// and once that b-tree outgrows SQLite's page cache most rows read one page and
/// write another. For integer and uuid keys PostgreSQL's order is SQLite's.
fn ordered_copy_sql(spec: &MappingSpec, types: &[Type]) -> Option<String> {
    let plain = spec.source.key.iter().all(|&index| {
        types.get(index).is_some_and(|ty| {
            [
                Type::INT2,
                Type::INT4,
                Type::INT8,
                Type::UUID,
                Type::TEXT,
                Type::VARCHAR,
                Type::BPCHAR,
                Type::DATE,
                Type::TIMESTAMP,
                Type::TIMESTAMPTZ,
                Type::NUMERIC,
            ]
            .contains(ty)
        })
    });
    if !plain || spec.source.key.is_empty() {
        return None;
    }
    let order: Vec<String> = spec
        .source
        .key
        .iter()
        .map(|&index| quote(spec.source.columns[index].name))
        .collect();
    Some(source::copy_out_sql(&format!(
        "{} ORDER BY {}",
        spec.source.select,
        order.join(", ")
    )))
}

/// The planner's row estimate of the source table (`pg_class.reltuples`), read in
/// the run's snapshot; `None` when PostgreSQL has not estimated it yet (`-1`, or `0`
/// before PostgreSQL 14) or the relation is partitioned. On the full sync's reader
/// connection, and on the snapshot of a capture's first copy.
pub(crate) fn estimate(
    transaction: &mut Snapshot<'_>,
    spec: &MappingSpec,
) -> std::result::Result<Option<u64>, tokio_postgres::Error> {
    let name = quote_qualified(spec.source.schema, spec.source.table);
    let row = transaction.query_opt(
        "SELECT reltuples::float8 FROM pg_catalog.pg_class WHERE oid = to_regclass($1)",
        &[&name],
    )?;
    let reltuples: f64 = match row {
        Some(row) => row.get(0),
        None => return Ok(None),
    };
    Ok((reltuples >= 1.0).then_some(reltuples.round() as u64))
}
