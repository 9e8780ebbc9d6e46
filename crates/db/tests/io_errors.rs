//! The I/O error policy: a failed log write or sync, or a failed data sync,
//! stops all writes until the database is reopened (the kernel may have
//! dropped the data and reports that only once); a full disk is a typed
//! error; reads go on. `Group` writes are durable within the interval.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::sync::Arc;

use common::{key, small, threads};
use rustix::io::Errno;
use snowfall_buffer::device::{FaultyDevice, Injected, MemoryDevice, Rule};
use snowfall_buffer::{DeviceError, IoOp};
use snowfall_db::{Database, Durability, Error, Options};
use snowfall_wal::LogError;

type Dev = Arc<FaultyDevice<MemoryDevice>>;

fn devices() -> (Dev, Dev) {
    (Arc::new(FaultyDevice::new(MemoryDevice::new(1 << 14))), Arc::new(FaultyDevice::new(MemoryDevice::new(5 << 10))))
}

fn open(data: &Dev, log: &Dev, options: Options) -> Database {
    Database::open_on(Box::new(data.clone()), Box::new(log.clone()), "mem", options).unwrap()
}

fn sync_fails() -> Rule {
    Rule { op: IoOp::Sync, page: None, fault: Injected::Errno(Errno::IO), times: 1 }
}

#[test]
fn a_failed_log_sync_stops_writes_until_reopened() {
    let (data, log) = devices();
    let db = open(&data, &log, small());
    let t = db.tree("t").unwrap();
    t.insert(b"before", b"1").unwrap();
    log.inject(sync_fails());
    let e = t.insert(b"lost", b"2").unwrap_err();
    assert_eq!(e, Error::Log(LogError::Io { source: DeviceError::Os { op: IoOp::Sync, offset: 0, errno: Errno::IO } }));
    // The sync would work now, but the database must not trust it.
    assert!(matches!(t.insert(b"after", b"3"), Err(Error::Stopped { .. })));
    assert!(matches!(db.checkpoint(), Err(Error::Stopped { .. })));
    // Reads go on.
    assert_eq!(t.get(b"before").unwrap().as_deref(), Some(&b"1"[..]));
    drop(db);
    let db = open(&data, &log, small());
    let t = db.tree("t").unwrap();
    assert_eq!(t.get(b"before").unwrap().as_deref(), Some(&b"1"[..]));
    t.insert(b"after", b"3").unwrap();
    assert_eq!(db.check().unwrap(), 3 - usize::from(t.get(b"lost").unwrap().is_none()) as u64);
}

#[test]
fn a_failed_data_sync_in_a_checkpoint_stops_writes() {
    let (data, log) = devices();
    let db = open(&data, &log, small());
    let t = db.tree("t").unwrap();
    t.insert(b"k", b"v").unwrap();
    data.inject(sync_fails());
    // The data file's sync, the one before the free list and superblock.
    assert!(matches!(db.checkpoint(), Err(Error::Io { source: DeviceError::Os { op: IoOp::Sync, .. }, .. })));
    assert!(matches!(t.insert(b"k2", b"v"), Err(Error::Stopped { .. })));
    drop(db);
    let db = open(&data, &log, small());
    assert_eq!(db.tree("t").unwrap().get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
}

#[test]
fn a_full_log_disk_is_a_typed_error() {
    let (data, log) = devices();
    let db = open(&data, &log, small());
    let t = db.tree("t").unwrap();
    log.inject(Rule { op: IoOp::Write, page: None, fault: Injected::NoSpace, times: 1 });
    match t.insert(b"k", b"v") {
        Err(Error::Log(LogError::Io { source: DeviceError::NoSpace { .. } })) => {}
        other => panic!("expected no space, got {other:?}"),
    }
}

#[test]
fn a_full_data_disk_refuses_writes_until_space_returns_and_loses_nothing() {
    let (data, log) = devices();
    let db = open(&data, &log, Options { pool_bytes: 1 << 20, ..small() });
    let t = db.tree("t").unwrap();
    // Fill past the 1 MiB pool with every data write failing: the pool
    // fills with pages that cannot be written.
    data.inject(Rule { op: IoOp::Write, page: None, fault: Injected::NoSpace, times: u32::MAX });
    let mut failed = None;
    for i in 0..20_000u64 {
        if let Err(e) = t.insert_with(&key(i), &[1; 100], Durability::None) {
            failed = Some((i, e));
            break;
        }
    }
    let (at, e) = failed.expect("the pool filled with pages that could not be written");
    assert!(e.is_no_space(), "{e:?}");
    // Writes are refused at once with the same typed error, not tried.
    let refused = t.insert(b"refused", b"x").unwrap_err();
    assert!(refused.is_no_space(), "{refused:?}");
    assert_eq!(t.get(b"refused").unwrap(), None);
    // A batch too, before any of it is applied: the database does not stop.
    let mut batch = snowfall_db::Batch::new();
    batch.insert(&t, b"batch", b"x");
    let refused = db.write(&batch, Durability::Sync).unwrap_err();
    assert!(refused.is_no_space() && !matches!(refused, Error::Stopped { .. }), "{refused:?}");
    // Reads go on: everything written so far is there.
    for i in (0..at).step_by(97) {
        assert_eq!(t.get(&key(i)).unwrap().as_deref(), Some(&[1u8; 100][..]), "key {i}");
    }
    // The disk has room again: the next write after the retry interval
    // takes a checkpoint that writes everything out, and goes on.
    data.clear();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    t.insert(b"more", b"ok").unwrap();
    db.write(&batch, Durability::Sync).unwrap();
    db.close().unwrap();
    let db = open(&data, &log, small());
    assert_eq!(db.check().unwrap(), at + 2);
}

#[test]
fn group_writes_are_durable_within_the_interval() {
    let (data, log) = devices();
    let options = Options { spawn: threads(), group_interval: std::time::Duration::from_millis(5), ..small() };
    let db = open(&data, &log, options);
    let t = db.tree("t").unwrap();
    for i in 0..100u64 {
        t.insert_with(&key(i), b"group", Durability::Group).unwrap();
    }
    // The flusher syncs every 5 ms; a busy machine may not run it for a
    // while, so wait for it (up to 10 s) rather than for a fixed time. No
    // thread here asks for a sync.
    let appended = db.log().appended();
    let start = std::time::Instant::now();
    while db.log().durable() < appended {
        assert!(start.elapsed() < std::time::Duration::from_secs(10), "the flusher never synced the Group writes");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // Power fails: only what was synced survives.
    data.inject(Rule { op: IoOp::Write, page: None, fault: Injected::Errno(Errno::IO), times: u32::MAX });
    data.inject(Rule { op: IoOp::Sync, page: None, fault: Injected::Errno(Errno::IO), times: u32::MAX });
    log.inject(Rule { op: IoOp::Write, page: None, fault: Injected::Errno(Errno::IO), times: u32::MAX });
    log.inject(Rule { op: IoOp::Sync, page: None, fault: Injected::Errno(Errno::IO), times: u32::MAX });
    drop(db);
    data.inner().crash();
    log.inner().crash();
    data.clear();
    log.clear();
    let db = open(&data, &log, small());
    assert_eq!(db.check().unwrap(), 100);
}
