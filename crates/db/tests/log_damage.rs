//! A log that lost records it had made durable is an error naming the
//! file, never a silent rollback: a log file cut short (a bad copy, a
//! file-system repair), and a log that ends before its last checkpoint
//! (synced blocks missing). `accept_log_loss` opens anyway, ending the log
//! before the damage.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::sync::Arc;

use common::{TempPath, abandoned_on_files_with, key, small};
use snowfall_buffer::device::MemoryDevice;
use snowfall_buffer::{Device, PAGE_SIZE, PageId};
use snowfall_db::superblock::Superblock;
use snowfall_db::{Batch, Database, Durability, Error, Options};
use snowfall_wal::format::position;

/// 1,000 checkpointed keys, then 500 `Sync` writes in the log only (no
/// checkpoint writes pages back meanwhile: a salvage can only keep a
/// consistent prefix of the writes if no page on disk holds changes past
/// the damage).
fn written(name: &str) -> TempPath {
    let path = TempPath::new(name);
    abandoned_on_files_with(&path, Options { checkpoint_bytes: 1 << 40, ..small() }, |db| {
        let t = db.tree("t").unwrap();
        for i in 0..1000u64 {
            t.insert_with(&key(i), &[1; 50], Durability::None).unwrap();
        }
        db.checkpoint().unwrap();
        for i in 1000..1500u64 {
            t.insert_with(&key(i), &[2; 50], Durability::Sync).unwrap();
        }
    });
    path
}

fn truncate(path: &std::path::Path, len: u64) {
    std::fs::OpenOptions::new().write(true).open(path).unwrap().set_len(len).unwrap();
}

#[test]
fn a_log_cut_short_at_any_length_is_refused_naming_the_file() {
    let full = std::fs::metadata(written("cut-probe").wal()).unwrap().len();
    // The log is its whole ring from the start: a header, 16 MiB of ring
    // (less the header's page), 1 MiB of double-write area.
    assert_eq!(full, (16 << 20) - PAGE_SIZE as u64 + PAGE_SIZE as u64 + (1 << 20));
    for len in [4096, 4097, 8192, 100_000, 1 << 20, full / 2, full - 4096, full - 1] {
        let path = written(&format!("cut-{len}"));
        truncate(&path.wal(), len);
        match Database::open(path.str(), small()) {
            Err(Error::LogTruncated { file, pages, expected }) => {
                assert_eq!(file, format!("{}.wal", path.str()));
                assert_eq!((pages, expected), (len / 4096, full / 4096));
            }
            other => panic!("log cut to {len} bytes: expected LogTruncated, got {other:?}"),
        }
        // Read-only too: it is the same loss.
        assert!(matches!(Database::builder(path.str()).open_read_only(), Err(Error::LogTruncated { .. })));
    }
}

#[test]
fn accepting_the_loss_opens_with_the_log_up_to_the_cut_and_mends_the_file() {
    let path = written("cut-accept");
    // Cut inside the records written after the checkpoint: three blocks
    // past its redo point.
    let data = common::bytes(&path.0);
    let sb = [0, 1]
        .into_iter()
        .filter_map(|i| Superblock::decode(data[i * PAGE_SIZE..(i + 1) * PAGE_SIZE].try_into().unwrap()).ok())
        .max_by_key(|s| s.generation)
        .unwrap();
    truncate(&path.wal(), (1 + position(sb.redo).0 + 3) * PAGE_SIZE as u64);
    let db = Database::open(path.str(), Options { accept_log_loss: true, ..small() }).unwrap();
    let t = db.existing_tree("t").unwrap();
    for i in 0..1000u64 {
        assert_eq!(t.get(&key(i)).unwrap().as_deref(), Some(&[1u8; 50][..]), "checkpointed key {i}");
    }
    let kept = (1000..1500u64).filter(|&i| t.get(&key(i)).unwrap().is_some()).count();
    assert!(kept > 0 && kept < 500, "the writes before the cut are kept, those after it gone ({kept} of 500 kept)");
    // Whatever was kept is a prefix.
    assert!((1000..1000 + kept as u64).all(|i| t.get(&key(i)).unwrap().is_some()));
    assert_eq!(db.check_integrity().unwrap().entries, 1000 + kept as u64);
    t.insert(b"after", b"salvage").unwrap();
    db.close().unwrap();
    // The log is whole again: a plain open works and keeps the new write.
    let db = Database::open(path.str(), small()).unwrap();
    assert_eq!(db.existing_tree("t").unwrap().get(b"after").unwrap().as_deref(), Some(&b"salvage"[..]));
    assert_eq!(db.check().unwrap(), 1001 + kept as u64);
}

/// The newest superblock on `data`.
fn superblock(data: &MemoryDevice) -> Superblock {
    let slot = |i| {
        let mut b = [0u8; PAGE_SIZE];
        data.read_page(PageId(i), &mut b).ok().and_then(|()| Superblock::decode(&b).ok())
    };
    [slot(0), slot(1)].into_iter().flatten().max_by_key(|s| s.generation).unwrap()
}

#[test]
fn a_log_that_ends_before_its_checkpoint_is_refused() {
    // A batch long enough that checkpoints are taken while it is open: the
    // last one's scan point (the batch's start) lies blocks before its
    // redo point, and everything between was synced before it took effect.
    let (data, log) = (Arc::new(MemoryDevice::new(1 << 14)), Arc::new(MemoryDevice::new(1 << 13)));
    let options = Options { checkpoint_bytes: 256 << 10, ..small() };
    let db = Database::open_on(Box::new(data.clone()), Box::new(log.clone()), "mem", options.clone()).unwrap();
    let t = db.tree("t").unwrap();
    let mut batch = Batch::new();
    for i in 0..3000u64 {
        batch.insert(&t, &key(i), &[3; 200]);
    }
    db.write(&batch, Durability::Sync).unwrap();
    std::mem::forget(db);
    let sb = superblock(&data);
    let (scan, redo) = (position(sb.scan).0, position(sb.redo).0);
    assert!(redo > scan + 2, "no checkpoint was taken inside the batch (scan block {scan}, redo block {redo})");
    // A file-system repair zeroes everything after the batch's first block:
    // the scan finds a clean end (no later flush in sight), but before the
    // checkpoint.
    for p in scan + 2..log.page_count().unwrap() {
        log.write_page(PageId(p), &[0; PAGE_SIZE]).unwrap();
    }
    match Database::open_on(Box::new(data.clone()), Box::new(log.clone()), "mem", options) {
        Err(Error::LogCorrupt { file, what, .. }) => {
            assert_eq!(file, "mem.wal");
            assert!(what.contains("before the last checkpoint"), "{what}");
        }
        other => panic!("expected LogCorrupt, got {other:?}"),
    }
}
