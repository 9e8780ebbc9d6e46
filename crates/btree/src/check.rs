//! The tree's invariants, checked by walking it under shared latches (for
//! tests after a run, and for diagnostics), and its shape.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use snowfall_buffer::{BODY_SIZE, PAGE_SIZE, PageId};
use snowfall_node::{MAX_KEY, Node};

use crate::tree::BTree;

/// The tree's shape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shape {
    /// Levels (1: the root is a leaf).
    pub height: usize,
    /// Inner pages.
    pub inner_pages: u64,
    /// Leaf pages.
    pub leaf_pages: u64,
    /// Entries in the leaves.
    pub entries: u64,
    /// Bytes in use in the leaves: headers, slots, live cells and fences.
    pub leaf_bytes: u64,
    /// Bytes in use in the inner pages.
    pub inner_bytes: u64,
    /// Values stored out of line (references in the leaves).
    pub references: u64,
}

/// What a check calls back with: every page, every reference.
struct Visit<'v> {
    page: &'v mut dyn FnMut(PageId),
    reference: &'v mut dyn FnMut(PageId, &[u8]),
}

impl Shape {
    /// Pages in all.
    pub fn pages(&self) -> u64 {
        self.inner_pages + self.leaf_pages
    }

    /// Bytes of pages per entry.
    pub fn bytes_per_entry(&self) -> f64 {
        (self.pages() * PAGE_SIZE as u64) as f64 / self.entries.max(1) as f64
    }

    /// The fraction of the leaves' node bytes in use.
    pub fn leaf_fill(&self) -> f64 {
        self.leaf_bytes as f64 / (self.leaf_pages.max(1) * BODY_SIZE as u64) as f64
    }

    /// The fraction of the inner pages' node bytes in use.
    pub fn inner_fill(&self) -> f64 {
        self.inner_bytes as f64 / (self.inner_pages.max(1) * BODY_SIZE as u64) as f64
    }
}

impl BTree<'_> {
    /// Walks the whole tree under shared latches and checks every node:
    /// keys sorted and inside the fences, children's fences equal to the
    /// separators around them, all leaves at the same depth. Returns the
    /// shape, or the first violation. Not for use while other threads write.
    pub fn check(&self) -> Result<Shape, String> {
        self.check_pages(&mut |_| {})
    }

    /// [`check`](Self::check), also calling `page` with every page of the
    /// tree (for a database's accounting of its pages).
    pub fn check_pages(&self, page: &mut dyn FnMut(PageId)) -> Result<Shape, String> {
        self.check_all(page, &mut |_, _| {})
    }

    /// [`check_pages`](Self::check_pages), also calling `reference` with
    /// every reference a leaf holds (and the leaf's page), for a database's
    /// accounting of its large values.
    pub fn check_all(
        &self,
        page: &mut dyn FnMut(PageId),
        reference: &mut dyn FnMut(PageId, &[u8]),
    ) -> Result<Shape, String> {
        let mut shape = Shape::default();
        let mut leaf_depth = None;
        let mut visit = Visit { page, reference };
        self.check_node(self.root, None, None, 1, &mut shape, &mut leaf_depth, &mut visit)?;
        shape.height = leaf_depth.unwrap_or(0);
        Ok(shape)
    }

    #[allow(clippy::too_many_arguments, reason = "the recursion's state, passed down")]
    fn check_node(
        &self,
        page: PageId,
        lower: Option<&[u8]>,
        upper: Option<&[u8]>,
        depth: usize,
        shape: &mut Shape,
        leaf_depth: &mut Option<usize>,
        visit: &mut Visit<'_>,
    ) -> Result<(), String> {
        (visit.page)(page);
        let guard = self.bm.fix_shared(page).map_err(|e| format!("{page}: {e}"))?;
        let node = Node::open(guard.page().body()).map_err(|_| format!("{page}: not a node"))?;
        let mut buf = [0u8; MAX_KEY];
        let fence = |f, buf: &mut [u8; MAX_KEY]| -> Result<Option<Vec<u8>>, String> {
            Ok(node
                .fence(f, buf)
                .map_err(|_| format!("{page}: bad fence"))?
                .map(|n| buf.get(..n).unwrap_or_default().to_vec()))
        };
        let (low, up) = (fence(node.lower(), &mut buf)?, fence(node.upper(), &mut buf)?);
        if low.as_deref() != lower || up.as_deref() != upper {
            return Err(format!("{page}: fences {low:?}..{up:?}, parent expects {lower:?}..{upper:?}"));
        }
        let mut keys = Vec::with_capacity(node.count());
        for i in 0..node.count() {
            let n = node.key_at(i, &mut buf).map_err(|_| format!("{page}: bad key {i}"))?;
            keys.push(buf.get(..n).unwrap_or_default().to_vec());
        }
        if keys.iter().zip(keys.iter().skip(1)).any(|(a, b)| a >= b) {
            return Err(format!("{page}: keys out of order"));
        }
        let inside = |k: &Vec<u8>| lower.is_none_or(|l| k.as_slice() > l) && upper.is_none_or(|u| k.as_slice() <= u);
        if let Some(k) = keys.iter().find(|k| !inside(k)) {
            return Err(format!("{page}: key {k:?} outside its fences"));
        }
        if node.is_leaf() {
            let mut value = [0u8; snowfall_node::MAX_ENTRY];
            for i in 0..node.count() {
                if node.is_reference(i).map_err(|_| format!("{page}: bad value {i}"))? {
                    let n = node.value_at(i, &mut value).map_err(|_| format!("{page}: bad value {i}"))?;
                    (visit.reference)(page, value.get(..n).unwrap_or_default());
                    shape.references += 1;
                }
            }
            shape.leaf_pages += 1;
            shape.leaf_bytes += node.used() as u64;
            shape.entries += keys.len() as u64;
            match *leaf_depth {
                None => *leaf_depth = Some(depth),
                Some(d) if d != depth => return Err(format!("{page}: leaf at depth {depth}, others at {d}")),
                Some(_) => {}
            }
            return Ok(());
        }
        shape.inner_pages += 1;
        shape.inner_bytes += node.used() as u64;
        let children = crate::pages::children(&node).map_err(|i| format!("{page}: bad child {i}"))?;
        drop(guard);
        for (i, child) in children.into_iter().enumerate() {
            let lo = if i == 0 { lower } else { keys.get(i - 1).map(Vec::as_slice) };
            let hi = keys.get(i).map(Vec::as_slice).or(upper);
            let hi = if i == keys.len() { upper } else { hi };
            self.check_node(PageId(child), lo, hi, depth + 1, shape, leaf_depth, visit)?;
        }
        Ok(())
    }
}
