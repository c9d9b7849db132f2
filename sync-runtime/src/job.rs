//! [`SyncJob`]: running mappings from a program of your own, without the command
//! line.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::Mapping;
use crate::error::Result;
use crate::options::SyncOptions;
use crate::progress::Progress;
use crate::registered::Registered;
use crate::source::config::SourceConfig;
use crate::summary::Summary;
use crate::sync::watermark::Overlap;

/// A sync from one source into one target file, set up step by step and run for one
/// mapping or several: the library form of `data-sync sync`.
///
/// Each setter takes and returns the job, and [`SyncJob::run`] borrows it, so one
/// job can run several mappings (or the same one again, incrementally).
///
/// # Examples
///
/// ```no_run
/// use sync_runtime::{Mapping, SourceConfig, SyncJob};
///
/// #[derive(Mapping)]
/// #[sync(from = "public.users", key = "id")]
/// pub struct Users {
///     #[sync(to = "user_main", primary_key)]
///     pub id: i64,
///     #[sync(to = "user_main")]
///     pub username: String,
/// }
///
/// # fn main() -> sync_runtime::Result<()> {
/// let source = SourceConfig::parse("postgresql://app@localhost/app")?;
/// let summary = SyncJob::new(source, "app.sqlite")
///     .batch_size(5_000)
///     .progress(|_mapping: &'static sync_runtime::MappingSpec, rows: u64| eprintln!("{rows} rows"))
///     .run::<Users>()?;
/// println!("{}: {} rows in {:.1} s", summary.mapping, summary.rows_read, summary.seconds);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct SyncJob {
    source: SourceConfig,
    target: PathBuf,
    options: SyncOptions,
}

impl SyncJob {
    /// A job reading `source` and writing the SQLite file `target` (created if
    /// missing), with the default [`SyncOptions`]: incremental where possible,
    /// batches of 10,000 rows, no prune, the default overlap, no progress observer.
    pub fn new(source: SourceConfig, target: impl Into<PathBuf>) -> Self {
        SyncJob {
            source,
            target: target.into(),
            options: SyncOptions::default(),
        }
    }

    /// Rebuilds every target from the whole source (`--full`) when `full`.
    #[must_use]
    pub fn full(mut self, full: bool) -> Self {
        self.options.full = full;
        self
    }

    /// Rows per batch between the reader and the writer (`--batch-size`); `0` counts
    /// as `1`.
    #[must_use]
    pub fn batch_size(mut self, rows: usize) -> Self {
        self.options.batch_size = rows;
        self
    }

    /// After an incremental run, deletes the target rows whose key has left the
    /// source (`--prune`) when `prune`.
    #[must_use]
    pub fn prune(mut self, prune: bool) -> Self {
        self.options.prune = prune;
        self
    }

    /// Lets a run empty targets that hold rows (`--allow-empty`): a full sync of a
    /// source with no rows to write, or a `--prune` of every row.
    #[must_use]
    pub fn allow_empty(mut self, allow_empty: bool) -> Self {
        self.options.allow_empty = allow_empty;
        self
    }

    /// Syncs although the mapping's key is not backed by a unique index or
    /// constraint of the source (`--assume-unique-key`).
    #[must_use]
    pub fn assume_unique_key(mut self, assume_unique_key: bool) -> Self {
        self.options.assume_unique_key = assume_unique_key;
        self
    }

    /// Sets the filter parameter `$name` to `value` (`--param name=value`), as its
    /// column's type reads it: `.param("tenant", "7")`. A run checks every
    /// parameter its mapping's filter uses before it reads or writes anything, and
    /// a target built with other values is refused unless [`SyncJob::full`] rebuilds
    /// it.
    #[must_use]
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.params.set(name, value);
        self
    }

    /// How far below the watermark incremental runs read again (`--overlap`).
    #[must_use]
    pub fn overlap(mut self, overlap: Overlap) -> Self {
        self.options.overlap = Some(overlap);
        self
    }

    /// Calls `progress` as runs go; a closure `|mapping, rows| ..` sees the rows
    /// applied after each batch. See [`Progress`].
    #[must_use]
    pub fn progress(mut self, progress: impl Progress + 'static) -> Self {
        self.options.progress = Some(Arc::new(progress));
        self
    }

    /// Replaces every option at once.
    #[must_use]
    pub fn options(mut self, options: SyncOptions) -> Self {
        self.options = options;
        self
    }

    /// The target file.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// The options runs use.
    pub fn sync_options(&self) -> &SyncOptions {
        &self.options
    }

    /// Runs mapping `M`: see [`sync`](crate::sync) for what a run does.
    ///
    /// # Errors
    ///
    /// As [`sync`](crate::sync): nothing of a failed run is committed (an
    /// incremental run keeps the batches it committed, with their watermark).
    pub fn run<M: Mapping>(&self) -> Result<Summary> {
        crate::sync::sync::<M>(&self.source, &self.target, &self.options)
    }

    /// Runs each mapping of `catalogue` in turn, as `data-sync sync` without
    /// `--mapping` does; stops at the first that fails.
    ///
    /// # Errors
    ///
    /// The first run's error; the runs before it are kept.
    pub fn run_all(&self, catalogue: &[Registered]) -> Result<Vec<Summary>> {
        catalogue
            .iter()
            .map(|mapping| mapping.sync(&self.source, &self.target, &self.options))
            .collect()
    }
}
