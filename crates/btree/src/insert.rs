//! Inserts (insert or replace): an optimistic descent, an upgrade of the
//! leaf to exclusive, the change. A full leaf is split bottom-up: the leaf
//! and its parent are found optimistically and upgraded (only those two are
//! latched); a parent without room for the separator is split first, the
//! same way, one level up; then the insert tries again.

use snowfall_buffer::{ExclusiveGuard, OptimisticGuard, PageId};
use snowfall_node::layout::{entry_size, value_field};
use snowfall_node::{Entry, Full, INNER, Inserted, MAX_ENTRY, Node, NodeMut, SplitKind};

use crate::error::{Error, Step};
use crate::journal::{Change, Op, Stored, Unit, Write};
use crate::limits::{check_entry, check_reference};
use crate::lookup::Found;
use crate::tree::{BTree, Toward, Written};
use crate::view::View;

/// What one insert attempt did.
enum Attempt {
    Done(Written),
    /// The leaf is full: split, then try again.
    Split,
}

/// Rounds of "split, try again" an operation may take: far more than any
/// tree's height, a guard against a bug looping forever.
const ROUNDS: usize = 1024;

/// What a split attempt did.
enum Split {
    Done,
    /// The parent (at this depth) has no room for the separator: split it first.
    ParentFirst(usize),
}

impl<'a> BTree<'a> {
    /// Inserts `key -> value`, replacing the value if the key exists;
    /// returns whether it existed.
    pub fn insert(&self, key: &[u8], value: &[u8]) -> Result<bool, Error> {
        self.put(key, value, 0).map(|w| w.existed)
    }

    /// Inserts or replaces `key -> value` as part of `batch` (0: a write
    /// that commits by itself; inside a batch the value it replaces is
    /// logged too, so recovery can undo a batch that never committed).
    pub fn put(&self, key: &[u8], value: &[u8], batch: u64) -> Result<Written, Error> {
        check_entry(key, value)?;
        self.put_stored(key, Stored { bytes: value, reference: false }, batch)
    }

    /// Inserts or replaces `key -> value` as the leaf is to store it (a
    /// reference to a value stored out of line: see [`Stored`]), as part of
    /// `batch` as for [`put`](Self::put). A reference may be up to
    /// [`MAX_REFERENCE`] bytes, whatever the key's length. The reference the
    /// write replaces, if any, is logged with it (`Write::released`).
    pub fn put_stored(&self, key: &[u8], stored: Stored<'_>, batch: u64) -> Result<Written, Error> {
        if stored.reference {
            check_reference(key, stored.bytes)?;
        } else {
            check_entry(key, stored.bytes)?;
        }
        // Each round either inserts or splits a node on the path; the tree's
        // height bounds the splits one insert can need, with margin for
        // other threads filling the new nodes meanwhile.
        for _ in 0..ROUNDS {
            let attempt = self.with_restarts(
                &mut (),
                |_| {
                    let leaf = self.leaf_optimistic(key, Toward::Key)?;
                    let mut leaf = leaf.try_upgrade().map_err(|_| Step::Restart)?;
                    Ok(self.insert_into(&mut leaf, key, stored, batch)?)
                },
                |_| {
                    let mut leaf = self.leaf_exclusive(key)?;
                    self.insert_into(&mut leaf, key, stored, batch)
                },
            )?;
            match attempt {
                Attempt::Done(written) => return Ok(written),
                Attempt::Split => {
                    self.split_path(key, entry_size(key.len(), value_field(stored.bytes.len(), stored.reference)))?
                }
            }
        }
        Err(Error::Corrupt { page: self.root })
    }

    fn insert_into(
        &self,
        leaf: &mut ExclusiveGuard<'_>,
        key: &[u8],
        stored: Stored<'_>,
        batch: u64,
    ) -> Result<Attempt, Error> {
        let logged = self.journal.enabled();
        let mut old = [0u8; MAX_ENTRY];
        // The value replaced is read for a batch's undo, and where it may be
        // a reference, which the log must release (a leaf flag says).
        let read_old = logged && (batch != 0 || NodeMut::new(leaf.page_mut().body_mut()).has_references());
        let old_found = if read_old { Some(self.value_in(leaf, key, &mut old)?) } else { None };
        let entry = Entry { key, value: stored.bytes, reference: stored.reference };
        let inserted = match NodeMut::new(leaf.page_mut().body_mut()).insert_entry(entry, self.config.max_entries) {
            Ok(inserted) => inserted,
            Err(Full) => return Ok(Attempt::Split),
        };
        let existed = inserted == Inserted::Replaced;
        if !logged {
            return Ok(Attempt::Done(Written { existed, lsn: 0 }));
        }
        let old_value = old_found
            .map(|f| f.map(|f| Stored { bytes: old.get(..f.len).unwrap_or_default(), reference: f.reference }));
        let before = if batch != 0 { old_value } else { None };
        let released = old_value.flatten().filter(|v| v.reference).map(|v| v.bytes);
        let result = self.journal.log(&Unit {
            write: Some(Write { tree: self.root, key, batch, before, released }),
            changes: &[Change {
                page: leaf.id(),
                op: Op::Insert { key, value: stored.bytes, reference: stored.reference },
            }],
            freed: &[],
        });
        let lsn = self.stamp(result, &mut [leaf.page_mut()])?;
        Ok(Attempt::Done(Written { existed, lsn }))
    }

    /// `key`'s value in the latched leaf, copied to `out`.
    pub(crate) fn value_in(
        &self,
        leaf: &ExclusiveGuard<'_>,
        key: &[u8],
        out: &mut [u8; MAX_ENTRY],
    ) -> Result<Option<Found>, Error> {
        let page = leaf.id();
        let corrupt = |_| Error::Corrupt { page };
        let node = Node::open(leaf.page().body()).map_err(corrupt)?;
        match node.search(key).map_err(corrupt)? {
            (i, true) => node.value_kind_at(i, out).map(|f| Some(Found::from(f))).map_err(corrupt),
            (_, false) => Ok(None),
        }
    }

    /// Descends with exclusive latch coupling to the leaf for `key`.
    pub(crate) fn leaf_exclusive(&self, key: &[u8]) -> Result<ExclusiveGuard<'a>, Error> {
        let mut guard = self.exclusive(self.root)?;
        loop {
            let page = guard.id();
            let node = Node::open(guard.page().body()).map_err(|_| Error::Corrupt { page })?;
            if node.is_leaf() {
                return Ok(guard);
            }
            let child = node.child_for(key).map_err(|_| Error::Corrupt { page })?.1;
            guard = self.exclusive(PageId(child))?;
        }
    }

    /// Whether the node under `guard` lacks `room` bytes or is at the entry cap.
    fn lacks(&self, guard: &ExclusiveGuard<'_>, room: usize) -> Result<bool, Error> {
        let page = guard.id();
        let node = Node::open(guard.page().body()).map_err(|_| Error::Corrupt { page })?;
        let free = guard.page().body().len().saturating_sub(node.used());
        Ok(free < room || node.count() >= self.config.max_entries)
    }

    /// Makes room for an entry of `need` bytes in the leaf for `key`:
    /// splits the leaf, after splitting its parent first if the parent has
    /// no room for the separator the leaf would send up (and so on upwards;
    /// the root always splits). Nodes are found optimistically; only the
    /// node being split and its parent are latched, upgraded from the
    /// versions seen (so they are still parent and child).
    fn split_path(&self, key: &[u8], need: usize) -> Result<(), Error> {
        // Depth to split at: the leaf first, then upwards while parents are full.
        let mut depth = usize::MAX;
        for _ in 0..ROUNDS {
            match self.with_restarts(
                &mut (),
                |_| self.try_split(key, depth, need),
                |_| self.split_latched(key, depth, need),
            )? {
                Split::Done => return Ok(()),
                Split::ParentFirst(parent_depth) => depth = parent_depth,
            }
        }
        Err(Error::Corrupt { page: self.root })
    }

    /// Splits the node at `depth` on `key`'s path (`usize::MAX`: the leaf,
    /// unless it has `need` bytes free by now).
    fn try_split(&self, key: &[u8], depth: usize, need: usize) -> Result<Split, Step> {
        let mut parent: Option<(OptimisticGuard<'a>, usize)> = None;
        let mut node = self.bm.optimistic(self.root)?;
        let mut at = 0;
        loop {
            let next = {
                let view = View(node.view());
                let n = Node::open(&view)?;
                if n.is_leaf() || at == depth { None } else { Some(n.child_for(key)?) }
            };
            if !node.validate() {
                return Err(Step::Restart);
            }
            let Some((index, child)) = next else { break };
            let next = self.bm.optimistic(PageId(child));
            if !node.validate() {
                return Err(Step::Restart);
            }
            parent = Some((node, index));
            node = next?;
            at += 1;
        }
        let mut target = node.try_upgrade().map_err(|_| Step::Restart)?;
        if depth == usize::MAX && !self.lacks(&target, need)? {
            // Another thread made room meanwhile.
            return Ok(Split::Done);
        }
        match parent {
            None => {
                self.split_root(&mut target, key)?;
                Ok(Split::Done)
            }
            Some((parent, index)) => {
                let mut parent = parent.try_upgrade().map_err(|_| Step::Restart)?;
                Ok(self.split_under(&mut parent, index, &mut target, key, at)?)
            }
        }
    }

    /// [`try_split`](Self::try_split) with exclusive latch coupling from the
    /// root (the fallback after too many restarts).
    fn split_latched(&self, key: &[u8], depth: usize, need: usize) -> Result<Split, Error> {
        let mut parent = self.exclusive(self.root)?;
        let corrupt = |page| move |_| Error::Corrupt { page };
        let root_is_leaf = Node::open(parent.page().body()).map_err(corrupt(self.root))?.is_leaf();
        if root_is_leaf || depth == 0 {
            if !(root_is_leaf && depth == usize::MAX && !self.lacks(&parent, need)?) {
                self.split_root(&mut parent, key)?;
            }
            return Ok(Split::Done);
        }
        let mut at = 1;
        loop {
            let page = parent.id();
            let (index, child) =
                Node::open(parent.page().body()).and_then(|n| n.child_for(key)).map_err(corrupt(page))?;
            let mut child = self.exclusive(PageId(child))?;
            let is_leaf = Node::open(child.page().body()).map_err(corrupt(child.id()))?.is_leaf();
            if is_leaf || at == depth {
                if is_leaf && depth == usize::MAX && !self.lacks(&child, need)? {
                    return Ok(Split::Done);
                }
                return self.split_under(&mut parent, index, &mut child, key, at);
            }
            parent = child;
            at += 1;
        }
    }

    /// Splits `child` (at `depth`, separator `index` of `parent`) if the
    /// parent has room for its separator; otherwise asks for the parent to
    /// be split first.
    fn split_under(
        &self,
        parent: &mut ExclusiveGuard<'_>,
        index: usize,
        child: &mut ExclusiveGuard<'_>,
        key: &[u8],
        depth: usize,
    ) -> Result<Split, Error> {
        let page = child.id();
        let node = NodeMut::new(child.page_mut().body_mut());
        let (kind, separator) = node
            .split_kind(key)
            .and_then(|kind| Ok((kind, node.split_separator(key, kind)?)))
            .map_err(|_| Error::Corrupt { page })?;
        // Keys in the parent are stored without its prefix.
        let prefix = Node::open(parent.page().body()).map_or(0, |n| n.prefix_len());
        if self.lacks(parent, entry_size(separator.len().saturating_sub(prefix), 8))? {
            return Ok(Split::ParentFirst(depth - 1));
        }
        self.split_child(parent, index, child, key, kind)?;
        Ok(Split::Done)
    }

    /// Splits `child`, separator `index` of `parent` (both latched
    /// exclusively; `parent` has room), into itself and a new right sibling.
    fn split_child(
        &self,
        parent: &mut ExclusiveGuard<'_>,
        index: usize,
        child: &mut ExclusiveGuard<'_>,
        key: &[u8],
        kind: SplitKind,
    ) -> Result<(), Error> {
        let mut right = self.bm.allocate()?;
        let corrupt = |page| move |_| Error::Corrupt { page };
        let separator = NodeMut::new(child.page_mut().body_mut())
            .split(&mut NodeMut::new(right.page_mut().body_mut()), key, kind)
            .map_err(corrupt(child.id()))?;
        let mut p = NodeMut::new(parent.page_mut().body_mut());
        let left = child.id().0.to_le_bytes();
        // Separators are below the child's upper fence: always a new entry.
        match p.insert(&separator, &left, usize::MAX) {
            Ok(Inserted::Added) => {}
            _ => return Err(Error::Corrupt { page: parent.id() }),
        }
        p.set_child(index + 1, right.id().0);
        if !self.journal.enabled() {
            return Ok(());
        }
        let result = self.journal.log(&Unit {
            write: None,
            changes: &[
                Change { page: child.id(), op: Op::Split { key, kind } },
                Change::image(right.id(), right.page().body()),
                Change { page: parent.id(), op: Op::Insert { key: &separator, value: &left, reference: false } },
                Change { page: parent.id(), op: Op::SetChild { index: index + 1, child: right.id().0 } },
            ],
            freed: &[],
        });
        self.stamp(result, &mut [child.page_mut(), right.page_mut(), parent.page_mut()]).map(|_| ())
    }

    /// Splits the root: its contents move into two new children, and the
    /// root becomes an inner node over them (its page id stays).
    fn split_root(&self, root: &mut ExclusiveGuard<'_>, key: &[u8]) -> Result<(), Error> {
        let mut left = self.bm.allocate()?;
        let mut right = self.bm.allocate()?;
        left.page_mut().body_mut().copy_from_slice(root.page().body());
        let mut node = NodeMut::new(left.page_mut().body_mut());
        let separator = node
            .split_kind(key)
            .and_then(|kind| node.split(&mut NodeMut::new(right.page_mut().body_mut()), key, kind))
            .map_err(|_| Error::Corrupt { page: root.id() })?;
        let mut r = NodeMut::new(root.page_mut().body_mut());
        r.init(INNER, None, None, right.id().0);
        r.insert(&separator, &left.id().0.to_le_bytes(), usize::MAX).map_err(|_| Error::Corrupt { page: root.id() })?;
        if !self.journal.enabled() {
            return Ok(());
        }
        let result =
            self.journal.log(&Unit { write: None, changes: &[image(&left), image(&right), image(root)], freed: &[] });
        self.stamp(result, &mut [left.page_mut(), right.page_mut(), root.page_mut()]).map(|_| ())
    }
}

/// A change that logs a page's whole body (new pages, restructured ones).
pub(crate) fn image<'g>(g: &'g ExclusiveGuard<'_>) -> Change<'g> {
    Change::image(g.id(), g.page().body())
}
