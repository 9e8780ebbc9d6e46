//! SnowfallDB for programs with std: the engine of [`snowfall_db`] (which
//! is `no_std`, for the static binary and other embeddings), opened by
//! path, with its background flusher and checkpointer on std threads.
//!
//! - [`Database::builder`] takes any `AsRef<Path>` (the log is the path
//!   with `.wal` appended) and starts the background threads by default;
//!   [`Database`] derefs to [`snowfall_db::Database`], so every method of
//!   the engine's API is there.
//! - Errors are [`Error`], which implements [`std::error::Error`]: `?`
//!   works in functions returning `Box<dyn Error>` or `anyhow::Result`.
//! - Snapshots ([`ReadTx`]) and read-write transactions ([`WriteTx`]:
//!   snapshot isolation, or serializable), through `Deref` as well.
//! - Values of any size (up to [`MAX_VALUE`]) through every call; values
//!   larger than memory stream through [`TreeExt::value_reader`]
//!   (`std::io::Read + Seek`) and [`TreeExt::value_writer`]
//!   (`std::io::Write`).
//!
//! ```
//! use snowfalldb::{Database, Durability};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     # let dir = std::env::temp_dir().join(format!("snowfalldb-doc-{}", std::process::id()));
//!     # std::fs::create_dir_all(&dir)?;
//!     # let path = dir.join("example.db");
//!     let db = Database::builder(&path).create()?;
//!     let users = db.tree("users")?;
//!     users.insert(b"alice", b"admin")?; // on disk when it returns
//!     users.insert_with(b"bob", b"guest", Durability::Group)?; // synced by the background flusher
//!     assert_eq!(users.get(b"alice")?, Some(b"admin".to_vec()));
//!
//!     // A transaction: both writes or neither; a conflict is retryable.
//!     let tx = db.begin_write()?;
//!     let t = tx.tree("users")?;
//!     if t.get(b"bob")?.is_some() {
//!         t.insert(b"bob", b"admin")?;
//!         t.remove(b"alice")?;
//!     }
//!     tx.commit(Durability::Sync)?;
//!     let snapshot = db.begin_read()?; // one moment, however long it lives
//!     assert_eq!(snapshot.tree("users")?.get(b"alice")?, None);
//!     drop(snapshot);
//!     db.close()?;
//!     # std::fs::remove_dir_all(&dir)?;
//!     Ok(())
//! }
//! ```
#![forbid(unsafe_code)]

mod builder;
mod database;
mod io;
mod threads;

pub use builder::Builder;
pub use database::Database;
pub use io::{TreeExt, ValueReader, ValueWriter};
pub use snowfall_db::{
    Batch, Direction, Durability, Entry, Error, Integrity, Lifetime, MAX_ENTRY, MAX_KEY, MAX_VALUE, MemoryKind,
    Options, Range, ReadOnly, ReadTree, ReadTx, Recovery, Spawn, Stats, SuperblockProblem, Tree, TreeError, TxRange,
    WriteTree, WriteTx,
};
pub use threads::StdThreads;
