//! `data-sync sync`: runs mappings into the target file, one after the other; a
//! mapping that fails does not stop the others, an interrupt does.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::MultiProgress;
use sync_runtime::{
    Overlap, Params, Progress, Registered, Selection, SourceConfig, Summary, SyncOptions,
};

use crate::args::{JsonArgs, MappingArgs, PartitionArgs, RetryArgs};
use crate::error::{Error, Result};
use crate::metrics::{Metrics, MetricsArgs};
use crate::output::{Outcome, Outcomes, outln};
use crate::progress::TerminalProgress;

/// The options of `data-sync sync`.
#[derive(Debug, clap::Args)]
pub(crate) struct SyncArgs {
    #[command(flatten)]
    pub(crate) selection: MappingArgs,

    /// Rebuild the targets from the whole source, even where an incremental run is
    /// possible. Example: --full
    #[arg(long)]
    full: bool,

    /// Rows per batch between the reader and the writer (a batch also ends at 4 MiB
    /// of row data); for incremental runs also the rows per SQLite transaction.
    /// Example: --batch-size 50000
    #[arg(long, default_value_t = 10_000, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    batch_size: u32,

    /// After an incremental run, delete the target rows whose key has left the
    /// source (streams every source key; no full reload). Example: --prune
    #[arg(long)]
    prune: bool,

    /// How far below the watermark incremental runs read again, for transactions
    /// that commit late: a duration (`90s`, `5m`, `1h`) for time cursors, a number
    /// of values for integer cursors, `0` for none. Default: 5m for time cursors, 0
    /// otherwise. Example: --overlap 10m
    #[arg(long, value_name = "WINDOW")]
    overlap: Option<Overlap>,

    /// Let a run empty targets that hold rows: a full sync of a source with no rows
    /// to write, or a `--prune` that deletes every row. Example: --full --allow-empty
    #[arg(long)]
    allow_empty: bool,

    /// Sync although the mapping's key is not backed by a unique index or
    /// constraint of the source (a view, say): you vouch that it is unique.
    /// Example: --assume-unique-key
    #[arg(long)]
    assume_unique_key: bool,

    /// The value of a filter parameter `$NAME`, read as the type of the column it
    /// is compared with; repeat for several. A target built with other values needs
    /// --full. Example: --param tenant=7
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_param)]
    params: Vec<(String, String)>,

    #[command(flatten)]
    pub(crate) partitions: PartitionArgs,

    /// Run again and again, this long after each run began, until SIGINT or
    /// SIGTERM (then exit 0 between runs); after a failed run wait twice as long,
    /// up to 16 times, before the next. Example: --every 5m
    #[arg(long, value_parser = crate::args::parse_duration, value_name = "DURATION")]
    every: Option<std::time::Duration>,

    #[command(flatten)]
    retry: RetryArgs,

    #[command(flatten)]
    pub(crate) metrics: MetricsArgs,

    #[command(flatten)]
    pub(crate) output: JsonArgs,
}

/// Syncs `mappings` in turn, each whatever became of the ones before (but none after
/// an interrupt), printing each outcome; `bars` draws the progress on a terminal, `None`
/// elsewhere; `metrics` (of `--every`) counts each run.
pub(crate) fn run(
    catalogue: &[Registered],
    mappings: &[&Registered],
    source: &SourceConfig,
    target: &Path,
    args: &SyncArgs,
    bars: Option<MultiProgress>,
    metrics: Option<Arc<Metrics>>,
) -> Result<()> {
    let mut params = Params::new();
    for (name, value) in &args.params {
        check_used(mappings, name)?;
        params.set(name, value);
    }
    let options = SyncOptions {
        full: args.full,
        batch_size: args.batch_size as usize,
        prune: args.prune,
        overlap: args.overlap,
        progress: bars.map(|bars| Arc::new(TerminalProgress::new(bars)) as Arc<dyn Progress>),
        retry: args.retry.policy(),
        allow_empty: args.allow_empty,
        assume_unique_key: args.assume_unique_key,
        params,
        selection: args.partitions.selection(),
    };
    if !matches!(options.selection, Selection::All) {
        check_partitioned(mappings)?;
    }
    let Some(every) = args.every else {
        return run_once(
            catalogue,
            mappings,
            source,
            target,
            args,
            &options,
            metrics.as_deref(),
        );
    };
    // The runs go on until a signal: each one's outcome is printed and logged, a
    // failure waits longer before the next. They share their source connections.
    let source = &source.clone().reusing_connections();
    let mut failures: u32 = 0;
    loop {
        let started = Instant::now();
        let result = run_once(
            catalogue,
            mappings,
            source,
            target,
            args,
            &options,
            metrics.as_deref(),
        );
        let seconds = started.elapsed().as_secs_f64();
        match &result {
            Ok(()) => {
                failures = 0;
                tracing::info!(seconds, outcome = "ok", "run finished; next in {every:?}");
            }
            Err(error) if error.kind() == "interrupted" => return result,
            Err(error) => {
                failures = failures.saturating_add(1);
                tracing::warn!(seconds, outcome = "error", error = %error, "run failed");
            }
        }
        let wait = every.saturating_mul(1 << failures.min(4));
        let next = started + wait;
        while Instant::now() < next {
            if let Some(signal) = sync_runtime::signal_received() {
                tracing::info!(signal, "stopped between runs");
                return Ok(());
            }
            std::thread::sleep(
                Duration::from_millis(50).min(next.saturating_duration_since(Instant::now())),
            );
        }
    }
}

/// One run of every mapping of `mappings`, as `run` describes.
fn run_once(
    catalogue: &[Registered],
    mappings: &[&Registered],
    source: &SourceConfig,
    target: &Path,
    args: &SyncArgs,
    options: &SyncOptions,
    metrics: Option<&Metrics>,
) -> Result<()> {
    let json = args.output.json;
    // On a terminal the progress (drawn where `options` has an observer) ends in a
    // summary of its own.
    let summary_on_stdout = options.progress.is_none() || !std::io::stdout().is_terminal();
    // Parents first, and the mappings a named one references come along.
    let planned = sync_runtime::plan(catalogue, mappings);
    for (mapping, brought_by) in &planned {
        if let Some(child) = brought_by {
            if mapping.spec.source.capture.is_some() {
                eprintln!(
                    "note: syncing `{}` too: it and `{child}` are capture mappings linked by references, which read one replication slot",
                    mapping.spec.name
                );
            } else {
                eprintln!(
                    "note: syncing `{}` too: `{child}` references its targets",
                    mapping.spec.name
                );
            }
        }
    }
    let planned: Vec<Registered> = planned.into_iter().map(|(mapping, _)| mapping).collect();
    check_template(&planned, target)?;
    let mut outcomes = Outcomes::new(planned.len());
    let mut printed: Result<()> = Ok(());
    sync_runtime::sync_all(
        catalogue,
        &planned,
        source,
        target,
        options,
        &mut |name, result| {
            if let Some(metrics) = metrics {
                match &result {
                    None => metrics.ended(name, "skipped"),
                    Some(Ok(summary)) => metrics.succeeded(summary),
                    Some(Err(_)) => metrics.ended(name, "error"),
                }
            }
            let outcome = match result {
                None => Outcome::Skipped,
                Some(Ok(summary)) => {
                    if !json && summary_on_stdout && printed.is_ok() {
                        printed = print_summary(&summary);
                    }
                    Outcome::Done(summary)
                }
                Some(Err(error)) => Outcome::Failed(Error::on(source, error)),
            };
            outcomes.push(name, outcome);
            if !json && printed.is_ok() {
                printed = outcomes.print_last();
            }
        },
    );
    printed?;
    if let Some(metrics) = metrics {
        watermarks(metrics, target);
    }
    outcomes.finish(json, Ok(()))
}

/// Gives `metrics` the watermarks the target file holds after a run (best effort:
/// a file that cannot be read now was reported by the run).
fn watermarks(metrics: &Metrics, target: &Path) {
    let Ok(states) = sync_runtime::load_states(target) else {
        return;
    };
    for state in states {
        if let Some(cursor) = &state.watermark_cursor {
            metrics.watermark(&state.mapping, cursor);
        }
    }
}

/// `NAME=VALUE` of `--param`; the name may start with the filter's `$`.
fn parse_param(text: &str) -> std::result::Result<(String, String), String> {
    let Some((name, value)) = text.split_once('=') else {
        return Err(format!("`{text}` is not NAME=VALUE, e.g. tenant=7"));
    };
    let name = name.trim().trim_start_matches('$');
    if name.is_empty() {
        return Err(format!("`{text}` has no parameter name before `=`"));
    }
    Ok((name.to_owned(), value.to_owned()))
}

/// A parameter no mapping of the run uses is a mistake (a misspelt name), caught
/// before anything runs.
fn check_used(mappings: &[&Registered], name: &str) -> Result<()> {
    let used: Vec<String> = mappings
        .iter()
        .filter_map(|mapping| mapping.spec.source.filter.as_ref())
        .flat_map(|filter| filter.parameters())
        .map(str::to_owned)
        .collect();
    if used.iter().any(|parameter| parameter == name) {
        return Ok(());
    }
    let mut used = used;
    used.sort();
    used.dedup();
    Err(Error::UnusedParam {
        name: name.to_owned(),
        mappings: mappings
            .iter()
            .map(|mapping| mapping.spec.name.to_owned())
            .collect(),
        used,
    })
}

/// A template target (`out/{tenant_id}.sqlite`) names the files of partitioned
/// mappings: a mapping without `partition_by` would write into a file named by the
/// template's own text.
fn check_template(planned: &[Registered], target: &Path) -> Result<()> {
    if !crate::lock::is_template(target) {
        return Ok(());
    }
    refuse_unpartitioned(
        planned,
        format!(
            "the target `{}` is a template of the files of a mapping with `partition_by`; \
             sync this mapping into one file (`--target app.sqlite`), and the partitioned \
             ones with `--mapping NAME`",
            target.display()
        ),
    )
}

/// `--partition` and `--shard` pick partitions: every mapping they run with must
/// have them.
pub(crate) fn check_partitioned(mappings: &[&Registered]) -> Result<()> {
    refuse_unpartitioned(
        mappings.iter().copied(),
        "`--partition` and `--shard` pick partitions of a mapping with `partition_by`; \
         name the partitioned mappings with `--mapping NAME`"
            .to_owned(),
    )
}

/// The `partition` error naming the mappings of `mappings` without `partition_by`
/// with `message`, if there are any.
pub(crate) fn refuse_unpartitioned<'a>(
    mappings: impl IntoIterator<Item = &'a Registered>,
    message: String,
) -> Result<()> {
    let unpartitioned: Vec<&str> = mappings
        .into_iter()
        .filter(|mapping| mapping.spec.source.partition_by.is_none())
        .map(|mapping| mapping.spec.name)
        .collect();
    if unpartitioned.is_empty() {
        return Ok(());
    }
    Err(Error::Engine(sync_runtime::Error::Partition {
        mapping: unpartitioned.join("`, `"),
        message,
    }))
}

fn print_summary(summary: &Summary) -> Result<()> {
    let targets: Vec<String> = summary
        .targets
        .iter()
        .map(|target| {
            if target.deleted == 0 {
                format!("{} {}", target.table, target.rows)
            } else {
                format!(
                    "{} {} ({} deleted)",
                    target.table, target.rows, target.deleted
                )
            }
        })
        .collect();
    for column in &summary.migrated {
        outln!(
            "{}: column `{}`.`{}` {} in place{}",
            summary.mapping,
            column.table,
            column.column,
            column.change,
            if column.change == "added" {
                format!(", {} rows backfilled", column.backfilled)
            } else {
                String::new()
            }
        )?;
    }
    outln!(
        "{}: {} sync, {} rows read ({}) in {:.2} s",
        summary.mapping,
        summary.mode,
        summary.rows_read,
        targets.join(", "),
        summary.seconds
    )
}
