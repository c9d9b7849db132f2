//! `data-sync verify`: the targets against the source, by row count, checksum and
//! differing keys; fails when any target table differs.

use std::path::Path;

use sync_runtime::{Registered, SourceConfig, TargetVerification};

use crate::args::{JsonArgs, MappingArgs};
use crate::error::{Error, Result};
use crate::output::{outln, print_json};

/// The options of `data-sync verify`.
#[derive(Debug, clap::Args)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    pub(crate) selection: MappingArgs,

    /// How many differing keys to list per target table. Example: --max-keys 100
    #[arg(long, default_value_t = 20, value_name = "N")]
    max_keys: usize,

    /// Repair what differs: copy the rows of the missing and changed keys from the
    /// same source snapshot and delete the extra keys, in one SQLite transaction;
    /// exit 0 once repaired. Example: --repair
    #[arg(long)]
    repair: bool,

    #[command(flatten)]
    output: JsonArgs,
}

/// Verifies `mappings`, prints what it found (as JSON on stdout with `--json`), and
/// fails with [`Error::Differs`] when any target table differs.
pub(crate) fn run(
    mappings: &[&Registered],
    source: &SourceConfig,
    target: &Path,
    args: &VerifyArgs,
) -> Result<()> {
    let mut verifications = Vec::new();
    for mapping in mappings {
        verifications.push(if args.repair {
            mapping.repair(source, target, args.max_keys)?
        } else {
            mapping.verify(source, target, args.max_keys)?
        });
    }
    let count = verifications
        .iter()
        .flat_map(|verification| &verification.targets)
        .filter(|target| !target.equal)
        .count();
    // Repaired differences are not a failure.
    let result = if count == 0 || args.repair {
        Ok(())
    } else {
        Err(Error::Differs { count })
    };
    if args.output.json {
        print_json(
            &verifications,
            result.as_ref().err().map(|error| (None, error)),
        )?;
    } else {
        for verification in &verifications {
            for table in &verification.targets {
                print_table(&verification.mapping, table)?;
            }
        }
    }
    result
}

fn print_table(mapping: &str, table: &TargetVerification) -> Result<()> {
    if table.equal {
        return outln!(
            "{mapping}: `{}` equals the source: {} rows, checksum {}",
            table.table,
            table.target_rows,
            table.target_checksum
        );
    }
    outln!(
        "{mapping}: `{}` differs from the source: {} rows in the source, {} in the target; {} missing, {} extra, {} changed",
        table.table,
        table.source_rows,
        table.target_rows,
        table.missing,
        table.extra,
        table.changed
    )?;
    for difference in &table.differences {
        outln!("  {} key {}", difference.kind, difference.key)?;
    }
    let listed = table.differences.len() as u64;
    let total = table.missing + table.extra + table.changed;
    if total > listed {
        outln!("  ... and {} more (--max-keys)", total - listed)?;
    }
    if table.repaired.is_some() {
        outln!(
            "{mapping}: `{}` repaired: {} missing copied, {} extra deleted, {} changed copied",
            table.table,
            table.missing,
            table.extra,
            table.changed
        )?;
    }
    Ok(())
}
