//! The byte counters of `Database::stats` count what reaches the files: a
//! checkpoint writes at least its dirty pages and a superblock, a page
//! fault reads one page, a synced write one log block, the log's counter
//! agrees with the blocks the log flushed, and a read-only open writes
//! nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::{TempPath, abandoned_on_files, small};
use snowfall_buffer::{PAGE_SIZE, PageId};
use snowfall_db::{Database, Durability, Options};

const PAGE: u64 = PAGE_SIZE as u64;

/// Key number `i`, in a scattered order (inserts touch pages all over).
fn key(i: u64) -> [u8; 8] {
    common::key(i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Pages of `db` that are resident and dirty now.
fn dirty_pages(db: &Database) -> u64 {
    let bm = db.buffer();
    let (allocated, _) = bm.allocation();
    (0..allocated).filter(|&p| bm.page_state(PageId(p)).is_ok_and(|s| s.resident && s.dirty)).count() as u64
}

#[test]
fn a_new_database_counts_its_superblocks_and_log_header() {
    let path = TempPath::new("io-new");
    let db = Database::open(path.str(), small()).unwrap();
    let s = db.stats();
    // Both superblock slots at creation, a new epoch's superblock and the
    // first checkpoint's: at least three pages.
    assert!(s.data_bytes_written >= 3 * PAGE, "{s:?}");
    // The header (the first checkpoint's flush had nothing to write).
    assert_eq!(s.log_bytes_written, PAGE, "{s:?}");
    // Recovery read the superblocks and scanned the empty log.
    assert!(s.data_bytes_read >= 2 * PAGE && s.log_bytes_read >= PAGE, "{s:?}");
    assert_eq!(s.data_bytes_written % PAGE, 0);
    assert_eq!(s.log_bytes_written % PAGE, 0);
}

#[test]
fn a_checkpoint_writes_at_least_every_dirty_page_and_a_superblock() {
    let path = TempPath::new("io-checkpoint");
    let db = Database::open(path.str(), small()).unwrap();
    let t = db.tree("t").unwrap();
    for i in 0..20_000u64 {
        t.insert_with(&key(i), &[3; 40], Durability::None).unwrap();
    }
    let dirty = dirty_pages(&db);
    assert!(dirty > 10, "{dirty} dirty pages");
    let before = db.stats();
    let blocks_before = db.log().stats().blocks;
    db.checkpoint().unwrap();
    let after = db.stats();
    let written = after.data_bytes_written - before.data_bytes_written;
    let write_backs = after.write_backs - before.write_backs;
    assert!(write_backs >= dirty, "{write_backs} pages written back of {dirty} dirty");
    // The pages written back, the free list's trunks (if any) and the superblock.
    assert!(written > write_backs * PAGE, "{written} bytes for {write_backs} pages");
    // The checkpoint's flush wrote the log's tail: exactly the blocks the
    // log says it wrote, and the pages it copied to the double-write area
    // (in the log file) with their directory pages (one per batch at most).
    let blocks = db.log().stats().blocks - blocks_before;
    assert!(blocks > 0);
    let copies = after.double_write_copies - before.double_write_copies;
    let log_written = after.log_bytes_written - before.log_bytes_written;
    assert!(
        log_written >= (blocks + copies) * PAGE && log_written <= (blocks + 2 * copies) * PAGE,
        "{log_written} log-file bytes for {blocks} blocks and {copies} copies"
    );
    db.close().unwrap();
}

#[test]
fn each_page_fault_reads_one_page() {
    let path = TempPath::new("io-faults");
    let db = Database::open(path.str(), small()).unwrap();
    let t = db.tree("t").unwrap();
    for i in 0..40_000u64 {
        t.insert_with(&key(i), &[4; 60], Durability::None).unwrap();
    }
    db.close().unwrap();
    // A 1 MiB pool for a tree of several: lookups fault pages in and out.
    let db = Database::open(path.str(), Options { pool_bytes: 1 << 20, ..small() }).unwrap();
    let t = db.tree("t").unwrap();
    let before = db.stats();
    for i in (0..40_000u64).step_by(7) {
        assert!(t.get(&key(i)).unwrap().is_some());
    }
    let after = db.stats();
    let faults = after.faults - before.faults;
    assert!(faults > 100, "{faults} faults");
    assert_eq!(after.data_bytes_read - before.data_bytes_read, faults * PAGE);
    // Reads write nothing to the log.
    assert_eq!(after.log_bytes_written, before.log_bytes_written);
}

#[test]
fn a_synced_write_writes_one_log_block() {
    let path = TempPath::new("io-sync");
    let db = Database::open(path.str(), small()).unwrap();
    let t = db.tree("t").unwrap();
    t.insert(b"warm", b"up").unwrap();
    for i in 0..5u64 {
        let before = db.stats();
        t.insert_with(&key(i), b"value", Durability::Sync).unwrap();
        let after = db.stats();
        // A fresh block per flush, padded: 4 KiB for a record of a few
        // dozen bytes (the amplification `Sync` pays).
        assert_eq!(after.log_bytes_written - before.log_bytes_written, PAGE, "write {i}");
        assert_eq!(after.data_bytes_written, before.data_bytes_written);
    }
}

#[test]
fn a_read_only_open_writes_nothing_and_counts_its_reads() {
    let path = TempPath::new("io-read-only");
    // Synced but not checkpointed: the read-only open redoes the log.
    abandoned_on_files(&path, |db| {
        let t = db.tree("t").unwrap();
        for i in 0..5_000u64 {
            t.insert_with(&key(i), &[5; 40], Durability::None).unwrap();
        }
        db.sync().unwrap();
    });
    let db = Database::open(path.str(), Options { read_only: true, ..small() }).unwrap();
    let s = db.stats();
    assert!(s.records_redone >= 5_000, "{s:?}");
    assert_eq!((s.data_bytes_written, s.log_bytes_written), (0, 0), "{s:?}");
    assert!(s.data_bytes_read >= 2 * PAGE && s.log_bytes_read > 0, "{s:?}");
}

#[test]
fn lifetime_counts_add_up_over_opens_and_are_kept_as_of_each_checkpoint() {
    let path = TempPath::new("io-lifetime");
    let (mut data, mut log, mut records) = (0, 0, 0);
    for round in 0..3u64 {
        let db = Database::open(path.str(), small()).unwrap();
        let s = db.stats();
        let before = s.lifetime;
        // What the opens before wrote, as the last one's close stored it,
        // plus this open's own writes so far.
        assert_eq!(before.data_bytes_written - s.data_bytes_written, data, "round {round}");
        assert_eq!(before.log_bytes_written - s.log_bytes_written, log, "round {round}");
        assert_eq!(before.records_logged, records, "round {round}");
        let t = db.tree("t").unwrap();
        for i in 0..5_000 {
            t.insert_with(&key(round * 5_000 + i), &[round as u8; 40], Durability::None).unwrap();
        }
        db.sync().unwrap();
        let now = db.stats();
        assert!(now.lifetime.records_logged >= before.records_logged + 5_000, "{now:?}");
        // Live: the stored counts plus this open's.
        assert_eq!(now.lifetime.data_bytes_written - now.data_bytes_written, data);
        assert_eq!(now.lifetime.log_bytes_written - now.log_bytes_written, log);
        db.close().unwrap();
        let ro = Database::builder(path.str()).open_read_only().unwrap();
        let kept = ro.stats().lifetime;
        (data, log, records) = (kept.data_bytes_written, kept.log_bytes_written, kept.records_logged);
        assert!(
            records >= now.lifetime.records_logged && log >= now.lifetime.log_bytes_written,
            "round {round}: {kept:?} {now:?}"
        );
    }
    // A crash loses the counts since the last checkpoint, nothing before.
    abandoned_on_files(&path, |db| {
        let t = db.tree("t").unwrap();
        for i in 0..1_000 {
            t.insert_with(&key(100_000 + i), &[9; 40], Durability::Sync).unwrap();
        }
    });
    let db = Database::open(path.str(), small()).unwrap();
    let after = db.stats().lifetime;
    assert!(after.records_logged >= records && after.log_bytes_written >= log, "{after:?}");
}
