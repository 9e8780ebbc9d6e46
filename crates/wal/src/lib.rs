//! SnowfallDB's write-ahead log.
//!
//! The log is a ring of 4 KiB blocks on a [`Device`](snowfall_buffer::Device)
//! (a file of its own, `O_DIRECT`), after a header block that ties it to its
//! database. Records of any kind (the layers above define their bodies) are
//! appended to a tail in memory and made durable by flushes: whole blocks,
//! each checksummed, numbered and chained to the one before, then one
//! `fdatasync`. Threads waiting for their records share flushes (group
//! commit). At recovery, [`Scan`] reads records back from a checkpoint's
//! LSN and ends cleanly at a torn tail, but reports corruption anywhere
//! else.
//!
//! - `format.rs`: the block and header layout, LSN arithmetic;
//! - `record.rs`: record framing;
//! - `writer.rs`: [`Log`]: append, flush, group commit, the ring, the
//!   buffer manager's "log before data" hook;
//! - `scan.rs`: [`Scan`]: reading back, torn tail versus corruption.
#![no_std]
#![deny(unsafe_code)]

extern crate alloc;
#[cfg(test)]
extern crate std;

mod error;
pub mod format;
mod record;
mod scan;
mod writer;

pub use error::LogError;
pub use format::{HeaderError, LogHeader, MAX_RECORD};
pub use record::RECORD_HEADER;
pub use scan::{Record, Scan};
pub use writer::{Appended, Log, LogHook, LogStats, Place, Resume, WriteFirst};
