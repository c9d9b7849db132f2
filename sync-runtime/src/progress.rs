//! Progress of a run as it goes: the [`Progress`] observer the runtime calls, the
//! run's one log line, and the terminal rendering the command line uses.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{HumanCount, MultiProgress, ProgressBar, ProgressStyle};

use crate::error::{Error, Result};
use crate::run::{Summary, SyncOptions};
use crate::spec::MappingSpec;

/// An observer of runs: the runtime calls it as a run starts, once it knows how many
/// rows to expect, after every batch, and as the run ends.
///
/// Every method has a default that does nothing, so an implementation picks the
/// events it needs. Methods may be called from the run's reader thread as well as
/// from the thread that called [`sync`](crate::sync), hence `Send + Sync`. A closure
/// `Fn(&MappingSpec, u64)` is a `Progress` that sees [`Progress::advance`] alone.
///
/// The `data-sync` command line renders these events as a progress bar on stderr.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use sync_runtime::{MappingSpec, Progress, Summary};
///
/// /// Remembers the last row count, for a status page.
/// #[derive(Default)]
/// struct RowCounter(AtomicU64);
///
/// impl Progress for RowCounter {
///     fn advance(&self, _mapping: &'static MappingSpec, rows: u64) {
///         self.0.store(rows, Ordering::Relaxed);
///     }
///
///     fn finish(&self, mapping: &'static MappingSpec, outcome: Result<&Summary, &sync_runtime::Error>) {
///         if let Ok(summary) = outcome {
///             eprintln!("{}: {} rows", mapping.name, summary.rows_read);
///         }
///     }
/// }
///
/// let options = sync_runtime::SyncOptions {
///     progress: Some(std::sync::Arc::new(RowCounter::default())),
///     ..Default::default()
/// };
/// # let _ = options;
/// ```
pub trait Progress: Send + Sync {
    /// A run of `mapping` starts, in `mode`: `full` or `incremental`.
    fn start(&self, mapping: &'static MappingSpec, mode: &str) {
        let _ = (mapping, mode);
    }

    /// PostgreSQL's estimate of the rows a full run reads: the source table's
    /// `reltuples`, read in the run's snapshot. Called at most once per run, from the
    /// reader thread, and not at all for incremental runs or a table PostgreSQL has
    /// not yet analyzed (`reltuples` unknown).
    fn estimate(&self, mapping: &'static MappingSpec, rows: u64) {
        let _ = (mapping, rows);
    }

    /// `rows` source rows are applied so far in this run (a running total), after
    /// each batch.
    fn advance(&self, mapping: &'static MappingSpec, rows: u64) {
        let _ = (mapping, rows);
    }

    /// The run ended, with its summary or the error that stopped it.
    fn finish(&self, mapping: &'static MappingSpec, outcome: Result<&Summary, &Error>) {
        let _ = (mapping, outcome);
    }
}

impl<F> Progress for F
where
    F: Fn(&'static MappingSpec, u64) + Send + Sync,
{
    fn advance(&self, mapping: &'static MappingSpec, rows: u64) {
        self(mapping, rows);
    }
}

impl fmt::Debug for dyn Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Progress")
    }
}

/// The observer of a run without one.
struct Silent;

impl Progress for Silent {}

/// The observer `options` names, or one that does nothing.
pub(crate) fn observer(options: &SyncOptions) -> &dyn Progress {
    static SILENT: Silent = Silent;
    match &options.progress {
        Some(progress) => progress.as_ref(),
        None => &SILENT,
    }
}

/// The planner's row estimate of the source table (`pg_class.reltuples`), read in
/// the run's snapshot; `None` when PostgreSQL has not estimated it yet (`-1`, or `0`
/// before PostgreSQL 14) or the relation is partitioned. On the full sync's reader
/// connection (see `source::reader`).
pub(crate) async fn estimate(
    transaction: &tokio_postgres::Transaction<'_>,
    spec: &MappingSpec,
) -> std::result::Result<Option<u64>, postgres::Error> {
    let quote = |name: &str| format!("\"{}\"", name.replace('"', "\"\""));
    let name = match spec.source.schema {
        Some(schema) => format!("{}.{}", quote(schema), quote(spec.source.table)),
        None => quote(spec.source.table),
    };
    let row = transaction
        .query_opt(
            "SELECT reltuples::float8 FROM pg_catalog.pg_class WHERE oid = to_regclass($1)",
            &[&name],
        )
        .await?;
    let reltuples: f64 = match row {
        Some(row) => row.get(0),
        None => return Ok(None),
    };
    Ok((reltuples >= 1.0).then_some(reltuples.round() as u64))
}

/// Logs the run's one line, at `info`: mapping, mode, rows read, rows per target,
/// duration and outcome. A failure is logged at `info` too, since the caller reports
/// the error itself (the command line prints it once, as `error: ...`).
pub(crate) fn log_run(
    spec: &MappingSpec,
    mode: Option<&str>,
    seconds: f64,
    result: &Result<Summary>,
) {
    let mode = mode.unwrap_or("unknown");
    match result {
        Ok(summary) => {
            let targets = summary
                .targets
                .iter()
                .map(|target| {
                    if target.deleted == 0 {
                        format!("{}={}", target.table, target.rows)
                    } else {
                        format!("{}={}(-{})", target.table, target.rows, target.deleted)
                    }
                })
                .collect::<Vec<_>>()
                .join(" ");
            tracing::info!(
                mapping = spec.name,
                mode,
                rows = summary.rows_read,
                targets = targets.as_str(),
                seconds,
                outcome = "ok",
                "sync finished"
            );
        }
        Err(error) => {
            tracing::info!(
                mapping = spec.name,
                mode,
                seconds,
                outcome = "error",
                error = %error,
                "sync failed"
            );
        }
    }
}

/// The command line's progress on a terminal: a bar per running mapping (a spinner
/// until PostgreSQL's estimate arrives), replaced at the end by a summary line and
/// one line per target.
pub(crate) struct TerminalProgress {
    bars: MultiProgress,
    current: Mutex<Option<ProgressBar>>,
}

/// Before the row estimate: rows, rows/s, elapsed.
const SPINNER: &str = "{spinner:.green} {prefix:.bold}: {human_pos} rows, {rate}, {elapsed}";
/// With the row estimate: a bar and an ETA.
const BAR: &str = "{spinner:.green} {prefix:.bold} [{wide_bar:.cyan/blue}] {human_pos}/~{human_len} rows, {rate}, ETA {eta}";

impl TerminalProgress {
    /// Draws into `bars` (whose draw target decides whether anything shows).
    pub(crate) fn new(bars: MultiProgress) -> Self {
        TerminalProgress {
            bars,
            current: Mutex::new(None),
        }
    }

    fn with_bar(&self, action: impl FnOnce(&ProgressBar)) {
        let current = self
            .current
            .lock()
            .unwrap_or_else(|error| error.into_inner());
        if let Some(bar) = current.as_ref() {
            action(bar);
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
        .with_key(
            "rate",
            |state: &indicatif::ProgressState, out: &mut dyn fmt::Write| {
                let _ = write!(out, "{} rows/s", HumanCount(state.per_sec() as u64));
            },
        )
        .progress_chars("=> ")
}

impl Progress for TerminalProgress {
    fn start(&self, mapping: &'static MappingSpec, mode: &str) {
        let bar = self.bars.add(ProgressBar::no_length());
        bar.set_style(style(SPINNER));
        bar.set_prefix(format!("{} ({mode})", mapping.name));
        bar.enable_steady_tick(Duration::from_millis(100));
        let mut current = self
            .current
            .lock()
            .unwrap_or_else(|error| error.into_inner());
        *current = Some(bar);
    }

    fn estimate(&self, _mapping: &'static MappingSpec, rows: u64) {
        self.with_bar(|bar| {
            bar.set_length(rows.max(bar.position()));
            bar.set_style(style(BAR));
        });
    }

    fn advance(&self, _mapping: &'static MappingSpec, rows: u64) {
        self.with_bar(|bar| {
            if bar.length().is_some_and(|length| rows > length) {
                bar.set_length(rows);
            }
            bar.set_position(rows);
        });
    }

    fn finish(&self, _mapping: &'static MappingSpec, outcome: Result<&Summary, &Error>) {
        let bar = self
            .current
            .lock()
            .unwrap_or_else(|error| error.into_inner())
            .take();
        let Some(bar) = bar else { return };
        bar.finish_and_clear();
        self.bars.remove(&bar);
        if let Ok(summary) = outcome {
            for line in summary_lines(summary) {
                let _ = self.bars.println(line);
            }
        }
    }
}

/// The tidy end of a run: a line for the mapping, then one per target.
pub(crate) fn summary_lines(summary: &Summary) -> Vec<String> {
    let rate = if summary.seconds > 0.0 {
        format!(
            " ({} rows/s)",
            HumanCount((summary.rows_read as f64 / summary.seconds) as u64)
        )
    } else {
        String::new()
    };
    let mut lines = vec![format!(
        "{}: {} sync, {} rows read in {:.2} s{rate}",
        summary.mapping,
        summary.mode,
        HumanCount(summary.rows_read),
        summary.seconds
    )];
    let width = summary
        .targets
        .iter()
        .map(|target| target.table.len())
        .max()
        .unwrap_or(0);
    for target in &summary.targets {
        let deleted = if target.deleted == 0 {
            String::new()
        } else {
            format!(", {} deleted", HumanCount(target.deleted))
        };
        lines.push(format!(
            "  {:width$}  {} written{deleted}",
            target.table,
            HumanCount(target.rows)
        ));
    }
    lines
}
