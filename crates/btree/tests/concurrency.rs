//! Threads insert, replace, remove, look up and scan over overlapping key
//! ranges, with the buffer pool much smaller than the tree. Every thread
//! owns the keys `k % THREADS == t` (it alone changes them, and keeps a
//! model of them); keys `k % 10 == 0` are never changed. Scans must come
//! back in strict order without duplicates, and with every untouched key
//! in the range they covered. At the end the tree must hold exactly the
//! stable keys plus every thread's model, and pass its invariant check.
//! Seeded and bounded; `SNOWFALL_SEED` reruns a seed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, reason = "tests: a panic is a failure")]
#![allow(clippy::big_endian_bytes, reason = "keys sort like numbers")]

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;

use common::key;
use snowfall_btree::{BTree, Config, Direction};
use snowfall_buffer::memory::MemoryKind;

const THREADS: u64 = 4;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        common::splitmix64(self.0)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn stable(k: u64) -> bool {
    k.is_multiple_of(10)
}

fn value(k: u64, version: u64) -> Vec<u8> {
    let mut v = k.to_le_bytes().to_vec();
    v.extend_from_slice(&version.to_le_bytes()[..(version % 9) as usize]);
    v
}

fn run(memory: MemoryKind, keys: u64, ops: u64, seed: u64, max_entries: usize) {
    // 1 MiB: the keys, loaded in order, fill their pages, and even 60 K of
    // them take more.
    let bm = common::bm(memory, 1, 1024);
    let tree = BTree::create(&bm, Config { max_entries, ..Config::default() }).unwrap();
    for k in 0..keys {
        tree.insert(&key(k), &value(k, 0)).unwrap();
    }
    let models: Vec<BTreeMap<u64, Vec<u8>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let tree = &tree;
                s.spawn(move || {
                    let mut rng = Rng(seed ^ (t + 1).wrapping_mul(0xA24B_AED4_963E_E407));
                    let mut mine: BTreeMap<u64, Vec<u8>> =
                        (0..keys).filter(|k| k % THREADS == t && !stable(*k)).map(|k| (k, value(k, 0))).collect();
                    for op in 0..ops {
                        let k = rng.below(keys);
                        let own = k % THREADS == t && !stable(k);
                        match rng.below(10) {
                            0..=2 if own => {
                                let v = value(k, op);
                                let existed = tree.insert(&key(k), &v).unwrap();
                                assert_eq!(existed, mine.insert(k, v).is_some(), "seed {seed:#x}: insert {k}");
                            }
                            3..=4 if own => {
                                let removed = tree.remove(&key(k)).unwrap();
                                assert_eq!(removed, mine.remove(&k).is_some(), "seed {seed:#x}: remove {k}");
                            }
                            5..=7 => {
                                // Copied out, or read in place under the leaf's latch.
                                let got = if op % 2 == 0 {
                                    tree.get(&key(k)).unwrap()
                                } else {
                                    tree.get_with(&key(k), |v| v.bytes.to_vec()).unwrap()
                                };
                                if stable(k) {
                                    assert_eq!(got, Some(value(k, 0)), "seed {seed:#x}: stable key {k}");
                                } else if own {
                                    assert_eq!(got.as_ref(), mine.get(&k), "seed {seed:#x}: own key {k}");
                                }
                            }
                            _ => scan_and_check(tree, k, rng.below(2) == 0, 1 + rng.below(300) as usize, seed),
                        }
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let shape = tree.check().unwrap_or_else(|e| panic!("seed {seed:#x}: {e}"));
    let mut want: BTreeMap<u64, Vec<u8>> = (0..keys).filter(|k| stable(*k)).map(|k| (k, value(k, 0))).collect();
    for m in models {
        want.extend(m);
    }
    let mut got = Vec::new();
    tree.scan(Bound::Unbounded, Direction::Forward, |k, v| {
        got.push((u64::from_be_bytes(k.try_into().unwrap()), v.bytes.to_vec()));
        true
    })
    .unwrap();
    assert_eq!(got.len(), want.len(), "seed {seed:#x}");
    assert!(got.into_iter().eq(want), "seed {seed:#x}: final contents differ");
    let stats = bm.stats();
    eprintln!("{memory:?} seed {seed:#x}: {shape:?}, {stats:?}");
    assert!(stats.evictions > 0, "the pool never overflowed");
}

/// Scans `n` keys from `start` and checks order, uniqueness, and that the
/// stable keys in the covered range are all there.
fn scan_and_check(tree: &BTree<'_>, start: u64, forward: bool, n: usize, seed: u64) {
    let mut seen = Vec::with_capacity(n);
    let dir = if forward { Direction::Forward } else { Direction::Backward };
    tree.scan(Bound::Included(&key(start)), dir, |k, _| {
        seen.push(u64::from_be_bytes(k.try_into().unwrap()));
        seen.len() < n
    })
    .unwrap();
    let ordered = seen.windows(2).all(|w| if forward { w[0] < w[1] } else { w[0] > w[1] });
    assert!(ordered, "seed {seed:#x}: scan from {start} out of order or repeated: {seen:?}");
    let Some(&last) = seen.last() else { return };
    let (lo, hi) = if forward { (start, last) } else { (last, start) };
    let missing = (lo..=hi)
        .filter(|&k| stable(k))
        .find(|k| seen.binary_search_by(|s| if forward { s.cmp(k) } else { k.cmp(s) }).is_err());
    assert!(
        missing.is_none(),
        "seed {seed:#x}: scan from {start} ({}) skipped stable key {missing:?}",
        if forward { "forward" } else { "backward" }
    );
}

fn seed(default: u64) -> u64 {
    std::env::var("SNOWFALL_SEED")
        .ok()
        .and_then(|s| s.strip_prefix("0x").map_or(s.parse().ok(), |h| u64::from_str_radix(h, 16).ok()))
        .unwrap_or(default)
}

#[test]
fn mixed_operations_on_four_threads_keep_the_tree_exact() {
    let ops = if cfg!(debug_assertions) { 6_000 } else { 40_000 };
    run(MemoryKind::Madvise, 100_000, ops, seed(0xB7EE_0001), usize::MAX);
}

#[test]
fn the_same_over_the_exmap_emulation() {
    let ops = if cfg!(debug_assertions) { 3_000 } else { 20_000 };
    run(MemoryKind::EmulatedExmap, 60_000, ops, seed(0xB7EE_0002), usize::MAX);
}

#[test]
fn tiny_nodes_split_and_merge_under_concurrency() {
    // Four entries a node: structure changes on nearly every write.
    let ops = if cfg!(debug_assertions) { 3_000 } else { 20_000 };
    run(MemoryKind::Madvise, 4_000, ops, seed(0xB7EE_0003), 4);
}
