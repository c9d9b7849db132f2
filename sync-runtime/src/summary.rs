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
    /// The columns the run added to or dropped from the targets, before it synced,
    /// because the mapping gained or lost them (see `docs/sync.md`); empty for most
    /// runs.
    pub migrated: Vec<ColumnMigration>,
}

/// One column a run added to a target table or dropped from it, in place.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ColumnMigration {
    /// The target table.
    pub table: String,
    /// The column.
    pub column: String,
    /// `added` or `dropped`.
    pub change: String,
    /// For an added column, the rows the backfill read from the source (key and
    /// the added columns only) and wrote into it; 0 for a dropped one.
    pub backfilled: u64,
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
