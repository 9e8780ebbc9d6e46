//! The database's API end to end on real files: writes survive a close
//! and reopen, every durability setting, batches, named trees, the lock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::ops::Bound;

use common::{TempPath, key, small, threads};
use snowfall_db::{Batch, Database, Direction, Durability, Error, Options};

#[test]
fn writes_survive_close_and_reopen() {
    let path = TempPath::new("reopen");
    {
        let db = Database::open(path.str(), small()).unwrap();
        let t = db.tree("main").unwrap();
        for i in 0..20_000u64 {
            t.insert(&key(i), &i.to_le_bytes()).unwrap();
        }
        for i in (0..20_000u64).step_by(3) {
            assert!(t.remove_with(&key(i), Durability::None).unwrap());
        }
        assert_eq!(db.check().unwrap(), 20_000 - 6_667);
        db.close().unwrap();
    }
    let db = Database::open(path.str(), Options { create: false, ..small() }).unwrap();
    let t = db.existing_tree("main").unwrap();
    for i in 0..20_000u64 {
        let want = if i % 3 == 0 { None } else { Some(i.to_le_bytes().to_vec()) };
        assert_eq!(t.get(&key(i)).unwrap(), want, "key {i}");
    }
    let mut n = 0;
    t.scan(Bound::Unbounded, Direction::Forward, |_, _| {
        n += 1;
        true
    })
    .unwrap();
    assert_eq!(n, 20_000 - 6_667);
    assert_eq!(db.check().unwrap(), 20_000 - 6_667);
}

#[test]
fn every_durability_setting_and_batches_reach_the_file() {
    let path = TempPath::new("durability");
    {
        let db = Database::open(path.str(), Options { spawn: threads(), ..small() }).unwrap();
        let a = db.tree("a").unwrap();
        let b = db.tree("b").unwrap();
        a.insert_with(b"sync", b"1", Durability::Sync).unwrap();
        a.insert_with(b"group", b"2", Durability::Group).unwrap();
        a.insert_with(b"none", b"3", Durability::None).unwrap();
        let mut batch = Batch::new();
        for i in 0..100u64 {
            batch.insert(&a, &key(i), b"batch");
            batch.insert(&b, &key(i), b"other tree");
        }
        batch.remove(&a, b"none");
        db.write(&batch, Durability::Sync).unwrap();
        assert_eq!(db.tree_names(), vec!["a".to_string(), "b".to_string()]);
    }
    let db = Database::open(path.str(), small()).unwrap();
    let a = db.existing_tree("a").unwrap();
    let b = db.existing_tree("b").unwrap();
    assert_eq!(a.get(b"sync").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(a.get(b"group").unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(a.get(b"none").unwrap(), None);
    assert_eq!(b.get(&key(42)).unwrap().as_deref(), Some(&b"other tree"[..]));
    assert_eq!(db.check().unwrap(), 2 + 100 + 100);
    assert!(matches!(db.existing_tree("c"), Err(Error::NoSuchTree { .. })));
}

/// A second process (this test binary again) opening the database while
/// this one holds it gets "in use"; a second open in this process too.
#[test]
fn a_second_open_is_refused_while_the_first_holds_the_file() {
    let path = TempPath::new("lock");
    let db = Database::open(path.str(), small()).unwrap();
    db.tree("t").unwrap().insert(b"k", b"v").unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "child_opener", "--nocapture", "--test-threads=1"])
        .env("SNOWFALL_LOCK_PATH", path.str())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child: {stdout}");
    assert!(
        stdout.contains(&format!("open: {}: database is in use by another process", path.str())),
        "child: {stdout}"
    );
    assert_eq!(Database::open(path.str(), small()).err(), Some(Error::InUse { file: path.str().into() }));
    drop(db);
    let db = Database::open(path.str(), small()).unwrap();
    assert_eq!(db.tree("t").unwrap().get(b"k").unwrap(), Some(b"v".to_vec()));
}

#[test]
#[ignore = "runs only as the child process of a_second_open_is_refused_while_the_first_holds_the_file"]
fn child_opener() {
    let path = std::env::var("SNOWFALL_LOCK_PATH").unwrap();
    match Database::open(&path, small()) {
        Ok(_) => println!("open: succeeded"),
        Err(e) => println!("open: {e}"),
    }
}

#[test]
fn oversized_keys_and_values_are_refused_with_nothing_written() {
    let path = TempPath::new("limits");
    let db = Database::open(path.str(), small()).unwrap();
    let t = db.tree("t").unwrap();
    assert!(matches!(t.insert(&[0; 1025], b"v"), Err(Error::Tree(snowfall_btree::Error::KeyTooLarge { .. }))));
    // A value of any size up to 4 GiB - 1 is taken (large_values.rs); a
    // batch with a key over the limit is refused whole.
    let mut batch = Batch::new();
    batch.insert(&t, b"fine", b"v");
    batch.insert(&t, &[0; 1025], &[0; 2000]);
    assert!(db.write(&batch, Durability::Sync).is_err());
    assert_eq!(t.get(b"fine").unwrap(), None);
    assert_eq!(db.check().unwrap(), 0);
}

#[test]
fn a_small_insert_logs_tens_of_bytes_and_a_checkpoint_makes_the_next_change_an_image() {
    let path = TempPath::new("volume");
    let options = Options { checkpoint_bytes: 1 << 40, ..small() };
    let db = Database::open(path.str(), options).unwrap();
    let t = db.tree("t").unwrap();
    let log_bytes = |db: &Database| db.log().appended();
    let start = log_bytes(&db);
    for i in 0..20_000u64 {
        t.insert_with(&key(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)), &i.to_le_bytes(), Durability::None).unwrap();
    }
    let per_insert = (log_bytes(&db) - start) as f64 / 20_000.0;
    // A record of about 60 bytes per insert, plus splits (a new page's image).
    assert!(per_insert < 100.0, "{per_insert:.1} log bytes per 16-byte insert");
    // After a checkpoint, a page's first change logs its image (torn-write
    // protection); its second change a small record again.
    db.checkpoint().unwrap();
    let before = log_bytes(&db);
    t.insert_with(&key(7), b"x", Durability::None).unwrap();
    let first = log_bytes(&db) - before;
    let before = log_bytes(&db);
    t.insert_with(&key(7), b"y", Durability::None).unwrap();
    let second = log_bytes(&db) - before;
    assert!(first > 1000 && second < 100, "first change {first} bytes, second {second}");
}

/// A batch that starts right after recovery (its first record in the new
/// run's first, fresh block) and spans a checkpoint: the checkpoint's scan
/// point must be that record's start, not the end of the last record of the
/// previous run (in a block of an older epoch, which the next recovery
/// would take for damage).
#[test]
fn a_batch_spanning_a_checkpoint_right_after_recovery_is_recovered() {
    use snowfall_buffer::device::MemoryDevice;
    use std::sync::Arc;
    let (data, log) = (Arc::new(MemoryDevice::new(1 << 14)), Arc::new(MemoryDevice::new(5 << 10)));
    let options = Options { checkpoint_bytes: 64 << 10, ..small() };
    let open = || Database::open_on(Box::new(data.clone()), Box::new(log.clone()), "mem", options.clone()).unwrap();
    let db = open();
    db.tree("t").unwrap().insert_with(b"before", b"crash", Durability::Sync).unwrap();
    // Power fails: no close.
    std::mem::forget(db);
    data.crash();
    log.crash();
    let db = open();
    let t = db.tree("t").unwrap();
    let mut batch = Batch::new();
    for i in 0..200u64 {
        batch.insert(&t, &key(i), &[7; 1000]);
    }
    db.write(&batch, Durability::Sync).unwrap();
    assert!(db.recovery().records_redone > 0);
    std::mem::forget(db);
    data.crash();
    log.crash();
    let db = Database::open_on(Box::new(data.clone()), Box::new(log.clone()), "mem", options.clone())
        .unwrap_or_else(|e| panic!("recovery after a batch spanning a checkpoint: {e}"));
    assert_eq!(db.check().unwrap(), 201);
}
