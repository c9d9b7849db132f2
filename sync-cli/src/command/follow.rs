//! `data-sync follow`: applies the changes of capture mappings (`capture: log`) as
//! they commit, until SIGINT or SIGTERM.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;

use indicatif::MultiProgress;
use sync_runtime::{Progress, Registered, SourceConfig, Summary, SyncOptions};

use crate::args::{MappingArgs, RetryArgs};
use crate::error::{Error, Result};
use crate::metrics::{Metrics, MetricsArgs};
use crate::output::outln;
use crate::progress::TerminalProgress;

/// The options of `data-sync follow`.
#[derive(Debug, clap::Args)]
pub(crate) struct FollowArgs {
    #[command(flatten)]
    pub(crate) selection: MappingArgs,

    /// Changes per SQLite transaction at most, in whole source transactions.
    /// Example: --batch-size 1000
    #[arg(long, default_value_t = 10_000, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    batch_size: u32,

    #[command(flatten)]
    retry: RetryArgs,

    #[command(flatten)]
    pub(crate) metrics: MetricsArgs,
}

/// The capture mappings among `mappings`: all of them when none was named, else an
/// error for a named one without `capture: log`.
pub(crate) fn capture_mappings<'a>(
    mappings: &[&'a Registered],
    named: bool,
) -> Result<Vec<&'a Registered>> {
    let mut selected = Vec::new();
    for mapping in mappings {
        if mapping.spec.source.capture.is_some() {
            selected.push(*mapping);
        } else if named {
            return Err(Error::Engine(sync_runtime::Error::Capture {
                mapping: mapping.spec.name.to_owned(),
                message: "the mapping reads no change log: `follow` and `drop-slot` work on \
                          mappings with `capture: log`"
                    .to_owned(),
            }));
        }
    }
    Ok(selected)
}

/// Follows every mapping of `mappings` until a signal, each group of capture
/// mappings linked by references (the mappings a named one is linked to come
/// along, see [`sync_runtime::plan`]) on a thread of its own, from one replication
/// slot; a summary line per mapping when they stop; `bars` draws the progress on a
/// terminal, `metrics` counts what each round applies.
pub(crate) fn run(
    catalogue: &[Registered],
    mappings: &[&Registered],
    source: &SourceConfig,
    target: &Path,
    args: &FollowArgs,
    bars: Option<MultiProgress>,
    metrics: Option<Arc<Metrics>>,
) -> Result<()> {
    // On a terminal the progress ends in a summary of its own.
    let summary_on_stdout = bars.is_none() || !std::io::stdout().is_terminal();
    let mappings = capture_mappings(mappings, !args.selection.mappings.is_empty())?;
    if mappings.is_empty() {
        return Err(Error::Engine(sync_runtime::Error::Capture {
            mapping: String::new(),
            message: "no mapping with `capture: log` to follow".to_owned(),
        }));
    }
    let planned = sync_runtime::plan(catalogue, &mappings);
    for (mapping, brought_by) in &planned {
        if let Some(other) = brought_by {
            eprintln!(
                "note: following `{}` too: it and `{other}` are linked by references, and linked capture mappings read one replication slot",
                mapping.spec.name
            );
        }
    }
    let planned: Vec<Registered> = planned.into_iter().map(|(mapping, _)| mapping).collect();
    let groups = sync_runtime::linked_groups(catalogue, &planned);
    let options = SyncOptions {
        batch_size: args.batch_size as usize,
        retry: args.retry.policy(),
        progress: crate::metrics::observer(
            bars.map(|bars| Arc::new(TerminalProgress::new(bars)) as Arc<dyn Progress>),
            metrics.clone(),
        ),
        ..SyncOptions::default()
    };
    let results: Vec<sync_runtime::Result<Vec<Summary>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = groups
            .iter()
            .map(|group| {
                let options = &options;
                scope.spawn(move || match group.as_slice() {
                    [mapping] => mapping
                        .follow(source, target, options)
                        .map(|summary| vec![summary]),
                    group => sync_runtime::follow_group(group, source, target, options),
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("a follow thread does not panic"))
            .collect()
    });
    for (group, result) in groups.iter().zip(results) {
        if let (Some(metrics), Err(_)) = (&metrics, &result) {
            for mapping in group {
                metrics.ended(mapping.spec.name, "error");
            }
        }
        for summary in result? {
            if !summary_on_stdout {
                continue;
            }
            outln!(
                "{}: followed, {} changes applied in {:.1} s",
                summary.mapping,
                summary.rows_read,
                summary.seconds
            )?;
        }
    }
    Ok(())
}
