//! SnowfallDB's engine: a database file of named B+trees over the buffer
//! manager, made crash-safe by a write-ahead log.
//!
//! - [`Database::builder`] (or [`Database::open`] with [`Options`]): the
//!   file `path` and its log `path.wal`, locked against other processes;
//!   recovery runs on open.
//! - [`Database::tree`] (created if missing), [`Database::existing_tree`],
//!   [`Database::tree_names`], [`Database::drop_tree`].
//! - [`Tree::get`], [`Tree::get_with`] (the value in place, under a shared
//!   latch), [`Tree::insert`] / [`Tree::insert_with`], [`Tree::remove`] /
//!   [`Tree::remove_with`] with a [`Durability`] each, [`Tree::range`] (a
//!   [`DoubleEndedIterator`]; not a snapshot: see [`Range`]);
//!   [`Database::write`] for a [`Batch`] that commits as one.
//! - [`Database::begin_read`]: a [`ReadTx`], one moment of every tree
//!   however long it lives; [`Database::begin_write`] and
//!   [`Database::begin_serializable`]: a [`WriteTx`], reads over its own
//!   writes, committed as one or failing with [`Error::Conflict`].
//! - [`Database::checkpoint`], [`Database::sync`], [`Database::stats`],
//!   [`Database::check_integrity`], [`Database::close`] (dropping closes
//!   too, logging any error).
//!
//! Every operation on a tree is linearizable: it takes effect at one
//! moment between its call and its return (the latched leaf change and
//! its log record). All handles are `Send + Sync`.
//!
//! The contract: a write acknowledged with [`Durability::Sync`] survives any
//! crash; with [`Durability::Group`], any crash later than
//! [`Options::group_interval`] after it; with [`Durability::None`], any
//! crash after the log was next synced. After recovery the trees hold
//! exactly a prefix of the writes in log order (each write whole, each
//! batch all or nothing) and pass [`Database::check`].
//!
//! ```
//! use snowfall_db::{Batch, Database, Durability};
//!
//! # fn main() -> Result<(), snowfall_db::Error> {
//! # let dir = std::env::temp_dir().join(format!("snowfall-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).unwrap();
//! # let path = dir.join("example.db");
//! let db = Database::builder(path.to_str().unwrap()).pool_bytes(64 << 20).create()?;
//! let users = db.tree("users")?;
//! users.insert(b"alice", b"admin")?; // on disk when it returns (Sync)
//! users.insert_with(b"bob", b"guest", Durability::None)?; // acknowledged at once
//! assert_eq!(users.get(b"alice")?, Some(b"admin".to_vec()));
//!
//! let mut batch = Batch::new(); // all or nothing after a crash
//! batch.insert(&users, b"carol", b"guest");
//! batch.remove(&users, b"bob");
//! db.write(&batch, Durability::Sync)?;
//!
//! let names: Vec<Vec<u8>> = users.range::<[u8]>(..).rev().map(|e| e.map(|(k, _)| k)).collect::<Result<_, _>>()?;
//! assert_eq!(names, [&b"carol"[..], b"alice"]);
//! assert_eq!(users.get_with(b"alice", |v| v.len())?, Some(5)); // in place, no copy
//! assert_eq!(db.check_integrity()?.entries, 2);
//! db.close()?;
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok(())
//! # }
//! ```
//!
//! Layout of this crate: `superblock.rs` and `freelist.rs` (the file
//! format), `journal.rs` (log records), `checkpoint.rs`, `recovery.rs`,
//! `open.rs`, `db.rs` (the API), `builder.rs`, `range.rs` (iterators),
//! `drop_tree.rs`, `stats.rs`, `integrity.rs`, `maintenance.rs` (the
//! background threads).
#![no_std]
#![deny(unsafe_code)]

extern crate alloc;

mod batch;
mod builder;
mod checkpoint;
mod db;
mod double_write;
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
mod snapshot;
mod stats;
mod stream;
pub mod superblock;
mod values;
mod versioning;
mod write_tx;

pub use batch::Batch;
pub use builder::Builder;
pub use db::{Database, Recovery, Tree};
pub use error::{Error, ReadOnly, SuperblockProblem};
pub use integrity::Integrity;
pub use options::{Durability, Options, Spawn};
pub use range::{Entry, Range};
pub use snapshot::{ReadTree, ReadTx};
pub use snowfall_btree::{Direction, Error as TreeError, MAX_ENTRY, MAX_KEY};
pub use snowfall_buffer::memory::MemoryKind;
pub use stats::Stats;
pub use stream::{ValueReader, ValueWriter};
pub use superblock::Lifetime;
pub use values::MAX_VALUE;
pub use write_tx::{TxRange, WriteTree, WriteTx};
