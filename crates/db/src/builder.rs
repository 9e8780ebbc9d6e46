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

    /// The largest the database may grow (its virtual reservation).
    pub fn max_bytes(mut self, bytes: u64) -> Builder {
        self.options.max_bytes = bytes;
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

    /// Checkpoint after this much log.
    pub fn checkpoint_bytes(mut self, bytes: u64) -> Builder {
        self.options.checkpoint_bytes = bytes;
        self
    }

    /// Checkpoint after this long, if anything was written.
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

    /// Opens the database, creating it if the file is missing or empty.
    pub fn create(mut self) -> Result<Database, Error> {
        self.options.create = true;
        Database::open(&self.path, self.options)
    }

    /// Opens an existing database: a missing file is an error.
    pub fn open(mut self) -> Result<Database, Error> {
        self.options.create = false;
        Database::open(&self.path, self.options)
    }
}
