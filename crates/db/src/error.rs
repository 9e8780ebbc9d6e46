//! The database's errors: each says what is wrong and where.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use snowfall_buffer::{DeviceError, PageId};
use snowfall_wal::LogError;

/// Why a superblock slot was not usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SuperblockProblem {
    /// All zeros: never written.
    Empty,
    /// No SnowfallDB magic.
    NoMagic,
    /// The checksum does not match.
    Checksum,
    /// A format version this build does not read.
    Version(u32),
    /// A page size other than 4096.
    PageSize(u32),
    /// The catalog does not parse.
    Catalog,
    /// Fields contradict each other.
    Fields,
}

impl fmt::Display for SuperblockProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SuperblockProblem::Empty => f.write_str("never written"),
            SuperblockProblem::NoMagic => f.write_str("no SnowfallDB magic"),
            SuperblockProblem::Checksum => f.write_str("checksum mismatch"),
            SuperblockProblem::Version(v) => write!(f, "format version {v}"),
            SuperblockProblem::PageSize(p) => write!(f, "page size {p}"),
            SuperblockProblem::Catalog => f.write_str("unreadable catalog"),
            SuperblockProblem::Fields => f.write_str("inconsistent fields"),
        }
    }
}

/// What a database operation can fail with.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The file is not a SnowfallDB database.
    NotADatabase {
        /// The file.
        file: String,
    },
    /// The file is empty (and creating was not asked for).
    Empty {
        /// The file.
        file: String,
    },
    /// The database has a newer format than this build reads.
    NewerVersion {
        /// The file.
        file: String,
        /// Its format version.
        version: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// Neither superblock slot is valid.
    CorruptSuperblock {
        /// The file.
        file: String,
        /// What is wrong with slot 0.
        slot0: SuperblockProblem,
        /// What is wrong with slot 1.
        slot1: SuperblockProblem,
    },
    /// The file is shorter than the database it holds.
    Truncated {
        /// The file.
        file: String,
        /// Pages it has.
        pages: u64,
        /// Pages it must have.
        expected: u64,
    },
    /// Another process (or another open in this one) has the database.
    InUse {
        /// The file.
        file: String,
    },
    /// The log file belongs to another database, or is missing.
    LogMismatch {
        /// The log file.
        file: String,
        /// What is wrong.
        what: &'static str,
    },
    /// Reading, writing or syncing a file failed.
    Io {
        /// The file.
        file: String,
        /// What the device said.
        source: DeviceError,
    },
    /// The write-ahead log failed or is corrupt.
    Log(LogError),
    /// The free list stored by the last checkpoint is corrupt.
    FreeList {
        /// The trunk page.
        page: PageId,
        /// What is wrong.
        what: &'static str,
    },
    /// A log record cannot be redone on the page it names.
    Redo {
        /// The record's LSN.
        lsn: u64,
        /// The page.
        page: PageId,
    },
    /// A tree operation failed.
    Tree(snowfall_btree::Error),
    /// The buffer manager failed.
    Buffer(snowfall_buffer::Error),
    /// An earlier failure (a failed log write or sync, a failed data sync,
    /// a batch that failed halfway) stopped all writes: reopen the database.
    Stopped {
        /// The first failure.
        cause: Box<Error>,
    },
    /// The database is open read-only: writes are refused.
    ReadOnly {
        /// The file.
        file: String,
        /// Why it is read-only.
        why: ReadOnly,
    },
    /// The log file is shorter than its ring: blocks it had made durable
    /// may be gone (a bad copy, a file-system repair). Opening with
    /// [`Options::accept_log_loss`](crate::Options::accept_log_loss)
    /// accepts the loss.
    LogTruncated {
        /// The log file.
        file: String,
        /// Pages it has.
        pages: u64,
        /// Pages it must have.
        expected: u64,
    },
    /// The log is damaged other than by a torn tail: a record that was
    /// durable is unreadable or missing. Opening with
    /// [`Options::accept_log_loss`](crate::Options::accept_log_loss)
    /// accepts the loss (the log ends before the damage).
    LogCorrupt {
        /// The log file.
        file: String,
        /// Where (an LSN: a byte position in the endless log).
        lsn: u64,
        /// What is wrong.
        what: &'static str,
    },
    /// No tree by that name.
    NoSuchTree {
        /// The name.
        name: String,
    },
    /// The catalog is full or the name too long.
    Catalog {
        /// What is wrong.
        what: &'static str,
    },
    /// A large value's stored bytes, or its reference, are damaged: the
    /// read returns this rather than wrong bytes.
    CorruptValue {
        /// The file.
        file: String,
        /// The value's first page (0 if its reference is unreadable).
        page: PageId,
        /// What is wrong.
        what: &'static str,
    },
    /// The integrity check found a problem.
    Integrity {
        /// The file.
        file: String,
        /// What and where.
        what: String,
    },
    /// A snapshot ([`ReadTx`](crate::ReadTx)) expired: the versions it
    /// needed were reclaimed because the version store reached
    /// [`Options::version_bytes`](crate::Options::version_bytes), oldest
    /// snapshots first. Retry with a new one.
    SnapshotTooOld {
        /// The newest commit it saw.
        ts: u64,
    },
    /// A write transaction could not commit: since its snapshot, another
    /// commit wrote a key it writes (or, serializable, one it read or one in
    /// a range it scanned). Nothing of it was applied; run it again.
    Conflict {
        /// The tree.
        tree: String,
        /// The key (empty for a range it scanned).
        key: Vec<u8>,
    },
    /// A batch larger than the log can hold at once.
    BatchTooLarge {
        /// Its operations.
        ops: usize,
    },
    /// A setting is out of range.
    Config {
        /// What is wrong.
        what: &'static str,
    },
    /// A background thread could not be started (the embedder's
    /// [`Spawn`](crate::Spawn) failed), so the open that needed it failed.
    Thread {
        /// Why, as the embedder's `Spawn` said.
        what: &'static str,
    },
}

/// Why a database is open read-only.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadOnly {
    /// It was opened with [`Builder::open_read_only`](crate::Builder::open_read_only).
    Requested,
    /// Opening it for writing failed with this error, and it was opened
    /// read-only instead: the disk is full (recovery could not write back
    /// what it redid, or could not take its checkpoint), or its files or
    /// their file system are not writable. Free space (or fix the
    /// permissions) and reopen to write.
    Fallback(Box<Error>),
}

impl fmt::Display for ReadOnly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadOnly::Requested => f.write_str("it was opened read-only"),
            ReadOnly::Fallback(e) if e.is_no_space() => {
                write!(f, "the disk is full, so it could not be opened for writing: {e}; free space and reopen")
            }
            ReadOnly::Fallback(e) => write!(f, "it could not be opened for writing: {e}"),
        }
    }
}

impl Error {
    /// Whether this is (or was caused by) a write that found no space: a
    /// full disk or an exhausted quota. Freeing space cures it.
    pub fn is_no_space(&self) -> bool {
        fn device(e: &DeviceError) -> bool {
            matches!(e, DeviceError::NoSpace { .. })
                || matches!(e, DeviceError::Os { errno: rustix::io::Errno::NOSPC | rustix::io::Errno::DQUOT, .. })
        }
        match self {
            Error::Io { source, .. } => device(source),
            Error::Log(e) => e.device_error().as_ref().is_some_and(device),
            Error::Buffer(
                snowfall_buffer::Error::WriteBack { source, .. }
                | snowfall_buffer::Error::Sync { source }
                | snowfall_buffer::Error::LogFlush { source, .. },
            ) => device(source),
            Error::Stopped { cause } => cause.is_no_space(),
            Error::ReadOnly { why: ReadOnly::Fallback(cause), .. } => cause.is_no_space(),
            _ => false,
        }
    }

    /// Whether opening for writing failed because the files, or their
    /// file system, refuse writing (a database on read-only media, or
    /// write-protected files): such a database can still be read.
    pub(crate) fn is_not_writable(&self) -> bool {
        use rustix::io::Errno;
        matches!(
            self,
            Error::Io { source: DeviceError::Os { errno: Errno::ACCESS | Errno::PERM | Errno::ROFS, .. }, .. }
        )
    }

    pub(crate) fn from_superblocks(file: &str, slot0: SuperblockProblem, slot1: SuperblockProblem) -> Error {
        use SuperblockProblem::{Empty, NoMagic, Version};
        let file = String::from(file);
        match (slot0, slot1) {
            (Version(v), _) | (_, Version(v)) if v > crate::superblock::FORMAT => {
                Error::NewerVersion { file, version: v, supported: crate::superblock::FORMAT }
            }
            (NoMagic | Empty, NoMagic | Empty) if (slot0, slot1) != (Empty, Empty) => Error::NotADatabase { file },
            (Empty, Empty) => Error::Empty { file },
            _ => Error::CorruptSuperblock { file, slot0, slot1 },
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotADatabase { file } => write!(f, "{file} is not a SnowfallDB database"),
            Error::Empty { file } => write!(f, "{file} is empty (not a database; open with create to make one)"),
            Error::NewerVersion { file, version, supported } => {
                write!(f, "{file} has format version {version}; this build reads version {supported}")
            }
            Error::CorruptSuperblock { file, slot0, slot1 } => {
                write!(f, "{file}: both superblocks are unusable (slot 0: {slot0}; slot 1: {slot1})")
            }
            Error::Truncated { file, pages, expected } => {
                write!(f, "{file} is truncated: {pages} pages, the database needs {expected}")
            }
            Error::InUse { file } => write!(f, "{file}: database is in use by another process"),
            Error::LogMismatch { file, what } => write!(f, "{file}: {what}"),
            Error::Io { file, source } => write!(f, "{file}: {source}"),
            Error::Log(e) => e.fmt(f),
            Error::FreeList { page, what } => write!(f, "free list corrupt at {page}: {what}"),
            Error::Redo { lsn, page } => write!(f, "log record at LSN {lsn} does not apply to {page}"),
            Error::Tree(e) => e.fmt(f),
            Error::Buffer(e) => e.fmt(f),
            Error::Stopped { cause } => {
                write!(f, "the database stopped accepting writes after a failure ({cause}); reopen it")
            }
            Error::ReadOnly { file, why } => write!(f, "{file} is read-only, writes are refused: {why}"),
            Error::LogTruncated { file, pages, expected } => write!(
                f,
                "{file} is truncated: {pages} pages, its ring needs {expected}; writes it had made durable may be \
                 lost (open with accept_log_loss to accept that)"
            ),
            Error::LogCorrupt { file, lsn, what } => write!(
                f,
                "{file} is damaged at LSN {lsn}: {what} (open with accept_log_loss to accept losing the writes \
                 from there on)"
            ),
            Error::NoSuchTree { name } => write!(f, "no tree named {name:?}"),
            Error::Catalog { what } => f.write_str(what),
            Error::Integrity { file, what } => write!(f, "{file}: integrity check failed: {what}"),
            Error::CorruptValue { file, page, what } => {
                write!(f, "{file}: the large value stored from {page} on is damaged: {what}")
            }
            Error::SnapshotTooOld { ts } => write!(
                f,
                "the snapshot at commit {ts} is too old: the versions it needs were reclaimed to keep the version \
                 store within version_bytes (start a new one)"
            ),
            Error::Conflict { tree, key } => write!(
                f,
                "transaction conflict in tree {tree:?} at key \"{}\": another commit changed it since the \
                 transaction began (retry)",
                key.escape_ascii()
            ),
            Error::BatchTooLarge { ops } => write!(f, "a batch of {ops} operations is too large for the log"),
            Error::Config { what } => f.write_str(what),
            Error::Thread { what } => write!(f, "cannot start a background thread: {what}"),
        }
    }
}

/// Each message already names its cause, so `source` adds nothing (a
/// reporter walking the chain would print every cause twice).
impl core::error::Error for Error {}

impl From<snowfall_btree::Error> for Error {
    fn from(e: snowfall_btree::Error) -> Self {
        match e {
            snowfall_btree::Error::Log(l) => Error::Log(l),
            snowfall_btree::Error::Buffer(b) => Error::Buffer(b),
            other => Error::Tree(other),
        }
    }
}

impl From<snowfall_buffer::Error> for Error {
    fn from(e: snowfall_buffer::Error) -> Self {
        Error::Buffer(e)
    }
}

impl From<LogError> for Error {
    fn from(e: LogError) -> Self {
        Error::Log(e)
    }
}
