//! `data-sync verify`: the targets against the source, by row count, checksum and
//! differing keys; fails when any target table differs or any mapping failed.

use std::path::Path;

use sync_runtime::{Registered, SourceConfig, TargetVerification};

use crate::args::{JsonArgs, MappingArgs};
use crate::error::{Error, Result};
use crate::output::{Outcome, Outcomes, outln};

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
    pub(crate) repair: bool,

    #[command(flatten)]
    pub(crate) output: JsonArgs,
}

/// Verifies `mappings`, each whatever became of the ones before, prints what it found
/// (as JSON on stdout with `--json`), and fails listing the mappings that failed, or
/// with [`Error::Differs`] when any target table differs.
pub(crate) fn run(
    mappings: &[&Registered],
    source: &SourceConfig,
    target: &Path,
    args: &VerifyArgs,
) -> Result<()> {
    let mut outcomes = Outcomes::new(mappings.len());
    for mapping in mappings {
        let outcome = if outcomes.interrupted() {
            Outcome::Skipped
        } else {
            let verified = if args.repair {
                mapping.repair(source, target, args.max_keys)
            } else {
                mapping.verify(source, target, args.max_keys)
            };
            match verified {
                Ok(verification) => Outcome::Done(verification),
                Err(error) => Outcome::Failed(Error::on(source, error)),
            }
        };
        outcomes.push(mapping.spec.name, outcome);
    }
    let count = outcomes
        .done()
        .flat_map(|verification| &verification.targets)
        .filter(|target| !target.equal)
        .count();
    // Repaired differences are not a failure.
    let differs = if count == 0 || args.repair {
        Ok(())
    } else {
        Err(Error::Differs { count })
    };
    if !args.output.json {
        outcomes.print_text(|verification| {
            for table in &verification.targets {
                print_table(&verification.mapping, table)?;
            }
            Ok(())
        })?;
    }
    outcomes.finish(args.output.json, differs)
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
