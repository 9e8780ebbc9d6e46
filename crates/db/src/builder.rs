//! `Database::builder(path)`: options by name, then `create` or `open`.

use alloc::string::String;
use alloc::sync::Arc;
use core::time::Duration;

use snowfall_buffer::memory::MemoryKind;

use crate::db::Database;
use crate::error::Error;
use crate::options::{Durability, Options, Spawn};

/// Settings for opening a database; see [`Options`] for each one's meaning
/// and default.
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until `create` or `open`"]
pub struct Builder {
    path: String,
    options: Options,
}

impl Database {
    /// Settings for the database in file `path` (its log in `path.wal`).
    pub fn builder(path: &str) -> Builder {
        Builder { path: path.into(), options: Options::default() }
    }
}

impl Builder {
    /// Memory for cached pages.
    pub fn pool_bytes(mut self, bytes: u64) -> Builder {
        self.options.pool_bytes = bytes;
        self
    }

    /// What old values kept for open snapshots may hold, memory and disk
    /// ([`Options::version_bytes`]).
    pub fn version_bytes(mut self, bytes: u64) -> Builder {
        self.options.version_bytes = bytes;
        self
    }

    /// The largest the database may grow in this open (its virtual
    /// reservation; by default chosen from the file: see
    /// [`Options::max_bytes`]).
    pub fn max_bytes(mut self, bytes: u64) -> Builder {
        self.options.max_bytes = Some(bytes);
        self
    }

    /// Opens even if the log lost durable records (see
    /// [`Options::accept_log_loss`]): for salvage.
    pub fn accept_log_loss(mut self) -> Builder {
        self.options.accept_log_loss = true;
        self
    }

    /// The memory backend (`Auto`: exmap if available, else madvise).
    pub fn memory(mut self, memory: MemoryKind) -> Builder {
        self.options.memory = memory;
        self
    }

    /// The default durability of writes.
    pub fn durability(mut self, durability: Durability) -> Builder {
        self.options.durability = durability;
        self
    }

    /// The log's size (only when the database is created).
    pub fn log_bytes(mut self, bytes: u64) -> Builder {
        self.options.log_bytes = bytes;
        self
    }

    /// The double-write area's size (only when the database is created).
    pub fn double_write_bytes(mut self, bytes: u64) -> Builder {
        self.options.double_write_bytes = Some(bytes);
        self
    }

    /// About the most log a crash makes recovery replay (see
    /// [`Options::checkpoint_bytes`](crate::Options::checkpoint_bytes)).
    pub fn checkpoint_bytes(mut self, bytes: u64) -> Builder {
        self.options.checkpoint_bytes = bytes;
        self
    }

    /// A full checkpoint after this long without one, if anything was written.
    pub fn checkpoint_interval(mut self, interval: Duration) -> Builder {
        self.options.checkpoint_interval = interval;
        self
    }

    /// The longest a `Group` write waits to be synced.
    pub fn group_interval(mut self, interval: Duration) -> Builder {
        self.options.group_interval = interval;
        self
    }

    /// Runs the background flusher and checkpointer on threads `spawn`
    /// starts.
    pub fn background(mut self, spawn: Arc<dyn Spawn>) -> Builder {
        self.options.spawn = Some(spawn);
        self
    }

    /// The options so far.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Opens the database, creating it if the file is missing or empty
    /// (and falling back to read-only as [`open`](Self::open) does).
    pub fn create(mut self) -> Result<Database, Error> {
        self.options.create = true;
        Database::open(&self.path, self.options)
    }

    /// Opens an existing database: a missing file is an error. If it cannot
    /// be opened for writing because its disk is full or its files are not
    /// writable, it is opened read-only instead (see
    /// [`Database::read_only`]).
    pub fn open(mut self) -> Result<Database, Error> {
        self.options.create = false;
        Database::open(&self.path, self.options)
    }

    /// Opens an existing database without writing to it at all (see
    /// [`Options::read_only`]): reads work on a full disk, on read-only
    /// media and beside other read-only opens.
    pub fn open_read_only(mut self) -> Result<Database, Error> {
        self.options.create = false;
        self.options.read_only = true;
        Database::open(&self.path, self.options)
    }
}
