//! The buffer manager's errors: each says what went wrong, where, and what
//! state the page was left in.

use core::fmt;

use rustix::io::Errno;

use crate::page::PageId;

/// A storage operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoOp {
    /// Opening the device.
    Open,
    /// Reading a page.
    Read,
    /// Writing a page.
    Write,
    /// Making writes durable.
    Sync,
}

impl fmt::Display for IoOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IoOp::Open => "open",
            IoOp::Read => "read",
            IoOp::Write => "write",
            IoOp::Sync => "sync",
        })
    }
}

/// A storage device failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceError {
    /// The operating system reported `errno`.
    Os {
        /// The operation.
        op: IoOp,
        /// Byte offset in the device.
        offset: u64,
        /// The error.
        errno: Errno,
    },
    /// Fewer bytes moved than asked, and retrying made no progress.
    Short {
        /// The operation.
        op: IoOp,
        /// Byte offset in the device.
        offset: u64,
        /// Bytes that moved.
        done: usize,
        /// Bytes asked for.
        wanted: usize,
    },
    /// The device is full.
    NoSpace {
        /// Byte offset of the write that did not fit.
        offset: u64,
    },
    /// A read beyond the end of the device.
    PastEnd {
        /// Byte offset of the read.
        offset: u64,
    },
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceError::Os { op: IoOp::Open, errno, .. } => write!(f, "cannot open: {}", Describe(*errno)),
            DeviceError::Os { op, offset, errno } => write!(f, "{op} at byte {offset} failed: {}", Describe(*errno)),
            DeviceError::Short { op, offset, done, wanted } => {
                write!(f, "{op} at byte {offset} moved {done} of {wanted} bytes")
            }
            DeviceError::NoSpace { offset } => write!(f, "no space left on the device for the write at byte {offset}"),
            DeviceError::PastEnd { offset } => write!(f, "read at byte {offset} is past the end of the device"),
        }
    }
}

/// An errno with its meaning, for the errors a storage device meets
/// (without libc there is no `strerror`).
struct Describe(Errno);

impl fmt::Display for Describe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self.0 {
            Errno::NOENT => "no such file or directory",
            Errno::ACCESS => "permission denied",
            Errno::PERM => "operation not permitted",
            Errno::ISDIR => "is a directory",
            Errno::NOTDIR => "a path component is not a directory",
            Errno::ROFS => "read-only file system",
            Errno::IO => "input/output error",
            Errno::NOSPC => "no space left on device",
            Errno::DQUOT => "disk quota exceeded",
            Errno::INVAL => "invalid argument",
            Errno::NOMEM => "out of memory",
            Errno::MFILE | Errno::NFILE => "too many open files",
            _ => return write!(f, "{}", self.0),
        };
        write!(f, "{text} ({})", self.0)
    }
}

impl DeviceError {
    /// The operation that failed (for tests and messages).
    pub fn op(&self) -> IoOp {
        match self {
            DeviceError::Os { op, .. } | DeviceError::Short { op, .. } => *op,
            DeviceError::NoSpace { .. } => IoOp::Write,
            DeviceError::PastEnd { .. } => IoOp::Read,
        }
    }
}

/// A configuration the buffer manager cannot work with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A size is not a whole number of pages.
    NotPageMultiple {
        /// Which setting.
        setting: &'static str,
        /// Its value in bytes.
        bytes: u64,
    },
    /// The pool is too small to evict in batches.
    PoolTooSmall {
        /// Pages asked for.
        pages: u64,
        /// The minimum.
        min_pages: u64,
    },
    /// The virtual reservation is smaller than the pool.
    VirtualSmallerThanPool {
        /// Virtual bytes.
        virtual_bytes: u64,
        /// Pool bytes.
        pool_bytes: u64,
    },
    /// The eviction batch is out of range.
    BadEvictionBatch {
        /// The value given.
        batch: usize,
    },
    /// More exmap interfaces than the module supports.
    TooManyExmapInterfaces {
        /// The value given.
        interfaces: u16,
    },
    /// The device already holds more pages than the virtual reservation.
    DeviceLargerThanReservation {
        /// Pages on the device.
        device_pages: u64,
        /// Pages in the reservation.
        virtual_pages: u64,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::NotPageMultiple { setting, bytes } => {
                write!(f, "{setting} = {bytes} bytes is not a multiple of the 4096-byte page size")
            }
            ConfigError::PoolTooSmall { pages, min_pages } => {
                write!(f, "a pool of {pages} pages is too small: at least {min_pages} are needed")
            }
            ConfigError::VirtualSmallerThanPool { virtual_bytes, pool_bytes } => {
                write!(
                    f,
                    "the virtual reservation ({virtual_bytes} bytes) is smaller than the pool ({pool_bytes} bytes)"
                )
            }
            ConfigError::BadEvictionBatch { batch } => write!(f, "eviction batch {batch} is not in 1..=512"),
            ConfigError::TooManyExmapInterfaces { interfaces } => write!(
                f,
                "{interfaces} exmap interfaces asked for; the module supports at most {}",
                snowfall_sys::exmap::MAX_INTERFACES
            ),
            ConfigError::DeviceLargerThanReservation { device_pages, virtual_pages } => write!(
                f,
                "the device holds {device_pages} pages but the virtual reservation has room for {virtual_pages}; \
                 raise virtual_bytes"
            ),
        }
    }
}

/// A memory backend operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MemoryError {
    /// Reserving the virtual area failed.
    Reserve {
        /// Bytes asked for.
        bytes: u64,
        /// The error.
        errno: Errno,
    },
    /// Making pages available failed.
    Prepare {
        /// The first page of the failed batch.
        page: PageId,
        /// The error.
        errno: Errno,
    },
    /// exmap could not be set up.
    Exmap(snowfall_sys::exmap::SetupError),
    /// Giving pages back failed.
    Release {
        /// The first page of the failed batch.
        page: PageId,
        /// The error.
        errno: Errno,
    },
}

impl fmt::Display for MemoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemoryError::Reserve { bytes, errno } => {
                write!(f, "cannot reserve {bytes} bytes of address space: {}", Describe(*errno))
            }
            MemoryError::Prepare { page, errno } => write!(f, "cannot map memory for {page}: {}", Describe(*errno)),
            MemoryError::Release { page, errno } => {
                write!(f, "cannot release the memory of {page}: {}", Describe(*errno))
            }
            MemoryError::Exmap(e) => e.fmt(f),
        }
    }
}

/// Everything a buffer-manager operation can fail with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Loading the page failed; it stays evicted (retrying is safe).
    Read {
        /// The page.
        page: PageId,
        /// What the device said.
        source: DeviceError,
    },
    /// Writing a dirty page back failed; it stays dirty and resident.
    WriteBack {
        /// The page.
        page: PageId,
        /// What the device said.
        source: DeviceError,
    },
    /// Making writes durable failed.
    Sync {
        /// What the device said.
        source: DeviceError,
    },
    /// The write-back hook (the write-ahead log) refused: the dirty pages stay dirty.
    LogFlush {
        /// The highest log sequence number that had to be durable.
        lsn: u64,
        /// What the log device said.
        source: DeviceError,
    },
    /// The stored page's checksum does not match its contents: the page is corrupt.
    Checksum {
        /// The page.
        page: PageId,
        /// Checksum in the header.
        stored: u64,
        /// Checksum of the contents.
        computed: u64,
    },
    /// The stored page belongs elsewhere (a misdirected write).
    Misdirected {
        /// The page read.
        page: PageId,
        /// The page id in its header.
        found: PageId,
    },
    /// The stored page has a format this build does not know.
    UnknownFormat {
        /// The page.
        page: PageId,
        /// Its format version.
        version: u16,
    },
    /// The page id was never allocated.
    PageNotAllocated {
        /// The page.
        page: PageId,
        /// Pages allocated so far (valid ids are below this).
        allocated: u64,
    },
    /// Every page of the virtual reservation is in use.
    OutOfSpace {
        /// Size of the reservation in pages.
        virtual_pages: u64,
    },
    /// No page could be evicted to make room: every resident page is latched.
    PoolExhausted {
        /// Size of the pool in pages.
        pool_pages: u64,
    },
    /// A reader found the page's contents inconsistent even under a shared
    /// latch (its own bounds checks failed): the page is not what it expects.
    Unreadable {
        /// The page.
        page: PageId,
    },
    /// A large value's extent, read to be cached, does not hold what its
    /// reference says (its checksum differs, or it lies past the end of
    /// the device): it stays evicted.
    CorruptExtent {
        /// Its first page.
        page: PageId,
        /// Its pages.
        pages: u64,
    },
    /// The page is a member of a cached extent, not a page of its own (a
    /// reader followed a pointer that was stale).
    InExtent {
        /// The page.
        page: PageId,
        /// The extent's first page.
        head: PageId,
    },
    /// The memory backend failed.
    Memory(MemoryError),
    /// The configuration is unusable.
    Config(ConfigError),
    /// A table sized from the configuration could not be allocated (the
    /// allocator returned null).
    OutOfMemory {
        /// What it was for.
        what: &'static str,
        /// Its size.
        bytes: u64,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Read { page, source } => write!(f, "cannot load {page}: {source} (the page stays evicted)"),
            Error::WriteBack { page, source } => {
                write!(f, "cannot write back {page}: {source} (the page stays dirty in memory)")
            }
            Error::Sync { source } => write!(f, "cannot make writes durable: {source}"),
            Error::LogFlush { lsn, source } => {
                write!(f, "cannot make the log durable up to LSN {lsn} before writing pages back: {source}")
            }
            Error::Checksum { page, stored, computed } => {
                write!(f, "{page} is corrupt: stored checksum {stored:#018x}, contents hash to {computed:#018x}")
            }
            Error::Misdirected { page, found } => write!(f, "{page} holds the contents of {found} (misdirected write)"),
            Error::UnknownFormat { page, version } => {
                write!(f, "{page} has page format {version}; this build reads format {}", crate::FORMAT_VERSION)
            }
            Error::PageNotAllocated { page, allocated } => {
                write!(f, "{page} was never allocated (only {allocated} pages are)")
            }
            Error::OutOfSpace { virtual_pages } => {
                write!(f, "all {virtual_pages} pages of the virtual reservation are in use; raise virtual_bytes")
            }
            Error::PoolExhausted { pool_pages } => {
                write!(f, "all {pool_pages} pool pages are latched; none can be evicted (too many guards held?)")
            }
            Error::Unreadable { page } => write!(f, "{page} does not hold what its reader expects"),
            Error::CorruptExtent { page, pages } => {
                write!(f, "the extent of {pages} pages at {page} does not hold the value its reference names")
            }
            Error::InExtent { page, head } => {
                write!(f, "{page} belongs to the cached extent at {head}, not to a page of its own")
            }
            Error::Memory(e) => write!(f, "memory backend: {e}"),
            Error::Config(e) => write!(f, "configuration: {e}"),
            Error::OutOfMemory { what, bytes } => write!(f, "out of memory: cannot allocate {bytes} bytes for {what}"),
        }
    }
}

impl From<MemoryError> for Error {
    fn from(e: MemoryError) -> Self {
        Error::Memory(e)
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::Config(e)
    }
}

impl core::error::Error for DeviceError {}

impl core::error::Error for ConfigError {}

impl core::error::Error for MemoryError {}

impl core::error::Error for Error {}
