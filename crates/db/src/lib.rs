//! SnowfallDB's engine: a database file of named B+trees over the buffer
//! manager, made crash-safe by a write-ahead log.
//!
//! - [`Database::open`]: the file `path` and its log `path.wal`, locked
//!   against other processes; recovery runs on open.
//! - [`Database::tree`]: a named tree; [`Tree::insert_with`],
//!   [`Tree::remove_with`] with a [`Durability`] each; [`Database::write`]
//!   for a [`Batch`] that commits as one.
//! - [`Database::checkpoint`], [`Database::close`], [`Database::check`].
//!
//! The contract: a write acknowledged with [`Durability::Sync`] survives any
//! crash; with [`Durability::Group`], any crash later than
//! [`Options::group_interval`] after it; with [`Durability::None`], any
//! crash after the log was next synced. After recovery the trees hold
//! exactly a prefix of the writes in log order (each write whole, each
//! batch all or nothing) and pass [`Database::check`].
//!
//! Layout of this crate: `superblock.rs` and `freelist.rs` (the file
//! format), `journal.rs` (log records), `checkpoint.rs`, `recovery.rs`,
//! `open.rs`, `db.rs` (the API), `maintenance.rs` (the background thread).
#![no_std]
#![deny(unsafe_code)]

extern crate alloc;

mod builder;
mod checkpoint;
mod db;
mod drop_tree;
mod error;
pub mod freelist;
mod integrity;
mod journal;
mod maintenance;
mod open;
mod options;
mod range;
mod recovery;
mod stats;
pub mod superblock;

pub use builder::Builder;
pub use db::{Batch, Database, Recovery, Tree};
pub use error::{Error, SuperblockProblem};
pub use integrity::Integrity;
pub use options::{Durability, Options, Spawn};
pub use range::{Entry, Range};
pub use snowfall_btree::{Direction, MAX_ENTRY, MAX_KEY};
pub use snowfall_buffer::memory::MemoryKind;
pub use stats::Stats;
