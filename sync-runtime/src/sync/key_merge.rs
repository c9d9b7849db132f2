//! `--prune` as a merge of two key streams in one order (issue 17): the source's
//! keys arrive in order, the target side's keys are read in the same order in
//! pages (`WHERE key > last ORDER BY key LIMIT`, so no SQLite cursor stays open
//! while rows are deleted), and each target key the source skipped is handed to
//! the target side as missing. Nothing is copied into SQLite; the cost is one pass
//! over the target side's keys.
//!
//! The single-file prune merges the parent table's integer keys (see
//! `incremental`); a fan-out prune merges the routing index's keys (see
//! `fanout_changes`).

use std::collections::VecDeque;

/// Target keys read per page of the merge.
pub(crate) const MERGE_PAGE: i64 = 8192;

/// The target side of a merge: its keys in order, and what to do with a key the
/// source does not have.
pub(crate) trait MergeTarget {
    /// A key, ordered as both streams are.
    type Key: Ord + Clone;

    /// The next (at most [`MERGE_PAGE`]) keys after `after` (from the first for
    /// `None`), in order.
    fn page(&mut self, after: Option<&Self::Key>) -> rusqlite::Result<Vec<Self::Key>>;

    /// A target key the source does not have.
    fn missing(&mut self, key: Self::Key) -> rusqlite::Result<()>;
}

/// The state of a merge between batches of source keys.
pub(crate) struct KeyMerge<K> {
    /// Target keys read, not yet compared.
    pending: VecDeque<K>,
    /// The last target key read.
    last_read: Option<K>,
    /// Whether every target key has been read.
    exhausted: bool,
    /// The last source key, to check the order.
    last_source: Option<K>,
    /// Target keys the source has.
    pub(crate) kept: u64,
    /// Target keys the source does not have.
    pub(crate) pruned: u64,
}

impl<K: Ord + Clone> Default for KeyMerge<K> {
    fn default() -> Self {
        KeyMerge::new()
    }
}

impl<K: Ord + Clone> KeyMerge<K> {
    pub(crate) fn new() -> KeyMerge<K> {
        KeyMerge {
            pending: VecDeque::new(),
            last_read: None,
            exhausted: false,
            last_source: None,
            kept: 0,
            pruned: 0,
        }
    }

    /// Records the next source key; `false` when it is not after the last one (the
    /// source's keys are out of order, and the merge would be wrong).
    pub(crate) fn source_in_order(&mut self, key: &K) -> bool {
        if self.last_source.as_ref().is_some_and(|last| last >= key) {
            return false;
        }
        self.last_source = Some(key.clone());
        true
    }

    /// Compares the target keys up to `source` (to the end for `None`) and hands
    /// those the source does not have to `target`.
    pub(crate) fn advance<T: MergeTarget<Key = K>>(
        &mut self,
        target: &mut T,
        source: Option<&K>,
    ) -> rusqlite::Result<()> {
        loop {
            if self.pending.is_empty() {
                if self.exhausted {
                    return Ok(());
                }
                let page = target.page(self.last_read.as_ref())?;
                if let Some(last) = page.last() {
                    self.last_read = Some(last.clone());
                }
                self.pending.extend(page);
                if self.pending.is_empty() {
                    self.exhausted = true;
                    return Ok(());
                }
            }
            let next = &self.pending[0];
            match source {
                Some(source) if next > source => return Ok(()),
                Some(source) if next == source => {
                    self.pending.pop_front();
                    self.kept += 1;
                    return Ok(());
                }
                _ => {
                    let key = self.pending.pop_front().expect("not empty");
                    target.missing(key)?;
                    self.pruned += 1;
                }
            }
        }
    }
}
