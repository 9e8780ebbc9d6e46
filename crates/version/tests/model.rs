//! The store against a model that keeps a whole copy of the data per
//! snapshot: random sequences of snapshots opening and closing, commits
//! (recorded before they change a `BTreeMap` standing in for the tree) and
//! plain writes, point and range reads at every open snapshot, and the
//! conflict checks. With a small limit, snapshots expire: an expired one
//! reads nothing (always `Expired` from then on), a live one always reads
//! its copy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, reason = "tests: a panic is a failure")]

use std::collections::BTreeMap;
use std::ops::Bound;

use proptest::prelude::*;
use snowfall_version::{Mode, Snapshot, TreeId, Versions, Weigh};

#[derive(Clone, Debug, PartialEq)]
struct Value(Vec<u8>);

impl Weigh for Value {
    fn weight(&self) -> usize {
        self.0.len()
    }
}

type Data = BTreeMap<(TreeId, Vec<u8>), Vec<u8>>;

#[derive(Clone, Debug)]
enum Op {
    Begin,
    End(usize),
    /// Writes at snapshot `usize` (if open: its conflict checks are
    /// compared with the model), or plain writes.
    Commit(Option<usize>, Vec<(TreeId, u8, Option<u8>)>),
    Read(usize, TreeId, u8),
    Range(usize, TreeId, u8, u8),
}

fn op() -> impl Strategy<Value = Op> {
    let write = (0..2u64, 0..16u8, proptest::option::of(any::<u8>()));
    prop_oneof![
        1 => Just(Op::Begin),
        1 => (0..8usize).prop_map(Op::End),
        3 => (proptest::option::of(0..8usize), proptest::collection::vec(write, 1..5)).prop_map(|(s, w)| Op::Commit(s, w)),
        3 => (0..8usize, 0..2u64, 0..16u8).prop_map(|(s, t, k)| Op::Read(s, t, k)),
        1 => (0..8usize, 0..2u64, 0..16u8, 0..16u8).prop_map(|(s, t, a, b)| Op::Range(s, t, a, b)),
    ]
}

fn key(k: u8) -> Vec<u8> {
    // Keys of different lengths, so that byte order matters.
    vec![b'k'; usize::from(k % 3) + 1].into_iter().chain([k]).collect()
}

struct Open {
    snapshot: Snapshot,
    data: Data,
    expired: bool,
}

fn run(ops: Vec<Op>, limit: usize) {
    let versions: Versions<Value> = Versions::new(limit);
    let mut tree: Data = BTreeMap::new();
    // Per key, the last commit that wrote it.
    let mut written: BTreeMap<(TreeId, Vec<u8>), u64> = BTreeMap::new();
    let mut open: Vec<Open> = Vec::new();
    let mut expiries = 0;
    for op in ops {
        match op {
            Op::Begin => {
                let snapshot = versions.begin();
                assert_eq!(snapshot.ts(), versions.visible());
                open.push(Open { snapshot, data: tree.clone(), expired: false });
            }
            Op::End(i) => {
                if i < open.len() {
                    versions.end(open.remove(i).snapshot);
                }
                if open.is_empty() {
                    assert_eq!(versions.entries(), 0, "no snapshot, no versions");
                    assert!(matches!(versions.enter(), Mode::Plain(_)));
                }
            }
            Op::Commit(at, writes) => {
                let mode = versions.enter();
                assert_eq!(matches!(mode, Mode::Plain(_)), open.is_empty());
                if let Mode::Plain(_) = mode {
                    for (t, k, v) in writes {
                        set(&mut tree, t, key(k), v);
                    }
                    continue;
                }
                // A transaction's commit (at a snapshot) claims its keys and
                // writes after the lock is released, as the database's do;
                // a single write or batch runs alone, each write recorded.
                let concurrent = at.is_some();
                let mut commit = if concurrent { versions.commit_concurrent() } else { versions.commit() };
                // An expired snapshot's commit fails whatever it wrote: its
                // conflicts may have been reclaimed with its versions.
                if let Some(s) = at.and_then(|i| open.get(i)).filter(|s| versions.check(s.snapshot).is_ok()) {
                    for &(t, k, _) in &writes {
                        let model = written.get(&(t, key(k))).is_some_and(|&ts| ts > s.snapshot.ts());
                        assert_eq!(commit.changed(s.snapshot, t, &key(k)), model, "conflict on {t}/{k}");
                    }
                    let (a, b) = (key(0), key(9));
                    let model = written.range((t0(0, &a), t0(0, &b))).any(|(_, &ts)| ts > s.snapshot.ts());
                    assert_eq!(commit.changed_in(s.snapshot, 0, Bound::Included(&a), Bound::Included(&b)), model);
                }
                let writes = if concurrent {
                    // A transaction writes each key once (its last value).
                    let last: BTreeMap<_, _> = writes.into_iter().map(|(t, k, v)| ((t, k), v)).collect();
                    for &(t, k) in last.keys() {
                        commit.intend(t, &key(k));
                    }
                    commit.unlock();
                    last.into_iter().map(|((t, k), v)| (t, k, v)).collect()
                } else {
                    writes
                };
                for (t, k, v) in writes {
                    let before = tree.get(&(t, key(k))).cloned().map(Value);
                    commit.record(t, &key(k), before);
                    set(&mut tree, t, key(k), v);
                    written.insert((t, key(k)), commit.ts());
                }
            }
            Op::Read(i, t, k) => {
                let Some(s) = open.get_mut(i) else { continue };
                let from_tree = tree.get(&(t, key(k))).cloned();
                match versions.read(s.snapshot, t, &key(k)) {
                    Ok(got) => {
                        assert!(!s.expired, "an expired snapshot read");
                        let got = got.map_or(from_tree, |v| v.map(|v| v.0));
                        assert_eq!(got, s.data.get(&(t, key(k))).cloned(), "{t}/{k} at {}", s.snapshot.ts());
                    }
                    Err(e) => {
                        assert_eq!(e.ts, s.snapshot.ts());
                        expiries += usize::from(!s.expired);
                        s.expired = true;
                    }
                }
            }
            Op::Range(i, t, a, b) => {
                let Some(s) = open.get_mut(i) else { continue };
                let (a, b) = (key(a), key(b));
                if a > b {
                    continue;
                }
                let mut merged: BTreeMap<Vec<u8>, Vec<u8>> =
                    tree.range((t0(t, &a), t0(t, &b))).map(|((_, k), v)| (k.clone(), v.clone())).collect();
                match versions.read_range(s.snapshot, t, Bound::Included(&a), Bound::Included(&b)) {
                    Ok(changed) => {
                        assert!(!s.expired);
                        for (k, v) in changed {
                            match v {
                                Some(v) => merged.insert(k, v.0),
                                None => merged.remove(&k),
                            };
                        }
                        let model: BTreeMap<Vec<u8>, Vec<u8>> =
                            s.data.range((t0(t, &a), t0(t, &b))).map(|((_, k), v)| (k.clone(), v.clone())).collect();
                        assert_eq!(merged, model);
                    }
                    Err(_) => s.expired = true,
                }
            }
        }
        // Past the limit, snapshots expire until it holds again; oldest first.
        assert!(versions.bytes() <= limit, "{} bytes over {limit}", versions.bytes());
        for a in &open {
            let expired = versions.check(a.snapshot).is_err();
            assert!(expired || !a.expired, "expiry is for good");
            if limit == usize::MAX {
                assert!(!expired, "nothing expires without a limit");
            }
            for b in &open {
                assert!(!(b.snapshot.ts() > a.snapshot.ts() && versions.check(b.snapshot).is_err() && !expired));
            }
        }
    }
    if limit == usize::MAX {
        assert_eq!(expiries, 0);
    }
    for s in open {
        versions.end(s.snapshot);
    }
    assert_eq!((versions.entries(), versions.bytes()), (0, 0));
}

fn t0(t: TreeId, k: &[u8]) -> Bound<(TreeId, Vec<u8>)> {
    Bound::Included((t, k.to_vec()))
}

fn set(tree: &mut Data, t: TreeId, k: Vec<u8>, v: Option<u8>) {
    match v {
        Some(v) => tree.insert((t, k), vec![v; usize::from(v % 7)]),
        None => tree.remove(&(t, k)),
    };
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn reads_at_a_snapshot_see_its_moment(ops in proptest::collection::vec(op(), 1..120)) {
        run(ops, usize::MAX);
    }

    #[test]
    fn past_the_limit_the_oldest_snapshots_expire_and_nothing_else_changes(
        ops in proptest::collection::vec(op(), 1..120),
        limit in 0..2_000usize,
    ) {
        run(ops, limit);
    }
}

/// A long reader under a stream of commits: the store stays near its
/// limit, the reader expires, a new reader reads the newest values.
#[test]
fn a_reader_that_never_ends_is_expired_not_paid_for() {
    let versions: Versions<Value> = Versions::new(64 << 10);
    let old = versions.begin();
    let mut peak = 0;
    for i in 0..100_000u32 {
        let commit = versions.commit();
        commit.record(0, &i.to_le_bytes(), Some(Value(vec![0; 100])));
        drop(commit);
        peak = peak.max(versions.bytes());
    }
    assert!(peak <= (64 << 10) + 400, "peak {peak}");
    assert!(versions.read(old, 0, b"x").is_err(), "the old reader expired");
    let new = versions.begin();
    assert_eq!(versions.read(new, 0, &5u32.to_le_bytes()), Ok(None));
    versions.end(new);
    versions.end(old);
    assert_eq!(versions.entries(), 0);
}
