//! The byte layout of a node (inside the body of a buffer-manager page).
//!
//! ```text
//!  0    1     2       4           6          8          10         12         14         16          18     20      22     24              32
//!  +----+-----+-------+-----------+----------+----------+----------+----------+----------+-----------+------+-------+------+---------------+
//!  |kind|flags| count |heap_start |heap_live |lower_off |lower_len |upper_off |upper_len |prefix_len | run  |run_len| zero |  right child  |
//!  +----+-----+-------+-----------+----------+----------+----------+----------+----------+-----------+------+-------+------+---------------+
//!   u8   u8    u16 LE  u16 LE      u16 LE     u16 LE     u16 LE     u16 LE     u16 LE     u16 LE     u16 LE u16 LE  u16    u64 LE
//!
//!  32: slots, `count` x 6 bytes, in key order:  | cell offset u16 LE | head u32 LE |
//!  ... free space ...
//!  heap_start .. end: cells and the two fence keys, packed from the end down
//!  cell: | suffix len (1-2 B) | value len (1-2 B) | suffix bytes after the first 4 | value |
//! ```
//!
//! - A leaf's value is either the value itself (key plus value at most
//!   [`MAX_ENTRY`] bytes) or a *reference* to a value stored out of line
//!   (its bytes are the upper layers' business): the value length field
//!   then holds the length plus [`REFERENCE`] (always the 2-byte form, first
//!   byte `0xC0 | hi`). No stored value is that long, so files written
//!   before references existed read the same.
//!
//! - kind: [`LEAF`] or [`INNER`]; 0 is not a node.
//! - flags: [`LOWER_INFINITE`], [`UPPER_INFINITE`] (the fence is -inf/+inf,
//!   its bytes unused), [`HAS_REFERENCES`].
//! - A node holds the keys `k` with `lower < k <= upper`. Every key in it
//!   starts with the fences' common prefix (`prefix_len` bytes, the first
//!   bytes of the lower fence), which is stored once; slots and cells hold
//!   only the rest, the *suffix*.
//! - head: the suffix's first 4 bytes as a big-endian number (zero-padded),
//!   so most comparisons in a binary search touch only the slot array.
//!   Those bytes are not repeated in the cell.
//! - heap_live: bytes of live cells and fences; `heap_start` can be lower
//!   (space of removed cells), reclaimed by compaction.
//! - Inner nodes: the value of an entry is the page id (u64 LE) of the child
//!   holding keys `<=` its separator (and greater than the previous one);
//!   `right child` holds the keys greater than the last separator.
//! - Lengths: 1 byte below 128, else 2 bytes (`0x80 | hi`, `lo`).
//! - run, run_len: the slot just after the key an insert added last (0:
//!   none), and how many keys in a row were each added right after the one
//!   before (saturating), so a split can tell an ascending run of inserts,
//!   which it splits where the run goes on, from random ones. Only a hint:
//!   any values make a valid node, and they steer only the choice of later
//!   splits, which the log records (redo repeats the recorded choice, never
//!   reads the hint).

use static_assertions::const_assert;

/// Bytes of the node header.
pub const HEADER: usize = 32;
/// Bytes of one slot.
pub const SLOT: usize = 6;
/// Largest key.
pub const MAX_KEY: usize = 1024;
/// Largest key plus value.
pub const MAX_ENTRY: usize = 1024;
/// The largest node this layout addresses (offsets are u16).
pub const MAX_NODE: usize = u16::MAX as usize;
/// Largest reference (a leaf value standing for one stored out of line,
/// whose format is the layers' above): with the largest key, never larger
/// than a node's largest entry plus this, which [`MIN_NODE`] has room for.
pub const MAX_REFERENCE: usize = 256;
/// The smallest node that still holds two fences of the largest key and
/// one entry of the largest size, inline or a reference with the largest
/// key (so a split always succeeds).
pub const MIN_NODE: usize = HEADER + 2 * MAX_KEY + SLOT + 4 + MAX_KEY + MAX_REFERENCE;
const_assert!(MAX_KEY + MAX_REFERENCE >= MAX_ENTRY);
const_assert!(MIN_NODE <= 4064);

/// `kind` of a leaf.
pub const LEAF: u8 = 1;
/// `kind` of an inner node.
pub const INNER: u8 = 2;
/// The lower fence is minus infinity.
pub const LOWER_INFINITE: u8 = 1;
/// The upper fence is plus infinity.
pub const UPPER_INFINITE: u8 = 2;
/// The node may hold references (set by every insert of one, kept by
/// rebuilds that keep one; cleared only by a rebuild without any), so a
/// write to a leaf without it need not look for a reference it replaces.
pub const HAS_REFERENCES: u8 = 4;

pub(crate) const KIND_AT: usize = 0;
pub(crate) const FLAGS_AT: usize = 1;
pub(crate) const COUNT_AT: usize = 2;
pub(crate) const HEAP_START_AT: usize = 4;
pub(crate) const HEAP_LIVE_AT: usize = 6;
pub(crate) const LOWER_OFF_AT: usize = 8;
pub(crate) const LOWER_LEN_AT: usize = 10;
pub(crate) const UPPER_OFF_AT: usize = 12;
pub(crate) const UPPER_LEN_AT: usize = 14;
pub(crate) const PREFIX_LEN_AT: usize = 16;
pub(crate) const RUN_AT: usize = 18;
pub(crate) const RUN_LEN_AT: usize = 20;
pub(crate) const RIGHT_CHILD_AT: usize = 24;
const_assert!(RIGHT_CHILD_AT + 8 == HEADER);

/// Added to a value's length field: the value is a reference (see above).
pub const REFERENCE: usize = 0x4000;

/// Bytes of the length encoding of `n` (n <= 32767).
pub const fn len_size(n: usize) -> usize {
    if n < 128 { 1 } else { 2 }
}

/// A value's length field: its length, plus [`REFERENCE`] for a reference.
pub const fn value_field(len: usize, reference: bool) -> usize {
    if reference { len | REFERENCE } else { len }
}

/// The head of a suffix: its first 4 bytes as a big-endian number, zero-padded.
#[expect(clippy::big_endian_bytes, reason = "heads compare like the key bytes they come from (stored little-endian)")]
pub fn head_of(suffix: &[u8]) -> u32 {
    let mut b = [0u8; 4];
    for (dst, &src) in b.iter_mut().zip(suffix) {
        *dst = src;
    }
    u32::from_be_bytes(b)
}

/// Bytes a cell with a suffix of `suffix_len` and a value whose length
/// field is `value_field` ([`value_field`]) takes in the heap (its slot not
/// included).
pub const fn cell_size(suffix_len: usize, value_field: usize) -> usize {
    len_size(suffix_len) + len_size(value_field) + suffix_len.saturating_sub(4) + (value_field & !REFERENCE)
}

/// Bytes an entry takes in a node (slot and cell) at most, for any prefix.
pub const fn entry_size(key_len: usize, value_len: usize) -> usize {
    SLOT + cell_size(key_len, value_len)
}
