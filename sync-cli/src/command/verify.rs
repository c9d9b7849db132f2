//! `data-sync verify`: the targets against the source, by row count, checksum and
//! differing keys; fails when any target table differs or any mapping failed. Over
//! a template (`out/{tenant_id}.sqlite`), every file of the partitions picked.

use std::path::Path;

use sync_runtime::{
    FanoutVerification, FileOutcome, Registered, Selection, SourceConfig, TargetVerification,
};

use crate::args::{JsonArgs, MappingArgs, PartitionArgs};
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
    pub(crate) partitions: PartitionArgs,

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
    let selection = args.partitions.selection();
    if crate::lock::is_template(target) || selection != Selection::All {
        return run_fanout(mappings, source, target, &selection, args);
    }
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

/// `verify --target 'out/{tenant_id}.sqlite'`: each mapping's files against the
/// source rows of their partitions; fails with [`Error::FilesDiffer`] when any
/// file differs, is missing or is stale.
fn run_fanout(
    mappings: &[&Registered],
    source: &SourceConfig,
    template: &Path,
    selection: &Selection,
    args: &VerifyArgs,
) -> Result<()> {
    super::sync::refuse_unpartitioned(
        mappings.iter().copied(),
        format!(
            "the target `{}` is a template, or `--partition`/`--shard` pick partitions: \
             verify the mappings with `partition_by` with `--mapping NAME`",
            template.display()
        ),
    )?;
    let mut outcomes = Outcomes::new(mappings.len());
    for mapping in mappings {
        let outcome = if outcomes.interrupted() {
            Outcome::Skipped
        } else {
            match mapping.verify_fanout(source, template, selection, args.max_keys) {
                Ok(verification) => Outcome::Done(verification),
                Err(error) => Outcome::Failed(Error::on(source, error)),
            }
        };
        outcomes.push(mapping.spec.name, outcome);
    }
    let done: Vec<&FanoutVerification> = outcomes.done().collect();
    let sum = |count: fn(&FanoutVerification) -> u64| done.iter().map(|&v| count(v)).sum::<u64>();
    let (differs, missing, stale, null_rows) = (
        sum(|v| v.differs),
        sum(|v| v.missing),
        sum(|v| v.stale),
        sum(|v| v.null_rows),
    );
    let verdict = if differs + missing + stale + null_rows == 0 {
        Ok(())
    } else {
        let names: Vec<&str> = done
            .iter()
            .filter(|verification| !verification.is_equal())
            .map(|verification| verification.mapping.as_str())
            .collect();
        Err(Error::FilesDiffer {
            template: template.display().to_string(),
            mappings: names.join(" --mapping "),
            count: differs + missing + stale,
            differs,
            missing,
            stale,
            null_rows,
        })
    };
    if !args.output.json {
        outcomes.print_text(print_fanout)?;
    }
    outcomes.finish(args.output.json, verdict)
}

/// `tenant_orders: 30 files of out/{}.sqlite: 27 equal, 1 differs, 1 missing, 1 stale`,
/// then each file that is not equal, with its differing tables and keys.
fn print_fanout(verification: &FanoutVerification) -> Result<()> {
    let mapping = &verification.mapping;
    outln!(
        "{mapping}: {} files of `{}`: {} equal, {} differ, {} missing, {} stale",
        verification.files.len(),
        verification.template,
        verification.equal,
        verification.differs,
        verification.missing,
        verification.stale
    )?;
    if verification.null_rows > 0 {
        outln!(
            "{mapping}: {} source rows have a NULL partition value, which names no file",
            verification.null_rows
        )?;
    }
    for file in &verification.files {
        let path = file.file.display();
        match file.outcome {
            FileOutcome::Equal => {}
            FileOutcome::Missing => {
                let rows: Vec<String> = file
                    .targets
                    .iter()
                    .map(|table| format!("{} {}", table.table, table.source_rows))
                    .collect();
                outln!(
                    "  missing {path}: the source has rows of this partition ({})",
                    rows.join(", ")
                )?;
            }
            FileOutcome::Stale => {
                outln!("  stale {path}: the source has no rows of this partition any more")?;
            }
            FileOutcome::Differs => {
                for table in file.targets.iter().filter(|table| !table.equal) {
                    print_table(&format!("  {path}"), table)?;
                }
            }
        }
    }
    Ok(())
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
