//! `data-sync check`: mappings against the live source table and target file, every
//! difference listed; fails when there is any. Over a template
//! (`out/{tenant_id}.sqlite`), every existing file of a partitioned mapping.

use std::path::Path;

use sync_runtime::{CheckReport, Registered, SourceConfig};

use crate::args::{JsonArgs, MappingArgs};
use crate::error::{Error, Result};
use crate::output::{Outcome, Outcomes, early_error, outln};

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
    pub(crate) output: JsonArgs,
}

/// Checks `mappings` over one source connection, each whatever became of the ones
/// before, prints every difference (as JSON on stdout with `--json`), and fails
/// listing the mappings that failed, or with [`Error::Drift`] when there is any
/// difference. Target tables that do not exist yet are no difference.
pub(crate) fn run(
    mappings: &[&Registered],
    source: &SourceConfig,
    target: &Path,
    args: &CheckArgs,
) -> Result<()> {
    if crate::lock::is_template(target) {
        super::sync::refuse_unpartitioned(
            mappings.iter().copied(),
            format!(
                "the target `{}` is a template of the files of a mapping with `partition_by`; \
                 check this mapping against one file (`--target app.sqlite`), and the \
                 partitioned ones with `--mapping NAME`",
                target.display()
            ),
        )
        .map_err(|error| early_error(args.output.json, error))?;
    }
    let mut client = source
        .connect()
        .map_err(|error| early_error(args.output.json, error.into()))?;
    let mut outcomes = Outcomes::new(mappings.len());
    for mapping in mappings {
        let outcome =
            match sync_runtime::check_mapping(mapping, &mut client, target, args.assume_unique_key)
            {
                Ok(report) => Outcome::Done(report),
                Err(error) => Outcome::Failed(Error::on(source, error)),
            };
        outcomes.push(mapping.spec.name, outcome);
    }
    let count: usize = outcomes.done().map(|report| report.differences.len()).sum();
    let drift = if count == 0 {
        Ok(())
    } else {
        Err(Error::Drift { count })
    };
    if !args.output.json {
        outcomes.print_text(print_report)?;
    }
    outcomes.finish(args.output.json, drift)
}

/// `users: ok`, or the differences of one mapping, one per line; the tables the next
/// sync creates in parentheses.
fn print_report(report: &CheckReport) -> Result<()> {
    let to_create = if report.to_create.is_empty() {
        String::new()
    } else {
        let tables: Vec<String> = report
            .to_create
            .iter()
            .map(|table| format!("`{table}`"))
            .collect();
        format!(" (the next sync creates {})", tables.join(", "))
    };
    // `tenant_orders: 30 files of `out/{tenant_id}.sqlite`: ok`.
    let mapping = match (&report.template, report.files) {
        (Some(template), Some(files)) => format!(
            "{}: {files} file{} of `{template}`",
            report.mapping,
            if files == 1 { "" } else { "s" }
        ),
        _ => report.mapping.clone(),
    };
    let count = report.differences.len();
    if count == 0 {
        return outln!("{mapping}: ok{to_create}");
    }
    outln!(
        "{mapping}: {count} difference{}{to_create}",
        if count == 1 { "" } else { "s" }
    )?;
    for difference in &report.differences {
        let file = difference
            .file
            .as_ref()
            .map(|file| format!(" in {}", file.display()))
            .unwrap_or_default();
        if difference.table.is_empty() {
            outln!("  {}{file}: {}", difference.side, difference.message)?;
        } else {
            outln!(
                "  {} `{}`{file}: {}",
                difference.side,
                difference.table,
                difference.message
            )?;
        }
    }
    Ok(())
}
