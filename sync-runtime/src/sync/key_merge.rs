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
//!
//! When a batch of the source's integer keys has few gaps (keys missing between
//! two consecutive ones), the single-file prune deletes each gap's range of target
//! keys instead (`DELETE .. WHERE key > a AND key < b`) and skips the target's
//! keys up to the batch's last key ([`KeyMerge::skip_to`]): it then reads none of
//! them (see [`dense`]).

/// A batch of source keys is dense when it has at most one gap per `DENSE_GAPS`
/// keys: one range delete that finds no row costs a few B-tree seeks, about what
/// reading this many target keys in a page costs.
const DENSE_GAPS: usize = 64;

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

    /// The last source key recorded, if any.
    pub(crate) fn last_source(&self) -> Option<&K> {
        self.last_source.as_ref()
    }

    /// Moves the merge past `key`, after the target side deleted every target key
    /// below it and above the last one compared that the source does not have:
    /// the target keys read up to `key` are dropped, and the next page starts
    /// after it.
    pub(crate) fn skip_to(&mut self, key: &K) {
        while self.pending.front().is_some_and(|next| next <= key) {
            self.pending.pop_front();
        }
        if self.pending.is_empty() && self.last_read.as_ref().is_none_or(|last| last < key) {
            self.last_read = Some(key.clone());
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

/// The gaps of a batch of integer source `keys` (in order, after `previous`, the
/// last key of the batches before): the open ranges of keys the source does not
/// have, `(after, before)`, `None` for no lower bound (before the first key of
/// all). `None` when the batch is not dense (more than one gap per
/// [`DENSE_GAPS`] keys): its target keys are then better merged one by one.
pub(crate) fn dense(previous: Option<i64>, keys: &[i64]) -> Option<Vec<(Option<i64>, i64)>> {
    let first = *keys.first()?;
    let mut gaps = Vec::new();
    match previous {
        None => gaps.push((None, first)),
        // `after < first`, so `after + 1` cannot overflow.
        Some(after) if after + 1 < first => gaps.push((Some(after), first)),
        Some(_) => {}
    }
    for pair in keys.windows(2) {
        let (after, before) = (pair[0], pair[1]);
        if after + 1 < before {
            gaps.push((Some(after), before));
            if gaps.len() * DENSE_GAPS > keys.len() {
                return None;
            }
        }
    }
    (gaps.len() * DENSE_GAPS <= keys.len()).then_some(gaps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_batches_list_their_gaps() {
        let keys: Vec<i64> = (1..=200).filter(|key| key % 100 != 50).collect();
        assert_eq!(
            dense(None, &keys),
            Some(vec![(None, 1), (Some(49), 51), (Some(149), 151)])
        );
        // Three gaps: dense from 192 keys on (3 * 64).
        assert_eq!(
            dense(Some(-5), &keys),
            Some(vec![(Some(-5), 1), (Some(49), 51), (Some(149), 151)])
        );
        assert_eq!(dense(Some(-5), &keys[..190]), None);
        let keys: Vec<i64> = (1..=640).collect();
        assert_eq!(dense(Some(0), &keys), Some(Vec::new()));
        assert_eq!(dense(Some(-1), &keys), Some(vec![(Some(-1), 1)]));
        assert_eq!(dense(Some(0), &[]), None);
    }

    #[test]
    fn dense_keys_at_the_ends_of_the_integers() {
        let keys: Vec<i64> = (0..128).map(|offset| i64::MIN + offset).collect();
        assert_eq!(dense(None, &keys), Some(vec![(None, i64::MIN)]));
        let keys: Vec<i64> = (0..128).map(|offset| i64::MAX - 127 + offset).collect();
        assert_eq!(
            dense(Some(i64::MIN), &keys),
            Some(vec![(Some(i64::MIN), i64::MAX - 127)])
        );
    }

    #[test]
    fn sparse_batches_are_merged() {
        let keys: Vec<i64> = (0..1000).map(|key| key * 2).collect();
        assert_eq!(dense(Some(-2), &keys), None);
    }

    #[test]
    fn skip_to_drops_the_keys_read_up_to_it() {
        let mut merge = KeyMerge::<i64>::new();
        merge.pending.extend([3, 5, 9]);
        merge.last_read = Some(9);
        merge.skip_to(&5);
        assert_eq!(merge.pending, [9]);
        assert_eq!(merge.last_read, Some(9));
        merge.skip_to(&20);
        assert!(merge.pending.is_empty());
        assert_eq!(merge.last_read, Some(20));
    }
}
