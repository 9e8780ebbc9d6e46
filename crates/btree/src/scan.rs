//! Range scans, forward and backward, correct while other threads split
//! and merge nodes.
//!
//! A scan works leaf by leaf: it descends to the leaf that holds the keys
//! after its cursor, copies the qualifying entries and the leaf's fence
//! into a batch, and validates the leaf; only then are the entries handed
//! to the caller. The cursor is the last key returned (exclusive), or the
//! leaf's fence once the leaf is used up, so a restart, or a split or merge
//! between two leaves, can neither repeat nor skip a key: the next leaf is
//! found by the fence, not by a sibling pointer.

use alloc::vec::Vec;
use core::ops::Bound;

use snowfall_buffer::PageId;
use snowfall_node::{Bytes, MAX_ENTRY, MAX_KEY, Node};

use crate::error::{Error, Step};
use crate::journal::Stored;
use crate::limits::check_key;
use crate::tree::{BTree, Toward};
use crate::view::View;

/// Which way a scan goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Ascending keys.
    Forward,
    /// Descending keys.
    Backward,
}

/// Where the next leaf's entries start.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Cursor {
    /// At the first (forward) or last (backward) key.
    End,
    /// Keys after (or before) this one; `inclusive` takes the key itself.
    At { key: Vec<u8>, inclusive: bool },
}

/// One leaf's worth of entries, copied out.
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    /// Per entry: key length, value length, whether the value is a reference.
    lens: Vec<(usize, usize, bool)>,
    /// The fence to continue from (`None`: this was the last leaf).
    next: Option<Vec<u8>>,
}

impl Batch {
    fn clear(&mut self) {
        self.bytes.clear();
        self.lens.clear();
        self.next = None;
    }
}

impl BTree<'_> {
    /// Calls `visit(key, value)` for the keys from `from` on, in
    /// `direction`, until it returns `false` or the keys run out.
    pub fn scan(
        &self,
        from: Bound<&[u8]>,
        direction: Direction,
        mut visit: impl FnMut(&[u8], Stored<'_>) -> bool,
    ) -> Result<(), Error> {
        let mut cursor = match from {
            Bound::Unbounded => Cursor::End,
            Bound::Included(k) => {
                check_key(k)?;
                Cursor::At { key: k.to_vec(), inclusive: true }
            }
            Bound::Excluded(k) => {
                check_key(k)?;
                Cursor::At { key: k.to_vec(), inclusive: false }
            }
        };
        let mut batch = Batch::default();
        loop {
            self.with_restarts(
                &mut batch,
                |batch| self.collect(&cursor, direction, batch, true),
                |batch| {
                    self.collect(&cursor, direction, batch, false).map_err(|e| match e {
                        Step::Fail(e) => e,
                        // Latched reads cannot go stale; `Torn` here is corruption.
                        Step::Restart => Error::Corrupt { page: self.root },
                    })
                },
            )?;
            let mut at = 0;
            for &(k, v, reference) in &batch.lens {
                let key = batch.bytes.get(at..at + k).unwrap_or_default();
                let bytes = batch.bytes.get(at + k..at + k + v).unwrap_or_default();
                at += k + v;
                if !visit(key, Stored { bytes, reference }) {
                    return Ok(());
                }
            }
            cursor = match batch.next.take() {
                None => return Ok(()),
                // Forward: keys greater than the upper fence come next;
                // backward: keys up to and including the lower fence.
                Some(fence) => Cursor::At { key: fence, inclusive: direction == Direction::Backward },
            };
            // If the caller saw entries of this leaf, the fence is where to
            // go on from: every key between them and it was in the batch.
        }
    }

    /// Copies the entries of the leaf after `cursor` into `batch`.
    fn collect(&self, cursor: &Cursor, direction: Direction, batch: &mut Batch, optimistic: bool) -> Result<(), Step> {
        batch.clear();
        let (descend_key, toward): (&[u8], Toward) = match (cursor, direction) {
            (Cursor::End, Direction::Forward) => (&[], Toward::Key),
            (Cursor::End, Direction::Backward) => (&[], Toward::Last),
            // Forward from a fence (exclusive): the leaf after it.
            (Cursor::At { key, inclusive: false }, Direction::Forward) => (key, Toward::After),
            (Cursor::At { key, .. }, _) => (key, Toward::Key),
        };
        if optimistic {
            let guard = self.leaf_optimistic(descend_key, toward)?;
            let view = View(guard.view());
            fill(&view, cursor, direction, batch)?;
            if !guard.validate() {
                return Err(Step::Restart);
            }
        } else {
            let guard = self.leaf_shared(descend_key, toward).map_err(Step::Fail)?;
            let page: PageId = guard.id();
            fill(guard.page().body(), cursor, direction, batch).map_err(|_| Step::Fail(Error::Corrupt { page }))?;
        }
        Ok(())
    }
}

/// Copies the leaf's qualifying entries, in scan order, and its fence.
fn fill<B: Bytes + ?Sized>(bytes: &B, cursor: &Cursor, direction: Direction, batch: &mut Batch) -> Result<(), Step> {
    let node = Node::open(bytes)?;
    if !node.is_leaf() {
        return Err(Step::Restart);
    }
    let count = node.count();
    let (first, last_excl) = match (cursor, direction) {
        (Cursor::End, _) => (0, count),
        (Cursor::At { key, inclusive }, Direction::Forward) => {
            let (i, found) = node.search(key)?;
            (if found && !inclusive { i + 1 } else { i }, count)
        }
        (Cursor::At { key, inclusive }, Direction::Backward) => {
            let (i, found) = node.search(key)?;
            (0, if found && *inclusive { i + 1 } else { i })
        }
    };
    let mut key = [0u8; MAX_KEY];
    let mut value = [0u8; MAX_ENTRY];
    let mut push = |i: usize, batch: &mut Batch| -> Result<(), Step> {
        let k = node.key_at(i, &mut key)?;
        let (v, reference) = node.value_kind_at(i, &mut value)?;
        batch.bytes.extend_from_slice(key.get(..k).ok_or(Step::Restart)?);
        batch.bytes.extend_from_slice(value.get(..v).ok_or(Step::Restart)?);
        batch.lens.push((k, v, reference));
        Ok(())
    };
    match direction {
        Direction::Forward => (first..last_excl).try_for_each(|i| push(i, batch))?,
        Direction::Backward => (first..last_excl).rev().try_for_each(|i| push(i, batch))?,
    }
    let fence = match direction {
        Direction::Forward => node.upper(),
        Direction::Backward => node.lower(),
    };
    batch.next = node.fence(fence, &mut key)?.map(|len| key.get(..len).unwrap_or_default().to_vec());
    Ok(())
}
