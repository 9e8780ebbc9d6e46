//! Removal: an optimistic descent, an upgrade of the leaf, the change. A
//! leaf left underfull makes the operation walk the key's path top-down
//! with exclusive latch coupling, merging each underfull node on it with a
//! sibling when the two fit in one page (the emptied page goes back to the
//! buffer manager), and pulling the root's only child up into the root.

use alloc::vec::Vec;

use snowfall_buffer::{ExclusiveGuard, PageId};
use snowfall_node::{MAX_ENTRY, MAX_KEY, Node, NodeMut};

use crate::error::{Error, Step};
use crate::insert::image;
use crate::journal::{Change, Op, Stored, Unit, Write};
use crate::limits::check_key;
use crate::tree::{BTree, Toward, Written};

impl<'a> BTree<'a> {
    /// Removes `key`; returns whether it was there.
    pub fn remove(&self, key: &[u8]) -> Result<bool, Error> {
        self.delete(key, 0).map(|w| w.existed)
    }

    /// Removes `key` as part of `batch` (0: a write that commits by itself;
    /// inside a batch the removed value is logged too, for undo).
    pub fn delete(&self, key: &[u8], batch: u64) -> Result<Written, Error> {
        check_key(key)?;
        let (written, underfull) = self.with_restarts(
            &mut (),
            |_| {
                let leaf = self.leaf_optimistic(key, Toward::Key)?;
                let mut leaf = leaf.try_upgrade().map_err(|_| Step::Restart)?;
                Ok(self.remove_from(&mut leaf, key, batch)?)
            },
            |_| {
                let mut leaf = self.leaf_exclusive(key)?;
                self.remove_from(&mut leaf, key, batch)
            },
        )?;
        if underfull {
            self.merge_path(key)?;
        }
        Ok(written)
    }

    /// Removes `key` from the latched leaf: (what it did, leaf now underfull).
    fn remove_from(&self, leaf: &mut ExclusiveGuard<'_>, key: &[u8], batch: u64) -> Result<(Written, bool), Error> {
        let mut old = [0u8; MAX_ENTRY];
        let Some(found) = self.value_in(leaf, key, &mut old)? else {
            return Ok((Written { existed: false, lsn: 0 }, false));
        };
        let mut node = NodeMut::new(leaf.page_mut().body_mut());
        if !node.remove(key) {
            return Err(Error::Corrupt { page: leaf.id() });
        }
        let underfull = self.underfull(&node);
        if !self.journal.enabled() {
            return Ok((Written { existed: true, lsn: 0 }, underfull));
        }
        let old = Stored { bytes: old.get(..found.len).unwrap_or_default(), reference: found.reference };
        let before = (batch != 0).then_some(Some(old));
        let released = old.reference.then_some(old.bytes);
        let result = self.journal.log(&Unit {
            write: Some(Write { tree: self.root, key, batch, before, released }),
            changes: &[Change { page: leaf.id(), op: Op::Remove { key } }],
            freed: &[],
        });
        let lsn = self.stamp(result, &mut [leaf.page_mut()])?;
        Ok((Written { existed: true, lsn }, underfull))
    }

    /// A node worth merging: under a quarter full, or (with an entry cap)
    /// under half the cap.
    fn underfull(&self, node: &NodeMut<'_>) -> bool {
        node.is_underfull()
            || (self.config.max_entries != usize::MAX
                && node.node().is_ok_and(|n| n.count() * 2 < self.config.max_entries))
    }

    /// Merges underfull nodes on `key`'s path (best effort: a pair that does
    /// not fit in one page stays as it is).
    fn merge_path(&self, key: &[u8]) -> Result<(), Error> {
        let mut parent = self.exclusive(self.root)?;
        loop {
            let page = parent.id();
            let corrupt = |_| Error::Corrupt { page };
            let (is_leaf, count) =
                Node::open(parent.page().body()).map(|n| (n.is_leaf(), n.count())).map_err(corrupt)?;
            if is_leaf {
                return Ok(());
            }
            if page == self.root && count == 0 {
                self.shrink_root(&mut parent)?;
                continue;
            }
            let (index, child) = Node::open(parent.page().body()).and_then(|n| n.child_for(key)).map_err(corrupt)?;
            let mut child = self.exclusive(PageId(child))?;
            if self.underfull(&NodeMut::new(child.page_mut().body_mut())) && count > 0 {
                child = self.merge_with_sibling(&mut parent, index, child)?;
            }
            parent = child;
        }
    }

    /// Merges `child` (separator `index` of `parent`) with its right
    /// sibling, or its left one if it is the rightmost; returns the guard of
    /// the node that now holds `child`'s keys.
    fn merge_with_sibling(
        &self,
        parent: &mut ExclusiveGuard<'a>,
        index: usize,
        child: ExclusiveGuard<'a>,
    ) -> Result<ExclusiveGuard<'a>, Error> {
        let page = parent.id();
        let corrupt = |_| Error::Corrupt { page };
        let pnode = Node::open(parent.page().body()).map_err(corrupt)?;
        let (left_index, sibling_page) = if index < pnode.count() {
            (index, pnode.child_at(index + 1).map_err(corrupt)?)
        } else {
            (index - 1, pnode.child_at(index - 1).map_err(corrupt)?)
        };
        let mut separator = [0u8; MAX_KEY];
        let sep_len = pnode.key_at(left_index, &mut separator).map_err(corrupt)?;
        let sibling = self.exclusive(PageId(sibling_page))?;
        let (mut left, right) = if left_index == index { (child, sibling) } else { (sibling, child) };
        // Respect the entry cap (tests) as well as the page size.
        let fits_cap = {
            let count = |g: &ExclusiveGuard<'_>| Node::open(g.page().body()).map(|n| (n.count(), n.is_leaf()));
            match (count(&left), count(&right)) {
                (Ok((l, leaf)), Ok((r, _))) => l + r + usize::from(!leaf) <= self.config.max_entries,
                _ => false,
            }
        };
        let mut right_copy: Vec<u8> = right.page().body().to_vec();
        let merged = fits_cap
            && NodeMut::new(left.page_mut().body_mut())
                .merge(&NodeMut::new(&mut right_copy), separator.get(..sep_len).unwrap_or_default())
                .is_ok();
        if !merged {
            // Keep descending through the node that holds the key.
            return Ok(if left_index == index { left } else { right });
        }
        let mut p = NodeMut::new(parent.page_mut().body_mut());
        p.remove_at(left_index);
        p.set_child(left_index, left.id().0);
        if self.journal.enabled() {
            let result = self.journal.log(&Unit {
                write: None,
                changes: &[
                    image(&left),
                    Change { page: parent.id(), op: Op::RemoveAt { index: left_index } },
                    Change { page: parent.id(), op: Op::SetChild { index: left_index, child: left.id().0 } },
                ],
                freed: &[right.id()],
            });
            self.stamp(result, &mut [left.page_mut(), parent.page_mut()])?;
        }
        self.bm.free(right)?;
        Ok(left)
    }

    /// The root has no separator left: its only child moves up into it.
    fn shrink_root(&self, root: &mut ExclusiveGuard<'_>) -> Result<(), Error> {
        let page = root.id();
        let only = Node::open(root.page().body()).and_then(|n| n.right_child()).map_err(|_| Error::Corrupt { page })?;
        let child = self.exclusive(PageId(only))?;
        root.page_mut().body_mut().copy_from_slice(child.page().body());
        if self.journal.enabled() {
            let result = self.journal.log(&Unit { write: None, changes: &[image(root)], freed: &[child.id()] });
            self.stamp(result, &mut [root.page_mut()])?;
        }
        self.bm.free(child)?;
        Ok(())
    }
}
