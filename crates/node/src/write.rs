//! Changing a node: only under an exclusive latch, on a plain `&mut [u8]`.
//!
//! Insertion keeps slots sorted and packs cells from the end of the node
//! down; removal leaves the cell's bytes dead until compaction. Split,
//! merge and compaction rebuild nodes from their entries, re-encoding every
//! key against the new fences' prefix.
//!
//! Splits are byte-balanced, except where inserts arrive in ascending order
//! (each new key right after the one added before it, which the node's
//! `run` fields remember): there the node splits where the run goes on, so
//! the part the run has passed stays full. (vmcache and LeanStore split a
//! leaf before its last entry when a per-tree flag says loads are ordered,
//! `splitOrdered` and the bulk-insert option; here each node detects its
//! runs, at its end or inside the key space, leaves and inner nodes alike.)

use alloc::vec::Vec;
use core::ops::Range;

use crate::bytes::Torn;
use crate::layout::{
    COUNT_AT, FLAGS_AT, HAS_REFERENCES, HEADER, HEAP_LIVE_AT, HEAP_START_AT, INNER, KIND_AT, LEAF, LOWER_INFINITE,
    LOWER_LEN_AT, LOWER_OFF_AT, MAX_KEY, PREFIX_LEN_AT, RIGHT_CHILD_AT, RUN_AT, RUN_LEN_AT, SLOT, UPPER_INFINITE,
    UPPER_LEN_AT, UPPER_OFF_AT, cell_size, head_of, value_field,
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

/// How a node splits: [`NodeMut::split_kind`] chooses, and the log records
/// the choice, so redo repeats it without reading the run hint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitKind {
    /// Halves of about equal bytes.
    Balanced,
    /// Where the node's ascending run of inserts goes on: the part before it
    /// stays full (balanced instead if a half would not fit).
    InOrder,
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

/// Writes a length (or a value's length field) at `at`; returns its bytes.
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
    /// Per entry: where its key starts in `bytes`, the key's length and the
    /// value's length field (the value follows the key).
    spans: Vec<(usize, usize, usize)>,
}

/// An entry of a node: a full key and its value (inline, or a reference).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'e> {
    /// The full key.
    pub key: &'e [u8],
    /// The value's bytes (a reference's, if `reference`).
    pub value: &'e [u8],
    /// Whether the value is a reference (see `layout`).
    pub reference: bool,
}

impl<'e> Entry<'e> {
    /// An inline entry.
    pub fn inline(key: &'e [u8], value: &'e [u8]) -> Entry<'e> {
        Entry { key, value, reference: false }
    }

    /// The value's length field.
    fn field(&self) -> usize {
        value_field(self.value.len(), self.reference)
    }
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

    /// Entry `i`.
    pub fn entry(&self, i: usize) -> Option<Entry<'_>> {
        let &(at, k, field) = self.spans.get(i)?;
        let v = field & !crate::layout::REFERENCE;
        Some(Entry {
            key: self.bytes.get(at..at + k)?,
            value: self.bytes.get(at + k..at + k + v)?,
            reference: field != v,
        })
    }

    /// Entries `range`, in key order.
    pub fn entries(&self, range: core::ops::Range<usize>) -> impl Iterator<Item = Entry<'_>> + Clone {
        range.filter_map(|i| self.entry(i))
    }

    /// All entries, in key order.
    pub fn all(&self) -> impl Iterator<Item = Entry<'_>> + Clone {
        self.entries(0..self.len())
    }

    fn push(&mut self, e: Entry<'_>) {
        self.spans.push((self.bytes.len(), e.key.len(), e.field()));
        self.bytes.extend_from_slice(e.key);
        self.bytes.extend_from_slice(e.value);
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

    /// The run hint: the slot just after the key added last (0: none), and
    /// how many keys in a row were added each right after the one before.
    pub(crate) fn run(&self) -> (usize, usize) {
        (self.get16(RUN_AT), self.get16(RUN_LEN_AT))
    }

    pub(crate) fn set_run(&mut self, slot: usize, len: usize) {
        put_u16(self.b, RUN_AT, slot);
        put_u16(self.b, RUN_LEN_AT, len.min(usize::from(u16::MAX)));
    }

    /// Makes `key`'s slot the one where a run long enough to split in
    /// order goes on.
    fn run_goes_on_at(&mut self, key: &[u8]) -> Result<(), Torn> {
        let (slot, _) = self.node()?.search(key)?;
        self.set_run(slot, MIN_RUN);
        Ok(())
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

    /// Whether the node may hold references (see [`HAS_REFERENCES`]).
    pub fn has_references(&self) -> bool {
        self.b.get(FLAGS_AT).is_some_and(|f| f & HAS_REFERENCES != 0)
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
        self.insert_entry(Entry::inline(key, value), max_entries)
    }

    /// Inserts an entry (inline, or a reference), or replaces the value if
    /// its key exists; `Full` as for [`insert`](Self::insert).
    pub fn insert_entry(&mut self, e: Entry<'_>, max_entries: usize) -> Result<Inserted, Full> {
        let (key, value) = (e.key, e.value);
        let plen = self.prefix_len();
        let node = self.node().map_err(|_| Full)?;
        let (pos, found) = node.search(key).map_err(|_| Full)?;
        let suffix = key.get(plen..).ok_or(Full)?;
        let need = SLOT + cell_size(suffix.len(), e.field());
        if found {
            let old = node.cell(pos).map_err(|_| Full)?;
            if old.value_len == value.len() && old.reference == e.reference {
                // Same size: overwrite in place.
                if let Some(dst) = self.b.get_mut(old.value_at..old.value_at + value.len()) {
                    dst.copy_from_slice(value);
                }
                return Ok(Inserted::Replaced);
            }
            if self.reclaimable() + SLOT + old.size < need {
                return Err(Full);
            }
            // Same slot again: the run is unchanged.
            self.remove_slot(pos);
            self.insert_at(pos, suffix, e, need);
            return Ok(Inserted::Replaced);
        }
        if self.count() >= max_entries || self.reclaimable() < need {
            return Err(Full);
        }
        self.insert_at(pos, suffix, e, need);
        let (run, len) = self.run();
        self.set_run(pos + 1, if run != 0 && pos == run { len + 1 } else { 1 });
        Ok(Inserted::Added)
    }

    /// Writes a new entry at slot `pos` with `e`'s value (space checked by
    /// the caller).
    fn insert_at(&mut self, pos: usize, suffix: &[u8], e: Entry<'_>, need: usize) {
        let value = e.value;
        if self.free_space() < need {
            self.compact();
        }
        let count = self.count();
        let size = need - SLOT;
        let at = self.heap_start() - size;
        let mut w = at;
        w += put_len(self.b, w, suffix.len());
        w += put_len(self.b, w, e.field());
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
        if e.reference
            && let Some(f) = self.b.get_mut(FLAGS_AT)
        {
            *f |= HAS_REFERENCES;
        }
        put_u16(self.b, COUNT_AT, count + 1);
        put_u16(self.b, HEAP_START_AT, at);
        let live = self.get16(HEAP_LIVE_AT);
        put_u16(self.b, HEAP_LIVE_AT, live + size);
    }

    /// Removes the entry at slot `i` (its cell becomes dead space).
    pub fn remove_at(&mut self, i: usize) {
        // The slots after `i` move down one, the run's with them.
        let (run, len) = self.run();
        if i < run && i < self.count() {
            self.set_run(run - 1, len);
        }
        self.remove_slot(i);
    }

    fn remove_slot(&mut self, i: usize) {
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
            let (v, reference) = n.value_kind_at(i, &mut value)?;
            c.push(Entry {
                key: key.get(..k).unwrap_or_default(),
                value: value.get(..v).unwrap_or_default(),
                reference,
            });
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
        entries: impl IntoIterator<Item = Entry<'e>>,
    ) -> Result<(), Full> {
        self.init(kind, lower, upper, right_child);
        let plen = self.prefix_len();
        for (i, e) in entries.into_iter().enumerate() {
            let suffix = e.key.get(plen..).ok_or(Full)?;
            let need = SLOT + cell_size(suffix.len(), e.field());
            if self.free_space() < need {
                return Err(Full);
            }
            self.insert_at(i, suffix, e, need);
        }
        Ok(())
    }

    /// Rewrites the node without dead space (the slots, and so the run, stay).
    pub fn compact(&mut self) {
        let Ok(c) = self.contents() else { return };
        let mut scratch = alloc::vec![0u8; self.b.len()];
        let mut fresh = NodeMut::new(&mut scratch);
        if fresh.build(c.kind, c.lower.as_deref(), c.upper.as_deref(), c.right_child, c.all()).is_ok() {
            let (run, len) = self.run();
            fresh.set_run(run, len);
            self.b.copy_from_slice(&scratch);
        }
    }

    /// How the node splits for `incoming`: in order if `incoming` continues
    /// an ascending run of inserts (it goes right after the key added last,
    /// which went right after the one added before it), else balanced.
    pub fn split_kind(&self, incoming: &[u8]) -> Result<SplitKind, Torn> {
        let (run, len) = self.run();
        let in_order = run != 0 && len >= MIN_RUN && self.new_key_slot(incoming)? == Some(run);
        Ok(if in_order { SplitKind::InOrder } else { SplitKind::Balanced })
    }

    /// The slot `key` takes as a new key; `None` for a leaf's existing key
    /// (a replacement). An inner node's search key may equal the separator
    /// of the child that splits: the new separator goes at its slot.
    fn new_key_slot(&self, key: &[u8]) -> Result<Option<usize>, Torn> {
        let node = self.node()?;
        let (slot, found) = node.search(key)?;
        Ok((!found || !node.is_leaf()).then_some(slot))
    }

    /// The separator a [`split`](Self::split) with `incoming` and `kind`
    /// would send to the parent (to check the parent has room before
    /// splitting).
    pub fn split_separator(&self, incoming: &[u8], kind: SplitKind) -> Result<Vec<u8>, Torn> {
        let c = self.contents()?;
        Ok(self.plan(&c, incoming, kind)?.separator)
    }

    /// Moves the upper part of this node into `right` (an empty page of the
    /// same size) and returns the separator: this node keeps the keys
    /// `<= separator`, `right` the greater ones. For an inner node the
    /// separator moves up and leaves both halves. The separator is always
    /// below the node's upper fence, so it never equals a separator already
    /// in the parent. `incoming` is the key about to be inserted (for an
    /// inner node: the key whose child split): an in-order split goes where
    /// it is added, and a leaf holding a single entry (long keys) splits so
    /// that it gets room. The result depends only on the node's entries,
    /// `incoming` and `kind`.
    pub fn split(&mut self, right: &mut NodeMut<'_>, incoming: &[u8], kind: SplitKind) -> Result<Vec<u8>, Torn> {
        let c = self.contents()?;
        let plan = self.plan(&c, incoming, kind)?;
        let [(lower, upper, keep), (right_lower, right_upper, moved)] = plan.halves(&c);
        let (left_child, right_child) = if c.kind == LEAF {
            (0, 0)
        } else {
            // The separator's child becomes the left half's right child.
            let value = c.entry(plan.left).ok_or(Torn)?.value;
            (u64::from_le_bytes(value.try_into().map_err(|_| Torn)?), c.right_child)
        };
        let mut left_scratch = alloc::vec![0u8; self.b.len()];
        let mut left = NodeMut::new(&mut left_scratch);
        left.build(c.kind, lower, upper, left_child, c.entries(keep))
            .and_then(|()| right.build(c.kind, right_lower, right_upper, right_child, c.entries(moved)))
            .map_err(|_| Torn)?;
        if plan.in_order {
            // The run goes on in the half the incoming key joins; so that
            // it still counts as in order there (when it does not fit and
            // that half splits in turn), mark its slot as the run's.
            if incoming <= plan.separator.as_slice() {
                left.run_goes_on_at(incoming)?;
            } else {
                right.run_goes_on_at(incoming)?;
            }
        }
        self.b.copy_from_slice(&left_scratch);
        Ok(plan.separator)
    }

    /// Where this node splits for `incoming`.
    fn plan(&self, c: &Contents, incoming: &[u8], kind: SplitKind) -> Result<Plan, Torn> {
        if kind == SplitKind::InOrder
            && let Some(slot) = self.new_key_slot(incoming)?
            && let Some(plan) = Plan::in_order(c, incoming, slot)?
            && plan.fits(c, self.b.len())
        {
            return Ok(plan);
        }
        Plan::balanced(c, incoming)
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
        let down = (left.kind == INNER).then_some(Entry::inline(separator, &child[..]));
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

/// Keys added in a row, each right after the one before, that make the
/// next one in a row an ascending run to split for. A random insert lands
/// right after the key added last one time in `count + 1`: with two keys
/// in a row before it, a random stream splits in order about once in
/// `count^2` splits (tens of thousands for 8-byte keys), not once in
/// `count`.
const MIN_RUN: usize = 2;

/// Where a node splits.
struct Plan {
    /// The left half keeps entries `0..left`. A leaf's right half takes
    /// `left..`; an inner node sends entry `left` up and its right half
    /// takes `left + 1..`.
    left: usize,
    /// The left half keeps the keys `<=` it.
    separator: Vec<u8>,
    /// Split where an ascending run goes on.
    in_order: bool,
}

impl Plan {
    /// The split of a node whose ascending run of inserts `incoming`
    /// continues at `slot` (`1..=count`): the left half keeps the keys
    /// before it, full, and the run goes on in a half with room. `None`
    /// where the node is too small to split so, or `slot` is 0.
    fn in_order(c: &Contents, incoming: &[u8], slot: usize) -> Result<Option<Plan>, Torn> {
        let n = c.len();
        let key = |i: usize| c.entry(i).map(|e| e.key).ok_or(Torn);
        let (left, separator) = match c.kind {
            // At the end: all but the last entry stay left (a leaf keeps one
            // on each side), and the run goes on in the right half.
            LEAF if slot == n && n >= 2 => (n - 1, between(key(n - 2)?, key(n - 1)?)?),
            // Inside: the left half keeps the keys before the incoming one,
            // and the separator sits above it, so the run goes on at the end
            // of the left half and the keys after it stay apart.
            LEAF if (1..n).contains(&slot) => (slot, between(incoming, key(slot)?)?),
            // The separator at the slot goes up: the child that splits
            // becomes the left half's right child, where the run goes on
            // (at the end: the last but one, so both halves keep one).
            INNER if n >= 3 && slot >= 1 => {
                let m = slot.min(n - 2);
                (m, key(m)?.to_vec())
            }
            _ => return Ok(None),
        };
        Ok(Some(Plan { left, separator, in_order: true }))
    }

    /// The split where the left half holds about half the bytes; a leaf of
    /// two or more entries keeps at least one on each side, an inner node
    /// of three or more at least one separator on each side (no node with a
    /// single child).
    fn balanced(c: &Contents, incoming: &[u8]) -> Result<Plan, Torn> {
        let n = c.len();
        let key = |i: usize| c.entry(i).map(|e| e.key).ok_or(Torn);
        if n == 0 {
            return Err(Torn);
        }
        if c.kind == LEAF && n == 1 && incoming < key(0)? {
            // One entry, and the newcomer sorts before it: split between them.
            return Ok(Plan { left: 0, separator: incoming.to_vec(), in_order: false });
        }
        let size = |e: Entry<'_>| SLOT + cell_size(e.key.len(), e.field());
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
        if c.kind == INNER {
            if n >= 3 {
                m = m.clamp(1, n - 2);
            }
            return Ok(Plan { left: m, separator: key(m)?.to_vec(), in_order: false });
        }
        if n >= 2 {
            m = m.min(n - 2);
        }
        // Entry `m` is the last one kept left; a single entry is its own separator.
        let separator = match c.entry(m + 1) {
            Some(next) => between(key(m)?, next.key)?,
            None => key(m)?.to_vec(),
        };
        Ok(Plan { left: m + 1, separator, in_order: false })
    }

    /// Each half's fences and the entries it keeps.
    #[expect(clippy::type_complexity, reason = "two halves, each (lower fence, upper fence, entries)")]
    fn halves<'c>(&'c self, c: &'c Contents) -> [(Option<&'c [u8]>, Option<&'c [u8]>, Range<usize>); 2] {
        let separator = Some(self.separator.as_slice());
        let moved_from = if c.kind == LEAF { self.left } else { self.left + 1 };
        [(c.lower.as_deref(), separator, 0..self.left), (separator, c.upper.as_deref(), moved_from..c.len())]
    }

    /// Whether both halves fit a node of `len` bytes (a split near an end
    /// moves few bytes out, while the new fence may be long).
    fn fits(&self, c: &Contents, len: usize) -> bool {
        self.halves(c).into_iter().all(|(lower, upper, entries)| {
            let prefix = common_prefix(lower, upper);
            // As `init` stores them: the upper fence without the prefix.
            let fences = lower.map_or(0, <[u8]>::len) + upper.map_or(0, |u| u.len().saturating_sub(prefix));
            let cells: usize =
                c.entries(entries).map(|e| SLOT + cell_size(e.key.len().saturating_sub(prefix), e.field())).sum();
            HEADER + fences + cells <= len
        })
    }
}

/// A short key `s` with `low <= s < high`, for a leaf's separator (suffix
/// truncation: short separators make short fences and wide inner nodes):
/// `high` cut one byte past its common part with `low` if that is shorter
/// than `high`, else `low`.
fn between(low: &[u8], high: &[u8]) -> Result<Vec<u8>, Torn> {
    let common = low.iter().zip(high).take_while(|(a, b)| a == b).count();
    Ok(if common + 1 < high.len() { high.get(..=common).ok_or(Torn)?.to_vec() } else { low.to_vec() })
}
