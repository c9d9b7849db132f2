//! `data-sync check`: mappings against the live source table and target file, every
//! difference listed; fails when there is any.

use std::path::Path;

use sync_runtime::{Registered, SourceConfig};

use crate::args::{JsonArgs, MappingArgs};
use crate::error::{Error, Result};
use crate::output::{outln, print_json};

/// The options of `data-sync check`.
#[derive(Debug, clap::Args)]
pub(crate) struct CheckArgs {
    #[command(flatten)]
    pub(crate) selection: MappingArgs,

    /// Do not report a key without a unique index or constraint in the source (as
    /// `sync --assume-unique-key`). Example: --assume-unique-key
    #[arg(long)]
    assume_unique_key: bool,

    #[command(flatten)]
    output: JsonArgs,
}

/// Checks `mappings`, prints every difference (as JSON on stdout with `--json`), and
/// fails with [`Error::Drift`] when there is any.
pub(crate) fn run(
    mappings: &[&Registered],
    source: &SourceConfig,
    target: &Path,
    args: &CheckArgs,
) -> Result<()> {
    let reports = sync_runtime::check(mappings, source, target, args.assume_unique_key)?;
    let count: usize = reports.iter().map(|report| report.differences.len()).sum();
    let result = if count == 0 {
        Ok(())
    } else {
        Err(Error::Drift { count })
    };
    if args.output.json {
        print_json(&reports, result.as_ref().err().map(|error| (None, error)))?;
        return result;
    }
    for report in &reports {
        if report.differences.is_empty() {
            outln!("{}: ok", report.mapping)?;
            continue;
        }
        outln!(
            "{}: {} difference{}",
            report.mapping,
            report.differences.len(),
            if report.differences.len() == 1 {
                ""
            } else {
                "s"
            }
        )?;
        for difference in &report.differences {
            outln!(
                "  {} `{}`: {}",
                difference.side,
                difference.table,
                difference.message
            )?;
        }
    }
    result
}
