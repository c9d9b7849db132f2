//! The options of a run ([`SyncOptions`]), and the depth of the queue between a run's
//! reader and writer.

use std::sync::Arc;

use crate::filter::Params;
use crate::progress::Progress;
use crate::sync::retry::RetryPolicy;
use crate::sync::watermark::Overlap;

/// How many batches may wait between the reader and the writer: enough to keep both
/// busy, few enough that memory stays flat however large the table.
pub(crate) const QUEUE_DEPTH: usize = 4;

/// Options of one run.
#[derive(Clone, Debug)]
pub struct SyncOptions {
    /// Rebuild every target from the whole source, even where an incremental run is
    /// possible. Mappings without a cursor, and the first run of one with a cursor,
    /// always sync in full.
    pub full: bool,
    /// Rows per batch handed from the reader to the writer (a batch also ends at
    /// 4 MiB of row data, so that memory stays bounded however wide the rows); for
    /// incremental runs also the rows per SQLite transaction (each commits its
    /// watermark).
    pub batch_size: usize,
    /// After an incremental run, delete the target rows whose key has left the
    /// source (read from the same snapshot).
    pub prune: bool,
    /// How far below the watermark an incremental run reads again, for transactions
    /// that commit late; `None` is the default: 5 minutes for a time cursor, none
    /// for other cursors. See `docs/sync.md`.
    pub overlap: Option<Overlap>,
    /// An observer of the run's progress (rows so far, the row estimate, the end),
    /// or `None`; see [`Progress`](crate::Progress).
    pub progress: Option<Arc<dyn Progress>>,
    /// How the run retries after a transient source fault (a dropped connection, a
    /// restarting server); see [`RetryPolicy`](crate::RetryPolicy).
    pub retry: RetryPolicy,
    /// Let a run empty targets that hold rows: a full sync of a source with no rows
    /// to write, or a `--prune` that deletes every row. Without it such a run stops
    /// with [`Error::WouldEmpty`](crate::Error::WouldEmpty) and the targets stay as
    /// they were.
    pub allow_empty: bool,
    /// Sync although the mapping's key is not backed by a unique index or
    /// constraint of the source (a view, say): the user vouches that it is unique.
    /// Without it such a run stops with
    /// [`Error::KeyNotUnique`](crate::Error::KeyNotUnique).
    pub assume_unique_key: bool,
    /// The values of the filter's `$name` parameters (`--param name=value`); each
    /// is decoded by its column's type before the run reads or writes anything,
    /// and the targets remember them (see [`Params`](crate::Params)).
    pub params: Params,
    /// The partitions of a partitioned mapping (`partition_by`) a run syncs:
    /// every one, one (`--partition VALUE`) or a shard (`--shard I/N`).
    pub selection: crate::partition::Selection,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            full: false,
            batch_size: 10_000,
            prune: false,
            overlap: None,
            progress: None,
            retry: RetryPolicy::default(),
            allow_empty: false,
            assume_unique_key: false,
            params: Params::default(),
            selection: crate::partition::Selection::All,
        }
    }
}

impl SyncOptions {
    /// The `(setting, value)` pairs that bind the filter of `spec` for a run with
    /// these options (none without a filter).
    pub(crate) fn filter_settings(
        &self,
        spec: &crate::spec::MappingSpec,
    ) -> crate::error::Result<Vec<(&'static str, String)>> {
        match &spec.source.filter {
            Some(filter) => {
                filter
                    .settings(&self.params)
                    .map_err(|source| crate::error::Error::Param {
                        mapping: spec.name.to_owned(),
                        source,
                    })
            }
            None => Ok(Vec::new()),
        }
    }

    /// The observer these options name, or one that does nothing.
    pub(crate) fn observer(&self) -> &dyn Progress {
        /// The observer of a run without one.
        struct Silent;

        impl Progress for Silent {}

        static SILENT: Silent = Silent;
        match &self.progress {
            Some(progress) => progress.as_ref(),
            None => &SILENT,
        }
    }
}
