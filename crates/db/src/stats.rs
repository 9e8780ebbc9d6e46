//! `Database::stats`: sizes, counts, and the buffer manager's and log's
//! counters, in one snapshot (each figure read at a slightly different
//! moment while others write).

use crate::db::Database;

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
    /// Pages resident in the buffer pool now.
    pub resident_pages: u64,
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
    /// Log bytes written since open (whole 4 KiB blocks).
    pub log_bytes_written: u64,
    /// Log bytes in use (since the oldest record still needed).
    pub log_bytes_used: u64,
    /// The log's capacity in bytes.
    pub log_bytes_capacity: u64,
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
        let block = snowfall_buffer::PAGE_SIZE as u64;
        Stats {
            trees: db.state.lock().catalog.len(),
            allocated_pages,
            free_pages: free.len() as u64,
            resident_pages: buffer.resident_bytes / block,
            pool_pages: db.bm.config().pool_pages(),
            hits: buffer.hits,
            faults: buffer.faults,
            evictions: buffer.evictions,
            write_backs: buffer.write_backs,
            double_write_copies: db.hook.copies.copies(),
            restarts: buffer.restarts,
            log_records: log.records,
            log_flushes: log.flushes,
            log_bytes_written: log.blocks * block,
            log_bytes_used: db.log.used_blocks() * block,
            log_bytes_capacity: db.log.ring() * block,
            records_redone: db.recovery.records_redone,
            batches_undone: db.recovery.batches_undone,
        }
    }
}
