//! Inserts (insert or replace): an optimistic descent, an upgrade of the
//! leaf to exclusive, the change. A full leaf makes the operation split
//! the path top-down with exclusive latch coupling (so every parent has
//! room for the separator its child sends up) and try again.

use snowfall_buffer::{ExclusiveGuard, PageId};
use snowfall_node::layout::entry_size;
use snowfall_node::{Full, INNER, Inserted, MAX_KEY, Node, NodeMut};

use crate::error::{Error, Step};
use crate::limits::check_entry;
use crate::tree::{BTree, Toward};

/// What one insert attempt did.
enum Attempt {
    Done(Inserted),
    /// The leaf is full: split, then try again.
    Split,
}

/// Room an inner node needs to take one more separator of any size.
const SEPARATOR_ROOM: usize = entry_size(MAX_KEY, 8);

impl<'a> BTree<'a> {
    /// Inserts `key -> value`, replacing the value if the key exists;
    /// returns whether it existed.
    pub fn insert(&self, key: &[u8], value: &[u8]) -> Result<bool, Error> {
        check_entry(key, value)?;
        // Each round either inserts or splits a node on the path; the tree's
        // height bounds the splits one insert can need, with margin for
        // other threads filling the new nodes meanwhile.
        for _ in 0..64 {
            let attempt = self.with_restarts(
                &mut (),
                |_| {
                    let leaf = self.leaf_optimistic(key, Toward::Key)?;
                    let mut leaf = leaf.try_upgrade().map_err(|_| Step::Restart)?;
                    Ok(self.insert_into(&mut leaf, key, value))
                },
                |_| {
                    let mut leaf = self.leaf_exclusive(key)?;
                    Ok(self.insert_into(&mut leaf, key, value))
                },
            )?;
            match attempt {
                Attempt::Done(inserted) => return Ok(inserted == Inserted::Replaced),
                Attempt::Split => self.split_path(key, entry_size(key.len(), value.len()))?,
            }
        }
        Err(Error::Corrupt { page: self.root })
    }

    fn insert_into(&self, leaf: &mut ExclusiveGuard<'_>, key: &[u8], value: &[u8]) -> Attempt {
        match NodeMut::new(leaf.page_mut().body_mut()).insert(key, value, self.config.max_entries) {
            Ok(inserted) => Attempt::Done(inserted),
            Err(Full) => Attempt::Split,
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

    /// Splits, top-down, every node on `key`'s path that could not take
    /// what is coming: the leaf if it lacks `need` bytes, inner nodes if
    /// they lack room for one more separator.
    fn split_path(&self, key: &[u8], need: usize) -> Result<(), Error> {
        let mut parent = self.exclusive(self.root)?;
        let root_is_leaf = Node::open(parent.page().body()).map_err(|_| Error::Corrupt { page: self.root })?.is_leaf();
        if self.lacks(&parent, if root_is_leaf { need } else { SEPARATOR_ROOM })? {
            self.split_root(&mut parent, key)?;
        }
        if root_is_leaf {
            return Ok(());
        }
        loop {
            let page = parent.id();
            let (index, child) =
                Node::open(parent.page().body()).and_then(|n| n.child_for(key)).map_err(|_| Error::Corrupt { page })?;
            let mut child = self.exclusive(PageId(child))?;
            let is_leaf = Node::open(child.page().body()).map_err(|_| Error::Corrupt { page: child.id() })?.is_leaf();
            if self.lacks(&child, if is_leaf { need } else { SEPARATOR_ROOM })? {
                self.split_child(&mut parent, index, &mut child, key)?;
                if is_leaf {
                    return Ok(());
                }
                // Choose again between the two halves, under the same parent.
                continue;
            }
            if is_leaf {
                return Ok(());
            }
            parent = child;
        }
    }

    /// Splits `child`, separator `index` of `parent` (both latched
    /// exclusively; `parent` has room), into itself and a new right sibling.
    fn split_child(
        &self,
        parent: &mut ExclusiveGuard<'_>,
        index: usize,
        child: &mut ExclusiveGuard<'_>,
        key: &[u8],
    ) -> Result<(), Error> {
        let mut right = self.bm.allocate()?;
        let corrupt = |page| move |_| Error::Corrupt { page };
        let separator = NodeMut::new(child.page_mut().body_mut())
            .split(&mut NodeMut::new(right.page_mut().body_mut()), key)
            .map_err(corrupt(child.id()))?;
        let mut p = NodeMut::new(parent.page_mut().body_mut());
        // Separators are below the child's upper fence: always a new entry.
        match p.insert(&separator, &child.id().0.to_le_bytes(), usize::MAX) {
            Ok(Inserted::Added) => {}
            _ => return Err(Error::Corrupt { page: parent.id() }),
        }
        p.set_child(index + 1, right.id().0);
        Ok(())
    }

    /// Splits the root: its contents move into two new children, and the
    /// root becomes an inner node over them (its page id stays).
    fn split_root(&self, root: &mut ExclusiveGuard<'_>, key: &[u8]) -> Result<(), Error> {
        let mut left = self.bm.allocate()?;
        let mut right = self.bm.allocate()?;
        left.page_mut().body_mut().copy_from_slice(root.page().body());
        let separator = NodeMut::new(left.page_mut().body_mut())
            .split(&mut NodeMut::new(right.page_mut().body_mut()), key)
            .map_err(|_| Error::Corrupt { page: root.id() })?;
        let mut r = NodeMut::new(root.page_mut().body_mut());
        r.init(INNER, None, None, right.id().0);
        r.insert(&separator, &left.id().0.to_le_bytes(), usize::MAX).map_err(|_| Error::Corrupt { page: root.id() })?;
        Ok(())
    }
}
