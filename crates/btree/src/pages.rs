//! The tree's page ids, reading only its inner nodes: for dropping a tree,
//! whose leaves (nearly all of its pages) may be on disk only.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use snowfall_buffer::PageId;
use snowfall_node::{Bytes, Node};

use crate::tree::BTree;

impl BTree<'_> {
    /// Every page of the tree, root first, level by level. Inner nodes are
    /// read under shared latches; leaves are named by their parents and
    /// not loaded (except the leftmost, which tells the leaves' depth).
    /// Not for use while other threads write.
    pub fn page_ids(&self) -> Result<Vec<PageId>, String> {
        // All leaves are at one depth: the leftmost path's.
        let mut height = 1;
        let mut page = self.root;
        while let Some(children) = self.children(page)? {
            page = PageId(*children.first().ok_or_else(|| format!("{page}: inner node without children"))?);
            height += 1;
        }
        let mut ids = Vec::new();
        let mut level = vec![self.root];
        for depth in 1..height {
            let mut next = Vec::new();
            for &page in &level {
                let children =
                    self.children(page)?.ok_or_else(|| format!("{page}: leaf at depth {depth}, others at {height}"))?;
                next.extend(children.into_iter().map(PageId));
            }
            ids.append(&mut level);
            level = next;
        }
        ids.append(&mut level);
        Ok(ids)
    }

    /// The children of `page`, or `None` for a leaf.
    fn children(&self, page: PageId) -> Result<Option<Vec<u64>>, String> {
        let guard = self.bm.fix_shared(page).map_err(|e| format!("{page}: {e}"))?;
        let node = Node::open(guard.page().body()).map_err(|_| format!("{page}: not a node"))?;
        if node.is_leaf() {
            return Ok(None);
        }
        children(&node).map(Some).map_err(|i| format!("{page}: bad child {i}"))
    }
}

/// An inner node's children, left to right; `Err(i)`: child `i` is unreadable.
pub(crate) fn children<B: Bytes + ?Sized>(node: &Node<'_, B>) -> Result<Vec<u64>, usize> {
    (0..=node.count()).map(|i| node.child_at(i).map_err(|_| i)).collect()
}
