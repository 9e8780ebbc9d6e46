//! The database, opened by path.

use std::ops::{Deref, DerefMut};
use std::path::Path;

use crate::Error;
use crate::builder::Builder;

/// An open database: the engine's [`snowfall_db::Database`] (every method
/// of which is reachable through `Deref`), opened by path.
#[derive(Debug)]
pub struct Database {
    inner: snowfall_db::Database,
}

impl Database {
    /// Settings for the database in file `path` (its log is `path` with
    /// `.wal` appended), with the background flusher and checkpointer on
    /// std threads ([`StdThreads`](crate::StdThreads)).
    pub fn builder(path: impl AsRef<Path>) -> Builder {
        Builder::new(path.as_ref())
    }

    /// Closes the database: a final checkpoint, the files synced and
    /// unlocked (see [`snowfall_db::Database::close`]).
    pub fn close(self) -> Result<(), Error> {
        self.inner.close()
    }

    /// The engine's handle.
    pub fn into_inner(self) -> snowfall_db::Database {
        self.inner
    }
}

impl From<snowfall_db::Database> for Database {
    fn from(inner: snowfall_db::Database) -> Database {
        Database { inner }
    }
}

impl Deref for Database {
    type Target = snowfall_db::Database;

    fn deref(&self) -> &snowfall_db::Database {
        &self.inner
    }
}

impl DerefMut for Database {
    fn deref_mut(&mut self) -> &mut snowfall_db::Database {
        &mut self.inner
    }
}
