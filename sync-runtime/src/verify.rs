//! `data-sync verify`: compares each target table with the source, by row count and
//! an order-independent checksum, and lists the keys that differ.
//!
//! Both sides are hashed from the values a sync writes. A source row (read in one
//! snapshot with the mapping's own COPY, decoder and encoders, soft-deleted rows
//! left out, as a sync leaves them out) is bound, per target, to `SELECT ?1, ..`
//! on a scratch SQLite connection, so its values are exactly the ones a sync binds
//! to the target's INSERT; a target row is read back as stored. Each row hashes to
//! 128 bits (two SipHash-1-3 streams over tagged values), and a table's checksum is
//! the wrapping sum of its row hashes: independent of order, and sensitive to a row
//! that appears twice. Only a table whose count or checksum differs is read again
//! (same source snapshot, same SQLite read transaction), into a temporary SQLite
//! file of `(key, row hash)` on each side, where SQL joins find the missing, extra
//! and changed keys: memory stays flat, and keys compare as SQLite compares them.

use std::collections::hash_map::DefaultHasher;
use std::hash::Hasher;
use std::io::BufReader;
use std::path::Path;

use postgres::types::Type;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, Statement};
use sync_sql::ident::quote;

use crate::Mapping;
use crate::error::bind_error;
use crate::error::{Error, Result};
use crate::source::config::SourceConfig;
use crate::source::decode::{check_types, decode_row};
use crate::source::{self, CopyReader};
use crate::spec::{MappingSpec, TargetSpec};

/// What `verify` found for one mapping.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Verification {
    /// The mapping name.
    pub mapping: String,
    /// One entry per target table, parents first.
    pub targets: Vec<TargetVerification>,
}

impl Verification {
    /// Whether every target table equals the source.
    pub fn is_equal(&self) -> bool {
        self.targets.iter().all(|target| target.equal)
    }
}

/// What `verify` found for one target table.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TargetVerification {
    /// The target table.
    pub table: String,
    /// Whether the table holds exactly the rows the source says it should.
    pub equal: bool,
    /// Source rows the table should hold (soft-deleted rows left out).
    pub source_rows: u64,
    /// Rows the table holds (0 when it does not exist).
    pub target_rows: u64,
    /// The source side's checksum, 32 hex digits.
    pub source_checksum: String,
    /// The table's checksum, 32 hex digits.
    pub target_checksum: String,
    /// Keys in the source but not in the table.
    pub missing: u64,
    /// Keys in the table but not in the source.
    pub extra: u64,
    /// Keys on both sides whose values differ.
    pub changed: u64,
    /// Up to the asked-for number of differing keys: missing, extra, then changed,
    /// each in key order.
    pub differences: Vec<KeyDifference>,
}

/// One key that differs.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct KeyDifference {
    /// `missing`, `extra` or `changed`.
    pub kind: &'static str,
    /// The key (the table's primary key columns), as text: `42`, `"a", 7`.
    pub key: String,
}

/// Compares the targets of mapping `M` in the SQLite file `target` with the source,
/// listing up to `max_keys` differing keys per target table.
///
/// # Errors
///
/// Connection, source, type and value errors as for a sync, and [`Error::Target`]
/// when the file cannot be read. Differences are not errors: see
/// [`Verification::is_equal`].
pub fn verify<M: Mapping>(
    source: &SourceConfig,
    target: &Path,
    max_keys: usize,
) -> Result<Verification> {
    let spec = M::SPEC;
    let target_error = |source| Error::Target {
        path: target.to_owned(),
        source: Box::new(source),
    };
    let connection = crate::target::open_for_reading(target)?;
    // One read transaction: both passes see the same target contents.
    connection.execute_batch("BEGIN").map_err(target_error)?;
    let encoder = Connection::open_in_memory().map_err(target_error)?;
    let mut encoders = spec
        .targets
        .iter()
        .map(|table| encoder.prepare(&select_parameters(table.columns.len())))
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(target_error)?;

    let mut client = source.connect()?;
    let _cancel = crate::sync::signal::cancel_on_signal(source, &client);
    let mut transaction = source::snapshot(&mut client, source.statement_timeout())
        .map_err(|error| source_error(spec, error))?;

    let count = spec.targets.len();
    let mut source_sides = vec![Side::default(); count];
    read_source::<M>(
        &mut transaction,
        target,
        &mut encoders,
        &mut |index, row| {
            let hash = row_hash(row, spec.targets[index].columns.len()).map_err(target_error)?;
            source_sides[index].add(hash);
            Ok(())
        },
    )?;
    let mut target_sides = vec![Side::default(); count];
    for (index, table) in spec.targets.iter().enumerate() {
        crate::sync::signal::check(spec)?;
        let side = &mut target_sides[index];
        read_target(&connection, target, table, &mut |row| {
            side.add(row_hash(row, table.columns.len()).map_err(target_error)?);
            Ok(())
        })?;
    }

    let differing: Vec<usize> = (0..count)
        .filter(|&index| source_sides[index] != target_sides[index])
        .collect();
    let mut differences = vec![Differences::default(); count];
    if !differing.is_empty() {
        let scratch = Scratch::new(spec, &differing).map_err(target_error)?;
        read_source::<M>(
            &mut transaction,
            target,
            &mut encoders,
            &mut |index, row| {
                if !differing.contains(&index) {
                    return Ok(());
                }
                let hash =
                    row_hash(row, spec.targets[index].columns.len()).map_err(target_error)?;
                scratch.insert("s", index, row, hash).map_err(target_error)
            },
        )?;
        for &index in &differing {
            let table = &spec.targets[index];
            read_target(&connection, target, table, &mut |row| {
                let hash = row_hash(row, table.columns.len()).map_err(target_error)?;
                scratch.insert("t", index, row, hash).map_err(target_error)
            })?;
            differences[index] = scratch.compare(index, max_keys).map_err(target_error)?;
        }
    }
    transaction
        .commit()
        .map_err(|error| source_error(spec, error))?;
    connection.execute_batch("COMMIT").map_err(target_error)?;

    let targets = spec
        .targets
        .iter()
        .zip(source_sides.iter().zip(&target_sides))
        .zip(differences)
        .map(
            |((table, (source_side, target_side)), differences)| TargetVerification {
                table: table.name.to_owned(),
                equal: source_side == target_side,
                source_rows: source_side.rows,
                target_rows: target_side.rows,
                source_checksum: format!("{:032x}", source_side.checksum),
                target_checksum: format!("{:032x}", target_side.checksum),
                missing: differences.missing,
                extra: differences.extra,
                changed: differences.changed,
                differences: differences.keys,
            },
        )
        .collect();
    Ok(Verification {
        mapping: spec.name.to_owned(),
        targets,
    })
}

/// The row count and checksum of one side of one table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Side {
    rows: u64,
    checksum: u128,
}

impl Side {
    fn add(&mut self, hash: u128) {
        self.rows += 1;
        self.checksum = self.checksum.wrapping_add(hash);
    }
}

/// The differing keys of one table.
#[derive(Clone, Debug, Default)]
struct Differences {
    missing: u64,
    extra: u64,
    changed: u64,
    keys: Vec<KeyDifference>,
}

fn source_error(spec: &MappingSpec, source: postgres::Error) -> Error {
    crate::source::guard::classify(
        spec,
        Error::Source {
            mapping: spec.name.to_owned(),
            table: spec.source.display_name(),
            source,
        },
    )
}

/// `SELECT ?1, ?2, .., ?count`: binding a row for a target and reading it back gives
/// the values the target's INSERT would get.
fn select_parameters(count: usize) -> String {
    let parameters: Vec<String> = (1..=count).map(|index| format!("?{index}")).collect();
    format!("SELECT {}", parameters.join(", "))
}

/// Streams the source snapshot with the mapping's COPY and decoder, and hands each
/// row not soft-deleted, encoded for each target, to `each(target, values)`.
fn read_source<M: Mapping>(
    transaction: &mut postgres::Transaction<'_>,
    path: &Path,
    encoders: &mut [Statement<'_>],
    each: &mut dyn FnMut(usize, &rusqlite::Row<'_>) -> Result<()>,
) -> Result<()> {
    let spec = M::SPEC;
    let statement = transaction
        .prepare(spec.source.select)
        .map_err(|error| source_error(spec, error))?;
    let types: Vec<Type> = crate::source::column_types(statement.columns());
    check_types::<M>(&types)?;
    let copy = crate::source::copy_out_sql(spec.source.select);
    let stream = transaction
        .copy_out(copy.as_str())
        .map_err(|error| source_error(spec, error))?;
    let stream_error = |source| Error::SourceStream {
        mapping: spec.name.to_owned(),
        table: spec.source.display_name(),
        source,
    };
    let mut reader = CopyReader::new(BufReader::with_capacity(256 * 1024, stream), types)
        .map_err(stream_error)?;
    let mut rows = 0u64;
    while let Some(row) = reader.next_row().map_err(stream_error)? {
        rows += 1;
        if rows.is_multiple_of(1024) {
            crate::sync::signal::check(spec)?;
        }
        // A sync writes no row its soft-delete column marks deleted.
        if spec
            .source
            .soft_delete
            .is_some_and(|index| row.raw(index).is_some())
        {
            continue;
        }
        let decoded = decode_row::<M>(&row)?;
        for (index, encoder) in encoders.iter_mut().enumerate() {
            decoded
                .bind(index, encoder)
                .map_err(|error| bind_error(spec, index, &|| decoded.key(), error))?;
            let mut encoded = encoder.raw_query();
            let values = encoded
                .next()
                .map_err(|source| Error::Target {
                    path: path.to_owned(),
                    source: Box::new(source),
                })?
                .expect("a SELECT without FROM returns one row");
            each(index, values)?;
        }
    }
    Ok(())
}

/// Hands each row of target table `table` (its columns in table order) to `each`;
/// none when the table does not exist.
fn read_target(
    connection: &Connection,
    path: &Path,
    table: &TargetSpec,
    each: &mut dyn FnMut(&rusqlite::Row<'_>) -> Result<()>,
) -> Result<()> {
    let target_error = |source| Error::Target {
        path: path.to_owned(),
        source: Box::new(source),
    };
    let exists = crate::target::table_exists(connection, table.name).map_err(target_error)?;
    if !exists {
        return Ok(());
    }
    let columns: Vec<String> = table
        .columns
        .iter()
        .map(|column| quote(column.name))
        .collect();
    let sql = format!("SELECT {} FROM {}", columns.join(", "), quote(table.name));
    let mut statement = connection.prepare(&sql).map_err(target_error)?;
    let mut rows = statement.query([]).map_err(target_error)?;
    while let Some(row) = rows.next().map_err(target_error)? {
        each(row)?;
    }
    Ok(())
}

/// A row's 128-bit hash over its first `width` values.
fn row_hash(row: &rusqlite::Row<'_>, width: usize) -> rusqlite::Result<u128> {
    let mut high = DefaultHasher::new();
    let mut low = DefaultHasher::new();
    high.write_u8(0x68);
    low.write_u8(0x6c);
    for index in 0..width {
        let value = row.get_ref(index)?;
        hash_value(value, &mut high);
        hash_value(value, &mut low);
    }
    Ok((u128::from(high.finish()) << 64) | u128::from(low.finish()))
}

/// Feeds one value to `hasher`, tagged with its storage class.
fn hash_value(value: ValueRef<'_>, hasher: &mut DefaultHasher) {
    match value {
        ValueRef::Null => hasher.write_u8(0),
        ValueRef::Integer(integer) => {
            hasher.write_u8(1);
            hasher.write_i64(integer);
        }
        ValueRef::Real(real) => {
            hasher.write_u8(2);
            // SQLite may store -0.0 as the integer 0 and read it back as 0.0.
            hasher.write_u64(if real == 0.0 { 0 } else { real.to_bits() });
        }
        ValueRef::Text(text) => {
            hasher.write_u8(3);
            hasher.write_usize(text.len());
            hasher.write(text);
        }
        ValueRef::Blob(blob) => {
            hasher.write_u8(4);
            hasher.write_usize(blob.len());
            hasher.write(blob);
        }
    }
}

/// A temporary SQLite file with, per differing target `i`, tables `s{i}` (source)
/// and `t{i}` (target) of `(k0, k1, .., h)`: the key values and the row hash.
struct Scratch {
    connection: Connection,
    /// Per target: the positions of the key columns among its columns.
    keys: Vec<Vec<usize>>,
}

impl Scratch {
    fn new(spec: &MappingSpec, differing: &[usize]) -> rusqlite::Result<Self> {
        // An empty name: a private file SQLite deletes when it is closed.
        let connection = Connection::open("")?;
        let keys: Vec<Vec<usize>> = spec
            .targets
            .iter()
            .map(|table| {
                let keys: Vec<usize> = (0..table.columns.len())
                    .filter(|&index| table.columns[index].primary_key)
                    .collect();
                if keys.is_empty() {
                    (0..table.columns.len()).collect()
                } else {
                    keys
                }
            })
            .collect();
        for &index in differing {
            let columns = key_columns(keys[index].len());
            for side in ["s", "t"] {
                connection.execute_batch(&format!(
                    "CREATE TABLE {side}{index} ({columns}, h BLOB);
                     CREATE INDEX {side}{index}_k ON {side}{index} ({columns});"
                ))?;
            }
        }
        Ok(Scratch { connection, keys })
    }

    /// Adds a row of target `index` to side `side` (`s` or `t`).
    fn insert(
        &self,
        side: &str,
        index: usize,
        row: &rusqlite::Row<'_>,
        hash: u128,
    ) -> rusqlite::Result<()> {
        let keys = &self.keys[index];
        let parameters: Vec<String> = (1..=keys.len() + 1).map(|n| format!("?{n}")).collect();
        let mut insert = self.connection.prepare_cached(&format!(
            "INSERT INTO {side}{index} VALUES ({})",
            parameters.join(", ")
        ))?;
        for (position, &column) in keys.iter().enumerate() {
            insert.raw_bind_parameter(
                position + 1,
                rusqlite::types::ToSqlOutput::Borrowed(row.get_ref(column)?),
            )?;
        }
        insert.raw_bind_parameter(keys.len() + 1, &hash.to_be_bytes()[..])?;
        insert.raw_execute()?;
        Ok(())
    }

    /// Counts the missing, extra and changed keys of target `index`, and lists up to
    /// `max_keys` of them.
    fn compare(&self, index: usize, max_keys: usize) -> rusqlite::Result<Differences> {
        let width = self.keys[index].len();
        let same_key = |left: &str, right: &str| {
            (0..width)
                .map(|column| format!("{right}.k{column} IS {left}.k{column}"))
                .collect::<Vec<_>>()
                .join(" AND ")
        };
        let prefixed = |prefix: &str| {
            (0..width)
                .map(|column| format!("{prefix}.k{column}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let queries = [
            (
                "missing",
                format!(
                    "FROM s{index} AS a WHERE NOT EXISTS (SELECT 1 FROM t{index} AS b WHERE {})",
                    same_key("a", "b")
                ),
            ),
            (
                "extra",
                format!(
                    "FROM t{index} AS a WHERE NOT EXISTS (SELECT 1 FROM s{index} AS b WHERE {})",
                    same_key("a", "b")
                ),
            ),
            (
                "changed",
                format!(
                    "FROM s{index} AS a JOIN t{index} AS b ON {} WHERE a.h IS NOT b.h",
                    same_key("a", "b")
                ),
            ),
        ];
        let mut differences = Differences::default();
        for (kind, from) in queries {
            let count: i64 =
                self.connection
                    .query_row(&format!("SELECT count(*) {from}"), [], |row| row.get(0))?;
            let count = u64::try_from(count).unwrap_or(0);
            match kind {
                "missing" => differences.missing = count,
                "extra" => differences.extra = count,
                _ => differences.changed = count,
            }
            let room = max_keys.saturating_sub(differences.keys.len());
            if room == 0 || count == 0 {
                continue;
            }
            let mut statement = self.connection.prepare(&format!(
                "SELECT {} {from} ORDER BY {} LIMIT {room}",
                prefixed("a"),
                prefixed("a")
            ))?;
            let mut rows = statement.query([])?;
            while let Some(row) = rows.next()? {
                let key = (0..width)
                    .map(|column| row.get_ref(column).map(crate::value::display_value))
                    .collect::<rusqlite::Result<Vec<_>>>()?
                    .join(", ");
                differences.keys.push(KeyDifference { kind, key });
            }
        }
        Ok(differences)
    }
}

/// `k0, k1, ..`.
fn key_columns(width: usize) -> String {
    (0..width)
        .map(|column| format!("k{column}"))
        .collect::<Vec<_>>()
        .join(", ")
}
