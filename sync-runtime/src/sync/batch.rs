//! The hot path of a full sync: the reader checks each row of the binary COPY stream
//! and appends its raw bytes to a [`RawBatch`]; the writer binds every target's
//! columns straight from those bytes (no struct, no `String` per field) into
//! multi-row `INSERT` statements. Batches go back to the reader to be refilled, so
//! the steady state allocates nothing.

use std::io::{self, BufRead};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, SyncSender, TryRecvError, channel};

use rusqlite::Connection;
use tokio_postgres::types::Type;

use crate::Mapping;
use crate::error::{Error, Result};
use crate::error::{bind_error, decode_error, write_error};
use crate::progress::Progress;
use crate::source::{CopyReader, SourceRow, row_key};
use crate::spec::{MappingSpec, TargetSpec};
use crate::target::statement::Statement;
use crate::target::target_error;

/// Rows per multi-row `INSERT`: measured with the reference targets, 8 rows per
/// statement gain most of the speed-up over one, 32 a little more, 64 lose again.
const ROWS_PER_STATEMENT: usize = 32;

/// SQLite's smallest default limit on a statement's parameters (999 before 3.32).
const MAX_PARAMETERS: usize = 999;

/// The row data at which a batch ends even before `--batch-size` rows (issue 19):
/// with the queue's few batches in flight, memory stays within a small multiple of
/// this plus the largest row, however wide the rows. Rows of the reference table
/// (about 100 bytes) fill batches of 10,000 rows long before it.
pub(crate) const BATCH_BYTES: usize = 4 << 20;

/// Rows of the source as they came, checked: one buffer of field bytes, and the
/// range of every field in it.
pub(crate) struct RawBatch {
    types: Arc<[Type]>,
    buffer: Vec<u8>,
    fields: Vec<Option<Range<usize>>>,
    /// Where the writer hands the batch back to the reader.
    recycle: Sender<RawBatch>,
}

impl RawBatch {
    fn new(types: Arc<[Type]>, recycle: Sender<RawBatch>) -> RawBatch {
        RawBatch {
            types,
            buffer: Vec::new(),
            fields: Vec::new(),
            recycle,
        }
    }

    /// The number of rows.
    pub(crate) fn len(&self) -> usize {
        self.fields.len().checked_div(self.types.len()).unwrap_or(0)
    }

    /// Row `index`.
    pub(crate) fn row(&self, index: usize) -> SourceRow<'_> {
        let width = self.types.len();
        SourceRow::from_ranges(
            &self.types,
            &self.buffer,
            &self.fields[index * width..(index + 1) * width],
        )
    }

    /// Hands the batch back to the reader, emptied; dropped if the reader is done.
    pub(crate) fn recycle(mut self) {
        self.buffer.clear();
        self.fields.clear();
        let recycle = self.recycle.clone();
        let _ = recycle.send(self);
    }
}

/// What [`read`] read.
pub(crate) struct Read {
    /// Rows read.
    pub(crate) rows: u64,
    /// Rows not sent, since their soft-delete column marks them deleted.
    pub(crate) skipped: u64,
    /// Whether the writer stopped before the end of the stream (its error is the one
    /// to report).
    pub(crate) writer_stopped: bool,
}

/// The reader's loop: every row of `reader` checked as `M` and sent in batches of
/// `batch_size` rows or [`BATCH_BYTES`] of row data, whichever comes first, leaving
/// out those a soft-delete column marks deleted. With `split`, a batch also ends
/// before a row whose field `split` differs from the batch's first row, so that
/// every batch holds one partition's rows (the rows come ordered by it).
///
/// # Errors
///
/// A stream error (through `stream_error`), or a value that does not decode, named
/// by mapping, table, key and column.
pub(crate) fn read<M: Mapping, R: BufRead>(
    reader: &mut CopyReader<R>,
    batch_size: usize,
    split: Option<usize>,
    sender: &SyncSender<RawBatch>,
    stream_error: &dyn Fn(io::Error) -> Error,
) -> Result<Read> {
    let spec = M::SPEC;
    let types: Arc<[Type]> = reader.types().into();
    let (recycle, recycled) = channel();
    let mut read = Read {
        rows: 0,
        skipped: 0,
        writer_stopped: false,
    };
    let mut batch = RawBatch::new(Arc::clone(&types), recycle.clone());
    let mut rows_in_batch = 0;
    loop {
        let buffer_end = batch.buffer.len();
        let fields_end = batch.fields.len();
        if !reader
            .read_row_into(&mut batch.buffer, &mut batch.fields)
            .map_err(stream_error)?
        {
            break;
        }
        read.rows += 1;
        let row = batch.row(rows_in_batch);
        M::check(&row).map_err(|error| decode_error(spec, &row, error))?;
        // A row its soft-delete column marks deleted is not written.
        if spec
            .source
            .soft_delete
            .is_some_and(|index| row.raw(index).is_some())
        {
            read.skipped += 1;
            batch.buffer.truncate(buffer_end);
            batch.fields.truncate(fields_end);
            continue;
        }
        // Another partition: the row moves to a batch of its own.
        if let Some(column) = split
            && rows_in_batch > 0
            && batch.row(0).raw(column) != batch.row(rows_in_batch).raw(column)
        {
            let mut next = next_batch(&recycled, &types, &recycle);
            next.buffer.extend_from_slice(&batch.buffer[buffer_end..]);
            next.fields
                .extend(batch.fields[fields_end..].iter().map(|field| {
                    field
                        .as_ref()
                        .map(|range| range.start - buffer_end..range.end - buffer_end)
                }));
            batch.buffer.truncate(buffer_end);
            batch.fields.truncate(fields_end);
            let full = std::mem::replace(&mut batch, next);
            rows_in_batch = 0;
            if sender.send(full).is_err() {
                read.writer_stopped = true;
                return Ok(read);
            }
        }
        rows_in_batch += 1;
        if rows_in_batch == batch_size || batch.buffer.len() >= BATCH_BYTES {
            let next = next_batch(&recycled, &types, &recycle);
            let full = std::mem::replace(&mut batch, next);
            rows_in_batch = 0;
            if sender.send(full).is_err() {
                read.writer_stopped = true;
                return Ok(read);
            }
        }
    }
    if rows_in_batch > 0 {
        let _ = sender.send(batch);
    }
    Ok(read)
}

/// A batch the writer handed back, or a new one.
fn next_batch(
    recycled: &Receiver<RawBatch>,
    types: &Arc<[Type]>,
    recycle: &Sender<RawBatch>,
) -> RawBatch {
    match recycled.try_recv() {
        Ok(next) => next,
        Err(TryRecvError::Empty | TryRecvError::Disconnected) => {
            RawBatch::new(Arc::clone(types), recycle.clone())
        }
    }
}

/// How many rows one multi-row `INSERT` of every target of `spec` takes: the same
/// for all targets, so that parents are written before children.
fn rows_per_statement(spec: &MappingSpec) -> usize {
    let widest = spec
        .targets
        .iter()
        .map(|target| target.columns.len())
        .max()
        .unwrap_or(1)
        .max(1);
    ROWS_PER_STATEMENT.min(MAX_PARAMETERS / widest).max(1)
}

/// `target.insert` with `rows` rows of parameters: `INSERT INTO "t" ("a", "b")
/// VALUES (?1, ?2), (?3, ?4)`. The identifiers come quoted from the spec.
fn multi_row_insert(target: &TargetSpec, rows: usize) -> String {
    let (head, _) = target
        .insert
        .rsplit_once(" VALUES ")
        .expect("a generated INSERT has VALUES");
    let width = target.columns.len();
    let tuples: Vec<String> = (0..rows)
        .map(|row| {
            let parameters: Vec<String> = (1..=width)
                .map(|column| format!("?{}", row * width + column))
                .collect();
            format!("({})", parameters.join(", "))
        })
        .collect();
    format!("{head} VALUES {}", tuples.join(", "))
}

/// The writer's loop: every row of every batch into every target, parents first;
/// returns the rows written.
///
/// # Errors
///
/// A value SQLite cannot take, or a refused row, named by mapping, table and key.
pub(crate) fn write<M: Mapping>(
    connection: &Connection,
    receiver: Receiver<RawBatch>,
    path: &Path,
    progress: &dyn Progress,
) -> Result<u64> {
    let spec = M::SPEC;
    let mut writer = Writer::new::<M>(connection, path)?;
    for batch in receiver {
        // SIGINT or SIGTERM: stop; the run's one transaction rolls back.
        crate::sync::signal::check(spec)?;
        writer.write::<M>(&batch)?;
        progress.advance(spec, writer.rows);
        batch.recycle();
    }
    Ok(writer.rows)
}

/// The prepared inserts of every target of one mapping on one connection, and the
/// rows they wrote.
pub(crate) struct Writer<'c> {
    connection: &'c Connection,
    per_statement: usize,
    single: Vec<Statement<'c>>,
    multi: Vec<Statement<'c>>,
    /// Rows written so far.
    pub(crate) rows: u64,
}

impl<'c> Writer<'c> {
    /// Prepares the inserts of mapping `M` on `connection`, the file `path`.
    pub(crate) fn new<M: Mapping>(connection: &'c Connection, path: &Path) -> Result<Self> {
        let spec = M::SPEC;
        let target_error = target_error(path);
        let per_statement = rows_per_statement(spec);
        // Text and blobs bound without a copy, from the batch (see `target::statement`).
        let single = spec
            .targets
            .iter()
            .map(|target| Statement::prepare(connection, target.insert))
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(target_error)?;
        let multi = spec
            .targets
            .iter()
            .map(|target| Statement::prepare(connection, &multi_row_insert(target, per_statement)))
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(target_error)?;
        Ok(Writer {
            connection,
            per_statement,
            single,
            multi,
            rows: 0,
        })
    }

    /// Writes every row of `batch` into every target, parents first.
    pub(crate) fn write<M: Mapping>(&mut self, batch: &RawBatch) -> Result<()> {
        let per_statement = self.per_statement;
        let count = batch.len();
        let mut start = 0;
        while per_statement > 1 && count - start >= per_statement {
            let chunk = start..start + per_statement;
            for (index, statement) in self.multi.iter_mut().enumerate() {
                insert_many::<M>(
                    self.connection,
                    batch,
                    chunk.clone(),
                    index,
                    statement,
                    &mut self.single[index],
                )?;
            }
            start += per_statement;
        }
        for row in start..count {
            let row = batch.row(row);
            for (index, statement) in self.single.iter_mut().enumerate() {
                insert_one::<M>(&row, index, statement)?;
            }
        }
        self.rows += count as u64;
        Ok(())
    }
}

/// Inserts row `row` into target `target` with its single-row statement.
fn insert_one<M: Mapping>(
    row: &SourceRow<'_>,
    target: usize,
    statement: &mut Statement<'_>,
) -> Result<()> {
    let spec = M::SPEC;
    let mut bindings = statement.bindings();
    M::bind_row(row, target, &mut bindings, 0)
        .map_err(|error| bind_error(spec, target, &|| row_key(spec, row), error))?;
    bindings
        .execute()
        .map_err(|source| write_error(spec, target, &|| row_key(spec, row), source))?;
    Ok(())
}

/// Inserts the rows `rows` of `batch` into target `target` with one multi-row
/// statement. When SQLite refuses it and keeps the transaction, the rows go again
/// one by one, so that the error names the refused row; the run fails either way.
fn insert_many<M: Mapping>(
    connection: &Connection,
    batch: &RawBatch,
    rows: Range<usize>,
    target: usize,
    statement: &mut Statement<'_>,
    single: &mut Statement<'_>,
) -> Result<()> {
    let spec = M::SPEC;
    let width = spec.targets[target].columns.len();
    let mut bindings = statement.bindings();
    for (position, index) in rows.clone().enumerate() {
        let row = batch.row(index);
        M::bind_row(&row, target, &mut bindings, position * width)
            .map_err(|error| bind_error(spec, target, &|| row_key(spec, &row), error))?;
    }
    let Err(source) = bindings.execute() else {
        return Ok(());
    };
    if !connection.is_autocommit() {
        // SQLite undid the statement alone: the rows go again one by one, and the
        // refused one fails with its own key.
        for index in rows.clone() {
            insert_one::<M>(&batch.row(index), target, single)?;
        }
    }
    let keys = || {
        format!(
            "{} to {}",
            row_key(spec, &batch.row(rows.start)),
            row_key(spec, &batch.row(rows.end - 1))
        )
    };
    Err(write_error(spec, target, &keys, source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_row_insert_numbers_parameters_row_by_row() {
        let target = TargetSpec {
            name: "t",
            columns: &[],
            create: "",
            strict: true,
            insert: r#"INSERT INTO "a VALUES b" ("x", "y") VALUES (?1, ?2)"#,
            upsert: "",
            delete_all: "",
            delete_by_key: "",
        };
        let columns = [
            crate::spec::TargetColumn {
                name: "x",
                sqlite_type: "INTEGER",
                not_null: true,
                primary_key: true,
                references: None,
                field: Some(0),
                computed: None,
                transform: None,
            },
            crate::spec::TargetColumn {
                name: "y",
                sqlite_type: "TEXT",
                not_null: false,
                primary_key: false,
                references: None,
                field: Some(1),
                computed: None,
                transform: None,
            },
        ];
        let columns: &'static [_] = Box::leak(Box::new(columns));
        let target = TargetSpec { columns, ..target };
        assert_eq!(
            multi_row_insert(&target, 3),
            r#"INSERT INTO "a VALUES b" ("x", "y") VALUES (?1, ?2), (?3, ?4), (?5, ?6)"#
        );
    }
}
