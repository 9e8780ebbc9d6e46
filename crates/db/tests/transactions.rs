//! Read-write transactions (`Database::begin_write`,
//! `Database::begin_serializable`): their own writes over their snapshot,
//! abort, large values, conflicts, and the anomalies of the Hermitage suite
//! (github.com/ept/hermitage), each a test, as they play out under snapshot
//! isolation and serializable; the bank invariant under racing threads.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::{TempPath, key, small};
use snowfall_db::{Database, Durability, Error, Options};

fn open(name: &str) -> (TempPath, Database) {
    let path = TempPath::new(name);
    let db = Database::open(path.str(), small()).unwrap();
    (path, db)
}

const N: Durability = Durability::None;

/// Hermitage's starting point: `test` holds 1 -> 10, 2 -> 20.
fn hermitage(name: &str) -> (TempPath, Database) {
    let (path, db) = open(name);
    let t = db.tree("test").unwrap();
    t.insert_with(b"1", b"10", N).unwrap();
    t.insert_with(b"2", b"20", N).unwrap();
    (path, db)
}

fn get(tx: &snowfall_db::WriteTx<'_>, k: &[u8]) -> Option<String> {
    tx.tree("test").unwrap().get(k).unwrap().map(|v| String::from_utf8(v).unwrap())
}

fn put(tx: &snowfall_db::WriteTx<'_>, k: &[u8], v: &str) {
    tx.tree("test").unwrap().insert(k, v.as_bytes()).unwrap();
}

fn contents(db: &Database) -> BTreeMap<String, String> {
    db.existing_tree("test")
        .unwrap()
        .range::<[u8]>(..)
        .map(|e| e.unwrap())
        .map(|(k, v)| (String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap()))
        .collect()
}

fn state(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|&(k, v)| (k.into(), v.into())).collect()
}

fn is_conflict(r: Result<(), Error>) -> bool {
    matches!(r, Err(Error::Conflict { .. }))
}

#[test]
fn a_transaction_reads_its_own_writes_over_its_snapshot() {
    let (_path, db) = open("tx-own");
    let plain = db.tree("t").unwrap();
    for i in 0..100u64 {
        plain.insert_with(&key(i), &i.to_le_bytes(), N).unwrap();
    }
    let tx = db.begin_write().unwrap();
    let t = tx.tree("t").unwrap();
    t.insert(&key(5), b"five").unwrap();
    t.remove(&key(6)).unwrap();
    t.insert(&key(200), b"two hundred").unwrap();
    let large = vec![7u8; 100_000];
    t.insert(&key(7), &large).unwrap();
    t.insert(&key(8), &vec![1u8; 50_000]).unwrap();
    t.insert(&key(8), b"small again").unwrap();
    // Others write meanwhile: the transaction does not see it.
    plain.insert_with(&key(9), b"outside", N).unwrap();
    plain.insert_with(&key(300), b"outside", N).unwrap();
    assert_eq!(t.get(&key(5)).unwrap().as_deref(), Some(&b"five"[..]));
    assert_eq!(t.get(&key(6)).unwrap(), None);
    assert_eq!(t.get(&key(7)).unwrap(), Some(large.clone()));
    assert_eq!(t.get(&key(9)).unwrap(), Some(9u64.to_le_bytes().to_vec()));
    assert_eq!(t.get(&key(300)).unwrap(), None);
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> =
        (0..100u64).map(|i| (key(i).to_vec(), i.to_le_bytes().to_vec())).collect();
    model.insert(key(5).to_vec(), b"five".to_vec());
    model.remove(key(6).as_slice());
    model.insert(key(200).to_vec(), b"two hundred".to_vec());
    model.insert(key(7).to_vec(), large.clone());
    model.insert(key(8).to_vec(), b"small again".to_vec());
    let forward: BTreeMap<_, _> = t.range::<[u8]>(..).map(Result::unwrap).collect();
    assert_eq!(forward, model);
    let mut backward: Vec<_> = t.range::<[u8]>(..).rev().map(Result::unwrap).collect();
    backward.reverse();
    assert_eq!(backward, model.clone().into_iter().collect::<Vec<_>>());
    // Both ends at once meet without overlap.
    let mut r = t.range(key(4).as_slice()..=key(8).as_slice());
    let ends = [r.next(), r.next_back(), r.next(), r.next_back(), r.next(), r.next_back()];
    let got: Vec<u64> = ends.into_iter().flatten().map(|e| common::unkey(&e.unwrap().0)).collect();
    assert_eq!(got, [4, 8, 5, 7]);
    tx.commit(Durability::Sync).unwrap();
    model.insert(key(9).to_vec(), b"outside".to_vec());
    model.insert(key(300).to_vec(), b"outside".to_vec());
    let now: BTreeMap<_, _> = plain.range::<[u8]>(..).map(Result::unwrap).collect();
    assert_eq!(now, model);
    db.check().unwrap();
}

#[test]
fn an_aborted_transaction_leaves_nothing_and_gives_its_extents_back() {
    let (_path, db) = open("tx-abort");
    let plain = db.tree("t").unwrap();
    plain.insert_with(b"k", b"v", N).unwrap();
    let pages = db.stats().allocated_pages;
    for round in 0..20u8 {
        let tx = db.begin_write().unwrap();
        let t = tx.tree("t").unwrap();
        t.insert(b"k", &vec![round; 200_000]).unwrap();
        t.insert(b"other", b"x").unwrap();
        if round % 2 == 0 {
            tx.abort();
        } else {
            drop(tx);
        }
        db.sync().unwrap();
    }
    assert_eq!(plain.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(plain.get(b"other").unwrap(), None);
    assert!(db.stats().allocated_pages <= pages + 2 * 50, "extents reused: {}", db.stats().allocated_pages);
    db.check().unwrap();
}

#[test]
fn write_write_conflicts_first_committer_wins_and_the_loser_leaves_nothing() {
    let (_path, db) = open("tx-ww");
    db.tree("t").unwrap();
    let (a, b) = (db.begin_write().unwrap(), db.begin_write().unwrap());
    a.tree("t").unwrap().insert(b"x", b"a").unwrap();
    b.tree("t").unwrap().insert(b"x", b"b").unwrap();
    b.tree("t").unwrap().insert(b"y", b"b").unwrap();
    b.tree("t").unwrap().insert(b"big", &vec![3; 300_000]).unwrap();
    a.commit(N).unwrap();
    let e = b.commit(N).unwrap_err();
    assert!(matches!(&e, Error::Conflict { tree, key } if tree == "t" && key == b"x"), "{e}");
    let t = db.existing_tree("t").unwrap();
    assert_eq!(t.get(b"x").unwrap().as_deref(), Some(&b"a"[..]));
    assert_eq!((t.get(b"y").unwrap(), t.get(b"big").unwrap()), (None, None));
    // A single-key write conflicts with a transaction that wrote the key.
    let c = db.begin_write().unwrap();
    c.tree("t").unwrap().insert(b"x", b"c").unwrap();
    t.insert_with(b"x", b"plain", N).unwrap();
    assert!(is_conflict(c.commit(N)));
    assert_eq!(t.get(b"x").unwrap().as_deref(), Some(&b"plain"[..]));
    db.sync().unwrap();
    db.check().unwrap();
}

// The Hermitage tests, in its order. "c" is a commit; a conflict is
// the abort Hermitage expects from a database that prevents the anomaly.

/// G0, dirty write: the later committer of two writers of the same keys
/// fails; the result is one transaction's writes, whole.
#[test]
fn hermitage_g0_dirty_write() {
    let (_p, db) = hermitage("tx-g0");
    let (t1, t2) = (db.begin_write().unwrap(), db.begin_write().unwrap());
    put(&t1, b"1", "11");
    put(&t2, b"1", "12");
    put(&t1, b"2", "21");
    t1.commit(N).unwrap();
    put(&t2, b"2", "22");
    assert!(is_conflict(t2.commit(N)));
    assert_eq!(contents(&db), state(&[("1", "11"), ("2", "21")]));
}

/// G1a, aborted read: nothing of an aborted transaction is ever read.
#[test]
fn hermitage_g1a_aborted_read() {
    let (_p, db) = hermitage("tx-g1a");
    let (t1, t2) = (db.begin_write().unwrap(), db.begin_write().unwrap());
    put(&t1, b"1", "101");
    put(&t1, b"2", "102");
    assert_eq!(get(&t2, b"1").as_deref(), Some("10"));
    t1.abort();
    assert_eq!(get(&t2, b"1").as_deref(), Some("10"));
    t2.commit(N).unwrap();
    assert_eq!(contents(&db), state(&[("1", "10"), ("2", "20")]));
}

/// G1b, intermediate read: a transaction's intermediate value is never read.
#[test]
fn hermitage_g1b_intermediate_read() {
    let (_p, db) = hermitage("tx-g1b");
    let (t1, t2) = (db.begin_write().unwrap(), db.begin_write().unwrap());
    put(&t1, b"1", "101");
    assert_eq!(get(&t2, b"1").as_deref(), Some("10"));
    put(&t1, b"1", "11");
    t1.commit(N).unwrap();
    assert_eq!(get(&t2, b"1").as_deref(), Some("10"));
    t2.commit(N).unwrap();
}

/// G1c, circular information flow: neither sees the other's write.
#[test]
fn hermitage_g1c_circular_information_flow() {
    let (_p, db) = hermitage("tx-g1c");
    let (t1, t2) = (db.begin_write().unwrap(), db.begin_write().unwrap());
    put(&t1, b"1", "11");
    put(&t2, b"2", "22");
    assert_eq!(get(&t1, b"2").as_deref(), Some("20"));
    assert_eq!(get(&t2, b"1").as_deref(), Some("10"));
    t1.commit(N).unwrap();
    t2.commit(N).unwrap();
    assert_eq!(contents(&db), state(&[("1", "11"), ("2", "22")]));
}

/// OTV, observed transaction vanishes: a reader that saw T1's writes keeps
/// seeing them, T2's conflicting writes never appear.
#[test]
fn hermitage_otv_observed_transaction_vanishes() {
    let (_p, db) = hermitage("tx-otv");
    let (t1, t2) = (db.begin_write().unwrap(), db.begin_write().unwrap());
    put(&t1, b"1", "11");
    put(&t1, b"2", "19");
    put(&t2, b"1", "12");
    t1.commit(N).unwrap();
    let t3 = db.begin_write().unwrap();
    assert_eq!(get(&t3, b"1").as_deref(), Some("11"));
    put(&t2, b"2", "18");
    assert!(is_conflict(t2.commit(N)));
    assert_eq!(get(&t3, b"2").as_deref(), Some("19"));
    t3.commit(N).unwrap();
}

/// PMP, predicate many preceders: a predicate read sees the same keys
/// again after another transaction inserted a matching one.
#[test]
fn hermitage_pmp_predicate_many_preceders() {
    let (_p, db) = hermitage("tx-pmp");
    let t1 = db.begin_write().unwrap();
    let thirty = |tx: &snowfall_db::WriteTx<'_>| -> Vec<Vec<u8>> {
        tx.tree("test")
            .unwrap()
            .range::<[u8]>(..)
            .map(Result::unwrap)
            .filter(|(_, v)| v == b"30")
            .map(|(k, _)| k)
            .collect()
    };
    assert!(thirty(&t1).is_empty());
    let t2 = db.begin_write().unwrap();
    put(&t2, b"3", "30");
    t2.commit(N).unwrap();
    assert!(thirty(&t1).is_empty());
    t1.commit(N).unwrap();
}

/// PMP with writes: a transaction that updates every row conflicts with
/// one that removed a row meanwhile.
#[test]
fn hermitage_pmp_write_predicate_many_preceders() {
    let (_p, db) = hermitage("tx-pmp-write");
    let (t1, t2) = (db.begin_write().unwrap(), db.begin_write().unwrap());
    for (k, v) in t1.tree("test").unwrap().range::<[u8]>(..).map(Result::unwrap) {
        let v: u32 = String::from_utf8(v).unwrap().parse().unwrap();
        t1.tree("test").unwrap().insert(&k, (v + 10).to_string().as_bytes()).unwrap();
    }
    let doomed: Vec<_> =
        t2.tree("test").unwrap().range::<[u8]>(..).map(Result::unwrap).filter(|(_, v)| v == b"20").collect();
    assert_eq!(doomed.len(), 1);
    t1.commit(N).unwrap();
    t2.tree("test").unwrap().remove(&doomed[0].0).unwrap();
    assert!(is_conflict(t2.commit(N)));
    assert_eq!(contents(&db), state(&[("1", "20"), ("2", "30")]));
}

/// P4, lost update: of two read-modify-writes of one key, the second
/// committer fails.
#[test]
fn hermitage_p4_lost_update() {
    let (_p, db) = hermitage("tx-p4");
    let (t1, t2) = (db.begin_write().unwrap(), db.begin_write().unwrap());
    assert_eq!(get(&t1, b"1").as_deref(), Some("10"));
    assert_eq!(get(&t2, b"1").as_deref(), Some("10"));
    put(&t1, b"1", "11");
    put(&t2, b"1", "11");
    t1.commit(N).unwrap();
    assert!(is_conflict(t2.commit(N)));
}

/// G-single, read skew: a transaction sees both keys as of its snapshot,
/// never one old and one new.
#[test]
fn hermitage_g_single_read_skew() {
    let (_p, db) = hermitage("tx-g-single");
    let (t1, t2) = (db.begin_write().unwrap(), db.begin_write().unwrap());
    assert_eq!(get(&t1, b"1").as_deref(), Some("10"));
    assert_eq!(get(&t2, b"1").as_deref(), Some("10"));
    assert_eq!(get(&t2, b"2").as_deref(), Some("20"));
    put(&t2, b"1", "12");
    put(&t2, b"2", "18");
    t2.commit(N).unwrap();
    assert_eq!(get(&t1, b"2").as_deref(), Some("20"));
    // A snapshot reader too.
    let r = db.begin_read().unwrap();
    assert_eq!(r.tree("test").unwrap().get(b"2").unwrap().as_deref(), Some(&b"18"[..]));
    t1.commit(N).unwrap();
}

/// G2-item, write skew: under snapshot isolation both commit (the anomaly
/// snapshot isolation allows); serializable, the second fails.
#[test]
fn hermitage_g2_item_write_skew() {
    for serializable in [false, true] {
        let (_p, db) = hermitage(&format!("tx-g2-item-{serializable}"));
        let begin = || if serializable { db.begin_serializable() } else { db.begin_write() }.unwrap();
        let (t1, t2) = (begin(), begin());
        for t in [&t1, &t2] {
            assert_eq!((get(t, b"1").as_deref(), get(t, b"2").as_deref()), (Some("10"), Some("20")));
        }
        put(&t1, b"1", "11");
        put(&t2, b"2", "21");
        t1.commit(N).unwrap();
        let second = t2.commit(N);
        if serializable {
            assert!(is_conflict(second), "serializable rules out write skew");
            assert_eq!(contents(&db), state(&[("1", "11"), ("2", "20")]));
        } else {
            second.unwrap();
            assert_eq!(contents(&db), state(&[("1", "11"), ("2", "21")]), "snapshot isolation allows it");
        }
    }
}

/// G2, anti-dependency cycles through a predicate: each inserts a row
/// the other's predicate read would have seen. Serializable: the second
/// committer fails; snapshot isolation: both commit.
#[test]
fn hermitage_g2_anti_dependency_cycles() {
    for serializable in [false, true] {
        let (_p, db) = hermitage(&format!("tx-g2-{serializable}"));
        let begin = || if serializable { db.begin_serializable() } else { db.begin_write() }.unwrap();
        let (t1, t2) = (begin(), begin());
        let multiples_of_3 = |tx: &snowfall_db::WriteTx<'_>| -> usize {
            tx.tree("test")
                .unwrap()
                .range::<[u8]>(..)
                .map(Result::unwrap)
                .filter(|(_, v)| String::from_utf8(v.clone()).unwrap().parse::<u32>().unwrap() % 3 == 0)
                .count()
        };
        assert_eq!((multiples_of_3(&t1), multiples_of_3(&t2)), (0, 0));
        put(&t1, b"3", "30");
        put(&t2, b"4", "42");
        t1.commit(N).unwrap();
        let second = t2.commit(N);
        assert_eq!(is_conflict(second), serializable);
    }
}

/// The bank: accounts that transfer random amounts in read-write
/// transactions (retried on conflict) while snapshot readers sum them; the
/// total never changes, no balance goes negative. Seeded and bounded.
#[test]
fn bank_transfers_keep_the_total_under_racing_transactions() {
    const ACCOUNTS: u64 = 32;
    const START: u64 = 1_000;
    let path = TempPath::new("tx-bank");
    let db = Database::open(path.str(), Options { spawn: common::threads(), ..small() }).unwrap();
    let plain = db.tree("bank").unwrap();
    for i in 0..ACCOUNTS {
        plain.insert_with(&key(i), &START.to_le_bytes(), N).unwrap();
    }
    let amount = |v: &[u8]| u64::from_le_bytes(v.try_into().unwrap());
    let (committed, conflicts) = (AtomicU64::new(0), AtomicU64::new(0));
    let writers_done = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for w in 0..3u64 {
            let (db, committed, conflicts, writers_done) = (&db, &committed, &conflicts, &writers_done);
            s.spawn(move || {
                let mut x = 0x9E37_79B9 ^ (w << 32) | 1;
                for _ in 0..400 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let (from, to) = (x % ACCOUNTS, (x >> 16) % ACCOUNTS);
                    if from == to {
                        continue;
                    }
                    loop {
                        let tx = if w == 2 { db.begin_serializable() } else { db.begin_write() }.unwrap();
                        let t = tx.tree("bank").unwrap();
                        let (a, b) =
                            (amount(&t.get(&key(from)).unwrap().unwrap()), amount(&t.get(&key(to)).unwrap().unwrap()));
                        let m = (x >> 32) % 50;
                        if m > a {
                            break;
                        }
                        t.insert(&key(from), &(a - m).to_le_bytes()).unwrap();
                        t.insert(&key(to), &(b + m).to_le_bytes()).unwrap();
                        match tx.commit(if x % 8 == 0 { Durability::Sync } else { N }) {
                            Ok(()) => {
                                committed.fetch_add(1, Ordering::Relaxed);
                                break;
                            }
                            Err(Error::Conflict { .. }) => {
                                conflicts.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
                writers_done.fetch_add(1, Ordering::Release);
            });
        }
        let (db, stop, writers_done) = (&db, &stop, &writers_done);
        s.spawn(move || {
            let mut sums = 0;
            while writers_done.load(Ordering::Acquire) < 3 || sums < 10 {
                let r = db.begin_read().unwrap();
                let t = r.tree("bank").unwrap();
                let balances: Vec<u64> = t.range::<[u8]>(..).map(|e| amount(&e.unwrap().1)).collect();
                assert_eq!(balances.len() as u64, ACCOUNTS);
                assert_eq!(balances.iter().sum::<u64>(), ACCOUNTS * START, "snapshot at {}", r.ts());
                sums += 1;
            }
            stop.store(true, Ordering::Release);
        });
    });
    let balances: Vec<u64> = plain.range::<[u8]>(..).map(|e| amount(&e.unwrap().1)).collect();
    assert_eq!(balances.iter().sum::<u64>(), ACCOUNTS * START);
    assert!(committed.load(Ordering::Relaxed) > 500, "{committed:?}");
    eprintln!("bank: {committed:?} committed, {conflicts:?} conflicts retried");
    assert_eq!(db.stats().versions, 0, "every version reclaimed");
    db.check().unwrap();
}
