//! Readers against commits, reclamation and plain writes under shuttle's
//! randomized scheduler (every atomic and lock step a switch point). The
//! tree is one atomic counter, written as the database writes a leaf
//! (Release) and read as an optimistic reader reads one (Acquire). A reader
//! reads the counter, then the store, twice per snapshot: both reads must
//! agree (a snapshot is one moment) whatever the writer does meanwhile:
//! plain writes while no snapshot is open, versioned commits once one is,
//! reclamation when one ends, expiry when the limit is tiny. And
//! conflict detection: two read-modify-write transactions on one key,
//! each committing only if no commit since its snapshot wrote the key,
//! never lose an update (first committer wins); and commits that write
//! while later ones do, publishing whole and in order. Run:
//! `RUSTFLAGS="--cfg shuttle" cargo test -p snowfall-version --release --test shuttle`.
#![cfg(shuttle)]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests: a panic is a failure")]

use shuttle::sync::Arc;
use shuttle::sync::atomic::{AtomicU64, Ordering};
use shuttle::thread;
use snowfall_version::{Mode, Snapshot, Versions, Weigh};

#[derive(Clone, Debug, PartialEq)]
struct Value(u64);

impl Weigh for Value {
    fn weight(&self) -> usize {
        8
    }
}

/// The counter at `snapshot`, or `None` if the snapshot expired.
fn read(versions: &Versions<Value>, tree: &AtomicU64, snapshot: Snapshot) -> Option<u64> {
    let in_tree = tree.load(Ordering::Acquire);
    match versions.read(snapshot, 0, b"k") {
        Ok(None) => Some(in_tree),
        Ok(Some(Some(v))) => Some(v.0),
        Ok(Some(None)) => panic!("the key always exists"),
        Err(_) => None,
    }
}

fn scenario(limit: usize) {
    let versions = Arc::new(Versions::<Value>::new(limit));
    let tree = Arc::new(AtomicU64::new(0));
    let writer = {
        let (versions, tree) = (versions.clone(), tree.clone());
        thread::spawn(move || {
            for _ in 0..4 {
                match versions.enter() {
                    Mode::Plain(_in_flight) => {
                        let old = tree.load(Ordering::Relaxed);
                        tree.store(old + 1, Ordering::Release);
                    }
                    Mode::Versioned => {
                        let commit = versions.commit();
                        let old = tree.load(Ordering::Relaxed);
                        commit.record(0, b"k", Some(Value(old)));
                        tree.store(old + 1, Ordering::Release);
                    }
                }
            }
        })
    };
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (versions, tree) = (versions.clone(), tree.clone());
            thread::spawn(move || {
                for _ in 0..2 {
                    let snapshot = versions.begin();
                    let first = read(&versions, &tree, snapshot);
                    thread::yield_now();
                    let second = read(&versions, &tree, snapshot);
                    match (first, second) {
                        (Some(a), Some(b)) => assert_eq!(a, b, "two values in one snapshot"),
                        (None, Some(_)) => panic!("an expired snapshot came back"),
                        _ => assert!(limit < usize::MAX, "expired without a limit"),
                    }
                    versions.end(snapshot);
                }
            })
        })
        .collect();
    writer.join().unwrap();
    for r in readers {
        r.join().unwrap();
    }
    assert_eq!(versions.entries(), 0, "every version reclaimed once no snapshot is open");
}

// PCT (few, randomly placed priority changes) finds the schedules where
// one thread runs many steps in a row, as a snapshot's start does while a
// plain write waits between its check and its store; uniformly random
// schedules almost never do.
fn explore(scenario: impl Fn() + Clone + Send + Sync + 'static, iterations: usize) {
    shuttle::check_random(scenario.clone(), iterations);
    shuttle::check_pct(scenario, iterations, 3);
}

#[test]
fn a_snapshot_reads_one_moment() {
    explore(|| scenario(usize::MAX), 10_000);
}

#[test]
fn expiry_never_gives_a_wrong_value() {
    explore(|| scenario(0), 10_000);
}

/// Two transactions increment the counter: snapshot, read, then commit
/// if no commit since the snapshot changed the key. Whatever the schedule,
/// the counter ends at the number of commits that succeeded (no lost
/// update), and at least one succeeds.
fn increments() {
    let versions = Arc::new(Versions::<Value>::new(usize::MAX));
    let tree = Arc::new(AtomicU64::new(0));
    let committed = Arc::new(AtomicU64::new(0));
    let txs: Vec<_> = (0..2)
        .map(|_| {
            let (versions, tree, committed) = (versions.clone(), tree.clone(), committed.clone());
            thread::spawn(move || {
                let snapshot = versions.begin();
                let seen = read(&versions, &tree, snapshot).unwrap();
                let mut commit = versions.commit_concurrent();
                if !commit.changed(snapshot, 0, b"k") {
                    commit.intend(0, b"k");
                    commit.unlock();
                    commit.record(0, b"k", Some(Value(tree.load(Ordering::Relaxed))));
                    tree.store(seen + 1, Ordering::Release);
                    committed.fetch_add(1, Ordering::Relaxed);
                }
                drop(commit);
                versions.end(snapshot);
            })
        })
        .collect();
    for t in txs {
        t.join().unwrap();
    }
    let committed = committed.load(Ordering::Relaxed);
    assert!(committed >= 1, "one of them commits");
    assert_eq!(tree.load(Ordering::Acquire), committed, "no update lost");
    assert_eq!(versions.entries(), 0);
}

#[test]
fn first_committer_wins() {
    explore(increments, 10_000);
}

/// Two transfers on disjoint accounts commit concurrently (each takes the
/// commit lock only to check and claim its keys, then writes while the
/// other does, and publishes in timestamp order), while a reader sums all
/// four accounts at a snapshot, twice: every sum is the total, and both
/// reads of one snapshot agree.
fn transfers() {
    const START: u64 = 10;
    let versions = Arc::new(Versions::<Value>::new(usize::MAX));
    let accounts: Arc<[AtomicU64; 4]> = Arc::new(core::array::from_fn(|_| AtomicU64::new(START)));
    let key = |i: usize| [b'a' + i as u8];
    let movers: Vec<_> = [(0usize, 1usize), (2, 3)]
        .into_iter()
        .map(|(from, to)| {
            let (versions, accounts) = (versions.clone(), accounts.clone());
            thread::spawn(move || {
                for amount in 1..3 {
                    let snapshot = versions.begin();
                    let balance = |i: usize| match versions.read(snapshot, 0, &key(i)).unwrap() {
                        None => accounts[i].load(Ordering::Acquire),
                        Some(v) => v.unwrap().0,
                    };
                    let (a, b) = (balance(from), balance(to));
                    let mut commit = versions.commit_concurrent();
                    assert!(!commit.changed(snapshot, 0, &key(from)), "only this thread writes its accounts");
                    commit.intend(0, &key(from));
                    commit.intend(0, &key(to));
                    commit.unlock();
                    for (i, new) in [(from, a - amount), (to, b + amount)] {
                        commit.record(0, &key(i), Some(Value(accounts[i].load(Ordering::Relaxed))));
                        accounts[i].store(new, Ordering::Release);
                    }
                    drop(commit);
                    versions.end(snapshot);
                }
            })
        })
        .collect();
    let reader = {
        let (versions, accounts) = (versions.clone(), accounts.clone());
        thread::spawn(move || {
            for _ in 0..2 {
                let snapshot = versions.begin();
                let sum = || -> u64 {
                    (0..4)
                        .map(|i| {
                            let in_tree = accounts[i].load(Ordering::Acquire);
                            match versions.read(snapshot, 0, &key(i)).unwrap() {
                                None => in_tree,
                                Some(v) => v.unwrap().0,
                            }
                        })
                        .sum()
                };
                let first = sum();
                thread::yield_now();
                assert_eq!(first, 4 * START, "a snapshot saw half a transfer");
                assert_eq!(sum(), first);
                versions.end(snapshot);
            }
        })
    };
    for t in movers {
        t.join().unwrap();
    }
    reader.join().unwrap();
    assert_eq!(accounts.iter().map(|a| a.load(Ordering::Acquire)).sum::<u64>(), 4 * START);
    assert_eq!(versions.entries(), 0);
}

#[test]
fn concurrent_commits_publish_whole_and_in_order() {
    explore(transfers, 10_000);
}

/// A single-key commit that started while a snapshot was open runs on
/// after the snapshot ends; meanwhile a plain write (no snapshot open, so
/// nothing kept) changes the same key. A snapshot that begins after the
/// plain write must see it (or the commit's value): never the value the
/// commit kept from before the plain write, which the store would give it
/// if the snapshot began before the commit was published.
fn commit_across_snapshots() {
    let versions = Arc::new(Versions::<Value>::new(usize::MAX));
    let tree = Arc::new(AtomicU64::new(0));
    let plain_done = Arc::new(AtomicU64::new(0));
    let slow = {
        let (versions, tree) = (versions.clone(), tree.clone());
        thread::spawn(move || match versions.enter() {
            Mode::Plain(_in_flight) => tree.store(100, Ordering::Release),
            Mode::Versioned => {
                let commit = versions.commit();
                commit.record(0, b"k", Some(Value(tree.load(Ordering::Relaxed))));
                thread::yield_now();
                tree.store(100, Ordering::Release);
            }
        })
    };
    let plain = {
        let (versions, tree, plain_done) = (versions.clone(), tree.clone(), plain_done.clone());
        thread::spawn(move || {
            match versions.enter() {
                Mode::Plain(_in_flight) => tree.store(200, Ordering::Release),
                Mode::Versioned => {
                    let commit = versions.commit();
                    commit.record(0, b"k", Some(Value(tree.load(Ordering::Relaxed))));
                    tree.store(200, Ordering::Release);
                }
            }
            plain_done.store(1, Ordering::Release);
        })
    };
    let first = versions.begin();
    thread::yield_now();
    versions.end(first);
    let wrote = plain_done.load(Ordering::Acquire) == 1;
    let second = versions.begin();
    let seen = read(&versions, &tree, second).unwrap();
    assert!(!wrote || seen != 0, "a snapshot missed a write finished before it began");
    versions.end(second);
    slow.join().unwrap();
    plain.join().unwrap();
    assert_eq!(versions.entries(), 0);
}

#[test]
fn a_snapshot_waits_for_commits_that_outlived_the_last_one() {
    explore(commit_across_snapshots, 20_000);
}
