//! Opening read-only: recovery replays the log into memory only, nothing
//! is written to either file, writes are refused with a typed error, and
//! several read-only opens may share the database (but not with a writer).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::{TempPath, abandoned_on_files, bytes, key, small};
use snowfall_db::{Batch, Database, Durability, Error, ReadOnly};

/// A database with 2,000 checkpointed keys and 300 more in the log only.
fn crashed(name: &str) -> TempPath {
    let path = TempPath::new(name);
    abandoned_on_files(&path, |db| {
        let t = db.tree("t").unwrap();
        for i in 0..2000u64 {
            t.insert_with(&key(i), &[i as u8; 100], Durability::None).unwrap();
        }
        db.checkpoint().unwrap();
        for i in 2000..2300u64 {
            t.insert_with(&key(i), &[i as u8; 100], Durability::Sync).unwrap();
        }
    });
    path
}

#[test]
fn a_read_only_open_recovers_in_memory_and_writes_nothing() {
    let path = crashed("ro-recover");
    let (data, log) = (bytes(&path.0), bytes(&path.wal()));
    let db = Database::builder(path.str()).pool_bytes(4 << 20).open_read_only().unwrap();
    assert_eq!(db.read_only(), Some(&ReadOnly::Requested));
    assert!(db.recovery().records_redone > 0, "the log since the checkpoint was redone");
    let t = db.existing_tree("t").unwrap();
    for i in 0..2300u64 {
        assert_eq!(t.get(&key(i)).unwrap().as_deref(), Some(&[i as u8; 100][..]), "key {i}");
    }
    assert_eq!(db.check_integrity().unwrap().entries, 2300);
    // Every kind of write is refused, typed, naming the file.
    let refused = |r: Result<(), Error>| match r {
        Err(Error::ReadOnly { file, why: ReadOnly::Requested }) => assert_eq!(file, path.str()),
        other => panic!("expected a read-only refusal, got {other:?}"),
    };
    refused(t.insert(b"new", b"v").map(drop));
    refused(t.remove(&key(1)).map(drop));
    refused(db.tree("other").map(drop));
    let mut batch = Batch::new();
    batch.insert(&t, b"b", b"v");
    refused(db.write(&batch, Durability::Sync));
    refused(db.checkpoint());
    db.sync().unwrap();
    assert_eq!(t.get(b"new").unwrap(), None);
    // Read-only opens share the database; a writer cannot join them.
    let second = Database::builder(path.str()).pool_bytes(4 << 20).open_read_only().unwrap();
    assert_eq!(second.existing_tree("t").unwrap().get(&key(2299)).unwrap().as_deref(), Some(&[2299u64 as u8; 100][..]));
    assert!(matches!(Database::open(path.str(), small()), Err(Error::InUse { .. })));
    drop(second);
    db.close().unwrap();
    assert!(bytes(&path.0) == data, "the data file changed");
    assert!(bytes(&path.wal()) == log, "the log changed");
    // A writable open recovers for real and takes writes.
    let db = Database::open(path.str(), small()).unwrap();
    assert_eq!(db.read_only(), None);
    db.tree("t").unwrap().insert(b"new", b"v").unwrap();
    assert_eq!(db.check().unwrap(), 2301);
}

#[test]
fn a_read_only_open_waits_for_no_writer_it_is_refused() {
    let path = crashed("ro-writer");
    let db = Database::open(path.str(), small()).unwrap();
    assert!(matches!(Database::builder(path.str()).open_read_only(), Err(Error::InUse { .. })));
    drop(db);
    Database::builder(path.str()).open_read_only().unwrap();
}

#[test]
fn a_read_only_open_creates_nothing() {
    let path = TempPath::new("ro-missing");
    assert!(matches!(Database::builder(path.str()).open_read_only(), Err(Error::Io { .. })));
    assert!(!path.0.exists() && !path.wal().exists());
    // A database path never names a log.
    let wal = format!("{}.wal", path.str());
    assert!(matches!(Database::builder(&wal).create(), Err(Error::Config { .. })));
    assert!(!path.wal().exists());
}
