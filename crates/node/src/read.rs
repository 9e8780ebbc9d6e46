//! Reading a node, through any [`Bytes`]: under a latch (plain slices) or
//! optimistically (racy bytes that may be garbage). Every offset taken from
//! the node is checked against its size, every loop is bounded by values
//! checked against its size, and anything impossible is [`Torn`].

use core::cmp::Ordering;

use crate::bytes::{Bytes, Torn};
use crate::layout::{
    COUNT_AT, FLAGS_AT, HEADER, HEAP_LIVE_AT, HEAP_START_AT, INNER, KIND_AT, LEAF, LOWER_INFINITE, LOWER_LEN_AT,
    LOWER_OFF_AT, MAX_ENTRY, MAX_KEY, PREFIX_LEN_AT, REFERENCE, RIGHT_CHILD_AT, SLOT, UPPER_INFINITE, UPPER_LEN_AT,
    UPPER_OFF_AT, head_of,
};

/// A decoded cell.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cell {
    pub(crate) head: u32,
    pub(crate) suffix_len: usize,
    pub(crate) value_len: usize,
    /// The value is a reference (see `layout`).
    pub(crate) reference: bool,
    /// Where the suffix bytes after the head start.
    pub(crate) rest_at: usize,
    /// Where the value starts.
    pub(crate) value_at: usize,
    /// The cell's size in bytes.
    pub(crate) size: usize,
}

/// A fence: minus or plus infinity, or a key stored in the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fence {
    /// No bound.
    Infinite,
    /// A key: the node's first `prefix` prefix bytes (stored once, at the
    /// start of the lower fence), then `len` bytes at `at`.
    Key {
        /// The prefix bytes it starts with (0 for the lower fence).
        prefix: usize,
        /// Offset of the rest in the node.
        at: usize,
        /// Length of the rest.
        len: usize,
    },
}

impl Fence {
    /// The fence's full length (`None`: infinite).
    pub fn key_len(&self) -> Option<usize> {
        match self {
            Fence::Infinite => None,
            Fence::Key { prefix, len, .. } => Some(prefix + len),
        }
    }
}

/// A node opened for reading: the header checked for plausibility.
#[derive(Clone, Copy, Debug)]
pub struct Node<'a, B: Bytes + ?Sized> {
    b: &'a B,
    kind: u8,
    count: usize,
    heap_start: usize,
    heap_live: usize,
    lower: Fence,
    upper: Fence,
    prefix_len: usize,
}

fn read_len<B: Bytes + ?Sized>(b: &B, at: usize) -> Result<(usize, usize), Torn> {
    let first = b.u8_at(at)?;
    if first < 0x80 {
        Ok((usize::from(first), 1))
    } else {
        let second = b.u8_at(at + 1)?;
        Ok(((usize::from(first & 0x7f) << 8) | usize::from(second), 2))
    }
}

impl<'a, B: Bytes + ?Sized> Node<'a, B> {
    /// Opens the node in `b`, checking its header (read in one copy).
    pub fn open(b: &'a B) -> Result<Self, Torn> {
        let len = b.len();
        let mut h = [0u8; HEADER];
        b.read(0, &mut h)?;
        let u16_at = |at: usize| {
            usize::from(u16::from_le_bytes([h.get(at).copied().unwrap_or(0), h.get(at + 1).copied().unwrap_or(0)]))
        };
        let kind = h.get(KIND_AT).copied().unwrap_or(0);
        let flags = h.get(FLAGS_AT).copied().unwrap_or(0);
        let count = u16_at(COUNT_AT);
        let heap_start = u16_at(HEAP_START_AT);
        let heap_live = u16_at(HEAP_LIVE_AT);
        let prefix_len = u16_at(PREFIX_LEN_AT);
        if !(kind == LEAF || kind == INNER) || HEADER + count * SLOT > heap_start || heap_start > len {
            return Err(Torn);
        }
        if heap_live > len - heap_start {
            return Err(Torn);
        }
        // The upper fence is stored without the prefix it shares with the
        // lower one.
        let fence = |infinite: u8, off_at: usize, len_at: usize, prefix: usize| -> Result<Fence, Torn> {
            if flags & infinite != 0 {
                return Ok(Fence::Infinite);
            }
            let (at, flen) = (u16_at(off_at), u16_at(len_at));
            if at < heap_start || at + flen > len || prefix + flen > MAX_KEY {
                return Err(Torn);
            }
            Ok(Fence::Key { prefix, at, len: flen })
        };
        let lower = fence(LOWER_INFINITE, LOWER_OFF_AT, LOWER_LEN_AT, 0)?;
        let upper = fence(UPPER_INFINITE, UPPER_OFF_AT, UPPER_LEN_AT, prefix_len)?;
        match (lower, upper) {
            (Fence::Key { len: l, .. }, Fence::Key { .. }) if prefix_len <= l => {}
            _ if prefix_len == 0 => {}
            _ => return Err(Torn),
        }
        Ok(Node { b, kind, count, heap_start, heap_live, lower, upper, prefix_len })
    }

    /// The bytes under the node.
    pub fn bytes(&self) -> &'a B {
        self.b
    }

    /// Leaf or inner.
    pub fn kind(&self) -> u8 {
        self.kind
    }

    /// Whether this is a leaf.
    pub fn is_leaf(&self) -> bool {
        self.kind == LEAF
    }

    /// Entries (separators, for an inner node).
    pub fn count(&self) -> usize {
        self.count
    }

    /// Length of the prefix every key of the node shares.
    pub fn prefix_len(&self) -> usize {
        self.prefix_len
    }

    /// The lower fence (keys are greater).
    pub fn lower(&self) -> Fence {
        self.lower
    }

    /// The upper fence (keys are smaller or equal).
    pub fn upper(&self) -> Fence {
        self.upper
    }

    /// Bytes in use: header, slots and live cells.
    pub fn used(&self) -> usize {
        HEADER + self.count * SLOT + self.heap_live
    }

    /// The start of the cell heap.
    pub fn heap_start(&self) -> usize {
        self.heap_start
    }

    /// Copies a fence into `out`; returns its length (`None`: infinite).
    pub fn fence(&self, fence: Fence, out: &mut [u8]) -> Result<Option<usize>, Torn> {
        match fence {
            Fence::Infinite => Ok(None),
            Fence::Key { prefix, at, len } => {
                if prefix > 0 {
                    let Fence::Key { at: lower_at, .. } = self.lower else { return Err(Torn) };
                    self.b.read(lower_at, out.get_mut(..prefix).ok_or(Torn)?)?;
                }
                self.b.read(at, out.get_mut(prefix..prefix + len).ok_or(Torn)?)?;
                Ok(Some(prefix + len))
            }
        }
    }

    /// The child right of the last separator (inner nodes).
    pub fn right_child(&self) -> Result<u64, Torn> {
        self.b.u64_at(RIGHT_CHILD_AT)
    }

    #[inline]
    fn slot(&self, i: usize) -> Result<(usize, u32), Torn> {
        if i >= self.count {
            return Err(Torn);
        }
        let at = HEADER + i * SLOT;
        // One 8-byte load covers the 6-byte slot (the heap follows the
        // slots, so the two extra bytes are inside the node).
        if at + 8 <= self.heap_start {
            let raw = self.b.u64_at(at)?;
            return Ok(((raw & 0xffff) as usize, (raw >> 16) as u32));
        }
        Ok((usize::from(self.b.u16_at(at)?), self.b.u32_at(at + 2)?))
    }

    pub(crate) fn cell(&self, i: usize) -> Result<Cell, Torn> {
        let (at, head) = self.slot(i)?;
        if at < self.heap_start {
            return Err(Torn);
        }
        let ((suffix_len, a), (value_len, v)) = if at + 4 <= self.b.len() {
            // Both lengths are in the cell's first 4 bytes: one load.
            let w = self.b.u32_at(at)?.to_le_bytes();
            let decode = |i: usize| -> (usize, usize) {
                let first = w.get(i).copied().unwrap_or(0);
                if first < 0x80 {
                    (usize::from(first), 1)
                } else {
                    ((usize::from(first & 0x7f) << 8) | usize::from(w.get(i + 1).copied().unwrap_or(0)), 2)
                }
            };
            let s = decode(0);
            (s, decode(s.1))
        } else {
            let s = read_len(self.b, at)?;
            (s, read_len(self.b, at + s.1)?)
        };
        let reference = value_len & REFERENCE != 0;
        let value_len = value_len & !REFERENCE;
        if self.prefix_len + suffix_len > MAX_KEY || suffix_len + value_len > MAX_ENTRY + MAX_KEY {
            return Err(Torn);
        }
        let rest_at = at + a + v;
        let value_at = rest_at + suffix_len.saturating_sub(4);
        let end = value_at + value_len;
        if end > self.b.len() {
            return Err(Torn);
        }
        Ok(Cell { head, suffix_len, value_len, reference, rest_at, value_at, size: end - at })
    }

    /// Compares the stored key at `i` with the search suffix `s`.
    fn cmp_at(&self, i: usize, s: &[u8], head_s: u32) -> Result<Ordering, Torn> {
        let (_, head) = self.slot(i)?;
        if head != head_s {
            return Ok(head.cmp(&head_s));
        }
        let c = self.cell(i)?;
        let (sl, ql) = (c.suffix_len, s.len());
        if sl <= 4 || ql <= 4 {
            // The heads agree: the shorter one is a prefix of the other.
            return Ok(sl.cmp(&ql));
        }
        // Both continue past the head: compare the rest in chunks.
        let mut chunk = [0u8; 32];
        let (mut done, rest_len) = (0, sl - 4);
        let query = s.get(4..).ok_or(Torn)?;
        while done < rest_len.min(query.len()) {
            let n = (rest_len.min(query.len()) - done).min(chunk.len());
            let mine = chunk.get_mut(..n).ok_or(Torn)?;
            self.b.read(c.rest_at + done, mine)?;
            match (*mine).cmp(query.get(done..done + n).ok_or(Torn)?) {
                Ordering::Equal => done += n,
                other => return Ok(other),
            }
        }
        Ok(rest_len.cmp(&query.len()))
    }

    /// Compares `key` with the node's prefix: `Equal` if it starts with it.
    fn cmp_prefix(&self, key: &[u8]) -> Result<Ordering, Torn> {
        let Fence::Key { at, .. } = self.lower else { return Ok(Ordering::Equal) };
        let mut chunk = [0u8; 32];
        let mut done = 0;
        while done < self.prefix_len {
            let n = (self.prefix_len - done).min(chunk.len());
            let mine = chunk.get_mut(..n).ok_or(Torn)?;
            self.b.read(at + done, mine)?;
            let theirs = key.get(done..(done + n).min(key.len())).unwrap_or_default();
            match theirs.cmp(mine) {
                Ordering::Equal if theirs.len() == n => done += n,
                // The key ends inside the prefix: it is smaller.
                Ordering::Equal => return Ok(Ordering::Less),
                other => return Ok(other),
            }
        }
        Ok(Ordering::Equal)
    }

    /// The first index whose key is `>= key`, and whether it is equal.
    pub fn search(&self, key: &[u8]) -> Result<(usize, bool), Torn> {
        match self.cmp_prefix(key)? {
            Ordering::Less => return Ok((0, false)),
            Ordering::Greater => return Ok((self.count, false)),
            Ordering::Equal => {}
        }
        let s = key.get(self.prefix_len..).ok_or(Torn)?;
        let head_s = head_of(s);
        let (mut lo, mut hi) = (0, self.count);
        // Binary search: at most log2(count) + 1 steps.
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.cmp_at(mid, s, head_s)? {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Ok((mid, true)),
            }
        }
        Ok((lo, false))
    }

    /// Copies the full key at `i` into `out`; returns its length.
    pub fn key_at(&self, i: usize, out: &mut [u8]) -> Result<usize, Torn> {
        let c = self.cell(i)?;
        let len = self.prefix_len + c.suffix_len;
        let out = out.get_mut(..len).ok_or(Torn)?;
        if let Fence::Key { at, .. } = self.lower {
            self.b.read(at, out.get_mut(..self.prefix_len).ok_or(Torn)?)?;
        }
        #[expect(clippy::big_endian_bytes, reason = "the inverse of `head_of`")]
        let head = c.head.to_be_bytes();
        let in_head = c.suffix_len.min(4);
        let suffix = out.get_mut(self.prefix_len..).ok_or(Torn)?;
        suffix.get_mut(..in_head).ok_or(Torn)?.copy_from_slice(head.get(..in_head).ok_or(Torn)?);
        self.b.read(c.rest_at, suffix.get_mut(in_head..).ok_or(Torn)?)?;
        Ok(len)
    }

    /// Where the value at `i` lies in the node's bytes (for a caller that
    /// reads it in place, under a latch).
    pub fn value_range(&self, i: usize) -> Result<core::ops::Range<usize>, Torn> {
        let c = self.cell(i)?;
        Ok(c.value_at..c.value_at + c.value_len)
    }

    /// Copies the value at `i` into `out`; returns its length.
    pub fn value_at(&self, i: usize, out: &mut [u8]) -> Result<usize, Torn> {
        self.value_kind_at(i, out).map(|(len, _)| len)
    }

    /// Copies the value at `i` into `out`; returns its length and whether it
    /// is a reference.
    pub fn value_kind_at(&self, i: usize, out: &mut [u8]) -> Result<(usize, bool), Torn> {
        let c = self.cell(i)?;
        self.b.read(c.value_at, out.get_mut(..c.value_len).ok_or(Torn)?)?;
        Ok((c.value_len, c.reference))
    }

    /// Whether the value at `i` is a reference.
    pub fn is_reference(&self, i: usize) -> Result<bool, Torn> {
        Ok(self.cell(i)?.reference)
    }

    /// The child page holding the keys `<=` separator `i` (inner nodes);
    /// `i == count` is the right child.
    pub fn child_at(&self, i: usize) -> Result<u64, Torn> {
        if i == self.count {
            return self.right_child();
        }
        let c = self.cell(i)?;
        if c.value_len != 8 || c.reference {
            return Err(Torn);
        }
        self.b.u64_at(c.value_at)
    }

    /// The child to descend into for `key`, with its index.
    pub fn child_for(&self, key: &[u8]) -> Result<(usize, u64), Torn> {
        if self.kind != INNER {
            return Err(Torn);
        }
        let (i, _) = self.search(key)?;
        Ok((i, self.child_at(i)?))
    }

    /// The child holding the keys just greater than `key`, with its index
    /// (the next leaf in a forward scan).
    pub fn child_after(&self, key: &[u8]) -> Result<(usize, u64), Torn> {
        if self.kind != INNER {
            return Err(Torn);
        }
        let (i, found) = self.search(key)?;
        let i = if found { i + 1 } else { i };
        Ok((i, self.child_at(i)?))
    }

    /// Whether `key` lies inside the fences (`lower < key <= upper`).
    pub fn covers(&self, key: &[u8]) -> Result<bool, Torn> {
        let mut fence = [0u8; MAX_KEY];
        let above_lower = match self.fence(self.lower, &mut fence)? {
            None => true,
            Some(n) => key > fence.get(..n).ok_or(Torn)?,
        };
        let below_upper = match self.fence(self.upper, &mut fence)? {
            None => true,
            Some(n) => key <= fence.get(..n).ok_or(Torn)?,
        };
        Ok(above_lower && below_upper)
    }
}

/// Calls every read path of a node over `b`, ignoring the results: for the
/// fuzz target and the garbage tests, where only the absence of panics (and,
/// under Miri, of undefined behaviour) matters.
#[doc(hidden)]
pub fn read_everything<B: Bytes + ?Sized>(b: &B) {
    let Ok(n) = Node::open(b) else { return };
    let mut out = [0u8; MAX_KEY];
    let mut value = [0u8; MAX_ENTRY];
    for key in [&b""[..], b"abc", &[0xff; 9]] {
        let _ = n.search(key);
        let _ = n.child_for(key);
        let _ = n.child_after(key);
        let _ = n.covers(key);
    }
    // Bounded by the node's size: at most one slot per SLOT bytes.
    for i in 0..=n.count().min(b.len() / SLOT) {
        if let Ok(len) = n.key_at(i, &mut out) {
            let _ = n.search(out.get(..len).unwrap_or_default());
        }
        let _ = n.value_at(i, &mut value);
        let _ = n.child_at(i);
    }
    let _ = n.fence(n.lower(), &mut out);
    let _ = n.fence(n.upper(), &mut out);
    let _ = n.right_child();
}
