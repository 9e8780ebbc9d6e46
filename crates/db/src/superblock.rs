//! The superblock: what a database file is, and where its last checkpoint
//! left things. Two slots (pages 0 and 1) are written in turn, each whole
//! and checksummed, with a generation number: a crash while writing one
//! leaves the other, so the database always has a valid superblock.
//!
//! ```text
//!  0       8        16      20     24          32      40      48     52       56     64     72         80          88        96       98
//!  +-------+--------+-------+------+-----------+-------+-------+------+--------+------+------+----------+-----------+---------+--------+---------
//!  | magic |checksum|version| page |generation | db id | ring  |epoch |ckpt    | redo | scan |page count|free head  |free     |catalog | entries:
//!  |       |        |       | size |           |       |blocks |      |epoch   | LSN  | LSN  |          |(trunk id) |pages    |entries | root u64, name len u8, name
//!  +-------+--------+-------+------+-----------+-------+-------+------+--------+------+------+----------+-----------+---------+--------+---------
//!   8 B     u64      u32     u32    u64         u64     u64     u32    u32      u64    u64    u64        u64         u64       u16
//! ```
//!
//! - checksum: XXH3-64 of bytes 16..4096;
//! - epoch: the latest open of the database (each open that writes takes a
//!   new one first, so log blocks of different opens never look alike);
//! - checkpoint epoch: the open that took this checkpoint (log blocks after
//!   the checkpoint are at least that new);
//! - redo LSN: recovery redoes page changes from here; scan LSN (<= redo):
//!   recovery reads from here, to see batches that were open at the
//!   checkpoint;
//! - page count: pages allocated (ids below it exist);
//! - free head, free pages: the free list, in trunk pages (`freelist.rs`);
//! - catalog: the named trees and their root pages.
//! - at 4,072, the lifetime counters as of this checkpoint (zero in files
//!   written before they existed, whose readers ignore these bytes):
//!
//! ```text
//!  4072                 4080                4088             4096
//!  | data bytes written | log bytes written | records logged |
//!  |  u64               |  u64              |  u64           |
//! ```

use alloc::string::String;
use alloc::vec::Vec;

use snowfall_buffer::{PAGE_SIZE, PageId};
use xxhash_rust::xxh3::xxh3_64;

use crate::error::{Error, SuperblockProblem};
use snowfall_wal::format::{put, u32_at, u64_at};

/// The file's magic bytes.
pub const MAGIC: [u8; 8] = *b"SNOWFALL";
/// The file format this build writes. Format 2 stores the free list as
/// runs of pages (`freelist.rs`); format 1 as single ids.
pub const FORMAT: u32 = 2;
/// The oldest file format this build reads (its next checkpoint writes
/// [`FORMAT`]).
pub const OLDEST_FORMAT: u32 = 1;
/// Pages the two superblock slots take at the start of the file.
pub const SUPERBLOCK_PAGES: u64 = 2;
/// Most named trees.
pub const MAX_TREES: usize = 32;
/// Longest tree name, in bytes.
pub const MAX_NAME: usize = 64;
const CATALOG_AT: usize = 98;
const LIFETIME_AT: usize = PAGE_SIZE - 24;
static_assertions::const_assert!(CATALOG_AT + MAX_TREES * (9 + MAX_NAME) <= LIFETIME_AT);

/// What a database has written since it was created, as of a checkpoint
/// (the writes after the last checkpoint before a crash are not counted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lifetime {
    /// Bytes written to the database file.
    pub data_bytes_written: u64,
    /// Bytes written to the log file.
    pub log_bytes_written: u64,
    /// Log records appended (a write of one key is one record).
    pub records_logged: u64,
}

impl Lifetime {
    /// These counts plus `more`.
    pub fn plus(self, more: Lifetime) -> Lifetime {
        Lifetime {
            data_bytes_written: self.data_bytes_written.saturating_add(more.data_bytes_written),
            log_bytes_written: self.log_bytes_written.saturating_add(more.log_bytes_written),
            records_logged: self.records_logged.saturating_add(more.records_logged),
        }
    }
}

/// A superblock's contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Superblock {
    /// Bumped on every write; the higher valid slot wins.
    pub generation: u64,
    /// The database's identity (the log carries it too).
    pub db_id: u64,
    /// Blocks in the log's ring.
    pub ring: u64,
    /// The latest open.
    pub epoch: u32,
    /// The open that took the checkpoint.
    pub checkpoint_epoch: u32,
    /// Redo page changes from here.
    pub redo: u64,
    /// Read the log from here.
    pub scan: u64,
    /// Pages allocated.
    pub page_count: u64,
    /// First free-list trunk page (0: none).
    pub free_head: u64,
    /// Free pages in the list.
    pub free_pages: u64,
    /// Named trees: (name, root page).
    pub catalog: Vec<(String, PageId)>,
    /// What the database has written since it was created.
    pub lifetime: Lifetime,
}

impl Superblock {
    /// The slot (page) this generation is written to.
    pub fn slot(&self) -> PageId {
        PageId(self.generation % 2)
    }

    /// The page image.
    pub fn encode(&self) -> [u8; PAGE_SIZE] {
        let mut b = [0u8; PAGE_SIZE];
        put(&mut b, 0, &MAGIC);
        put(&mut b, 16, &FORMAT.to_le_bytes());
        put(&mut b, 20, &(PAGE_SIZE as u32).to_le_bytes());
        put(&mut b, 24, &self.generation.to_le_bytes());
        put(&mut b, 32, &self.db_id.to_le_bytes());
        put(&mut b, 40, &self.ring.to_le_bytes());
        put(&mut b, 48, &self.epoch.to_le_bytes());
        put(&mut b, 52, &self.checkpoint_epoch.to_le_bytes());
        put(&mut b, 56, &self.redo.to_le_bytes());
        put(&mut b, 64, &self.scan.to_le_bytes());
        put(&mut b, 72, &self.page_count.to_le_bytes());
        put(&mut b, 80, &self.free_head.to_le_bytes());
        put(&mut b, 88, &self.free_pages.to_le_bytes());
        put(&mut b, 96, &(self.catalog.len() as u16).to_le_bytes());
        let mut at = CATALOG_AT;
        for (name, root) in &self.catalog {
            put(&mut b, at, &root.0.to_le_bytes());
            put(&mut b, at + 8, &[name.len() as u8]);
            put(&mut b, at + 9, name.as_bytes());
            at += 9 + name.len();
        }
        let l = &self.lifetime;
        put(&mut b, LIFETIME_AT, &l.data_bytes_written.to_le_bytes());
        put(&mut b, LIFETIME_AT + 8, &l.log_bytes_written.to_le_bytes());
        put(&mut b, LIFETIME_AT + 16, &l.records_logged.to_le_bytes());
        let sum = xxh3_64(b.get(16..).unwrap_or_default());
        put(&mut b, 8, &sum.to_le_bytes());
        b
    }

    /// Reads one slot.
    pub fn decode(b: &[u8; PAGE_SIZE]) -> Result<Superblock, SuperblockProblem> {
        if b.get(..8) != Some(&MAGIC[..]) {
            return Err(if b.iter().all(|&x| x == 0) { SuperblockProblem::Empty } else { SuperblockProblem::NoMagic });
        }
        if u64_at(b, 8) != xxh3_64(b.get(16..).unwrap_or_default()) {
            return Err(SuperblockProblem::Checksum);
        }
        let version = u32_at(b, 16);
        if !(OLDEST_FORMAT..=FORMAT).contains(&version) {
            return Err(SuperblockProblem::Version(version));
        }
        let page_size = u32_at(b, 20);
        if page_size as usize != PAGE_SIZE {
            return Err(SuperblockProblem::PageSize(page_size));
        }
        let entries = usize::from(u16::from_le_bytes([b[96], b[97]]));
        if entries > MAX_TREES {
            return Err(SuperblockProblem::Catalog);
        }
        let mut catalog = Vec::with_capacity(entries);
        let mut at = CATALOG_AT;
        for _ in 0..entries {
            let root = PageId(u64_at(b, at));
            let len = usize::from(*b.get(at + 8).ok_or(SuperblockProblem::Catalog)?);
            let name = b.get(at + 9..at + 9 + len).ok_or(SuperblockProblem::Catalog)?;
            let name = core::str::from_utf8(name).map_err(|_| SuperblockProblem::Catalog)?;
            catalog.push((String::from(name), root));
            at += 9 + len;
        }
        let sb = Superblock {
            generation: u64_at(b, 24),
            db_id: u64_at(b, 32),
            ring: u64_at(b, 40),
            epoch: u32_at(b, 48),
            checkpoint_epoch: u32_at(b, 52),
            redo: u64_at(b, 56),
            scan: u64_at(b, 64),
            page_count: u64_at(b, 72),
            free_head: u64_at(b, 80),
            free_pages: u64_at(b, 88),
            catalog,
            lifetime: Lifetime {
                data_bytes_written: u64_at(b, LIFETIME_AT),
                log_bytes_written: u64_at(b, LIFETIME_AT + 8),
                records_logged: u64_at(b, LIFETIME_AT + 16),
            },
        };
        if sb.scan > sb.redo || sb.page_count < SUPERBLOCK_PAGES || sb.checkpoint_epoch > sb.epoch {
            return Err(SuperblockProblem::Fields);
        }
        Ok(sb)
    }

    /// The newer valid one of the two slots, or why neither is.
    pub fn newest(slots: [Result<Superblock, SuperblockProblem>; 2], file: &str) -> Result<Superblock, Error> {
        let [a, b] = slots;
        match (a, b) {
            (Ok(a), Ok(b)) => Ok(if a.generation >= b.generation { a } else { b }),
            (Ok(s), Err(_)) | (Err(_), Ok(s)) => Ok(s),
            (Err(a), Err(b)) => Err(Error::from_superblocks(file, a, b)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Superblock {
        Superblock {
            generation: 7,
            db_id: 42,
            ring: 1000,
            epoch: 3,
            checkpoint_epoch: 2,
            redo: 9000,
            scan: 8000,
            page_count: 77,
            free_head: 12,
            free_pages: 5,
            catalog: alloc::vec![(String::from("main"), PageId(2)), (String::from("other"), PageId(9))],
            lifetime: Lifetime { data_bytes_written: 1 << 40, log_bytes_written: 3, records_logged: 99 },
        }
    }

    #[test]
    fn a_superblock_round_trips_and_any_flip_is_caught() {
        let sb = sample();
        let b = sb.encode();
        assert_eq!(Superblock::decode(&b), Ok(sb));
        for at in [0, 8, 16, 20, 30, 60, 100, 4075, 4095] {
            let mut bad = b;
            bad[at] ^= 4;
            assert!(Superblock::decode(&bad).is_err(), "byte {at}");
        }
    }

    #[test]
    fn the_newer_valid_slot_wins() {
        let old = sample();
        let new = Superblock { generation: 8, ..sample() };
        let pick = |a, b| Superblock::newest([a, b], "f");
        assert_eq!(pick(Ok(old.clone()), Ok(new.clone())).unwrap().generation, 8);
        assert_eq!(pick(Ok(old.clone()), Err(SuperblockProblem::Checksum)).unwrap().generation, 7);
        assert!(pick(Err(SuperblockProblem::Checksum), Err(SuperblockProblem::Checksum)).is_err());
    }
}
