//! `verify` over a fan-out template (`out/{tenant_id}.sqlite`): every file of the
//! template against the source rows of its partition.
//!
//! The source is read **once**, in one snapshot, ordered by the partition column and
//! then the key (the fan-out's own `COPY`, with the selection's condition): the
//! rows of each partition are hashed per target table as [`verify`](super::verify)
//! hashes them, so each partition ends with its row counts and checksums. Each
//! file is then read in its own read transaction and compared; only a file whose
//! count or checksum differs costs a second read of its partition (the partition
//! pushed down as `--partition` pushes it, in the same snapshot), to list the keys.
//! Partitions with rows and no file are `missing`; files of the selection whose
//! partition has no rows are `stale`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::{
    Differences, Scratch, Side, TargetVerification, read_rows, read_target, row_hash,
    select_parameters, source_error, source_types, stored_filter, table_verification,
};
use crate::Mapping;
use crate::error::{Error, Result};
use crate::partition::{self, Selection, Template};
use crate::source::config::SourceConfig;

/// What `verify` found for the files of one fan-out template.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FanoutVerification {
    /// The mapping name.
    pub mapping: String,
    /// The template, as given.
    pub template: String,
    /// Files that equal the source rows of their partition.
    pub equal: u64,
    /// Files that differ from them.
    pub differs: u64,
    /// Partitions with source rows and no file.
    pub missing: u64,
    /// Files of the selection whose partition has no source rows any more.
    pub stale: u64,
    /// Source rows whose partition column is NULL: no file can hold them.
    pub null_rows: u64,
    /// Every file, in partition order; the stale ones last.
    pub files: Vec<FileVerification>,
}

impl FanoutVerification {
    /// Whether every file equals its partition, and no file is missing or stale.
    pub fn is_equal(&self) -> bool {
        self.differs == 0 && self.missing == 0 && self.stale == 0 && self.null_rows == 0
    }
}

/// How one file of a template compares with the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileOutcome {
    /// The file holds exactly its partition's rows.
    Equal,
    /// Some target table of the file differs.
    Differs,
    /// The partition has source rows but there is no file.
    Missing,
    /// The file exists but its partition has no source rows.
    Stale,
}

impl std::fmt::Display for FileOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FileOutcome::Equal => "equal",
            FileOutcome::Differs => "differs",
            FileOutcome::Missing => "missing",
            FileOutcome::Stale => "stale",
        })
    }
}

/// One file of a template, verified.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FileVerification {
    /// The partition value's text form (lossy for bytes that are not UTF-8);
    /// `None` for a stale file whose long name keeps only a hash of its value.
    pub partition: Option<String>,
    /// The file.
    pub file: PathBuf,
    /// How it compares.
    pub outcome: FileOutcome,
    /// One entry per target table, parents first; for a missing file, the source
    /// side with an empty target; none for a stale file.
    pub targets: Vec<TargetVerification>,
}

/// The rows of one partition, as the pass hashed them.
struct Partition {
    /// The value's text form.
    text: Vec<u8>,
    /// Per target table.
    sides: Vec<Side>,
}

/// Compares every file of `template` that `selection` picks with the source rows of
/// its partition, listing up to `max_keys` differing keys per target table of a
/// file; the filter's parameters are those the first file of the template was
/// built with.
///
/// # Errors
///
/// [`Error::Partition`] for a template without the partition column's placeholder
/// (or with another column's) or a bad `--partition` value; connection, source,
/// type and value errors as for a sync; [`Error::Target`] for a file that cannot be
/// read. Differences are not errors: see [`FanoutVerification::is_equal`].
pub fn verify_fanout<M: Mapping>(
    source: &SourceConfig,
    template: &Path,
    selection: &Selection,
    max_keys: usize,
) -> Result<FanoutVerification> {
    let spec = M::SPEC;
    let parsed = Template::parse(spec, template)?;
    let partition_index = spec.source.partition_by.expect("a template's mapping");
    let mut existing: BTreeMap<String, PathBuf> = parsed
        .existing()
        .map_err(|source| Error::Io {
            path: template.to_owned(),
            source,
        })?
        .into_iter()
        .collect();
    let target_error = crate::target::target_error;

    // The filter's parameters are those the files were built with (every file of a
    // run stores the same).
    let stored = match existing.values().next() {
        Some(path) => {
            let connection = crate::target::open_for_reading(path)?;
            crate::target::state::load(&connection, spec.name).map_err(target_error(path))?
        }
        None => None,
    };
    let filter = stored_filter(spec, stored.as_ref())?;
    let mut client = source.connect()?;
    let _cancel = crate::sync::signal::cancel_on_signal(source, &client);
    let mut transaction = client
        .snapshot(&filter)
        .map_err(|error| source_error(spec, error))?;
    let types = source_types::<M>(&mut transaction)?;
    let ty = types[partition_index].clone();
    partition::check_supported(spec, partition_index, &ty)?;
    let condition = selection.condition(spec, &ty)?;
    if let Some((_, settings)) = &condition {
        transaction
            .bind_settings(settings)
            .map_err(|error| source_error(M::SPEC, error))?;
    }

    let encoder = Connection::open_in_memory().map_err(target_error(template))?;
    let mut encoders = spec
        .targets
        .iter()
        .map(|table| encoder.prepare(&select_parameters(table.columns.len())))
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(target_error(template))?;
    let count = spec.targets.len();

    // The one pass: per partition, per target table, the rows and checksum.
    let copy = crate::sync::fanout::copy_sql(
        spec,
        condition.as_ref().map(|(condition, _)| condition.as_str()),
    );
    let mut partitions: Vec<Partition> = Vec::new();
    let mut last_raw: Option<Vec<u8>> = None;
    let mut null_rows = 0u64;
    read_rows::<M>(
        &mut transaction,
        template,
        &mut encoders,
        &copy,
        &mut |_, raw, index, values| {
            let Some(raw) = raw else {
                if index == 0 {
                    null_rows += 1;
                }
                return Ok(());
            };
            if last_raw.as_deref() != Some(raw) {
                last_raw = Some(raw.to_vec());
                partitions.push(Partition {
                    text: partition::text_form(&ty, raw).unwrap_or_else(|| raw.to_vec()),
                    sides: vec![Side::default(); count],
                });
            }
            let hash = row_hash(values, spec.targets[index].columns.len())
                .map_err(target_error(template))?;
            partitions.last_mut().expect("one partition").sides[index].add(hash);
            Ok(())
        },
    )?;

    let mut files = Vec::new();
    for partition in &partitions {
        crate::sync::signal::check(spec)?;
        let name = partition::file_name(&partition.text);
        let value = String::from_utf8_lossy(&partition.text).into_owned();
        let Some(path) = existing.remove(&name) else {
            let empty = Side::default();
            files.push(FileVerification {
                partition: Some(value),
                file: parsed.path(&partition.text),
                outcome: FileOutcome::Missing,
                targets: spec
                    .targets
                    .iter()
                    .zip(&partition.sides)
                    .map(|(table, side)| {
                        let differences = Differences {
                            missing: side.rows,
                            ..Differences::default()
                        };
                        table_verification(table, side, &empty, differences, None)
                    })
                    .collect(),
            });
            continue;
        };
        let targets = compare_file::<M>(
            &mut transaction,
            &mut encoders,
            &path,
            &partition.sides,
            &ty,
            &value,
            max_keys,
        )?;
        let outcome = if targets.iter().all(|target| target.equal) {
            FileOutcome::Equal
        } else {
            FileOutcome::Differs
        };
        files.push(FileVerification {
            partition: Some(value),
            file: path,
            outcome,
            targets,
        });
    }
    transaction
        .commit()
        .map_err(|error| source_error(spec, error))?;

    // The files left over, when the selection picks their partition, are stale.
    for (name, path) in existing {
        let value = partition::value_of_name(&name);
        let selected = match selection {
            Selection::All => true,
            Selection::One(wanted) => {
                name == partition::file_name(wanted.as_bytes())
                    || name == partition::file_name(wanted.trim().as_bytes())
            }
            Selection::Shard(shard) => value.as_deref().is_some_and(|value| shard.holds(value)),
        };
        if selected {
            files.push(FileVerification {
                partition: value.map(|value| String::from_utf8_lossy(&value).into_owned()),
                file: path,
                outcome: FileOutcome::Stale,
                targets: Vec::new(),
            });
        }
    }
    let counted =
        |outcome: FileOutcome| files.iter().filter(|file| file.outcome == outcome).count() as u64;
    Ok(FanoutVerification {
        mapping: spec.name.to_owned(),
        template: template.display().to_string(),
        equal: counted(FileOutcome::Equal),
        differs: counted(FileOutcome::Differs),
        missing: counted(FileOutcome::Missing),
        stale: counted(FileOutcome::Stale),
        null_rows,
        files,
    })
}

/// Compares the file `path` with `sources`, its partition's sides from the pass;
/// a differing table costs a second read of the partition `value` (bound with
/// `Snapshot::bind_settings`), in the same snapshot, to list its keys.
fn compare_file<M: Mapping>(
    transaction: &mut crate::source::client::Snapshot<'_>,
    encoders: &mut [rusqlite::Statement<'_>],
    path: &Path,
    sources: &[Side],
    ty: &tokio_postgres::types::Type,
    value: &str,
    max_keys: usize,
) -> Result<Vec<TargetVerification>> {
    let spec = M::SPEC;
    let target_error = crate::target::target_error(path);
    let connection = crate::target::open_for_reading(path)?;
    // One read transaction: both reads see the same file contents.
    connection.execute_batch("BEGIN").map_err(target_error)?;
    let mut targets_sides = vec![Side::default(); spec.targets.len()];
    for (index, table) in spec.targets.iter().enumerate() {
        let side = &mut targets_sides[index];
        read_target(&connection, path, table, &mut |row| {
            side.add(row_hash(row, table.columns.len()).map_err(target_error)?);
            Ok(())
        })?;
    }
    let differing: Vec<usize> = (0..spec.targets.len())
        .filter(|&index| sources[index] != targets_sides[index])
        .collect();
    let mut differences = vec![Differences::default(); spec.targets.len()];
    if !differing.is_empty() {
        let scratch = Scratch::new(spec, &differing).map_err(target_error)?;
        let (condition, settings) = Selection::One(value.to_owned())
            .condition(spec, ty)?
            .expect("one partition's condition");
        transaction
            .bind_settings(&settings)
            .map_err(|error| source_error(M::SPEC, error))?;
        let copy = crate::sync::fanout::copy_sql(spec, Some(&condition));
        differences =
            scratch.differences(spec, &connection, path, &differing, max_keys, |each| {
                read_rows::<M>(
                    transaction,
                    path,
                    encoders,
                    &copy,
                    &mut |_, _, index, row| each(index, row),
                )
            })?;
    }
    connection.execute_batch("COMMIT").map_err(target_error)?;
    Ok(spec
        .targets
        .iter()
        .zip(sources.iter().zip(&targets_sides))
        .zip(differences)
        .map(|((table, (source, target)), differences)| {
            table_verification(table, source, target, differences, None)
        })
        .collect())
}
