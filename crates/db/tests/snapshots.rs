//! Read transactions (`Database::begin_read`): a snapshot sees one moment
//! through every read call, in every tree, whatever is written after it:
//! overwrites, removals, inserts, batches, large values (their extents are
//! not reused while it lives), streamed values; past `version_bytes` the
//! oldest snapshot expires with a typed error and nothing else changes;
//! writers and snapshot readers race with an invariant every snapshot must
//! see (seeded, bounded).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{TempPath, key, small, unkey};
use snowfall_db::{Batch, Database, Durability, Error, Options};

fn open(path: &TempPath, options: Options) -> Database {
    Database::open(path.str(), options).unwrap()
}

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// Everything a snapshot shows of `tree`, through point reads and both
/// directions of a range.
fn seen(tx: &snowfall_db::ReadTx<'_>, name: &str, keys: impl Iterator<Item = Vec<u8>>) -> Model {
    let tree = tx.tree(name).unwrap();
    let forward: Model = tree.range::<[u8]>(..).map(Result::unwrap).collect();
    let mut backward: Vec<_> = tree.range::<[u8]>(..).rev().map(Result::unwrap).collect();
    backward.reverse();
    assert_eq!(forward.clone().into_iter().collect::<Vec<_>>(), backward, "both directions agree");
    for k in keys {
        let got = tree.get(&k).unwrap();
        assert_eq!(got.as_ref(), forward.get(&k), "point read of {k:?} agrees with the range");
        let mut out = Vec::new();
        assert_eq!(tree.get_into(&k, &mut out).unwrap(), got.as_ref().map(Vec::len));
        assert_eq!(tree.get_with(&k, <[u8]>::to_vec).unwrap(), got);
    }
    forward
}

fn contents(db: &Database, name: &str) -> Model {
    db.existing_tree(name).unwrap().range::<[u8]>(..).map(Result::unwrap).collect()
}

#[test]
fn a_snapshot_keeps_its_moment_through_overwrites_removals_inserts_and_batches() {
    let path = TempPath::new("snap-basic");
    let db = open(&path, small());
    let (t, u) = (db.tree("t").unwrap(), db.tree("u").unwrap());
    for i in 0..200u64 {
        t.insert_with(&key(i), &i.to_le_bytes(), Durability::None).unwrap();
    }
    u.insert_with(b"u", b"one", Durability::None).unwrap();
    let before = (contents(&db, "t"), contents(&db, "u"));
    let tx = db.begin_read().unwrap();
    let all = || (0..300u64).map(|i| key(i).to_vec());
    // Every kind of change after it, each key several times.
    for round in 0..3u64 {
        for i in (0..300u64).filter(|i| i % 3 == round) {
            match i % 4 {
                0 => drop(t.remove_with(&key(i), Durability::None).unwrap()),
                _ => drop(t.insert_with(&key(i), &(i * 1000 + round).to_le_bytes(), Durability::None).unwrap()),
            }
        }
        let mut batch = Batch::new();
        batch.insert(&u, b"u", format!("batch {round}").as_bytes());
        batch.insert(&u, format!("new {round}").as_bytes(), b"x");
        batch.remove(&t, &key(7));
        db.write(&batch, Durability::None).unwrap();
        assert_eq!(seen(&tx, "t", all()), before.0, "round {round}");
        assert_eq!(seen(&tx, "u", [b"u".to_vec()].into_iter()), before.1);
    }
    // A new snapshot sees the new state; the old one still the old.
    let now = (contents(&db, "t"), contents(&db, "u"));
    assert_ne!(now.0, before.0);
    let tx2 = db.begin_read().unwrap();
    assert!(tx2.ts() > tx.ts());
    assert_eq!(seen(&tx2, "t", all()), now.0);
    assert_eq!(seen(&tx2, "u", [b"u".to_vec()].into_iter()), now.1);
    assert_eq!(seen(&tx, "t", all()), before.0);
    // Partial ranges at the snapshot.
    let tree = tx.tree("t").unwrap();
    let part: Vec<u64> = tree.range(key(50).as_slice()..key(120).as_slice()).map(|e| unkey(&e.unwrap().0)).collect();
    assert_eq!(part, (50..120).collect::<Vec<_>>());
    let part: Vec<u64> = tree
        .range::<[u8]>((Bound::Excluded(&key(150)[..]), Bound::Unbounded))
        .rev()
        .map(|e| unkey(&e.unwrap().0))
        .collect();
    assert_eq!(part, (151..200).rev().collect::<Vec<_>>());
    drop((tx, tx2));
    assert_eq!((db.stats().versions, db.stats().version_bytes), (0, 0), "no snapshot, no versions");
    db.close().unwrap();
}

#[test]
fn large_values_stay_readable_in_a_snapshot_while_overwritten_and_removed() {
    let path = TempPath::new("snap-large");
    let db = open(&path, small());
    let t = db.tree("t").unwrap();
    let old: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 40_000 + usize::from(i) * 5_000]).collect();
    for (i, v) in old.iter().enumerate() {
        t.insert_with(&key(i as u64), v, Durability::None).unwrap();
    }
    let tx = db.begin_read().unwrap();
    // Overwritten many times over: freed extents would be reused if the
    // snapshot did not hold them.
    for round in 0..50u8 {
        for i in 0..4u64 {
            if round % 7 == 6 {
                t.remove_with(&key(i), Durability::None).unwrap();
            } else {
                t.insert_with(&key(i), &vec![100 + round; 45_000], Durability::None).unwrap();
            }
        }
        let mut w = t.writer(&key(9)).unwrap();
        w.write(&vec![round; 70_000]).unwrap();
        w.commit(Durability::None).unwrap();
        db.sync().unwrap();
    }
    let tree = tx.tree("t").unwrap();
    for (i, v) in old.iter().enumerate() {
        assert_eq!(tree.get(&key(i as u64)).unwrap().as_ref(), Some(v), "value {i}");
        assert_eq!(tree.get_with(&key(i as u64), |b| b == v.as_slice()).unwrap(), Some(true));
    }
    assert_eq!(tree.get(&key(9)).unwrap(), None, "written after the snapshot");
    let got: Vec<Vec<u8>> = tree.range::<[u8]>(..).map(|e| e.unwrap().1).collect();
    assert_eq!(got, old);
    drop(tx);
    db.check().unwrap();
    db.close().unwrap();
}

#[test]
fn past_version_bytes_the_oldest_snapshot_expires_and_nothing_else_fails() {
    let path = TempPath::new("snap-expire");
    let db = open(&path, Options { version_bytes: 256 << 10, ..small() });
    let t = db.tree("t").unwrap();
    t.insert_with(b"k", b"first", Durability::None).unwrap();
    let old = db.begin_read().unwrap();
    assert_eq!(old.tree("t").unwrap().get(b"k").unwrap().as_deref(), Some(&b"first"[..]));
    let mut peak = 0;
    for i in 0..20_000u64 {
        t.insert_with(&key(i), &[7; 100], Durability::None).unwrap();
        peak = peak.max(db.stats().version_bytes);
    }
    assert!(peak <= 256 << 10, "the store stays within its limit: {peak}");
    let e = old.tree("t").unwrap().get(b"k").unwrap_err();
    assert!(matches!(e, Error::SnapshotTooOld { ts } if ts == old.ts()), "{e}");
    assert!(old.tree("t").unwrap().range::<[u8]>(..).next().unwrap().is_err());
    // A new snapshot works; so do writes.
    let new = db.begin_read().unwrap();
    assert_eq!(new.tree("t").unwrap().get(&key(5)).unwrap(), Some(vec![7; 100]));
    t.insert_with(b"k", b"second", Durability::None).unwrap();
    assert_eq!(new.tree("t").unwrap().get(b"k").unwrap().as_deref(), Some(&b"first"[..]));
    drop((old, new));
    db.close().unwrap();
}

/// Writers move amounts between accounts in batches (the total never
/// changes) and overwrite a large value that names its version; readers
/// take snapshots and check the total through a range and through point
/// reads, and that the large value is whole.
#[test]
fn racing_writers_never_show_a_snapshot_half_a_batch() {
    const ACCOUNTS: u64 = 64;
    let path = TempPath::new("snap-race");
    let db = open(&path, Options { spawn: common::threads(), ..small() });
    let t = db.tree("accounts").unwrap();
    for i in 0..ACCOUNTS {
        t.insert_with(&key(i), &100u64.to_le_bytes(), Durability::None).unwrap();
    }
    let big = |n: u64| -> Vec<u8> { (0..30_000u64).map(|j| (n + j) as u8).collect() };
    t.insert_with(b"big", &big(0), Durability::None).unwrap();
    let stop = AtomicBool::new(false);
    let amount = |v: &[u8]| u64::from_le_bytes(v.try_into().unwrap());
    std::thread::scope(|s| {
        for w in 0..2u64 {
            let (db, t, stop) = (&db, &t, &stop);
            s.spawn(move || {
                let mut x = 0x1234_5678 ^ w;
                for n in 0..1_500u64 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // Read-modify-write without transactions: a batch per
                    // transfer, one writer thread per half of the accounts.
                    let (a, b) = (x % ACCOUNTS / 2 * 2 + w, (x >> 20) % ACCOUNTS / 2 * 2 + w);
                    if a == b {
                        continue;
                    }
                    let (va, vb) =
                        (amount(&t.get(&key(a)).unwrap().unwrap()), amount(&t.get(&key(b)).unwrap().unwrap()));
                    let m = x % 10.min(va + 1);
                    let mut batch = Batch::new();
                    batch.insert(t, &key(a), &(va - m).to_le_bytes());
                    batch.insert(t, &key(b), &(vb + m).to_le_bytes());
                    db.write(&batch, Durability::None).unwrap();
                    if w == 0 && n % 10 == 0 {
                        t.insert_with(b"big", &big(n), Durability::None).unwrap();
                    }
                }
                stop.store(true, Ordering::Release);
            });
        }
        let (db, stop) = (&db, &stop);
        s.spawn(move || {
            let mut snapshots = 0;
            while !stop.load(Ordering::Acquire) || snapshots < 20 {
                let tx = db.begin_read().unwrap();
                let tree = tx.tree("accounts").unwrap();
                let entries: Vec<_> =
                    tree.range(key(0).as_slice()..key(ACCOUNTS).as_slice()).map(Result::unwrap).collect();
                let total: u64 = entries.iter().map(|(_, v)| amount(v)).sum();
                assert_eq!(total, 100 * ACCOUNTS, "range at {}", tx.ts());
                let total: u64 = (0..ACCOUNTS).map(|i| amount(&tree.get(&key(i)).unwrap().unwrap())).sum();
                assert_eq!(total, 100 * ACCOUNTS, "point reads at {}", tx.ts());
                let v = tree.get(b"big").unwrap().unwrap();
                assert_eq!(v, big(u64::from(v[0])), "the large value whole");
                snapshots += 1;
            }
        });
    });
    db.check().unwrap();
    db.close().unwrap();
}

/// A snapshot kept open while large values are overwritten holds their old
/// extents through its versions, counted against `version_bytes`; past it
/// the snapshot expires and lets them go, so the file stops growing while
/// the expired handle still lives (it never reads again, as a forgotten
/// reader would).
#[test]
fn an_expired_snapshot_holds_back_no_disk() {
    let path = TempPath::new("snap-disk");
    let db = open(&path, Options { version_bytes: 1 << 20, ..small() });
    let t = db.tree("t").unwrap();
    let value = |round: u64| vec![round as u8; 64 << 10];
    for i in 0..4 {
        t.insert_with(&key(i), &value(0), Durability::None).unwrap();
    }
    let old = db.begin_read().unwrap();
    assert_eq!(old.tree("t").unwrap().get(&key(0)).unwrap(), Some(value(0)));
    let mut allocated = Vec::new();
    for round in 1..=200 {
        for i in 0..4 {
            t.insert_with(&key(i), &value(round), Durability::None).unwrap();
        }
        // Releases become reusable once the log is durable past them.
        db.sync().unwrap();
        allocated.push(db.stats().allocated_pages);
        assert!(db.stats().version_bytes <= 1 << 20, "round {round}: {} bytes of versions", db.stats().version_bytes);
    }
    assert!(matches!(old.tree("t").unwrap().get(&key(0)), Err(Error::SnapshotTooOld { .. })));
    // 200 rounds of 4 values of 16 pages: 12,800 pages if nothing were reused.
    let (mid, end) = (allocated[99], allocated[199]);
    assert!(end <= mid + 64, "the file kept growing after the snapshot expired: {mid} -> {end} pages");
    assert!(end < 2_000, "{end} pages");
    let new = db.begin_read().unwrap();
    assert_eq!(new.tree("t").unwrap().get(&key(3)).unwrap(), Some(value(200)));
    drop((old, new));
    db.check().unwrap();
    db.close().unwrap();
}
