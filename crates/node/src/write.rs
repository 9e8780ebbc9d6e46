//! Changing a node: only under an exclusive latch, on a plain `&mut [u8]`.
//!
//! Insertion keeps slots sorted and packs cells from the end of the node
//! down; removal leaves the cell's bytes dead until compaction. Split,
//! merge and compaction rebuild nodes from their entries, re-encoding every
//! key against the new fences' prefix.

use alloc::vec::Vec;

use crate::bytes::Torn;
use crate::layout::{
    COUNT_AT, FLAGS_AT, HEADER, HEAP_LIVE_AT, HEAP_START_AT, INNER, KIND_AT, LEAF, LOWER_INFINITE, LOWER_LEN_AT,
    LOWER_OFF_AT, MAX_KEY, PREFIX_LEN_AT, RIGHT_CHILD_AT, SLOT, UPPER_INFINITE, UPPER_LEN_AT, UPPER_OFF_AT, cell_size,
    head_of,
};
use crate::read::Node;

/// The node has no room (or reached its entry cap) for the change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full;

/// What an insert did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inserted {
    /// A new key.
    Added,
    /// The key existed; its value was replaced.
    Replaced,
}

/// A node being changed.
#[derive(Debug)]
pub struct NodeMut<'a> {
    b: &'a mut [u8],
}

fn put_u16(b: &mut [u8], at: usize, v: usize) {
    if let Some(dst) = b.get_mut(at..at + 2) {
        dst.copy_from_slice(&(v as u16).to_le_bytes());
    }
}

fn put_len(b: &mut [u8], at: usize, n: usize) -> usize {
    if n < 0x80 {
        if let Some(dst) = b.get_mut(at) {
            *dst = n as u8;
        }
        1
    } else {
        if let Some(dst) = b.get_mut(at..at + 2) {
            dst.copy_from_slice(&[0x80 | (n >> 8) as u8, n as u8]);
        }
        2
    }
}

/// The longest common prefix of two fences (0 if either is infinite).
fn common_prefix(lower: Option<&[u8]>, upper: Option<&[u8]>) -> usize {
    match (lower, upper) {
        (Some(l), Some(u)) => l.iter().zip(u).take_while(|(a, b)| a == b).count(),
        _ => 0,
    }
}

/// A node's contents, decoded: what [`NodeMut::build`] needs to rebuild it.
/// The entries' full keys and values sit back to back in one buffer, so
/// decoding a node (every split, merge and compaction does) costs a few
/// allocations, not two per entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Contents {
    /// Leaf or inner.
    pub kind: u8,
    /// Lower fence (`None`: minus infinity).
    pub lower: Option<Vec<u8>>,
    /// Upper fence (`None`: plus infinity).
    pub upper: Option<Vec<u8>>,
    /// The right child (inner nodes).
    pub right_child: u64,
    /// Keys and values, in key order, back to back.
    bytes: Vec<u8>,
    /// Per entry: where its key starts in `bytes`, and the key's and the
    /// value's lengths (the value follows the key).
    spans: Vec<(usize, usize, usize)>,
}

impl Contents {
    /// Entries.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Entry `i`: its full key and its value.
    pub fn entry(&self, i: usize) -> Option<(&[u8], &[u8])> {
        let &(at, k, v) = self.spans.get(i)?;
        Some((self.bytes.get(at..at + k)?, self.bytes.get(at + k..at + k + v)?))
    }

    /// Entries `range`, in key order.
    pub fn entries(&self, range: core::ops::Range<usize>) -> impl Iterator<Item = (&[u8], &[u8])> + Clone {
        range.filter_map(|i| self.entry(i))
    }

    /// All entries, in key order.
    pub fn all(&self) -> impl Iterator<Item = (&[u8], &[u8])> + Clone {
        self.entries(0..self.len())
    }

    fn push(&mut self, key: &[u8], value: &[u8]) {
        self.spans.push((self.bytes.len(), key.len(), value.len()));
        self.bytes.extend_from_slice(key);
        self.bytes.extend_from_slice(value);
    }
}

impl<'a> NodeMut<'a> {
    /// The node in `b` (initialised, or about to be by [`init`](Self::init)).
    pub fn new(b: &'a mut [u8]) -> NodeMut<'a> {
        NodeMut { b }
    }

    /// A reader of the node (plain bytes: `Torn` means corrupt).
    pub fn node(&self) -> Result<Node<'_, [u8]>, Torn> {
        Node::open(&*self.b)
    }

    fn get16(&self, at: usize) -> usize {
        let mut v = [0u8; 2];
        v.copy_from_slice(self.b.get(at..at + 2).unwrap_or(&[0; 2]));
        usize::from(u16::from_le_bytes(v))
    }

    fn count(&self) -> usize {
        self.get16(COUNT_AT)
    }

    fn heap_start(&self) -> usize {
        self.get16(HEAP_START_AT)
    }

    fn prefix_len(&self) -> usize {
        self.get16(PREFIX_LEN_AT)
    }

    /// Sets up an empty node of `kind` for the keys in `(lower, upper]`
    /// (`None`: infinite).
    pub fn init(&mut self, kind: u8, lower: Option<&[u8]>, upper: Option<&[u8]>, right_child: u64) {
        let len = self.b.len();
        if let Some(h) = self.b.get_mut(..HEADER) {
            h.fill(0);
        }
        let mut heap = len;
        let mut flags = 0;
        let prefix = common_prefix(lower, upper);
        // The upper fence is stored without the prefix it shares with the lower one.
        let upper_rest = upper.map(|u| u.get(prefix..).unwrap_or_default());
        for (fence, infinite, off_at, len_at) in [
            (lower, LOWER_INFINITE, LOWER_OFF_AT, LOWER_LEN_AT),
            (upper_rest, UPPER_INFINITE, UPPER_OFF_AT, UPPER_LEN_AT),
        ] {
            match fence {
                None => flags |= infinite,
                Some(key) => {
                    heap -= key.len();
                    if let Some(dst) = self.b.get_mut(heap..heap + key.len()) {
                        dst.copy_from_slice(key);
                    }
                    put_u16(self.b, off_at, heap);
                    put_u16(self.b, len_at, key.len());
                }
            }
        }
        if let Some(k) = self.b.get_mut(KIND_AT) {
            *k = kind;
        }
        if let Some(f) = self.b.get_mut(FLAGS_AT) {
            *f = flags;
        }
        put_u16(self.b, HEAP_START_AT, heap);
        put_u16(self.b, HEAP_LIVE_AT, len - heap);
        put_u16(self.b, PREFIX_LEN_AT, prefix);
        self.set_right_child(right_child);
    }

    /// Sets the right child (inner nodes).
    pub fn set_right_child(&mut self, child: u64) {
        if let Some(dst) = self.b.get_mut(RIGHT_CHILD_AT..RIGHT_CHILD_AT + 8) {
            dst.copy_from_slice(&child.to_le_bytes());
        }
    }

    /// Contiguous free bytes between the slots and the heap.
    pub fn free_space(&self) -> usize {
        self.heap_start().saturating_sub(HEADER + self.count() * SLOT)
    }

    /// Free bytes after a compaction.
    pub fn reclaimable(&self) -> usize {
        self.b.len().saturating_sub(HEADER + self.count() * SLOT + self.get16(HEAP_LIVE_AT))
    }

    /// Inserts `key -> value`, or replaces the value if `key` exists.
    /// `Full` (and no change) if it does not fit or the node already holds
    /// `max_entries`.
    pub fn insert(&mut self, key: &[u8], value: &[u8], max_entries: usize) -> Result<Inserted, Full> {
        let plen = self.prefix_len();
        let node = self.node().map_err(|_| Full)?;
        let (pos, found) = node.search(key).map_err(|_| Full)?;
        let suffix = key.get(plen..).ok_or(Full)?;
        let need = SLOT + cell_size(suffix.len(), value.len());
        if found {
            let old = node.cell(pos).map_err(|_| Full)?;
            if old.value_len == value.len() {
                // Same size: overwrite in place.
                if let Some(dst) = self.b.get_mut(old.value_at..old.value_at + value.len()) {
                    dst.copy_from_slice(value);
                }
                return Ok(Inserted::Replaced);
            }
            if self.reclaimable() + SLOT + old.size < need {
                return Err(Full);
            }
            self.remove_at(pos);
            self.insert_at(pos, suffix, value, need);
            return Ok(Inserted::Replaced);
        }
        if self.count() >= max_entries || self.reclaimable() < need {
            return Err(Full);
        }
        self.insert_at(pos, suffix, value, need);
        Ok(Inserted::Added)
    }

    /// Writes a new entry at slot `pos` (space checked by the caller).
    fn insert_at(&mut self, pos: usize, suffix: &[u8], value: &[u8], need: usize) {
        if self.free_space() < need {
            self.compact();
        }
        let count = self.count();
        let size = need - SLOT;
        let at = self.heap_start() - size;
        let mut w = at;
        w += put_len(self.b, w, suffix.len());
        w += put_len(self.b, w, value.len());
        let rest = suffix.get(4..).unwrap_or_default();
        if let Some(dst) = self.b.get_mut(w..w + rest.len()) {
            dst.copy_from_slice(rest);
        }
        w += rest.len();
        if let Some(dst) = self.b.get_mut(w..w + value.len()) {
            dst.copy_from_slice(value);
        }
        // Open slot `pos`.
        let from = HEADER + pos * SLOT;
        self.b.copy_within(from..HEADER + count * SLOT, from + SLOT);
        put_u16(self.b, from, at);
        if let Some(dst) = self.b.get_mut(from + 2..from + 6) {
            dst.copy_from_slice(&head_of(suffix).to_le_bytes());
        }
        put_u16(self.b, COUNT_AT, count + 1);
        put_u16(self.b, HEAP_START_AT, at);
        let live = self.get16(HEAP_LIVE_AT);
        put_u16(self.b, HEAP_LIVE_AT, live + size);
    }

    /// Removes the entry at slot `i` (its cell becomes dead space).
    pub fn remove_at(&mut self, i: usize) {
        let count = self.count();
        if i >= count {
            return;
        }
        let size = self.node().and_then(|n| n.cell(i)).map_or(0, |c| c.size);
        let from = HEADER + i * SLOT;
        self.b.copy_within(from + SLOT..HEADER + count * SLOT, from);
        put_u16(self.b, COUNT_AT, count - 1);
        let live = self.get16(HEAP_LIVE_AT);
        put_u16(self.b, HEAP_LIVE_AT, live.saturating_sub(size));
    }

    /// Removes `key`; returns whether it was there.
    pub fn remove(&mut self, key: &[u8]) -> bool {
        match self.node().and_then(|n| n.search(key)) {
            Ok((i, true)) => {
                self.remove_at(i);
                true
            }
            _ => false,
        }
    }

    /// Points separator `i`'s child (or the right child, `i == count`) at `child`.
    pub fn set_child(&mut self, i: usize, child: u64) {
        if i == self.count() {
            return self.set_right_child(child);
        }
        if let Ok(c) = self.node().and_then(|n| n.cell(i))
            && let Some(dst) = self.b.get_mut(c.value_at..c.value_at + 8)
        {
            dst.copy_from_slice(&child.to_le_bytes());
        }
    }

    /// Everything needed to rebuild the node: kind, fences, right child, entries.
    pub fn contents(&self) -> Result<Contents, Torn> {
        let n = self.node()?;
        let mut buf = [0u8; MAX_KEY];
        let mut fence = |f| -> Result<Option<Vec<u8>>, Torn> {
            Ok(n.fence(f, &mut buf)?.map(|len| buf.get(..len).unwrap_or_default().to_vec()))
        };
        let (lower, upper) = (fence(n.lower())?, fence(n.upper())?);
        let mut c = Contents {
            kind: n.kind(),
            lower,
            upper,
            right_child: n.right_child()?,
            // Room for every full key: the prefix comes back per entry.
            bytes: Vec::with_capacity(self.b.len() + n.count() * self.prefix_len()),
            spans: Vec::with_capacity(n.count()),
        };
        let mut key = [0u8; MAX_KEY];
        let mut value = [0u8; crate::layout::MAX_ENTRY];
        for i in 0..n.count() {
            let k = n.key_at(i, &mut key)?;
            let v = n.value_at(i, &mut value)?;
            c.push(key.get(..k).unwrap_or_default(), value.get(..v).unwrap_or_default());
        }
        Ok(c)
    }

    /// Rebuilds the node from scratch. `Full` (node left half-built) if the
    /// entries do not fit: callers build into a scratch buffer first.
    pub fn build<'e>(
        &mut self,
        kind: u8,
        lower: Option<&[u8]>,
        upper: Option<&[u8]>,
        right_child: u64,
        entries: impl IntoIterator<Item = (&'e [u8], &'e [u8])>,
    ) -> Result<(), Full> {
        self.init(kind, lower, upper, right_child);
        let plen = self.prefix_len();
        for (i, (key, value)) in entries.into_iter().enumerate() {
            let suffix = key.get(plen..).ok_or(Full)?;
            let need = SLOT + cell_size(suffix.len(), value.len());
            if self.free_space() < need {
                return Err(Full);
            }
            self.insert_at(i, suffix, value, need);
        }
        Ok(())
    }

    /// Rewrites the node without dead space.
    pub fn compact(&mut self) {
        let Ok(c) = self.contents() else { return };
        let mut scratch = alloc::vec![0u8; self.b.len()];
        let mut fresh = NodeMut::new(&mut scratch);
        if fresh.build(c.kind, c.lower.as_deref(), c.upper.as_deref(), c.right_child, c.all()).is_ok() {
            self.b.copy_from_slice(&scratch);
        }
    }

    /// The separator a [`split`](Self::split) with `incoming` would send to
    /// the parent (to check the parent has room before splitting).
    pub fn split_separator(&self, incoming: &[u8]) -> Result<Vec<u8>, Torn> {
        let c = self.contents()?;
        match plan_split(&c, incoming)? {
            Plan::BeforeSingle => Ok(incoming.to_vec()),
            Plan::At(m) => separator_at(&c, m),
        }
    }

    /// Moves the upper part of this node into `right` (an empty page of the
    /// same size) and returns the separator: this node keeps the keys
    /// `<= separator`, `right` the greater ones. For an inner node the
    /// separator moves up and leaves both halves. The separator is always
    /// below the node's upper fence, so it never equals a separator already
    /// in the parent. `incoming` is the key about to be inserted: a leaf
    /// holding a single entry (long keys) splits so that it gets room.
    pub fn split(&mut self, right: &mut NodeMut<'_>, incoming: &[u8]) -> Result<Vec<u8>, Torn> {
        let c = self.contents()?;
        let plan = plan_split(&c, incoming)?;
        let sep = match plan {
            Plan::BeforeSingle => incoming.to_vec(),
            Plan::At(m) => separator_at(&c, m)?,
        };
        let (lower, upper) = (c.lower.as_deref(), c.upper.as_deref());
        let mut left_scratch = alloc::vec![0u8; self.b.len()];
        let mut left = NodeMut::new(&mut left_scratch);
        let n = c.len();
        let built = match plan {
            // One entry, and the newcomer sorts before it: split between them.
            Plan::BeforeSingle => left
                .build(LEAF, lower, Some(&sep), 0, c.entries(0..0))
                .and_then(|()| right.build(LEAF, Some(&sep), upper, 0, c.all())),
            Plan::At(m) if c.kind == LEAF => left
                .build(LEAF, lower, Some(&sep), 0, c.entries(0..m + 1))
                .and_then(|()| right.build(LEAF, Some(&sep), upper, 0, c.entries(m + 1..n))),
            // Entry `m` goes up; its child becomes the left half's right child.
            Plan::At(m) => {
                let (_, value) = c.entry(m).ok_or(Torn)?;
                let middle_child = u64::from_le_bytes(value.try_into().map_err(|_| Torn)?);
                left.build(INNER, lower, Some(&sep), middle_child, c.entries(0..m))
                    .and_then(|()| right.build(INNER, Some(&sep), upper, c.right_child, c.entries(m + 1..n)))
            }
        };
        built.map_err(|_| Torn)?;
        self.b.copy_from_slice(&left_scratch);
        Ok(sep)
    }

    /// Absorbs `right`, this node's right neighbour: the merged node holds
    /// both nodes' keys, for `(self.lower, right.upper]`. `separator` is the
    /// parent's key between them (it comes down into an inner node). `Full`
    /// and no change if the result does not fit.
    pub fn merge(&mut self, right: &NodeMut<'_>, separator: &[u8]) -> Result<(), Full> {
        let left = self.contents().map_err(|_| Full)?;
        let right = right.contents().map_err(|_| Full)?;
        if left.kind != right.kind {
            return Err(Full);
        }
        // An inner node's separator comes down, with the left half's right child.
        let child = left.right_child.to_le_bytes();
        let down = (left.kind == INNER).then_some((separator, &child[..]));
        let entries = left.all().chain(down).chain(right.all());
        let mut scratch = alloc::vec![0u8; self.b.len()];
        NodeMut::new(&mut scratch).build(
            left.kind,
            left.lower.as_deref(),
            right.upper.as_deref(),
            right.right_child,
            entries,
        )?;
        self.b.copy_from_slice(&scratch);
        Ok(())
    }

    /// Whether the node uses less than a quarter of its bytes (a merge candidate).
    pub fn is_underfull(&self) -> bool {
        (HEADER + self.count() * SLOT + self.get16(HEAP_LIVE_AT)) * 4 < self.b.len()
    }
}

/// Where a node splits.
enum Plan {
    /// A leaf with a single entry, and the incoming key sorts before it:
    /// the incoming key becomes the separator, the entry goes right.
    BeforeSingle,
    /// Entry `m` is the separator: a leaf keeps `0..=m`; an inner node
    /// keeps `0..m` and sends `m` up.
    At(usize),
}

/// Where the left half holds about half the bytes; a leaf of two or more
/// entries keeps at least one on each side.
fn plan_split(c: &Contents, incoming: &[u8]) -> Result<Plan, Torn> {
    let n = c.len();
    if n == 0 {
        return Err(Torn);
    }
    if c.kind == LEAF && n == 1 && c.entry(0).is_some_and(|(k, _)| incoming < k) {
        return Ok(Plan::BeforeSingle);
    }
    let size = |(k, v): (&[u8], &[u8])| SLOT + cell_size(k.len(), v.len());
    let total: usize = c.all().map(size).sum();
    let mut acc = 0;
    let mut m = 0;
    for (i, e) in c.all().enumerate() {
        acc += size(e);
        m = i;
        if acc * 2 >= total {
            break;
        }
    }
    if c.kind == LEAF && n >= 2 {
        m = m.min(n - 2);
    }
    if c.kind == INNER && n >= 3 {
        // Both halves keep a separator: no node with a single child.
        m = m.clamp(1, n - 2);
    }
    Ok(Plan::At(m))
}

/// The separator when entry `m` is the last one kept left. An inner node's
/// separator moves up as it is. A leaf's is the shortest key that is
/// greater than entry `m` and not greater than entry `m + 1` (suffix
/// truncation: short separators make short fences and wide inner nodes).
fn separator_at(c: &Contents, m: usize) -> Result<Vec<u8>, Torn> {
    let (left, _) = c.entry(m).ok_or(Torn)?;
    if c.kind != LEAF {
        return Ok(left.to_vec());
    }
    match c.entry(m + 1) {
        Some((right, _)) => {
            let common = left.iter().zip(right).take_while(|(a, b)| a == b).count();
            // A proper prefix of `right` one byte past the common part is
            // greater than `left` and smaller than `right`.
            Ok(if common + 1 < right.len() { right.get(..=common).ok_or(Torn)?.to_vec() } else { left.to_vec() })
        }
        None => Ok(left.to_vec()),
    }
}
