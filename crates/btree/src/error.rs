//! The tree's errors.

use core::fmt;

use snowfall_buffer::PageId;

/// What a tree operation can fail with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The key is longer than [`MAX_KEY`](crate::MAX_KEY).
    KeyTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Key and value together exceed [`MAX_ENTRY`](crate::MAX_ENTRY) (large
    /// values are not supported yet).
    ValueTooLarge {
        /// The value's length.
        len: usize,
        /// The largest value allowed with this key.
        max: usize,
    },
    /// A node read under a latch makes no sense: the page is corrupt (its
    /// checksum matched, so it was written that way).
    Corrupt {
        /// The page.
        page: PageId,
    },
    /// The buffer manager failed (I/O, a corrupt page, no memory).
    Buffer(snowfall_buffer::Error),
    /// The write-ahead log refused the change. The change is in memory
    /// but unlogged: its pages are never written back, and the log refuses
    /// everything until the database is reopened.
    Log(snowfall_wal::LogError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::KeyTooLarge { len, max } => write!(f, "key of {len} bytes is longer than the {max}-byte limit"),
            Error::ValueTooLarge { len, max } => {
                write!(f, "value of {len} bytes is too large: with this key at most {max} bytes fit")
            }
            Error::Corrupt { page } => write!(f, "{page} does not hold a valid B-tree node"),
            Error::Buffer(e) => e.fmt(f),
            Error::Log(e) => e.fmt(f),
        }
    }
}

impl core::error::Error for Error {}

impl From<snowfall_buffer::Error> for Error {
    fn from(e: snowfall_buffer::Error) -> Self {
        Error::Buffer(e)
    }
}

/// Why one attempt at an operation stopped: an optimistic read went stale
/// (try again) or a real error. Internal: restarts never leave the crate.
#[derive(Debug)]
pub(crate) enum Step {
    Restart,
    Fail(Error),
}

impl From<Error> for Step {
    fn from(e: Error) -> Self {
        Step::Fail(e)
    }
}

impl From<snowfall_buffer::Error> for Step {
    fn from(e: snowfall_buffer::Error) -> Self {
        Step::Fail(Error::Buffer(e))
    }
}

impl From<snowfall_node::Torn> for Step {
    fn from(_: snowfall_node::Torn) -> Self {
        Step::Restart
    }
}
