//! The tree against `std::collections::BTreeMap`: random inserts, replaces,
//! removes, lookups and scans in both directions, with nodes capped at a
//! few entries so that splits, merges, root growth and shrink happen all
//! the time. The tree's invariants are checked after every case.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, reason = "tests: a panic is a failure")]

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;

use proptest::prelude::*;
use snowfall_btree::{BTree, Config, Direction};
use snowfall_buffer::memory::MemoryKind;

#[derive(Clone, Debug)]
enum Op {
    Insert(Vec<u8>, Vec<u8>),
    Remove(Vec<u8>),
    Get(Vec<u8>),
    Scan(Option<(Vec<u8>, bool)>, bool, usize),
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    // Short keys over a small alphabet: many collisions and shared prefixes.
    proptest::collection::vec(0u8..4, 0..6)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (key(), proptest::collection::vec(any::<u8>(), 0..24)).prop_map(|(k, v)| Op::Insert(k, v)),
        2 => key().prop_map(Op::Remove),
        1 => key().prop_map(Op::Get),
        1 => (proptest::option::of((key(), any::<bool>())), any::<bool>(), 0usize..40)
            .prop_map(|(from, fwd, n)| Op::Scan(from, fwd, n)),
    ]
}

fn model_scan(
    m: &BTreeMap<Vec<u8>, Vec<u8>>,
    from: &Option<(Vec<u8>, bool)>,
    forward: bool,
    n: usize,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let bound = |b: &Option<(Vec<u8>, bool)>| match b {
        None => Bound::Unbounded,
        Some((k, true)) => Bound::Included(k.clone()),
        Some((k, false)) => Bound::Excluded(k.clone()),
    };
    let it: Box<dyn Iterator<Item = (&Vec<u8>, &Vec<u8>)>> = if forward {
        Box::new(m.range((bound(from), Bound::Unbounded)))
    } else {
        Box::new(m.range((Bound::Unbounded, bound(from))).rev())
    };
    it.take(n).map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn run(ops: Vec<Op>, max_entries: usize, memory: MemoryKind) -> Result<(), TestCaseError> {
    let bm = common::bm(memory, 1, 64);
    let tree = BTree::create(&bm, Config { max_entries, ..Config::default() }).unwrap();
    let mut model = BTreeMap::new();
    for op in ops {
        match op {
            Op::Insert(k, v) => prop_assert_eq!(tree.insert(&k, &v).unwrap(), model.insert(k, v).is_some()),
            Op::Remove(k) => prop_assert_eq!(tree.remove(&k).unwrap(), model.remove(&k).is_some()),
            Op::Get(k) => prop_assert_eq!(tree.get(&k).unwrap(), model.get(&k).cloned()),
            Op::Scan(from, forward, n) => {
                let mut got = Vec::new();
                let bound = match &from {
                    None => Bound::Unbounded,
                    Some((k, true)) => Bound::Included(k.as_slice()),
                    Some((k, false)) => Bound::Excluded(k.as_slice()),
                };
                let dir = if forward { Direction::Forward } else { Direction::Backward };
                tree.scan(bound, dir, |k, v| {
                    if got.len() == n {
                        return false;
                    }
                    got.push((k.to_vec(), v.bytes.to_vec()));
                    got.len() < n
                })
                .unwrap();
                prop_assert_eq!(got, model_scan(&model, &from, forward, n));
            }
        }
    }
    let shape = tree.check().map_err(TestCaseError::fail)?;
    prop_assert_eq!(shape.entries, model.len() as u64);
    let mut all = Vec::new();
    tree.scan(Bound::Unbounded, Direction::Forward, |k, v| {
        all.push((k.to_vec(), v.bytes.to_vec()));
        true
    })
    .unwrap();
    prop_assert_eq!(all, model.into_iter().collect::<Vec<_>>());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn the_tree_matches_a_btreemap_with_tiny_nodes(ops in proptest::collection::vec(op(), 1..400)) {
        run(ops, 4, MemoryKind::Madvise)?;
    }

    #[test]
    fn the_tree_matches_a_btreemap_with_full_size_nodes(ops in proptest::collection::vec(op(), 1..400)) {
        run(ops, usize::MAX, MemoryKind::Madvise)?;
    }

    #[test]
    fn the_tree_matches_a_btreemap_over_the_exmap_emulation(ops in proptest::collection::vec(op(), 1..200)) {
        run(ops, 4, MemoryKind::EmulatedExmap)?;
    }
}
