//! Transactions against a model that replays the commit order: random
//! interleavings of up to four open transactions (snapshot isolation or
//! serializable), snapshots and single-key writes, on one thread so that
//! the interleaving is the test's. The model keeps every committed state;
//! a transaction reads its begin state plus its own writes, and commits
//! if and only if no key it wrote (serializable: read, or in a range it
//! scanned) was written by a commit since it began. At the end the
//! database equals the model's last state, and so does a reopen.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{TempPath, small};
use proptest::prelude::*;
use snowfall_db::{Database, Durability, Error, WriteTx};

type State = BTreeMap<Vec<u8>, Vec<u8>>;

#[derive(Clone, Debug)]
enum Op {
    Begin {
        serializable: bool,
    },
    Get {
        tx: usize,
        key: u8,
    },
    Scan {
        tx: usize,
        low: u8,
        high: u8,
    },
    Insert {
        tx: usize,
        key: u8,
        len: usize,
    },
    Remove {
        tx: usize,
        key: u8,
    },
    Commit {
        tx: usize,
    },
    Abort {
        tx: usize,
    },
    /// A single-key write outside the transactions.
    Plain {
        key: u8,
        len: usize,
    },
    /// A snapshot read of everything, checked against the state it began at.
    Snapshot,
}

fn op() -> impl Strategy<Value = Op> {
    // Mostly small values; one in ten large (an extent).
    let len = prop_oneof![9 => 0..40usize, 1 => 2_000..9_000usize];
    prop_oneof![
        2 => any::<bool>().prop_map(|serializable| Op::Begin { serializable }),
        4 => (0..4usize, 0..12u8).prop_map(|(tx, key)| Op::Get { tx, key }),
        3 => (0..4usize, 0..12u8, 0..12u8).prop_map(|(tx, low, high)| Op::Scan { tx, low, high }),
        4 => (0..4usize, 0..12u8, len.clone()).prop_map(|(tx, key, len)| Op::Insert { tx, key, len }),
        1 => (0..4usize, 0..12u8).prop_map(|(tx, key)| Op::Remove { tx, key }),
        2 => (0..4usize).prop_map(|tx| Op::Commit { tx }),
        1 => (0..4usize).prop_map(|tx| Op::Abort { tx }),
        1 => (0..12u8, len).prop_map(|(key, len)| Op::Plain { key, len }),
        1 => Just(Op::Snapshot),
    ]
}

fn key(k: u8) -> Vec<u8> {
    vec![b'k', k]
}

/// A value that names its writer and length.
fn value(n: usize, len: usize) -> Vec<u8> {
    (0..len.max(2)).map(|i| (n + i) as u8).collect()
}

struct Open<'db> {
    tx: WriteTx<'db>,
    serializable: bool,
    /// The committed state it began at, and its commit count then.
    base: State,
    began: usize,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    reads: BTreeSet<Vec<u8>>,
    scans: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Open<'_> {
    fn sees(&self, k: &[u8]) -> Option<Vec<u8>> {
        match self.writes.get(k) {
            Some(w) => w.clone(),
            None => self.base.get(k).cloned(),
        }
    }
}

fn run(ops: Vec<Op>) {
    let path = TempPath::new("tx-model");
    let db = Database::open(path.str(), small()).unwrap();
    db.tree("t").unwrap();
    // Every committed state; each commit's written keys.
    let mut states: Vec<State> = vec![State::new()];
    let mut written: Vec<BTreeSet<Vec<u8>>> = vec![BTreeSet::new()];
    let mut open: Vec<Open<'_>> = Vec::new();
    let mut n = 0;
    for op in ops {
        n += 1;
        match op {
            Op::Begin { serializable } => {
                if open.len() < 4 {
                    let tx = if serializable { db.begin_serializable() } else { db.begin_write() }.unwrap();
                    let base = states.last().unwrap().clone();
                    let began = states.len() - 1;
                    open.push(Open {
                        tx,
                        serializable,
                        base,
                        began,
                        writes: BTreeMap::new(),
                        reads: BTreeSet::new(),
                        scans: Vec::new(),
                    });
                }
            }
            Op::Get { tx, key: k } => {
                let Some(o) = open.get_mut(tx) else { continue };
                let got = o.tx.tree("t").unwrap().get(&key(k)).unwrap();
                assert_eq!(got, o.sees(&key(k)), "tx {tx} reads {k}");
                o.reads.insert(key(k));
            }
            Op::Scan { tx, low, high } => {
                let Some(o) = open.get_mut(tx) else { continue };
                let (low, high) = (key(low.min(high)), key(low.max(high)));
                let got: Vec<_> =
                    o.tx.tree("t").unwrap().range(low.as_slice()..=high.as_slice()).map(Result::unwrap).collect();
                let mut model = o.base.clone();
                for (k, w) in &o.writes {
                    match w {
                        Some(v) => model.insert(k.clone(), v.clone()),
                        None => model.remove(k),
                    };
                }
                let model: Vec<_> =
                    model.range(low.clone()..=high.clone()).map(|(k, v)| (k.clone(), v.clone())).collect();
                assert_eq!(got, model, "tx {tx} scans");
                let back: Vec<_> =
                    o.tx.tree("t").unwrap().range(low.as_slice()..=high.as_slice()).rev().map(Result::unwrap).collect();
                assert_eq!(back, model.iter().rev().cloned().collect::<Vec<_>>(), "tx {tx} scans backwards");
                o.scans.push((low, high));
            }
            Op::Insert { tx, key: k, len } => {
                let Some(o) = open.get_mut(tx) else { continue };
                let v = value(n, len);
                o.tx.tree("t").unwrap().insert(&key(k), &v).unwrap();
                o.writes.insert(key(k), Some(v));
            }
            Op::Remove { tx, key: k } => {
                let Some(o) = open.get_mut(tx) else { continue };
                o.tx.tree("t").unwrap().remove(&key(k)).unwrap();
                o.writes.insert(key(k), None);
            }
            Op::Abort { tx } => {
                if tx < open.len() {
                    open.remove(tx).tx.abort();
                }
            }
            Op::Commit { tx } => {
                if tx >= open.len() {
                    continue;
                }
                let o = open.remove(tx);
                let since: BTreeSet<&Vec<u8>> = written[o.began + 1..].iter().flatten().collect();
                let mut conflict = o.writes.keys().any(|k| since.contains(k));
                // A transaction that wrote nothing commits at once: its
                // snapshot is a prefix of the commit order.
                if o.serializable && !o.writes.is_empty() {
                    conflict |= o.reads.iter().any(|k| since.contains(k));
                    conflict |= o.scans.iter().any(|(l, h)| since.iter().any(|k| *k >= l && *k <= h));
                }
                let result = o.tx.commit(Durability::None);
                assert_eq!(matches!(result, Err(Error::Conflict { .. })), conflict, "commit of tx {tx}: {result:?}");
                if !conflict {
                    result.unwrap();
                    if !o.writes.is_empty() {
                        let mut state = states.last().unwrap().clone();
                        for (k, w) in &o.writes {
                            match w {
                                Some(v) => state.insert(k.clone(), v.clone()),
                                None => state.remove(k),
                            };
                        }
                        states.push(state);
                        written.push(o.writes.keys().cloned().collect());
                    }
                }
            }
            Op::Plain { key: k, len } => {
                let v = value(n, len);
                db.existing_tree("t").unwrap().insert_with(&key(k), &v, Durability::None).unwrap();
                let mut state = states.last().unwrap().clone();
                state.insert(key(k), v);
                states.push(state);
                written.push([key(k)].into_iter().collect());
            }
            Op::Snapshot => {
                let r = db.begin_read().unwrap();
                let got: State = r.tree("t").unwrap().range::<[u8]>(..).map(Result::unwrap).collect();
                assert_eq!(&got, states.last().unwrap(), "a snapshot sees the last commit");
            }
        }
    }
    drop(open);
    let now: State = db.existing_tree("t").unwrap().range::<[u8]>(..).map(Result::unwrap).collect();
    assert_eq!(&now, states.last().unwrap());
    assert_eq!(db.stats().versions, 0, "no snapshot, no versions");
    db.check().unwrap();
    db.close().unwrap();
    let db = Database::open(path.str(), small()).unwrap();
    let again: State = db.existing_tree("t").unwrap().range::<[u8]>(..).map(Result::unwrap).collect();
    assert_eq!(&again, states.last().unwrap(), "after a reopen");
    db.close().unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn transactions_commit_as_the_model_says(ops in proptest::collection::vec(op(), 1..80)) {
        run(ops);
    }
}
