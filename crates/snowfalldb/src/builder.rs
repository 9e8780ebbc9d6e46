//! `Database::builder(path)`: the engine's builder, opened by path, with
//! std threads for the background work.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::{Database, Durability, Error, MemoryKind, Options, Spawn, StdThreads};

/// Settings for opening a database: [`snowfall_db::Builder`]'s (see
/// [`Options`] for each one's meaning and default), except that the
/// background threads run on std threads unless
/// [`background`](Self::background) says otherwise.
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until `create` or `open`"]
pub struct Builder {
    inner: snowfall_db::Builder,
    /// A path the engine cannot take, reported by `create` or `open`.
    bad_path: Option<Error>,
}

/// Setters that hand their argument to the engine's builder.
macro_rules! forward {
    ($($(#[$doc:meta])* $name:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            $(#[$doc])*
            pub fn $name(self, $($arg: $ty),*) -> Builder {
                Builder { inner: self.inner.$name($($arg),*), ..self }
            }
        )*
    };
}

impl Builder {
    pub(crate) fn new(path: &Path) -> Builder {
        // The engine names its files by UTF-8 paths (the static binary has
        // no OsStr); any other path is an error when opening.
        let (text, bad_path) = match path.to_str() {
            Some(text) => (text, None),
            None => ("", Some(Error::Config { what: "the database path is not valid UTF-8" })),
        };
        let inner = snowfall_db::Database::builder(text).background(Arc::new(StdThreads));
        Builder { inner, bad_path }
    }

    forward! {
        /// Memory for cached pages.
        pool_bytes(bytes: u64);
        /// The largest the database may grow in this open (its virtual
        /// reservation; see [`Options::max_bytes`]).
        max_bytes(bytes: u64);
        /// Opens even if the log lost durable records
        /// ([`Options::accept_log_loss`]): for salvage.
        accept_log_loss();
        /// The memory backend (`Auto`: exmap if available, else madvise).
        memory(memory: MemoryKind);
        /// The default durability of writes.
        durability(durability: Durability);
        /// The log's size (only when the database is created).
        log_bytes(bytes: u64);
        /// The double-write area's size (only when the database is created).
        double_write_bytes(bytes: u64);
        /// About the most log a crash makes recovery replay
        /// ([`Options::checkpoint_bytes`]).
        checkpoint_bytes(bytes: u64);
        /// A full checkpoint after this long without one, if anything was written.
        checkpoint_interval(interval: Duration);
        /// The longest a `Group` write waits to be synced.
        group_interval(interval: Duration);
        /// Runs the background flusher and checkpointer on threads `spawn`
        /// starts instead of std threads.
        background(spawn: Arc<dyn Spawn>);
    }

    /// The options so far.
    pub fn options(&self) -> &Options {
        self.inner.options()
    }

    /// Opens the database, creating it if the file is missing or empty
    /// ([`snowfall_db::Builder::create`]).
    pub fn create(self) -> Result<Database, Error> {
        self.checked()?.create().map(Database::from)
    }

    /// Opens an existing database ([`snowfall_db::Builder::open`]: a missing
    /// file is an error; a full disk or unwritable files open it read-only).
    pub fn open(self) -> Result<Database, Error> {
        self.checked()?.open().map(Database::from)
    }

    /// Opens an existing database without writing to it at all
    /// ([`snowfall_db::Builder::open_read_only`]).
    pub fn open_read_only(self) -> Result<Database, Error> {
        self.checked()?.open_read_only().map(Database::from)
    }

    fn checked(self) -> Result<snowfall_db::Builder, Error> {
        self.bad_path.map_or(Ok(self.inner), Err)
    }
}
