//! Range iterators over a tree, both ways.
//!
//! An iterator is not a snapshot. It fetches entries a leaf's worth at a
//! time through the tree's scan (each fetch validated as one consistent
//! read of a leaf), and goes on from the last key it returned. So it
//! returns keys in strictly increasing order from the front (decreasing
//! from the back), never a key twice, and never a key outside the range;
//! every pair it returns was in the tree at some moment during the
//! iteration; a key that is in the tree, unchanged, for the whole
//! iteration is returned exactly once; keys written or removed meanwhile
//! may or may not be seen. The two ends meet without overlap.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::ops::Bound;

use snowfall_btree::Direction;

use snowfall_version::Snapshot;

use crate::db::Tree;
use crate::error::Error;
use crate::versioning::Kept;

/// Entries fetched per step from either end.
const CHUNK: usize = 64;

/// A key with a value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// An iterator over the entries of a key range; see the module docs for
/// what it sees while other threads write (or, from a
/// [`ReadTx`](crate::ReadTx), its snapshot).
pub struct Range<'t> {
    tree: Tree<'t>,
    /// The snapshot it reads at, if any.
    at: Option<Snapshot>,
    /// Keys not yet fetched from the front: from `low` ...
    low: Bound<Vec<u8>>,
    /// ... up to `high`, not yet fetched from the back.
    high: Bound<Vec<u8>>,
    front: VecDeque<Entry>,
    back: VecDeque<Entry>,
    /// No keys left between `low` and `high` to fetch.
    exhausted: bool,
    /// An error ends the iteration after it is returned.
    failed: bool,
}

impl<'t> Range<'t> {
    pub(crate) fn new(tree: Tree<'t>, low: Bound<Vec<u8>>, high: Bound<Vec<u8>>) -> Range<'t> {
        let exhausted = empty(&low, &high);
        Range { tree, at: None, low, high, front: VecDeque::new(), back: VecDeque::new(), exhausted, failed: false }
    }

    /// The same range as of `at`.
    pub(crate) fn at(mut self, at: Snapshot) -> Range<'t> {
        self.at = Some(at);
        self
    }

    /// Fetches up to a chunk of entries from one end of the unfetched keys.
    fn fetch(&mut self, direction: Direction) -> Result<(), Error> {
        let (from, limit) = match direction {
            Direction::Forward => (&self.low, &self.high),
            Direction::Backward => (&self.high, &self.low),
        };
        if let Some(at) = self.at {
            return self.fetch_at(at, direction);
        }
        let mut got: Vec<Entry> = Vec::new();
        let mut past_limit = false;
        self.tree.scan(as_ref(from), direction, |k, v| {
            if !within(k, limit, direction) {
                past_limit = true;
                return false;
            }
            got.push((k.to_vec(), v.to_vec()));
            got.len() < CHUNK
        })?;
        let last = got.last().map(|(k, _)| k.clone());
        self.advance(direction, past_limit || got.len() < CHUNK, last);
        match direction {
            Direction::Forward => self.front.extend(got),
            Direction::Backward => self.back.extend(got),
        }
        Ok(())
    }

    /// As [`fetch`](Self::fetch), at a snapshot: a chunk of the tree as it
    /// is (values as the leaves store them), then the version store's
    /// changes since the snapshot over the same keys, read after it
    /// (docs/plan-transactions.md: that order makes the merge the snapshot).
    fn fetch_at(&mut self, at: Snapshot, direction: Direction) -> Result<(), Error> {
        // Large values are read in the chunk, each under this pin (as a
        // snapshot's point read: snapshot.rs).
        let _pin = self.tree.db.bm.pin_extents();
        let (from, limit) = match direction {
            Direction::Forward => (&self.low, &self.high),
            Direction::Backward => (&self.high, &self.low),
        };
        let mut got: BTreeMap<Vec<u8>, Kept> = BTreeMap::new();
        let mut past_limit = false;
        let mut n = 0;
        self.tree.btree().scan(as_ref(from), direction, |k, stored| {
            if !within(k, limit, direction) {
                past_limit = true;
                return false;
            }
            got.insert(k.to_vec(), Kept::of(stored));
            n += 1;
            n < CHUNK
        })?;
        let exhausted = past_limit || n < CHUNK;
        // The last key the tree gave, before the store's changes are merged.
        let last = match direction {
            Direction::Forward => got.keys().next_back(),
            Direction::Backward => got.keys().next(),
        }
        .cloned();
        // The keys this chunk covers: up to its last, or to the limit.
        let end = match (&last, exhausted) {
            (Some(k), false) => Bound::Included(k.clone()),
            _ => limit.clone(),
        };
        let (low, high) = match direction {
            Direction::Forward => (from, &end),
            Direction::Backward => (&end, from),
        };
        let changed = self.tree.db.versions.read_range(at, self.tree.btree().root().0, as_ref(low), as_ref(high));
        for (k, v) in changed.map_err(|e| Error::SnapshotTooOld { ts: e.ts })? {
            match v {
                Some(v) => got.insert(k, v),
                None => got.remove(&k),
            };
        }
        self.advance(direction, exhausted, last);
        let mut entries = Vec::with_capacity(got.len());
        for (k, v) in got {
            let v = self.tree.db.kept_value(&v)?;
            entries.push((k, v));
        }
        match direction {
            Direction::Forward => self.front.extend(entries),
            Direction::Backward => self.back.extend(entries.into_iter().rev()),
        }
        Ok(())
    }

    /// After a fetch in `direction` that ended at `last`: the unfetched
    /// keys start past it.
    fn advance(&mut self, direction: Direction, exhausted: bool, last: Option<Vec<u8>>) {
        if exhausted {
            self.exhausted = true;
        }
        if let Some(last) = last {
            let next = Bound::Excluded(last);
            match direction {
                Direction::Forward => self.low = next,
                Direction::Backward => self.high = next,
            }
            if empty(&self.low, &self.high) {
                self.exhausted = true;
            }
        }
    }

    fn step(&mut self, direction: Direction) -> Option<Result<Entry, Error>> {
        if self.failed {
            return None;
        }
        loop {
            let (mine, other) = match direction {
                Direction::Forward => (&mut self.front, &mut self.back),
                Direction::Backward => (&mut self.back, &mut self.front),
            };
            if let Some(e) = mine.pop_front() {
                return Some(Ok(e));
            }
            if self.exhausted {
                // What the other end fetched and has not returned is ours too.
                return other.pop_back().map(Ok);
            }
            if let Err(e) = self.fetch(direction) {
                self.failed = true;
                return Some(Err(e));
            }
        }
    }
}

impl Iterator for Range<'_> {
    type Item = Result<Entry, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.step(Direction::Forward)
    }
}

impl DoubleEndedIterator for Range<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.step(Direction::Backward)
    }
}

impl core::iter::FusedIterator for Range<'_> {}

/// The bounds of `range`, owned.
pub(crate) fn owned<K: AsRef<[u8]> + ?Sized>(
    range: &impl core::ops::RangeBounds<K>,
) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let own = |b: Bound<&K>| match b {
        Bound::Included(k) => Bound::Included(k.as_ref().to_vec()),
        Bound::Excluded(k) => Bound::Excluded(k.as_ref().to_vec()),
        Bound::Unbounded => Bound::Unbounded,
    };
    (own(range.start_bound()), own(range.end_bound()))
}

pub(crate) fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k),
        Bound::Excluded(k) => Bound::Excluded(k),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// Whether `key` is on the near side of `limit` going in `direction`.
fn within(key: &[u8], limit: &Bound<Vec<u8>>, direction: Direction) -> bool {
    match (limit, direction) {
        (Bound::Unbounded, _) => true,
        (Bound::Included(l), Direction::Forward) => key <= l.as_slice(),
        (Bound::Excluded(l), Direction::Forward) => key < l.as_slice(),
        (Bound::Included(l), Direction::Backward) => key >= l.as_slice(),
        (Bound::Excluded(l), Direction::Backward) => key > l.as_slice(),
    }
}

/// Whether no key lies between `low` and `high`.
pub(crate) fn empty(low: &Bound<Vec<u8>>, high: &Bound<Vec<u8>>) -> bool {
    match (low, high) {
        (Bound::Included(l), Bound::Included(h)) => l > h,
        (Bound::Included(l) | Bound::Excluded(l), Bound::Excluded(h)) | (Bound::Excluded(l), Bound::Included(h)) => {
            l >= h
        }
        _ => false,
    }
}
