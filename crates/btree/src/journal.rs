//! What the tree tells the write-ahead log, and how a change is redone.
//!
//! Every change to the tree is a *unit*: the pages it changed (latched
//! exclusively while it is logged), each with an operation, the pages it
//! freed, and for a key write, the key (and, inside a batch, the value the
//! key had before, so recovery can undo a batch that never committed). A
//! unit is one log record, so a split or merge, which changes several
//! pages, is redone all or nothing.
//!
//! Operations are physiological: "insert this entry into page P", "split
//! page P on this key", redone by the same node code that made the change,
//! which is deterministic given the page's bytes. Pages a unit creates or
//! rewrites whole (a split's new right page, a merge's left page, the root
//! when it grows or shrinks) are logged as images, so no page is ever
//! derived from another page's bytes at redo: a page torn by a crash needs
//! only its own protection (the database's double-write area, or an image
//! of it in the log). An image leaves out the node's free gap (between the
//! slots and the cells), which redo zeroes.
//!
//! ```text
//! unit:   | flags u8 | [write] | [released len | released] | [freed n | freed ids...] | changes n | change... |
//!           flags: 1 a write follows, 2 freed pages follow, 4 a released reference follows
//! write:  | tree | batch | key len | key | before: 0 not kept, 1 absent, 2 + len + value, 3 + len + reference |
//! change: | page | op u8 (+0x80: the key is the write's) | operands |
//!   1 insert    | [key len | key] | value len | value |
//!   8 insert reference | [key len | key] | len | reference |
//!   2 remove    | [key len | key] |
//!   3 remove at | index |
//!   4 set child | index | child |
//!   5 split     | key len | key |            (the left half; the right is an image)
//!   6 image     | gap at | gap len | body without the gap |
//!   7 split in order | key len | key |       (as 5, where the run of inserts goes on)
//! every number but flags and op is an unsigned LEB128 (varint.rs)
//! ```

use alloc::vec;
use alloc::vec::Vec;

use snowfall_buffer::PageId;
use snowfall_node::layout::{HEADER, SLOT};
use snowfall_node::{Node, NodeMut, SplitKind};
use snowfall_wal::LogError;

use crate::varint;

/// Where a tree's changes go: the write-ahead log, or nowhere.
pub trait Journal: Sync {
    /// Logs `unit` and returns the LSN every page it changed must record.
    /// Called with those pages latched exclusively and already changed.
    fn log(&self, unit: &Unit<'_>) -> Result<u64, LogError>;

    /// Whether changes are logged at all (a tree without a log skips
    /// building units).
    fn enabled(&self) -> bool {
        true
    }
}

/// No log: an in-memory tree, or one whose durability is someone else's.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoJournal;

impl Journal for NoJournal {
    fn log(&self, _unit: &Unit<'_>) -> Result<u64, LogError> {
        Ok(0)
    }

    fn enabled(&self) -> bool {
        false
    }
}

/// A value as a leaf stores it: the value itself, or a reference to a
/// value stored out of line (whose format is the database's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stored<'a> {
    /// The bytes in the leaf.
    pub bytes: &'a [u8],
    /// Whether they are a reference.
    pub reference: bool,
}

/// An operation on one page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op<'a> {
    /// Insert or replace an entry.
    Insert {
        /// The key.
        key: &'a [u8],
        /// The value (a child's page id, little-endian, in inner nodes).
        value: &'a [u8],
        /// Whether the value is a reference.
        reference: bool,
    },
    /// Remove an entry by key.
    Remove {
        /// The key.
        key: &'a [u8],
    },
    /// Remove the entry at an index.
    RemoveAt {
        /// The index.
        index: usize,
    },
    /// Set the child at an index (`count`: the right child).
    SetChild {
        /// The index.
        index: usize,
        /// The child's page id.
        child: u64,
    },
    /// Keep the left half of a split on `key` (the right half is a new
    /// page, logged as an image).
    Split {
        /// The key the split was for.
        key: &'a [u8],
        /// How the node split (the choice is logged so that redo repeats it
        /// without reading the node's run hint).
        kind: SplitKind,
    },
    /// The page's whole body as it is now.
    Image(Image<'a>),
}

/// A page's whole body less its free gap, which is zeros and not logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Image<'a> {
    /// The body before the gap.
    pub head: &'a [u8],
    /// The gap's length.
    pub gap: usize,
    /// The body after the gap.
    pub tail: &'a [u8],
}

impl<'a> Image<'a> {
    /// The image of a page body (no gap if the body is not a node).
    pub fn of(body: &'a [u8]) -> Image<'a> {
        let (at, len) = gap(body);
        Image { head: body.get(..at).unwrap_or_default(), gap: len, tail: body.get(at + len..).unwrap_or_default() }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.push(OP_IMAGE);
        put_len(out, self.head.len());
        put_len(out, self.gap);
        out.extend_from_slice(self.head);
        out.extend_from_slice(self.tail);
    }

    fn apply(&self, body: &mut [u8]) -> Result<(), Malformed> {
        let at = self.head.len();
        if at + self.gap + self.tail.len() != body.len() {
            return Err(Malformed);
        }
        body.get_mut(..at).ok_or(Malformed)?.copy_from_slice(self.head);
        body.get_mut(at..at + self.gap).ok_or(Malformed)?.fill(0);
        body.get_mut(at + self.gap..).ok_or(Malformed)?.copy_from_slice(self.tail);
        Ok(())
    }
}

/// One page changed by a unit.
#[derive(Clone, Copy, Debug)]
pub struct Change<'a> {
    /// The page.
    pub page: PageId,
    /// What was done.
    pub op: Op<'a>,
}

impl<'a> Change<'a> {
    /// A page logged whole (a page the unit created, or rewrote whole), from
    /// its body now.
    pub fn image(page: PageId, body: &'a [u8]) -> Change<'a> {
        Change { page, op: Op::Image(Image::of(body)) }
    }
}

/// The key a unit wrote, for recovery's bookkeeping of batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Write<'a> {
    /// The tree (its root page).
    pub tree: PageId,
    /// The key.
    pub key: &'a [u8],
    /// The batch it belongs to (0: it commits by itself).
    pub batch: u64,
    /// Inside a batch: the value the key had before (`Some(None)`: absent).
    pub before: Option<Option<Stored<'a>>>,
    /// The reference the write replaced or removed (whose value the
    /// database frees with this record).
    pub released: Option<&'a [u8]>,
}

/// A change to the tree, logged and redone as one.
#[derive(Clone, Copy, Debug)]
pub struct Unit<'a> {
    /// The key written, if this is a write (not a split or merge).
    pub write: Option<Write<'a>>,
    /// Pages changed, in the order the changes were made.
    pub changes: &'a [Change<'a>],
    /// Pages freed.
    pub freed: &'a [PageId],
}

const OP_INSERT: u8 = 1;
const OP_REMOVE: u8 = 2;
const OP_REMOVE_AT: u8 = 3;
const OP_SET_CHILD: u8 = 4;
const OP_SPLIT: u8 = 5;
const OP_IMAGE: u8 = 6;
const OP_SPLIT_IN_ORDER: u8 = 7;
const OP_INSERT_REFERENCE: u8 = 8;
/// Flag: a write follows the flags byte.
const HAS_WRITE: u8 = 1;
/// Flag: freed pages follow.
const HAS_FREED: u8 = 2;
/// Flag: a released reference follows the write.
const HAS_RELEASED: u8 = 4;
/// Added to an insert's or remove's op: its key is the write's key, not
/// repeated.
const SAME_KEY: u8 = 0x80;

fn put_len(out: &mut Vec<u8>, n: usize) {
    varint::put(out, n as u64);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_len(out, b.len());
    out.extend_from_slice(b);
}

/// The op byte for `op` on `key`, and whether the key must be written out.
fn keyed(op: u8, key: &[u8], write: Option<&Write<'_>>) -> (u8, bool) {
    if write.is_some_and(|w| w.key == key) { (op | SAME_KEY, false) } else { (op, true) }
}

/// The free gap of a node body: (offset, length); (0, 0) if the body is not
/// a node.
fn gap(body: &[u8]) -> (usize, usize) {
    match Node::open(body) {
        Ok(n) => {
            let at = HEADER + n.count() * SLOT;
            let end = n.heap_start();
            if at <= end && end <= body.len() { (at, end - at) } else { (0, 0) }
        }
        Err(_) => (0, 0),
    }
}

impl Unit<'_> {
    /// Appends the unit's encoding to `out`. Changes after an image of the
    /// same page in the unit are left out: the image holds them.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut flags = 0;
        if self.write.is_some() {
            flags |= HAS_WRITE;
        }
        if !self.freed.is_empty() {
            flags |= HAS_FREED;
        }
        let released = self.write.and_then(|w| w.released);
        if released.is_some() {
            flags |= HAS_RELEASED;
        }
        out.push(flags);
        if let Some(w) = &self.write {
            varint::put(out, w.tree.0);
            varint::put(out, w.batch);
            put_bytes(out, w.key);
            match w.before {
                None => out.push(0),
                Some(None) => out.push(1),
                Some(Some(v)) => {
                    out.push(if v.reference { 3 } else { 2 });
                    put_bytes(out, v.bytes);
                }
            }
        }
        if let Some(r) = released {
            put_bytes(out, r);
        }
        if !self.freed.is_empty() {
            put_len(out, self.freed.len());
            for p in self.freed {
                varint::put(out, p.0);
            }
        }
        // The count is known only at the end (imaged pages' later changes
        // are skipped): one byte is kept for it, enough below 128 changes
        // (a tree change makes at most a handful).
        let count_at = out.len();
        out.push(0);
        let changes = &mut *out;
        let mut count = 0;
        let mut imaged: Vec<PageId> = Vec::new();
        for c in self.changes {
            if imaged.contains(&c.page) {
                continue;
            }
            count += 1;
            varint::put(changes, c.page.0);
            if let Op::Image(image) = c.op {
                imaged.push(c.page);
                image.encode(changes);
                continue;
            }
            let write = self.write.as_ref();
            match c.op {
                Op::Insert { key, value, reference } => {
                    let (op, with_key) = keyed(if reference { OP_INSERT_REFERENCE } else { OP_INSERT }, key, write);
                    changes.push(op);
                    if with_key {
                        put_bytes(changes, key);
                    }
                    put_bytes(changes, value);
                }
                Op::Remove { key } => {
                    let (op, with_key) = keyed(OP_REMOVE, key, write);
                    changes.push(op);
                    if with_key {
                        put_bytes(changes, key);
                    }
                }
                Op::RemoveAt { index } => {
                    changes.push(OP_REMOVE_AT);
                    put_len(changes, index);
                }
                Op::SetChild { index, child } => {
                    changes.push(OP_SET_CHILD);
                    put_len(changes, index);
                    varint::put(changes, child);
                }
                Op::Split { key, kind } => {
                    changes.push(if kind == SplitKind::InOrder { OP_SPLIT_IN_ORDER } else { OP_SPLIT });
                    put_bytes(changes, key);
                }
                Op::Image(_) => {}
            }
        }
        match out.get_mut(count_at) {
            Some(slot) if count < 0x80 => *slot = count as u8,
            _ => {
                let mut n = Vec::new();
                put_len(&mut n, count);
                out.splice(count_at..count_at + 1, n);
            }
        }
    }
}

/// A unit's encoding is malformed (a log record that checksummed fine but
/// does not parse, or an operation that cannot be redone on its page).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed;

impl Op<'_> {
    /// Whether this replaces the page whole (no need to read it first).
    pub fn is_image(&self) -> bool {
        matches!(self, Op::Image(_))
    }

    /// Applies the operation to a page body.
    pub fn apply(&self, body: &mut [u8]) -> Result<(), Malformed> {
        let count = |body: &[u8]| Node::open(body).map(|n| n.count()).map_err(|_| Malformed);
        match *self {
            Op::Insert { key, value, reference } => NodeMut::new(body)
                .insert_entry(snowfall_node::Entry { key, value, reference }, usize::MAX)
                .map(|_| ())
                .map_err(|_| Malformed),
            Op::Remove { key } => NodeMut::new(body).remove(key).then_some(()).ok_or(Malformed),
            Op::RemoveAt { index } => {
                if index >= count(body)? {
                    return Err(Malformed);
                }
                NodeMut::new(body).remove_at(index);
                Ok(())
            }
            Op::SetChild { index, child } => {
                if index > count(body)? {
                    return Err(Malformed);
                }
                NodeMut::new(body).set_child(index, child);
                Ok(())
            }
            Op::Split { key, kind } => {
                let mut scratch = vec![0u8; body.len()];
                NodeMut::new(body).split(&mut NodeMut::new(&mut scratch), key, kind).map(|_| ()).map_err(|_| Malformed)
            }
            Op::Image(image) => image.apply(body),
        }
    }
}

/// A decoded unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// The write, if any.
    pub write: Option<Write<'a>>,
    /// Pages freed.
    pub freed: Vec<PageId>,
    /// Page operations, in order.
    pub changes: Vec<(PageId, Op<'a>)>,
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        // A length read from the input can be anything up to `u64::MAX`.
        let end = self.at.checked_add(n).ok_or(Malformed)?;
        let s = self.b.get(self.at..end).ok_or(Malformed)?;
        self.at = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(*self.take(1)?.first().ok_or(Malformed)?)
    }

    fn varint(&mut self) -> Result<u64, Malformed> {
        let (v, n) = varint::get(self.b.get(self.at..).unwrap_or_default()).ok_or(Malformed)?;
        self.at += n;
        Ok(v)
    }

    /// A length, count or index (a varint that fits `usize`).
    fn len(&mut self) -> Result<usize, Malformed> {
        usize::try_from(self.varint()?).map_err(|_| Malformed)
    }

    fn bytes(&mut self) -> Result<&'a [u8], Malformed> {
        let n = self.len()?;
        self.take(n)
    }

    /// An insert's or remove's key: the write's if the op says so.
    fn key(&mut self, op: u8, write: Option<&Write<'a>>) -> Result<&'a [u8], Malformed> {
        if op & SAME_KEY != 0 {
            return write.map(|w| w.key).ok_or(Malformed);
        }
        self.bytes()
    }

    /// Bytes not read yet (a bound for counts read from the input).
    fn left(&self) -> usize {
        self.b.len().saturating_sub(self.at)
    }
}

impl<'a> Decoded<'a> {
    /// Decodes a unit encoded by [`Unit::encode`].
    pub fn decode(b: &'a [u8]) -> Result<Decoded<'a>, Malformed> {
        let mut r = Reader { b, at: 0 };
        let flags = r.u8()?;
        if flags & !(HAS_WRITE | HAS_FREED | HAS_RELEASED) != 0 || (flags & HAS_RELEASED != 0 && flags & HAS_WRITE == 0)
        {
            return Err(Malformed);
        }
        let write = if flags & HAS_WRITE != 0 {
            let tree = PageId(r.varint()?);
            let batch = r.varint()?;
            let key = r.bytes()?;
            let before = match r.u8()? {
                0 => None,
                1 => Some(None),
                b @ (2 | 3) => Some(Some(Stored { bytes: r.bytes()?, reference: b == 3 })),
                _ => return Err(Malformed),
            };
            let released = if flags & HAS_RELEASED != 0 { Some(r.bytes()?) } else { None };
            Some(Write { tree, key, batch, before, released })
        } else {
            None
        };
        let mut freed = Vec::new();
        if flags & HAS_FREED != 0 {
            let n = r.len()?;
            // Each id takes a byte at least: a count beyond the bytes left
            // is malformed, and the allocation stays bounded by the input.
            if n == 0 || n > r.left() {
                return Err(Malformed);
            }
            freed.reserve(n);
            for _ in 0..n {
                freed.push(PageId(r.varint()?));
            }
        }
        let n = r.len()?;
        if n > r.left() {
            return Err(Malformed);
        }
        let mut changes = Vec::with_capacity(n);
        for _ in 0..n {
            let page = PageId(r.varint()?);
            let byte = r.u8()?;
            let op = match byte & !SAME_KEY {
                OP_INSERT | OP_INSERT_REFERENCE => {
                    let key = r.key(byte, write.as_ref())?;
                    Op::Insert { key, value: r.bytes()?, reference: byte & !SAME_KEY == OP_INSERT_REFERENCE }
                }
                OP_REMOVE => Op::Remove { key: r.key(byte, write.as_ref())? },
                _ if byte & SAME_KEY != 0 => return Err(Malformed),
                OP_REMOVE_AT => Op::RemoveAt { index: r.len()? },
                OP_SET_CHILD => {
                    let index = r.len()?;
                    Op::SetChild { index, child: r.varint()? }
                }
                OP_SPLIT => Op::Split { key: r.bytes()?, kind: SplitKind::Balanced },
                OP_SPLIT_IN_ORDER => Op::Split { key: r.bytes()?, kind: SplitKind::InOrder },
                OP_IMAGE => {
                    let gap_at = r.len()?;
                    let gap_len = r.len()?;
                    let len = snowfall_buffer::BODY_SIZE.checked_sub(gap_len).ok_or(Malformed)?;
                    let bytes = r.take(len)?;
                    let (head, tail) = bytes.split_at_checked(gap_at).ok_or(Malformed)?;
                    Op::Image(Image { head, gap: gap_len, tail })
                }
                _ => return Err(Malformed),
            };
            changes.push((page, op));
        }
        if r.at != b.len() {
            return Err(Malformed);
        }
        Ok(Decoded { write, freed, changes })
    }
}
