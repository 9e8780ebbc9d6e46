//! SnowfallDB's B+tree: nodes are buffer-manager pages in the slotted
//! layout of `snowfall-node`, synchronized with optimistic lock coupling
//! (Leis et al.): readers take no latch, only versions, validated hand over
//! hand; writers latch exclusively only the node they change (and, for a
//! split or merge, its parent and sibling).
//!
//! - [`BTree::get`], [`BTree::insert`] (insert or replace),
//!   [`BTree::remove`] (merging underfull nodes), [`BTree::scan`] (forward
//!   and backward, correct while others split and merge);
//! - the root's page id never changes: a root split moves its contents into
//!   two new children, a root with one child pulls it up;
//! - an optimistic attempt that sees a stale version restarts; after
//!   [`Config::restarts`] attempts the operation falls back to latch
//!   coupling (shared for reads, exclusive for writes), so it always ends.
//!   Restarts are internal: the public errors are [`Error`];
//! - limits: keys up to [`MAX_KEY`] bytes, key and value together up to
//!   [`MAX_ENTRY`] bytes (larger values: [`Error::ValueTooLarge`]).
#![no_std]
#![deny(unsafe_code)]

extern crate alloc;

mod check;
mod error;
mod insert;
pub mod journal;
mod limits;
mod lookup;
mod pages;
mod remove;
mod scan;
mod tree;
mod varint;
mod view;

pub use check::Shape;
pub use error::Error;
pub use journal::{Journal, NoJournal, Stored};
pub use lookup::Found;
pub use scan::Direction;
pub use snowfall_node::layout::MAX_REFERENCE;
pub use snowfall_node::{MAX_ENTRY, MAX_KEY};
pub use tree::{BTree, Config, Written};
