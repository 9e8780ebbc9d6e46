//! `Database::stats`: sizes, counts, and the buffer manager's, log's and
//! files' counters, in one snapshot (each figure read at a slightly
//! different moment while others write).

use alloc::sync::Arc;
use core::sync::atomic::Ordering;

use snowfall_buffer::device::IoCounters;

use crate::db::Database;

/// The byte counters of the two files: each device is wrapped in a
/// [`Counted`](snowfall_buffer::device::Counted) when the database opens
/// it, so every request to it counts, whoever makes it.
pub(crate) struct Io {
    pub(crate) data: Arc<IoCounters>,
    pub(crate) log: Arc<IoCounters>,
}

impl crate::db::Inner {
    /// What the database has written since it was created: as of the
    /// checkpoint this open started from, plus this open's counters.
    pub(crate) fn lifetime(&self) -> crate::superblock::Lifetime {
        self.lifetime_base.plus(crate::superblock::Lifetime {
            data_bytes_written: self.io.data.snapshot().bytes_written,
            log_bytes_written: self.io.log.snapshot().bytes_written,
            records_logged: self.log.stats().records,
        })
    }
}

/// What [`Database::stats`] reports.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Stats {
    /// Named trees.
    pub trees: usize,
    /// Page ids handed out so far (the file holds at most this many pages).
    pub allocated_pages: u64,
    /// Of those, free for reuse (as the log knows).
    pub free_pages: u64,
    /// Runs of consecutive free pages those make (how the free list is
    /// stored, and the longest allocation of consecutive pages is at most
    /// the longest run or the file's end).
    pub free_runs: u64,
    /// Pages resident in the buffer pool now.
    pub resident_pages: u64,
    /// Of those, pages of cached large values (extents, each loaded with
    /// one read and evicted whole).
    pub extent_pages: u64,
    /// The buffer pool's size in pages.
    pub pool_pages: u64,
    /// Page accesses that found the page resident.
    pub hits: u64,
    /// Pages read from the file.
    pub faults: u64,
    /// Pages evicted from the pool.
    pub evictions: u64,
    /// Dirty pages written to the file.
    pub write_backs: u64,
    /// Of those, pages first copied to the double-write area (the others
    /// had an image in the log since the last checkpoint).
    pub double_write_copies: u64,
    /// Optimistic reads that restarted.
    pub restarts: u64,
    /// Log records appended since open.
    pub log_records: u64,
    /// Log flushes (each one `fdatasync`) since open.
    pub log_flushes: u64,
    /// Bytes read from the database file since it was opened: page
    /// faults, and this open's superblock, free list and recovery reads.
    pub data_bytes_read: u64,
    /// Bytes written to the database file since it was opened: pages
    /// written back (evictions, checkpoints), free-list trunks and
    /// superblocks. Nothing for a read-only database.
    pub data_bytes_written: u64,
    /// Bytes read from the log file since it was opened (recovery's scan,
    /// the integrity check).
    pub log_bytes_read: u64,
    /// Bytes written to the log file since it was opened: whole 4 KiB
    /// blocks (each flush starts a fresh block, so a flush of one short
    /// record writes a block), and a new log's header. Nothing for a
    /// read-only database.
    pub log_bytes_written: u64,
    /// Log bytes in use (since the oldest record still needed).
    pub log_bytes_used: u64,
    /// The log's capacity in bytes.
    pub log_bytes_capacity: u64,
    /// Log a crash now would make recovery replay: from the redo point of
    /// the checkpoint in effect to the log's end.
    pub log_bytes_to_replay: u64,
    /// Checkpoints installed since open (full ones and the incremental
    /// checkpoint's steps that moved the redo point).
    pub checkpoints: u64,
    /// What the database has written since it was created: bytes to each
    /// file and log records, so write amplification over its whole life
    /// (stored at each checkpoint: a crash loses the counts since the last).
    pub lifetime: crate::superblock::Lifetime,
    /// Old values kept for open snapshots now.
    pub versions: u64,
    /// What they weigh in memory (bounded by `Options::version_bytes`).
    pub version_bytes: u64,
    /// Log records redone when the database was opened.
    pub records_redone: u64,
    /// Batches undone when the database was opened.
    pub batches_undone: usize,
}

impl Database {
    /// Sizes, counts and counters (see [`Stats`]).
    pub fn stats(&self) -> Stats {
        let db = &*self.inner;
        let (allocated_pages, free) = db.bm.allocation();
        let buffer = db.bm.stats();
        let log = db.log.stats();
        let (data_io, log_io) = (db.io.data.snapshot(), db.io.log.snapshot());
        let block = snowfall_buffer::PAGE_SIZE as u64;
        Stats {
            trees: db.state.lock().catalog.len(),
            allocated_pages,
            free_pages: free.len(),
            free_runs: free.runs().count() as u64,
            resident_pages: buffer.resident_bytes / block,
            extent_pages: buffer.extent_bytes / block,
            pool_pages: db.bm.config().pool_pages(),
            hits: buffer.hits,
            faults: buffer.faults,
            evictions: buffer.evictions,
            write_backs: buffer.write_backs,
            double_write_copies: db.hook.copies.copies(),
            restarts: buffer.restarts,
            log_records: log.records,
            log_flushes: log.flushes,
            data_bytes_read: data_io.bytes_read,
            data_bytes_written: data_io.bytes_written,
            log_bytes_read: log_io.bytes_read,
            log_bytes_written: log_io.bytes_written,
            log_bytes_used: db.log.used_blocks() * block,
            log_bytes_capacity: db.log.ring() * block,
            log_bytes_to_replay: db.log.appended().saturating_sub(db.last_checkpoint.load(Ordering::Acquire)),
            checkpoints: db.checkpoints.load(Ordering::Relaxed),
            lifetime: db.lifetime(),
            versions: db.versions.entries(),
            version_bytes: db.versions.bytes() as u64,
            records_redone: db.recovery.records_redone,
            batches_undone: db.recovery.batches_undone,
        }
    }
}
