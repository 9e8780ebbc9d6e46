//! SnowfallDB's version store: what snapshots need that the tree no longer
//! holds.
//!
//! The B-tree always holds the newest committed value of each key, changed
//! in place. While snapshots are open, a commit that changes a key first
//! puts the value it replaces here, tagged with the commit's timestamp; a
//! reader at snapshot `S` reads the tree, then asks [`Versions::read`]: if
//! the key changed after `S`, the answer is the value it had at `S`. Because
//! a commit records before it changes the tree and a reader reads the tree
//! before it asks, no latch spans the two (docs/plan-transactions.md).
//!
//! The store also orders commits (each a timestamp, published in order:
//! [`Versions::commit`] runs alone, [`Versions::commit_concurrent`] claims
//! its keys with intents and writes while later commits do), detects
//! write-write conflicts and
//! reads invalidated since a snapshot ([`Commit::changed`],
//! [`Commit::changed_in`]), reclaims versions no open snapshot needs, and
//! bounds its memory by expiring the oldest snapshots ([`Expired`]).
//!
//! While no snapshot is open nothing is recorded: writers ask
//! [`Versions::enter`] and, told [`Mode::Plain`], write as if this crate did
//! not exist (a per-thread counter is their whole cost).
//!
//! `no_std` with `alloc`; no unsafe code.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(any(test, shuttle))]
extern crate std;

mod gate;
mod registry;
mod store;
mod sync;
mod versions;

pub use store::{TreeId, Weigh};
pub use versions::{Changed, Commit, Expired, Mode, Plain, Snapshot, Versions};
