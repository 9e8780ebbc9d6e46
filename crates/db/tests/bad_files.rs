//! Bad files get typed errors that say what and where, never a panic and
//! never a silent loss: foreign, empty, truncated and newer files; flipped
//! bits in the superblock, a data page, the log; a log of another database.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::io::{Seek, SeekFrom, Write};
use std::sync::Arc;

use common::{TempPath, key, small};
use snowfall_buffer::device::MemoryDevice;
use snowfall_buffer::{Device, PageId};
use snowfall_db::{Database, Durability, Error, Options, SuperblockProblem};

fn no_create() -> Options {
    Options { create: false, ..small() }
}

/// A closed database with 5,000 keys.
fn filled(name: &str) -> TempPath {
    let path = TempPath::new(name);
    let db = Database::open(path.str(), small()).unwrap();
    let t = db.tree("t").unwrap();
    for i in 0..5000u64 {
        t.insert_with(&key(i), &[i as u8; 100], Durability::None).unwrap();
    }
    db.close().unwrap();
    path
}

fn flip(path: &std::path::Path, offset: u64) {
    let mut f = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut b = [0u8; 1];
    f.seek(SeekFrom::Start(offset)).unwrap();
    std::io::Read::read_exact(&mut f, &mut b).unwrap();
    b[0] ^= 0x08;
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(&b).unwrap();
}

#[test]
fn a_foreign_file_is_not_a_database() {
    let path = TempPath::new("foreign");
    std::fs::write(&path.0, b"#!/bin/sh\necho hello\n".repeat(1000)).unwrap();
    assert_eq!(Database::open(path.str(), small()).err(), Some(Error::NotADatabase { file: path.str().into() }));
    // And it was left alone.
    assert!(std::fs::read(&path.0).unwrap().starts_with(b"#!/bin/sh"));
}

#[test]
fn an_empty_file_is_created_only_when_asked() {
    let path = TempPath::new("empty");
    std::fs::write(&path.0, b"").unwrap();
    assert_eq!(Database::open(path.str(), no_create()).err(), Some(Error::Empty { file: path.str().into() }));
    Database::open(path.str(), small()).unwrap().close().unwrap();
    Database::open(path.str(), no_create()).unwrap();
}

#[test]
fn a_truncated_file_is_refused() {
    let path = filled("truncated");
    let len = std::fs::metadata(&path.0).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&path.0).unwrap();
    f.set_len(len / 2).unwrap();
    drop(f);
    match Database::open(path.str(), no_create()) {
        Err(Error::Truncated { file, pages, expected }) => {
            assert_eq!(file, path.str());
            assert_eq!(pages, len / 2 / 4096);
            assert!(expected > pages);
        }
        other => panic!("expected Truncated, got {other:?}"),
    }
    // Cut to nothing while the log has records: still truncated, never recreated.
    let f = std::fs::OpenOptions::new().write(true).open(&path.0).unwrap();
    f.set_len(0).unwrap();
    drop(f);
    assert_eq!(
        Database::open(path.str(), small()).err(),
        Some(Error::Truncated { file: path.str().into(), pages: 0, expected: 2 })
    );
}

#[test]
fn one_damaged_superblock_is_survived_and_two_are_reported() {
    let path = filled("superblock");
    // The newer slot is damaged: the older one (an earlier checkpoint,
    // whose log is still there) takes over.
    flip(&path.0, 4096 + 200);
    flip(&path.0, 200);
    match Database::open(path.str(), no_create()) {
        Err(Error::CorruptSuperblock { file, slot0, slot1 }) => {
            assert_eq!(file, path.str());
            assert_eq!((slot0, slot1), (SuperblockProblem::Checksum, SuperblockProblem::Checksum));
        }
        other => panic!("expected CorruptSuperblock, got {other:?}"),
    }
    // Repair one slot by flipping back: the database opens with all its keys.
    flip(&path.0, 200);
    let db = Database::open(path.str(), no_create()).unwrap();
    assert_eq!(db.check().unwrap(), 5000);
}

/// Rewrites both superblocks of the closed database at `path` to say file
/// format `version` (checksums made right).
fn set_format(path: &std::path::Path, version: u32) {
    let mut f = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    for slot in 0..2u64 {
        let mut page = vec![0u8; 4096];
        f.seek(SeekFrom::Start(slot * 4096)).unwrap();
        std::io::Read::read_exact(&mut f, &mut page).unwrap();
        page[16..20].copy_from_slice(&version.to_le_bytes());
        let sum = xxhash_rust::xxh3::xxh3_64(&page[16..]);
        page[8..16].copy_from_slice(&sum.to_le_bytes());
        f.seek(SeekFrom::Start(slot * 4096)).unwrap();
        f.write_all(&page).unwrap();
    }
}

#[test]
fn a_newer_format_is_refused() {
    let path = filled("newer");
    set_format(&path.0, 3);
    assert_eq!(
        Database::open(path.str(), no_create()).err(),
        Some(Error::NewerVersion { file: path.str().into(), version: 3, supported: 2 })
    );
}

#[test]
fn a_flipped_bit_in_a_data_page_is_a_checksum_error_naming_the_page() {
    let path = filled("datapage");
    // Page 20 is a leaf of the tree (pages 0-1 superblocks).
    flip(&path.0, 20 * 4096 + 3000);
    let db = Database::open(path.str(), no_create()).unwrap();
    let t = db.tree("t").unwrap();
    let mut errors = 0;
    for i in 0..5000u64 {
        match t.get(&key(i)) {
            Ok(Some(v)) => assert_eq!(v, vec![i as u8; 100]),
            Ok(None) => panic!("key {i} silently lost"),
            Err(Error::Buffer(snowfall_buffer::Error::Checksum { page, .. })) => {
                assert_eq!(page, PageId(20));
                errors += 1;
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert!(errors > 0, "the damaged page was never read");
    assert!(db.check().unwrap_err().contains("page 20"));
}

#[test]
fn a_log_of_another_database_or_none_is_refused() {
    let a = filled("log-a");
    let b = filled("log-b");
    std::fs::copy(b.wal(), a.wal()).unwrap();
    assert!(matches!(Database::open(a.str(), no_create()), Err(Error::LogMismatch { .. })));
    std::fs::remove_file(a.wal()).unwrap();
    assert_eq!(
        Database::open(a.str(), no_create()).err(),
        Some(Error::LogMismatch { file: format!("{}.wal", a.str()), what: "the log file is missing" })
    );
    // With create too: a log is only ever made with its database, so none
    // is left behind.
    assert_eq!(
        Database::open(a.str(), small()).err(),
        Some(Error::LogMismatch { file: format!("{}.wal", a.str()), what: "the log file is missing" })
    );
    assert!(!a.wal().exists(), "no empty log left behind");
}

/// A database on memory devices, written with `Sync` and abandoned without
/// a checkpoint (as a crash would leave it), so its log holds records.
fn abandoned() -> (Arc<MemoryDevice>, Arc<MemoryDevice>) {
    let (data, log) = (Arc::new(MemoryDevice::new(1 << 14)), Arc::new(MemoryDevice::new(5 << 10)));
    let db = Database::open_on(Box::new(data.clone()), Box::new(log.clone()), "mem", small()).unwrap();
    let t = db.tree("t").unwrap();
    for i in 0..300u64 {
        t.insert_with(&key(i), &[7; 200], Durability::Sync).unwrap();
    }
    std::mem::forget(db);
    (data, log)
}

#[test]
fn a_flipped_bit_in_synced_log_is_corruption_and_in_the_last_block_a_torn_tail() {
    let (data, log) = abandoned();
    // One past the last block written (the log's length is its whole ring).
    let written = |p: &u64| {
        let mut b = [0u8; 4096];
        log.read_page(PageId(*p), &mut b).is_ok() && b.iter().any(|&x| x != 0)
    };
    let blocks = (0..log.page_count().unwrap()).rev().find(written).unwrap() + 1;
    assert!(blocks > 20);
    // A block in the middle: later flushes prove it was synced.
    let (d2, l2) = (Arc::new(MemoryDevice::new(1 << 14)), Arc::new(MemoryDevice::new(5 << 10)));
    for p in 0..data.page_count().unwrap() {
        let mut b = [0u8; 4096];
        if data.read_page(PageId(p), &mut b).is_ok() {
            d2.write_page(PageId(p), &b).unwrap();
        }
    }
    for p in 0..log.page_count().unwrap() {
        let mut b = [0u8; 4096];
        if log.read_page(PageId(p), &mut b).is_ok() {
            l2.write_page(PageId(p), &b).unwrap();
        }
    }
    assert!(l2.corrupt(PageId(blocks / 2), 2000, 0x10));
    match Database::open_on(Box::new(d2), Box::new(l2), "mem", small()) {
        Err(Error::LogCorrupt { file, .. }) if file == "mem.wal" => {}
        other => panic!("expected log corruption, got {other:?}"),
    }
    // The last block: a torn tail, ends recovery cleanly with the rest.
    assert!(log.corrupt(PageId(blocks - 1), 2000, 0x10));
    let db = Database::open_on(Box::new(data), Box::new(log), "mem", small()).unwrap();
    let n = db.check().unwrap();
    assert!((298..=300).contains(&n), "{n}");
}

/// The newest superblock of the closed database at `path`.
fn superblock(path: &std::path::Path) -> snowfall_db::superblock::Superblock {
    let bytes = std::fs::read(path).unwrap();
    let slot = |i: usize| {
        let page: [u8; 4096] = bytes[i * 4096..(i + 1) * 4096].try_into().unwrap();
        snowfall_db::superblock::Superblock::decode(&page)
    };
    snowfall_db::superblock::Superblock::newest([slot(0), slot(1)], "test").unwrap()
}

/// A closed database whose free list holds a dropped tree's pages, more
/// than one trunk of single ids would list.
fn with_free_pages(name: &str) -> TempPath {
    let path = filled(name);
    let mut db = Database::open(path.str(), no_create()).unwrap();
    let big = db.tree("big").unwrap();
    for i in 0..40_000u64 {
        big.insert_with(&key(i), &[7; 100], Durability::None).unwrap();
    }
    db.drop_tree("big").unwrap();
    db.close().unwrap();
    path
}

#[test]
fn a_damaged_free_list_is_an_error_naming_its_trunk() {
    let path = with_free_pages("free-list");
    let sb = superblock(&path.0);
    assert!(sb.free_pages > 506 && sb.free_head != 0, "{} free pages", sb.free_pages);
    // Runs: the dropped tree's pages, allocated together, take one trunk
    // (the allocator counts it apart: it is set aside until the next
    // checkpoint replaces it).
    let free = Database::open(path.str(), no_create()).unwrap();
    assert_eq!(free.stats().free_pages, sb.free_pages - 1);
    assert!(free.stats().free_runs * 10 < free.stats().free_pages, "{:?}", free.stats());
    free.close().unwrap();
    flip(&path.0, sb.free_head * 4096 + 100);
    let e = Database::open(path.str(), no_create()).err();
    assert_eq!(
        e,
        Some(Error::FreeList { page: PageId(sb.free_head), what: "the trunk page fails its checksum" }),
        "{e:?}"
    );
}

#[test]
fn a_format_1_file_opens_and_its_next_checkpoint_writes_format_2() {
    let path = with_free_pages("format-1");
    let free_pages = superblock(&path.0).free_pages;
    set_format(&path.0, 1);
    let db = Database::open(path.str(), no_create()).unwrap();
    assert_eq!(db.stats().free_pages, free_pages - 1);
    db.check().unwrap();
    db.close().unwrap();
    let bytes = std::fs::read(&path.0).unwrap();
    let newest = superblock(&path.0).slot().0 as usize;
    assert_eq!(bytes[newest * 4096 + 16..newest * 4096 + 20], 2u32.to_le_bytes());
}
