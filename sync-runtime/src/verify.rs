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
//!
//! [`repair`] goes on from there, in the same source snapshot and in one SQLite
//! write transaction held from the first read: it deletes the extra keys (children
//! first) and reads the source a third time, upserting (parents first) just the rows
//! whose key is missing or changed, so a target a cursor missed changes of heals at
//! the cost of the difference.

use std::collections::hash_map::DefaultHasher;
use std::hash::Hasher;
use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, Statement};
use sync_sql::ident::quote;
use tokio_postgres::types::Type;

use crate::Mapping;
use crate::error::{Error, Result};
use crate::error::{bind_error, write_error};
use crate::source::CopyReader;
use crate::source::client::Snapshot;
use crate::source::config::SourceConfig;
use crate::source::decode::{check_types, decode_row};
use crate::spec::{MappingSpec, TargetSpec};
use crate::target::target_error;

mod fanout;

pub use self::fanout::{FanoutVerification, FileOutcome, FileVerification, verify_fanout};

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
    /// What [`repair`] did to the table; `None` for [`verify`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repaired: Option<Repaired>,
}

/// What [`repair`] did to one target table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Repaired {
    /// Rows copied from the source: the missing and changed keys.
    pub copied: u64,
    /// Rows deleted: the extra keys.
    pub deleted: u64,
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
    compare::<M>(source, target, max_keys, false)
}

/// Compares as [`verify`] does, then repairs every differing target table: the rows
/// of the missing and changed keys are copied from the same source snapshot
/// (upserted, parents first) and the extra keys deleted (children first), all in one
/// SQLite transaction, held from the first read of the target, so no run can
/// interleave. The stored state (watermark, last run) is left as it is. Each
/// [`TargetVerification`] says what differed and, in `repaired`, what was done.
///
/// # Errors
///
/// As [`verify`], and a target table that does not match the mapping
/// ([`Error::SchemaMismatch`]) or a row SQLite refuses; nothing is repaired then.
pub fn repair<M: Mapping>(
    source: &SourceConfig,
    target: &Path,
    max_keys: usize,
) -> Result<Verification> {
    compare::<M>(source, target, max_keys, true).map_err(|error| error.with_file_faults_of(target))
}

/// [`verify`], and with `repair` [`repair`].
fn compare<M: Mapping>(
    source: &SourceConfig,
    target: &Path,
    max_keys: usize,
    repair: bool,
) -> Result<Verification> {
    let spec = M::SPEC;
    let target_error = target_error(target);
    let connection = if repair {
        let connection = crate::target::open(target)?;
        // One write transaction from the first read: what is compared is what is
        // repaired, and no run writes in between.
        connection
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(target_error)?;
        crate::target::ensure_tables(&connection, spec).map_err(target_error)??;
        connection
    } else {
        let connection = crate::target::open_for_reading(target)?;
        // One read transaction: both passes see the same target contents.
        connection.execute_batch("BEGIN").map_err(target_error)?;
        connection
    };
    let encoder = Connection::open_in_memory().map_err(target_error)?;
    let mut encoders = spec
        .targets
        .iter()
        .map(|table| encoder.prepare(&select_parameters(table.columns.len())))
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(target_error)?;

    // The filter's parameters are those the targets were built with.
    let stored = crate::target::state::load(&connection, spec.name).map_err(target_error)?;
    let filter = stored_filter(spec, stored.as_ref())?;
    let mut client = source.connect()?;
    let _cancel = crate::sync::signal::cancel_on_signal(source, &client);
    let mut transaction = client
        .snapshot(&filter)
        .map_err(|error| source_error(spec, error))?;

    let count = spec.targets.len();
    let mut source_sides = vec![Side::default(); count];
    read_source::<M>(
        &mut transaction,
        target,
        &mut encoders,
        &mut |_, index, row| {
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
    let mut repaired = vec![Repaired::default(); count];
    if !differing.is_empty() {
        let scratch = Scratch::new(spec, &differing).map_err(target_error)?;
        differences =
            scratch.differences(spec, &connection, target, &differing, max_keys, |each| {
                read_source::<M>(
                    &mut transaction,
                    target,
                    &mut encoders,
                    &mut |_, index, row| each(index, row),
                )
            })?;
        if repair {
            repaired = repair_rows::<M>(
                &connection,
                &mut transaction,
                target,
                &mut encoders,
                &scratch,
                &differing,
            )?;
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
        .zip(repaired)
        .map(
            |(((table, (source_side, target_side)), differences), repaired)| {
                table_verification(
                    table,
                    source_side,
                    target_side,
                    differences,
                    repair.then_some(repaired),
                )
            },
        )
        .collect();
    Ok(Verification {
        mapping: spec.name.to_owned(),
        targets,
    })
}

/// What was found for target table `table`, from both sides' counts and checksums
/// and the differing keys.
fn table_verification(
    table: &TargetSpec,
    source_side: &Side,
    target_side: &Side,
    differences: Differences,
    repaired: Option<Repaired>,
) -> TargetVerification {
    TargetVerification {
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
        repaired,
    }
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

fn source_error(spec: &MappingSpec, source: tokio_postgres::Error) -> Error {
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

/// The filter's settings for the parameters a target was built with (`stored`, the
/// mapping's state in the target; none: the filter's defaults).
fn stored_filter(
    spec: &MappingSpec,
    stored: Option<&crate::target::state::MappingState>,
) -> Result<Vec<(&'static str, String)>> {
    let params = crate::filter::from_identity(stored.and_then(|state| state.params.as_deref()));
    match &spec.source.filter {
        Some(filter) => filter.settings(&params).map_err(|source| Error::Param {
            mapping: spec.name.to_owned(),
            source,
        }),
        None => Ok(Vec::new()),
    }
}

/// Streams the source snapshot with the mapping's COPY and decoder, and hands each
/// row not soft-deleted, encoded for each target, to `each(row, target, values)`.
fn read_source<M: Mapping>(
    transaction: &mut Snapshot<'_>,
    path: &Path,
    encoders: &mut [Statement<'_>],
    each: &mut dyn FnMut(&M, usize, &rusqlite::Row<'_>) -> Result<()>,
) -> Result<()> {
    let copy = crate::source::copy_out_sql(M::SPEC.source.select);
    read_rows::<M>(
        transaction,
        path,
        encoders,
        &copy,
        &mut |row, _, index, values| each(row, index, values),
    )
}

/// The live types of the mapping's `SELECT` columns, checked against its fields.
fn source_types<M: Mapping>(transaction: &mut Snapshot<'_>) -> Result<Vec<Type>> {
    let spec = M::SPEC;
    let statement = transaction
        .prepare(spec.source.select)
        .map_err(|error| source_error(spec, error))?;
    let types: Vec<Type> = crate::source::column_types(statement.columns());
    check_types::<M>(&types)?;
    Ok(types)
}

/// What [`read_rows`] hands each row to: `(row, partition value, target, values)`.
type EachRow<'a, M> = dyn FnMut(&M, Option<&[u8]>, usize, &rusqlite::Row<'_>) -> Result<()> + 'a;

/// [`read_source`] with the statement `copy` (the mapping's columns, in its order),
/// handing `each` also the raw value of the partition column (`None` for NULL or
/// for a mapping without `partition_by`).
fn read_rows<M: Mapping>(
    transaction: &mut Snapshot<'_>,
    path: &Path,
    encoders: &mut [Statement<'_>],
    copy: &str,
    each: &mut EachRow<'_, M>,
) -> Result<()> {
    let spec = M::SPEC;
    let types = source_types::<M>(transaction)?;
    let stream = transaction
        .copy_out(copy)
        .map_err(|error| source_error(spec, error))?;
    let stream_error = |source| Error::SourceStream {
        mapping: spec.name.to_owned(),
        table: spec.source.display_name(),
        source,
    };
    let mut reader = CopyReader::new(stream, types).map_err(stream_error)?;
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
        let partition = spec.source.partition_by.and_then(|index| row.raw(index));
        for (index, encoder) in encoders.iter_mut().enumerate() {
            decoded
                .bind(index, encoder)
                .map_err(|error| bind_error(spec, index, &|| decoded.key(), error))?;
            let mut encoded = encoder.raw_query();
            let values = encoded
                .next()
                .map_err(target_error(path))?
                .expect("a SELECT without FROM returns one row");
            each(&decoded, partition, index, values)?;
        }
    }
    Ok(())
}

/// The repair of [`repair`], once the differing keys of the targets `differing` are in
/// `scratch`: deletes the extra keys (children first), then copies the rows of the
/// missing and changed keys from a third read of the source snapshot (parents
/// first). Runs inside the target's write transaction; returns what it did per
/// target.
fn repair_rows<M: Mapping>(
    connection: &Connection,
    transaction: &mut Snapshot<'_>,
    path: &Path,
    encoders: &mut [Statement<'_>],
    scratch: &Scratch,
    differing: &[usize],
) -> Result<Vec<Repaired>> {
    let spec = M::SPEC;
    let target_error = target_error(path);
    let mut repaired = vec![Repaired::default(); spec.targets.len()];
    for &index in differing.iter().rev() {
        let table = &spec.targets[index];
        let condition: Vec<String> = scratch.keys[index]
            .iter()
            .enumerate()
            .map(|(position, &column)| {
                format!("{} IS ?{}", quote(table.columns[column].name), position + 1)
            })
            .collect();
        let mut delete = connection
            .prepare(&format!(
                "DELETE FROM {} WHERE {}",
                quote(table.name),
                condition.join(" AND ")
            ))
            .map_err(target_error)?;
        for key in scratch.extra_keys(index).map_err(target_error)? {
            let display = || {
                key.iter()
                    .map(|value| crate::value::display_value(value.into()))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            repaired[index].deleted += delete
                .execute(rusqlite::params_from_iter(&key))
                .map_err(|source| write_error(spec, index, &display, source))?
                as u64;
        }
        scratch.collect_copies(index).map_err(target_error)?;
    }
    let mut upserts = spec
        .targets
        .iter()
        .map(|table| connection.prepare(table.upsert))
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(target_error)?;
    read_source::<M>(transaction, path, encoders, &mut |row, index, values| {
        if !differing.contains(&index) || !scratch.copies(index, values).map_err(target_error)? {
            return Ok(());
        }
        let upsert = &mut upserts[index];
        row.bind(index, upsert)
            .map_err(|error| bind_error(spec, index, &|| row.key(), error))?;
        repaired[index].copied += upsert
            .raw_execute()
            .map_err(|source| write_error(spec, index, &|| row.key(), source))?
            as u64;
        Ok(())
    })?;
    Ok(repaired)
}

/// Hands each row of target table `table` (its columns in table order) to `each`;
/// none when the table does not exist.
fn read_target(
    connection: &Connection,
    path: &Path,
    table: &TargetSpec,
    each: &mut dyn FnMut(&rusqlite::Row<'_>) -> Result<()>,
) -> Result<()> {
    let target_error = target_error(path);
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

    /// Lists the keys that differ in each target of `differing`: `read_source`
    /// hands the source's rows, each with its target's index, and the file's rows
    /// are read here; both sides go to the scratch tables and are compared by key.
    fn differences(
        &self,
        spec: &MappingSpec,
        connection: &Connection,
        path: &Path,
        differing: &[usize],
        max_keys: usize,
        read_source: impl FnOnce(&mut dyn FnMut(usize, &rusqlite::Row<'_>) -> Result<()>) -> Result<()>,
    ) -> Result<Vec<Differences>> {
        let target_error = target_error(path);
        read_source(&mut |index, row| {
            if !differing.contains(&index) {
                return Ok(());
            }
            let hash = row_hash(row, spec.targets[index].columns.len()).map_err(target_error)?;
            self.insert("s", index, row, hash).map_err(target_error)
        })?;
        let mut differences = vec![Differences::default(); spec.targets.len()];
        for &index in differing {
            let table = &spec.targets[index];
            read_target(connection, path, table, &mut |row| {
                let hash = row_hash(row, table.columns.len()).map_err(target_error)?;
                self.insert("t", index, row, hash).map_err(target_error)
            })?;
            differences[index] = self.compare(index, max_keys).map_err(target_error)?;
        }
        Ok(differences)
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

impl Scratch {
    /// The keys of target `index` in the table but not in the source.
    fn extra_keys(&self, index: usize) -> rusqlite::Result<Vec<Vec<rusqlite::types::Value>>> {
        let width = self.keys[index].len();
        let mut statement = self.connection.prepare(&format!(
            "SELECT {} FROM t{index} AS a
             WHERE NOT EXISTS (SELECT 1 FROM s{index} AS b WHERE {})",
            prefixed_key_columns("a", width),
            same_key("a", "b", width)
        ))?;
        let rows = statement.query_map([], |row| {
            (0..width)
                .map(|column| row.get::<_, rusqlite::types::Value>(column))
                .collect()
        })?;
        rows.collect()
    }

    /// Fills `c{index}` with the keys of target `index` whose source row is to be
    /// copied: missing from the table, or changed.
    fn collect_copies(&self, index: usize) -> rusqlite::Result<()> {
        let width = self.keys[index].len();
        let columns = key_columns(width);
        self.connection.execute_batch(&format!(
            "CREATE TABLE c{index} ({columns});
             INSERT INTO c{index} SELECT {} FROM s{index} AS a
                 LEFT JOIN t{index} AS b ON {}
                 WHERE b.h IS NULL OR b.h IS NOT a.h;
             CREATE INDEX c{index}_k ON c{index} ({columns});",
            prefixed_key_columns("a", width),
            same_key("a", "b", width)
        ))
    }

    /// Whether the source row `values` (encoded for target `index`) is one to copy.
    fn copies(&self, index: usize, values: &rusqlite::Row<'_>) -> rusqlite::Result<bool> {
        let keys = &self.keys[index];
        let condition = (0..keys.len())
            .map(|column| format!("k{column} IS ?{}", column + 1))
            .collect::<Vec<_>>()
            .join(" AND ");
        let mut statement = self.connection.prepare_cached(&format!(
            "SELECT EXISTS (SELECT 1 FROM c{index} WHERE {condition})"
        ))?;
        for (position, &column) in keys.iter().enumerate() {
            statement.raw_bind_parameter(
                position + 1,
                rusqlite::types::ToSqlOutput::Borrowed(values.get_ref(column)?),
            )?;
        }
        let mut rows = statement.raw_query();
        match rows.next()? {
            Some(row) => row.get(0),
            None => Ok(false),
        }
    }
}

/// `{prefix}.k0, {prefix}.k1, ..`.
fn prefixed_key_columns(prefix: &str, width: usize) -> String {
    (0..width)
        .map(|column| format!("{prefix}.k{column}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `{right}.k0 IS {left}.k0 AND ..`: the two scratch rows have the same key.
fn same_key(left: &str, right: &str, width: usize) -> String {
    (0..width)
        .map(|column| format!("{right}.k{column} IS {left}.k{column}"))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// `k0, k1, ..`.
fn key_columns(width: usize) -> String {
    (0..width)
        .map(|column| format!("k{column}"))
        .collect::<Vec<_>>()
        .join(", ")
}
