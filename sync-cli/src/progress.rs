//! The command line's progress on a terminal: the engine's [`Progress`] events drawn
//! as indicatif bars on stderr.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{HumanCount, MultiProgress, ProgressBar, ProgressStyle};
use sync_runtime::{Error, MappingSpec, Progress, Summary};

/// The command line's progress on a terminal: a bar per running mapping (a spinner
/// until PostgreSQL's estimate arrives), replaced at the end by a summary line and
/// one line per target.
pub(crate) struct TerminalProgress {
    bars: MultiProgress,
    /// The bar of each running mapping (`follow` runs several at once).
    current: Mutex<Vec<(&'static str, ProgressBar)>>,
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
            current: Mutex::new(Vec::new()),
        }
    }

    fn with_bar(&self, mapping: &MappingSpec, action: impl FnOnce(&ProgressBar)) {
        let current = self
            .current
            .lock()
            .unwrap_or_else(|error| error.into_inner());
        if let Some((_, bar)) = current.iter().find(|(name, _)| *name == mapping.name) {
            action(bar);
        }
    }

    /// Takes the bar of `mapping` away, if it has one.
    fn take(&self, mapping: &MappingSpec) -> Option<ProgressBar> {
        let mut current = self
            .current
            .lock()
            .unwrap_or_else(|error| error.into_inner());
        let index = current.iter().position(|(name, _)| *name == mapping.name)?;
        Some(current.remove(index).1)
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
        // A `follow` starts again after its first copy: a fresh bar for the changes.
        if let Some(bar) = self.take(mapping) {
            bar.finish_and_clear();
            self.bars.remove(&bar);
        }
        let bar = self.bars.add(ProgressBar::no_length());
        bar.set_style(style(SPINNER));
        bar.set_prefix(format!("{} ({mode})", mapping.name));
        bar.enable_steady_tick(Duration::from_millis(100));
        self.current
            .lock()
            .unwrap_or_else(|error| error.into_inner())
            .push((mapping.name, bar));
    }

    fn estimate(&self, mapping: &'static MappingSpec, rows: u64) {
        self.with_bar(mapping, |bar| {
            bar.set_length(rows.max(bar.position()));
            bar.set_style(style(BAR));
        });
    }

    fn advance(&self, mapping: &'static MappingSpec, rows: u64) {
        self.with_bar(mapping, |bar| {
            if bar.length().is_some_and(|length| rows > length) {
                bar.set_length(rows);
            }
            bar.set_position(rows);
        });
    }

    fn finish(&self, mapping: &'static MappingSpec, outcome: Result<&Summary, &Error>) {
        let Some(bar) = self.take(mapping) else {
            return;
        };
        bar.finish_and_clear();
        self.bars.remove(&bar);
        if let Ok(summary) = outcome {
            // Written by `eprintln!` with the bars suspended, not `bars.println`, whose
            // redraw assumes the terminal's width: under `script` or after a resize
            // its lines ran together.
            let lines = summary_lines(summary);
            self.bars.suspend(|| {
                for line in &lines {
                    eprintln!("{line}");
                }
            });
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
