//! Progress of a run as it goes: the [`Progress`] observer the runtime calls.

use std::fmt;

use crate::error::{Error, Result};
use crate::spec::MappingSpec;
use crate::summary::Summary;

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
    /// A run of `mapping` starts, in `mode`: `full`, `incremental`, `capture` (a
    /// `sync` of a mapping with `capture: log`) or `follow`. A `follow` that begins
    /// with a first copy starts again, as `follow`, once the copy is committed: from
    /// then on [`Progress::advance`] counts changes, not rows copied.
    fn start(&self, mapping: &'static MappingSpec, mode: &str) {
        let _ = (mapping, mode);
    }

    /// PostgreSQL's estimate of the rows a full run reads: the source table's
    /// `reltuples`, read in the run's snapshot. Called at most once per run, from the
    /// reader thread (also for the first copy of a capture mapping), and not at all
    /// for incremental runs or a table PostgreSQL has not yet analyzed (`reltuples`
    /// unknown).
    fn estimate(&self, mapping: &'static MappingSpec, rows: u64) {
        let _ = (mapping, rows);
    }

    /// `rows` source rows are applied so far in this run (a running total), after
    /// each batch; for a capture mapping, rows copied by a first copy, then changes
    /// applied from the log (after each SQLite commit).
    fn advance(&self, mapping: &'static MappingSpec, rows: u64) {
        let _ = (mapping, rows);
    }

    /// The run ended, with its summary or the error that stopped it.
    fn finish(&self, mapping: &'static MappingSpec, outcome: Result<&Summary, &Error>) {
        let _ = (mapping, outcome);
    }

    /// A `follow` of `mapping` applied what the source had committed when it last
    /// looked (every 100 ms): `applied` is what this round did (its first copy, on
    /// the first round of a new target), and `behind` how many bytes of write-ahead
    /// log the target was behind the source as the round began.
    fn followed(&self, mapping: &'static MappingSpec, applied: &Summary, behind: u64) {
        let _ = (mapping, applied, behind);
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
