//! The versions themselves: per key, the values it had before the commits
//! that changed it while snapshots were open, oldest first; and the same
//! entries in commit order, so that reclaiming the old ones never scans.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::ops::Bound;

/// Which tree a key is in (the database uses the tree's root page).
pub type TreeId = u64;

/// Bytes a value keeps in memory, counted against the store's limit.
pub trait Weigh {
    /// Heap and inline bytes of this value.
    fn weight(&self) -> usize;
}

/// What every entry costs besides its key and value: the chain slot, the
/// queue slot, the map node's share.
const ENTRY_OVERHEAD: usize = 96;

struct Entry<V> {
    /// The commit that replaced `before`.
    ts: u64,
    /// The value before it (`Some(None)`: the key was absent); `None`
    /// while the commit has not changed the key yet (an intent: the tree
    /// still holds the value before it).
    before: Option<Option<V>>,
}

type Chain<V> = VecDeque<Entry<V>>;

pub(crate) struct Store<V> {
    /// Per tree, per key, its entries in commit order.
    trees: BTreeMap<TreeId, BTreeMap<Vec<u8>, Chain<V>>>,
    /// Every entry's key in commit order (the front goes first).
    queue: VecDeque<(u64, TreeId, Vec<u8>)>,
    /// What the entries weigh.
    bytes: usize,
}

fn weight<V: Weigh>(key: &[u8], before: &Option<Option<V>>) -> usize {
    2 * key.len() + before.as_ref().and_then(Option::as_ref).map_or(0, Weigh::weight) + ENTRY_OVERHEAD
}

/// The value at `at` from a chain: the `before` of the oldest commit
/// after it, if any; `None` if there is none, or if that commit is an
/// intent (it has not changed the tree yet, so the tree's value stands).
fn at_in_chain<V: Clone>(chain: &Chain<V>, at: u64) -> Option<Option<V>> {
    chain.iter().find(|e| e.ts > at).and_then(|e| e.before.clone())
}

/// Whether a commit after `since` is in the chain (the newest is last).
fn changed_in_chain<V>(chain: &Chain<V>, since: u64) -> bool {
    chain.back().is_some_and(|e| e.ts > since)
}

impl<V: Weigh + Clone> Store<V> {
    pub(crate) fn new() -> Store<V> {
        Store { trees: BTreeMap::new(), queue: VecDeque::new(), bytes: 0 }
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn entries(&self) -> usize {
        self.queue.len()
    }

    /// Records that the commit `ts` (newer than every entry's) replaces
    /// `before` as `key`'s value (`None`: will change it; see [`Entry`]).
    pub(crate) fn push(&mut self, ts: u64, tree: TreeId, key: &[u8], before: Option<Option<V>>) {
        self.bytes += weight(key, &before);
        self.queue.push_back((ts, tree, key.to_vec()));
        let keys = self.trees.entry(tree).or_default();
        match keys.get_mut(key) {
            Some(chain) => chain.push_back(Entry { ts, before }),
            None => {
                keys.insert(key.to_vec(), VecDeque::from([Entry { ts, before }]));
            }
        }
    }

    /// Fills in the intent of commit `ts` on `key` with the value it
    /// replaced; gives `before` back if the key has no such intent.
    pub(crate) fn fill(&mut self, ts: u64, tree: TreeId, key: &[u8], before: Option<V>) -> Result<(), Option<V>> {
        let entry = self.trees.get_mut(&tree).and_then(|keys| keys.get_mut(key)).and_then(|chain| chain.back_mut());
        let Some(entry) = entry.filter(|e| e.ts == ts && e.before.is_none()) else { return Err(before) };
        self.bytes += before.as_ref().map_or(0, Weigh::weight);
        entry.before = Some(before);
        Ok(())
    }

    fn chain(&self, tree: TreeId, key: &[u8]) -> Option<&Chain<V>> {
        self.trees.get(&tree)?.get(key)
    }

    /// The value `key` had at snapshot `at`, if a commit after it changed
    /// the key: `Some(before)` of the oldest such commit; `None` if the
    /// tree's value is the snapshot's.
    pub(crate) fn at(&self, at: u64, tree: TreeId, key: &[u8]) -> Option<Option<V>> {
        at_in_chain(self.chain(tree, key)?, at)
    }

    /// Whether a commit after `since` changed `key`.
    pub(crate) fn changed(&self, since: u64, tree: TreeId, key: &[u8]) -> bool {
        self.chain(tree, key).is_some_and(|c| changed_in_chain(c, since))
    }

    /// The keys between `low` and `high` in `tree` that commits after `at`
    /// changed, in key order, each with its value at `at` (as [`at`](Self::at)).
    pub(crate) fn at_in(
        &self,
        at: u64,
        tree: TreeId,
        low: Bound<&[u8]>,
        high: Bound<&[u8]>,
    ) -> Vec<(Vec<u8>, Option<V>)> {
        self.range(tree, low, high).filter_map(|(k, chain)| at_in_chain(chain, at).map(|v| (k.clone(), v))).collect()
    }

    /// Whether a commit after `since` changed a key between `low` and `high`.
    pub(crate) fn changed_in(&self, since: u64, tree: TreeId, low: Bound<&[u8]>, high: Bound<&[u8]>) -> bool {
        self.range(tree, low, high).any(|(_, chain)| changed_in_chain(chain, since))
    }

    fn range<'s>(
        &'s self,
        tree: TreeId,
        low: Bound<&[u8]>,
        high: Bound<&[u8]>,
    ) -> impl Iterator<Item = (&'s Vec<u8>, &'s Chain<V>)> + 's {
        // An empty or inverted range has nothing (and `range` would panic).
        let empty = match (low, high) {
            (Bound::Included(l), Bound::Included(h)) => l > h,
            (Bound::Included(l) | Bound::Excluded(l), Bound::Excluded(h))
            | (Bound::Excluded(l), Bound::Included(h)) => l >= h,
            _ => false,
        };
        let keys = if empty { None } else { self.trees.get(&tree) };
        keys.map(|keys| keys.range::<[u8], _>((low, high))).into_iter().flatten()
    }

    /// Drops the entries of commits up to `ts` (no open snapshot needs them).
    pub(crate) fn reclaim(&mut self, ts: u64) {
        while let Some((t, _, _)) = self.queue.front()
            && *t <= ts
        {
            let Some((_, tree, key)) = self.queue.pop_front() else { break };
            let Some(keys) = self.trees.get_mut(&tree) else { continue };
            let Some(chain) = keys.get_mut(key.as_slice()) else { continue };
            // Entries go in commit order, so the key's oldest is this one.
            if let Some(e) = chain.pop_front() {
                self.bytes -= weight(&key, &e.before);
            }
            if chain.is_empty() {
                keys.remove(key.as_slice());
                if keys.is_empty() {
                    self.trees.remove(&tree);
                }
            }
        }
    }
}
