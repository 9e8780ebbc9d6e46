//! SnowfallDB's B+tree node layout: slotted pages with fence keys, prefix
//! truncation and 4-byte key heads in the slots ([`layout`] draws the bytes).
//!
//! Reading ([`read::Node`]) is generic over [`Bytes`]: plain slices under a
//! latch, racy-safe bytes for optimistic readers. Garbage (a zeroed or torn
//! node under an optimistic reader) gives [`Torn`], never an out-of-bounds
//! access or an unbounded loop. Writing ([`write::NodeMut`]) happens only
//! under an exclusive latch, on plain bytes.
//!
//! This crate has no unsafe code and no dependency on the buffer manager,
//! so its tests run under Miri, including an optimistic reader racing a
//! writer through [`bytes::AtomicBytes`].
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod bytes;
pub mod layout;
pub mod read;
pub mod write;

pub use bytes::{AtomicBytes, Bytes, Torn};
pub use layout::{INNER, LEAF, MAX_ENTRY, MAX_KEY};
pub use read::{Fence, Node};
pub use write::{Contents, Entry, Full, Inserted, NodeMut, SplitKind};

#[cfg(test)]
mod tests;
