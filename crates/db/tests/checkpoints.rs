//! The continuous checkpoint: without any call to `checkpoint`, the redo
//! point follows the writes, so the log a crash replays stays within about
//! `checkpoint_bytes`; a page changed over and over is written back about
//! once per `checkpoint_bytes` of log; and a crash at any moment recovers
//! from the installed cut (the crash simulation, `crash.rs`, cuts power at
//! every device operation of these steps too).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::sync::Arc;

use common::{key, small};
use snowfall_buffer::device::MemoryDevice;
use snowfall_db::{Database, Durability, Options};

const WINDOW: u64 = 2 << 20;

fn options() -> Options {
    Options { checkpoint_bytes: WINDOW, ..small() }
}

fn devices() -> (Arc<MemoryDevice>, Arc<MemoryDevice>) {
    (Arc::new(MemoryDevice::new(1 << 14)), Arc::new(MemoryDevice::new(5 << 10)))
}

fn open(data: &Arc<MemoryDevice>, log: &Arc<MemoryDevice>, threads: bool) -> Database {
    let options = Options { spawn: if threads { common::threads() } else { None }, ..options() };
    Database::open_on(Box::new(data.clone()), Box::new(log.clone()), "mem", options).unwrap()
}

/// Writes `n` random keys (100-byte values) without durability, checking
/// after every 1,000 that the log to replay stays bounded; returns the
/// largest seen.
fn load(db: &Database, n: u64) -> u64 {
    let t = db.tree("t").unwrap();
    let mut most = 0;
    for i in 0..n {
        let k = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        t.insert_with(&key(k), &[i as u8; 100], Durability::None).unwrap();
        if i % 1000 == 0 {
            most = most.max(db.stats().log_bytes_to_replay);
        }
    }
    most
}

#[test]
fn the_redo_point_follows_the_writes_without_checkpoint_calls() {
    for threads in [false, true] {
        let (data, log) = devices();
        let db = open(&data, &log, threads);
        let before = db.stats();
        let most = load(&db, 60_000);
        let after = db.stats();
        let logged = after.log_bytes_written - before.log_bytes_written;
        assert!(logged > 4 * WINDOW, "the load logged only {logged} bytes");
        // A step (WINDOW / 16) of slack: the log grows by up to a step
        // between two steps of the checkpointer. A background checkpointer
        // runs every `group_interval`, not before each write: writers help
        // it only once they are half a window ahead, and not while it is
        // in a step (on this in-memory device they append megabytes a
        // second).
        let slack = if threads { WINDOW } else { WINDOW / 16 + (64 << 10) };
        assert!(most <= WINDOW + slack, "threads {threads}: {most} bytes of log to replay (window {WINDOW})");
        assert!(after.checkpoints >= 3, "threads {threads}: {} checkpoints installed", after.checkpoints);
        // Power fails: the installed cut and the log after it rebuild
        // everything synced.
        db.sync().unwrap();
        std::mem::forget(db);
        data.crash();
        log.crash();
        let db = open(&data, &log, false);
        assert!(db.recovery().records_redone > 0);
        assert_eq!(db.check().unwrap(), 60_000, "threads {threads}");
        let t = db.existing_tree("t").unwrap();
        for i in (0..60_000u64).step_by(997) {
            let k = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            assert_eq!(t.get(&key(k)).unwrap().as_deref(), Some(&[i as u8; 100][..]), "key {i}");
        }
    }
}

#[test]
fn a_page_changed_all_the_time_is_written_about_once_per_window() {
    let (data, log) = devices();
    let db = open(&data, &log, false);
    let t = db.tree("t").unwrap();
    let before = db.stats();
    // One leaf, the root, changed 200,000 times.
    for i in 0..200_000u64 {
        t.insert_with(&key(i % 50), &i.to_le_bytes(), Durability::None).unwrap();
    }
    let after = db.stats();
    let logged = after.log_bytes_written - before.log_bytes_written;
    let windows = logged / WINDOW;
    let writes = after.write_backs - before.write_backs;
    assert!(windows >= 3, "only {logged} bytes logged");
    // Once per window minus three steps: at most 16/13 per window, and a
    // first one.
    assert!(writes <= windows * 16 / 13 + 2, "{writes} write-backs of the one page for {windows} windows of log");
    assert!(writes >= 1);
}

#[test]
fn a_full_checkpoint_finishes_while_a_page_changes_all_the_time() {
    // A copy written while a writer changes the page leaves it dirty, but
    // with its changes from the copy on: the checkpoint, which waits for
    // no page to hold a change before its cut, must not wait for a pause.
    let (data, log) = devices();
    let db = open(&data, &log, false);
    let t = db.tree("t").unwrap();
    t.insert(b"hot", b"0").unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                t.insert_with(b"hot", &i.to_le_bytes(), Durability::None).unwrap();
                i += 1;
            }
        });
        for _ in 0..50 {
            db.checkpoint().unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    assert_eq!(db.check().unwrap(), 1);
}
