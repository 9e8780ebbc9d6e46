//! The log's errors.

use core::fmt;

use snowfall_buffer::DeviceError;

use crate::format::HeaderError;

/// What went wrong with the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogError {
    /// Writing or syncing the log failed just now. The log refuses
    /// everything after this (the kernel may have dropped the data; only a
    /// reopen, which reads back what is really on disk, may continue).
    Io {
        /// The device's error.
        source: DeviceError,
    },
    /// The log failed earlier (see [`LogError::Io`]) and refuses writes
    /// until the database is reopened.
    Failed {
        /// The first failure.
        source: DeviceError,
    },
    /// The ring has no room until a checkpoint releases older records.
    Full {
        /// Blocks that would be in use.
        blocks: u64,
        /// Blocks in the ring.
        ring: u64,
    },
    /// One record larger than the log takes.
    TooLarge {
        /// Its size in bytes.
        bytes: usize,
        /// The largest record.
        max: usize,
    },
    /// Reading the log failed.
    Read {
        /// The device's error.
        source: DeviceError,
    },
    /// The log header is not usable.
    Header(HeaderError),
    /// The log is corrupt somewhere other than a torn tail.
    Corrupt {
        /// Where (an LSN).
        lsn: u64,
        /// What is wrong.
        what: &'static str,
    },
}

impl LogError {
    /// The device error behind an I/O failure, if that is what this is.
    pub fn device_error(&self) -> Option<DeviceError> {
        match self {
            LogError::Io { source } | LogError::Failed { source } | LogError::Read { source } => Some(*source),
            _ => None,
        }
    }
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogError::Io { source } => write!(f, "write-ahead log I/O failed: {source}"),
            LogError::Failed { source } => {
                write!(f, "the write-ahead log failed earlier ({source}); reopen the database")
            }
            LogError::Full { blocks, ring } => {
                write!(f, "the write-ahead log is full ({blocks} of {ring} blocks) until a checkpoint")
            }
            LogError::TooLarge { bytes, max } => {
                write!(f, "a log record of {bytes} bytes exceeds the {max}-byte limit")
            }
            LogError::Read { source } => write!(f, "reading the write-ahead log failed: {source}"),
            LogError::Header(HeaderError::NotALog) => f.write_str("the log file is not a SnowfallDB log"),
            LogError::Header(HeaderError::Version(v)) => {
                write!(f, "the log has format version {v}, this build reads {}", crate::format::LOG_VERSION)
            }
            LogError::Header(HeaderError::Corrupt) => f.write_str("the log header is corrupt (checksum mismatch)"),
            LogError::Header(HeaderError::BlockSize(b)) => write!(f, "the log has {b}-byte blocks, this build 4096"),
            LogError::Corrupt { lsn, what } => write!(f, "the write-ahead log is corrupt at LSN {lsn}: {what}"),
        }
    }
}

impl core::error::Error for LogError {}
