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
//! which is deterministic given the page's bytes. A page whose LSN is below
//! the last checkpoint's redo point is logged as a full image instead (its
//! first change after a checkpoint), so a page torn by a crash during its
//! write-back is rebuilt from the log, never read. Pages a unit creates
//! are always logged as images. An image leaves out the node's free gap
//! (between the slots and the cells), which redo zeroes.
//!
//! ```text
//! unit:   | flags u8 | [write] | freed u16 | freed ids u64... | changes u16 | change... |
//! write:  | tree u64 | batch u64 | key len u16 | key | before: 0 not kept, 1 absent, 2 + len u16 + value |
//! change: | page u64 | op u8 | operands |
//!   1 insert    | key len u16 (0xFFFF: the write's key) | key | value len u16 | value |
//!   2 remove    | key len u16 (0xFFFF: the write's key) | key |
//!   3 remove at | index u16 |
//!   4 set child | index u16 | child u64 |
//!   5 split     | key len u16 | key |          (the left half; the right is an image)
//!   6 image     | gap at u16 | gap len u16 | body without the gap |
//!   7 split in order | key len u16 | key |     (as 5, where the run of inserts goes on)
//! ```

use alloc::vec;
use alloc::vec::Vec;

use snowfall_buffer::PageId;
use snowfall_node::layout::{HEADER, SLOT};
use snowfall_node::{Node, NodeMut, SplitKind};
use snowfall_wal::LogError;

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

/// An operation on one page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op<'a> {
    /// Insert or replace an entry.
    Insert {
        /// The key.
        key: &'a [u8],
        /// The value (a child's page id, little-endian, in inner nodes).
        value: &'a [u8],
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
        put_u16(out, self.head.len());
        put_u16(out, self.gap);
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
    /// Its LSN before this unit (0: never logged).
    pub page_lsn: u64,
    /// What was done.
    pub op: Op<'a>,
    /// The page's body now (for an image).
    pub body: &'a [u8],
}

impl<'a> Change<'a> {
    /// A page logged whole: a page the unit created (LSN 0).
    pub fn image(page: PageId, body: &'a [u8]) -> Change<'a> {
        Change { page, page_lsn: 0, op: Op::Image(Image::of(body)), body }
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
    pub before: Option<Option<&'a [u8]>>,
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
const SAME_KEY: u16 = 0xFFFF;

fn put_u16(out: &mut Vec<u8>, v: usize) {
    out.extend_from_slice(&(v as u16).to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u16(out, b.len());
    out.extend_from_slice(b);
}

fn put_key(out: &mut Vec<u8>, key: &[u8], write: Option<&Write<'_>>) {
    if write.is_some_and(|w| w.key == key) {
        out.extend_from_slice(&SAME_KEY.to_le_bytes());
    } else {
        put_bytes(out, key);
    }
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
    /// Appends the unit's encoding to `out`. A change to a page whose LSN
    /// is below `redo` is logged as the page's full image, and so are all
    /// new pages; later changes of an imaged page in the same unit are
    /// already in the image.
    pub fn encode(&self, redo: u64, out: &mut Vec<u8>) {
        out.push(u8::from(self.write.is_some()));
        if let Some(w) = &self.write {
            out.extend_from_slice(&w.tree.0.to_le_bytes());
            out.extend_from_slice(&w.batch.to_le_bytes());
            put_bytes(out, w.key);
            match w.before {
                None => out.push(0),
                Some(None) => out.push(1),
                Some(Some(v)) => {
                    out.push(2);
                    put_bytes(out, v);
                }
            }
        }
        put_u16(out, self.freed.len());
        for p in self.freed {
            out.extend_from_slice(&p.0.to_le_bytes());
        }
        let count_at = out.len();
        put_u16(out, 0);
        let mut count = 0;
        let mut imaged: Vec<PageId> = Vec::new();
        for c in self.changes {
            if imaged.contains(&c.page) {
                continue;
            }
            count += 1;
            out.extend_from_slice(&c.page.0.to_le_bytes());
            // A page LSN equal to the redo point is a change before it (a
            // record ending exactly at a block's end ends where the redo
            // point's fresh block begins).
            if let Op::Image(image) = c.op {
                imaged.push(c.page);
                image.encode(out);
                continue;
            }
            if c.page_lsn <= redo {
                imaged.push(c.page);
                Image::of(c.body).encode(out);
                continue;
            }
            match c.op {
                Op::Insert { key, value } => {
                    out.push(OP_INSERT);
                    put_key(out, key, self.write.as_ref());
                    put_bytes(out, value);
                }
                Op::Remove { key } => {
                    out.push(OP_REMOVE);
                    put_key(out, key, self.write.as_ref());
                }
                Op::RemoveAt { index } => {
                    out.push(OP_REMOVE_AT);
                    put_u16(out, index);
                }
                Op::SetChild { index, child } => {
                    out.push(OP_SET_CHILD);
                    put_u16(out, index);
                    out.extend_from_slice(&child.to_le_bytes());
                }
                Op::Split { key, kind } => {
                    out.push(if kind == SplitKind::InOrder { OP_SPLIT_IN_ORDER } else { OP_SPLIT });
                    put_bytes(out, key);
                }
                Op::Image(_) => {}
            }
        }
        if let Some(dst) = out.get_mut(count_at..count_at + 2) {
            dst.copy_from_slice(&(count as u16).to_le_bytes());
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
            Op::Insert { key, value } => {
                NodeMut::new(body).insert(key, value, usize::MAX).map(|_| ()).map_err(|_| Malformed)
            }
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
        let s = self.b.get(self.at..self.at + n).ok_or(Malformed)?;
        self.at += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(*self.take(1)?.first().ok_or(Malformed)?)
    }

    /// A byte that must be 0 or 1.
    fn flag(&mut self) -> Result<bool, Malformed> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Malformed),
        }
    }

    fn u16(&mut self) -> Result<usize, Malformed> {
        let s = self.take(2)?;
        Ok(usize::from(u16::from_le_bytes([s.first().copied().unwrap_or(0), s.get(1).copied().unwrap_or(0)])))
    }

    fn u64(&mut self) -> Result<u64, Malformed> {
        let mut x = [0u8; 8];
        x.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(x))
    }

    fn bytes(&mut self) -> Result<&'a [u8], Malformed> {
        let n = self.u16()?;
        self.take(n)
    }

    fn key(&mut self, write: Option<&Write<'a>>) -> Result<&'a [u8], Malformed> {
        let n = self.u16()?;
        if n == usize::from(SAME_KEY) {
            return write.map(|w| w.key).ok_or(Malformed);
        }
        self.take(n)
    }
}

impl<'a> Decoded<'a> {
    /// Decodes a unit encoded by [`Unit::encode`].
    pub fn decode(b: &'a [u8]) -> Result<Decoded<'a>, Malformed> {
        let mut r = Reader { b, at: 0 };
        let write = if r.flag()? {
            let tree = PageId(r.u64()?);
            let batch = r.u64()?;
            let key = r.bytes()?;
            let before = match r.u8()? {
                0 => None,
                1 => Some(None),
                2 => Some(Some(r.bytes()?)),
                _ => return Err(Malformed),
            };
            Some(Write { tree, key, batch, before })
        } else {
            None
        };
        let freed = (0..r.u16()?).map(|_| r.u64().map(PageId)).collect::<Result<Vec<_>, _>>()?;
        let n = r.u16()?;
        let mut changes = Vec::with_capacity(n);
        for _ in 0..n {
            let page = PageId(r.u64()?);
            let op = match r.u8()? {
                OP_INSERT => {
                    let key = r.key(write.as_ref())?;
                    Op::Insert { key, value: r.bytes()? }
                }
                OP_REMOVE => Op::Remove { key: r.key(write.as_ref())? },
                OP_REMOVE_AT => Op::RemoveAt { index: r.u16()? },
                OP_SET_CHILD => {
                    let index = r.u16()?;
                    Op::SetChild { index, child: r.u64()? }
                }
                OP_SPLIT => Op::Split { key: r.bytes()?, kind: SplitKind::Balanced },
                OP_SPLIT_IN_ORDER => Op::Split { key: r.bytes()?, kind: SplitKind::InOrder },
                OP_IMAGE => {
                    let gap_at = r.u16()?;
                    let gap_len = r.u16()?;
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
