//! What one run did: the [`Summary`] a sync returns and its progress observer's
//! last event carries.

/// What one run did.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Summary {
    /// The mapping name.
    pub mapping: String,
    /// `full` or `incremental`.
    pub mode: String,
    /// Rows read from the source.
    pub rows_read: u64,
    /// Rows written, per target table, parents first.
    pub targets: Vec<TargetSummary>,
    /// Wall-clock seconds of the run.
    pub seconds: f64,
}

/// Rows written into one target table.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TargetSummary {
    /// The target table.
    pub table: String,
    /// Rows written: inserted, or updated with a changed value.
    pub rows: u64,
    /// Rows deleted (soft deletes and `--prune`).
    pub deleted: u64,
}
