//! Node layout tests. They run under Miri too (`cargo +nightly miri test -p
//! snowfall-node`), where sizes are reduced.
#![allow(clippy::big_endian_bytes, reason = "test keys are big-endian numbers so they sort like numbers")]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::vec;
use std::vec::Vec;

use proptest::prelude::*;

use crate::layout::{HEADER, INNER, LEAF, MAX_ENTRY, MAX_KEY, MIN_NODE};
use crate::{AtomicBytes, Bytes, Full, Inserted, Node, NodeMut, Torn};

const NODE: usize = 4064;

/// A node size for tests that fill nodes: smaller under Miri, which is slow.
fn small_node() -> usize {
    if cfg!(miri) { 1024 } else { NODE }
}
const ALL: usize = usize::MAX;

fn leaf(buf: &mut [u8], lower: Option<&[u8]>, upper: Option<&[u8]>) {
    NodeMut::new(buf).init(LEAF, lower, upper, 0);
}

fn contents(buf: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut copy = buf.to_vec();
    NodeMut::new(&mut copy).contents().unwrap().all().map(|(k, v)| (k.to_vec(), v.to_vec())).collect()
}

fn get(buf: &[u8], key: &[u8]) -> Option<Vec<u8>> {
    let n = Node::open(buf).unwrap();
    let (i, found) = n.search(key).unwrap();
    found.then(|| {
        let mut v = [0u8; MAX_ENTRY];
        let len = n.value_at(i, &mut v).unwrap();
        v[..len].to_vec()
    })
}

#[test]
fn inserted_keys_are_found_in_order_and_removed() {
    let mut buf = vec![0u8; NODE];
    leaf(&mut buf, None, None);
    let mut node = NodeMut::new(&mut buf);
    for k in [5u64, 1, 9, 3, 7] {
        assert_eq!(node.insert(&k.to_be_bytes(), &(k * 10).to_le_bytes(), ALL), Ok(Inserted::Added));
    }
    assert_eq!(node.insert(&3u64.to_be_bytes(), &[1, 2, 3], ALL), Ok(Inserted::Replaced));
    assert!(node.remove(&9u64.to_be_bytes()) && !node.remove(&9u64.to_be_bytes()));
    let keys: Vec<u64> = contents(&buf).iter().map(|(k, _)| u64::from_be_bytes(k[..8].try_into().unwrap())).collect();
    assert_eq!(keys, [1, 3, 5, 7]);
    assert_eq!(get(&buf, &3u64.to_be_bytes()), Some(vec![1, 2, 3]));
    assert_eq!(get(&buf, &5u64.to_be_bytes()), Some(50u64.to_le_bytes().to_vec()));
    assert_eq!(get(&buf, &4u64.to_be_bytes()), None);
}

#[test]
fn keys_are_stored_without_the_fences_common_prefix() {
    let mut buf = vec![0u8; NODE];
    leaf(&mut buf, Some(b"user:0100"), Some(b"user:0200"));
    assert_eq!(Node::open(&buf[..]).unwrap().prefix_len(), 6);
    let mut node = NodeMut::new(&mut buf);
    node.insert(b"user:0150", b"v", ALL).unwrap();
    node.insert(b"user:0101", b"w", ALL).unwrap();
    let n = Node::open(&buf[..]).unwrap();
    let mut key = [0u8; MAX_KEY];
    let len = n.key_at(0, &mut key).unwrap();
    assert_eq!(&key[..len], b"user:0101");
    // Keys outside the prefix sort before or after every entry.
    assert_eq!(n.search(b"user").unwrap(), (0, false));
    assert_eq!(n.search(b"zzz").unwrap(), (2, false));
    assert_eq!(n.search(b"user:0150").unwrap(), (1, true));
    assert!(n.covers(b"user:0150").unwrap() && !n.covers(b"user:0100").unwrap() && n.covers(b"user:0200").unwrap());
}

#[test]
fn heads_decide_most_comparisons_and_short_keys_sort_first() {
    let mut buf = vec![0u8; NODE];
    leaf(&mut buf, None, None);
    let mut node = NodeMut::new(&mut buf);
    let keys: [&[u8]; 7] = [b"", b"a", b"a\0", b"ab", b"abcd", b"abcd\0", b"abcde"];
    for k in keys.iter().rev() {
        node.insert(k, k, ALL).unwrap();
    }
    let got: Vec<Vec<u8>> = contents(&buf).into_iter().map(|(k, _)| k).collect();
    let want: Vec<Vec<u8>> = keys.iter().map(|k| k.to_vec()).collect();
    assert_eq!(got, want);
    for k in keys {
        assert_eq!(get(&buf, k).as_deref(), Some(k));
    }
}

#[test]
fn a_full_node_refuses_and_stays_unchanged() {
    let mut buf = vec![0u8; NODE];
    leaf(&mut buf, None, None);
    let mut node = NodeMut::new(&mut buf);
    let mut n = 0u64;
    while node.insert(&n.to_be_bytes(), &[7u8; 100], ALL).is_ok() {
        n += 1;
    }
    let before = buf.clone();
    let mut node = NodeMut::new(&mut buf);
    assert_eq!(node.insert(&(n + 1).to_be_bytes(), &[7u8; 100], ALL), Err(Full));
    assert_eq!(buf, before);
    // The entry cap for tests.
    let mut small = vec![0u8; NODE];
    leaf(&mut small, None, None);
    let mut node = NodeMut::new(&mut small);
    node.insert(b"a", b"1", 2).unwrap();
    node.insert(b"b", b"1", 2).unwrap();
    assert_eq!(node.insert(b"c", b"1", 2), Err(Full));
    assert_eq!(node.insert(b"a", b"2", 2), Ok(Inserted::Replaced), "replacing is not growing");
}

#[test]
fn removed_space_comes_back_through_compaction() {
    let mut buf = vec![0u8; NODE];
    leaf(&mut buf, None, None);
    let mut node = NodeMut::new(&mut buf);
    let rounds = if cfg!(miri) { 3 } else { 50 };
    for round in 0..rounds {
        for k in 0..20u64 {
            node.insert(&k.to_be_bytes(), &[round as u8; 40], ALL).unwrap();
        }
        for k in 0..20u64 {
            assert!(node.remove(&k.to_be_bytes()));
        }
    }
    assert_eq!(Node::open(&buf[..]).unwrap().count(), 0);
    let mut node = NodeMut::new(&mut buf);
    node.compact();
    assert_eq!(node.free_space(), node.reclaimable());
    assert_eq!(node.free_space(), NODE - HEADER);
}

fn fill(buf: &mut [u8], keys: impl Iterator<Item = u64>, value_len: usize) -> Vec<u64> {
    let mut node = NodeMut::new(buf);
    keys.take_while(|k| node.insert(&k.to_be_bytes(), &vec![*k as u8; value_len], ALL).is_ok()).collect()
}

#[test]
fn a_leaf_split_divides_its_keys_at_the_separator() {
    let mut buf = vec![0u8; small_node()];
    leaf(&mut buf, Some(&10u64.to_be_bytes()), Some(&100_000u64.to_be_bytes()));
    let keys = fill(&mut buf, (11u64..).step_by(3), 16);
    let mut right_buf = vec![0u8; small_node()];
    let sep = NodeMut::new(&mut buf).split(&mut NodeMut::new(&mut right_buf), &[]).unwrap();
    let (l, r) = (contents(&buf), contents(&right_buf));
    assert!(l.len().abs_diff(r.len()) <= 1, "{} vs {}", l.len(), r.len());
    assert!(
        l.iter().all(|(k, _)| k.as_slice() <= sep.as_slice()) && r.iter().all(|(k, _)| k.as_slice() > sep.as_slice())
    );
    let all: Vec<u64> = l.iter().chain(&r).map(|(k, _)| u64::from_be_bytes(k[..8].try_into().unwrap())).collect();
    assert_eq!(all, keys);
    let (ln, rn) = (Node::open(&buf[..]).unwrap(), Node::open(&right_buf[..]).unwrap());
    let mut f = [0u8; MAX_KEY];
    assert_eq!(ln.fence(ln.upper(), &mut f).unwrap(), Some(sep.len()));
    assert_eq!(&f[..sep.len()], sep.as_slice());
    assert_eq!(rn.fence(rn.lower(), &mut f).unwrap(), Some(sep.len()));
    // Merging back restores every entry.
    NodeMut::new(&mut buf).merge(&NodeMut::new(&mut right_buf), &sep).unwrap();
    let merged: Vec<u64> = contents(&buf).iter().map(|(k, _)| u64::from_be_bytes(k[..8].try_into().unwrap())).collect();
    assert_eq!(merged, keys);
}

#[test]
fn an_inner_split_moves_the_middle_separator_up() {
    let mut buf = vec![0u8; small_node()];
    NodeMut::new(&mut buf).init(INNER, None, None, 999);
    let mut node = NodeMut::new(&mut buf);
    for k in 0..40u64 {
        node.insert(&(k * 10).to_be_bytes(), &(1000 + k).to_le_bytes(), ALL).unwrap();
    }
    let mut right_buf = vec![0u8; small_node()];
    let sep = NodeMut::new(&mut buf).split(&mut NodeMut::new(&mut right_buf), &[]).unwrap();
    let (l, r) = (Node::open(&buf[..]).unwrap(), Node::open(&right_buf[..]).unwrap());
    assert_eq!(l.count() + r.count() + 1, 40, "the separator left both halves");
    let sep_key = u64::from_be_bytes(sep[..8].try_into().unwrap());
    // The separator's child became the left half's right child.
    assert_eq!(l.right_child().unwrap(), 1000 + sep_key / 10);
    assert_eq!(r.right_child().unwrap(), 999);
    assert_eq!(l.child_for(&(sep_key - 5).to_be_bytes()).unwrap().1, 1000 + sep_key / 10);
    assert_eq!(r.child_for(&(sep_key + 5).to_be_bytes()).unwrap().1, 1000 + sep_key / 10 + 1);
    // And merging takes it back down.
    NodeMut::new(&mut buf).merge(&NodeMut::new(&mut right_buf), &sep).unwrap();
    let n = Node::open(&buf[..]).unwrap();
    assert_eq!(n.count(), 40);
    assert_eq!(n.child_for(&sep).unwrap().1, 1000 + sep_key / 10);
}

#[test]
fn the_largest_entries_and_fences_fit_a_node() {
    const { assert!(MIN_NODE <= NODE) };
    let mut buf = vec![0u8; NODE];
    let lower = vec![1u8; MAX_KEY];
    let upper = vec![2u8; MAX_KEY];
    leaf(&mut buf, Some(&lower), Some(&upper));
    let mut key = vec![1u8; MAX_ENTRY];
    key[0] = 1;
    key[MAX_ENTRY - 1] = 9;
    assert_eq!(NodeMut::new(&mut buf).insert(&key, b"", ALL), Ok(Inserted::Added));
}

#[test]
fn garbage_is_torn_never_a_panic() {
    // A zeroed node, and deterministic pseudo-random bytes.
    let zero = vec![0u8; 512];
    assert_eq!(Node::open(&zero[..]).err(), Some(Torn));
    let rounds = if cfg!(miri) { 8 } else { 20_000 };
    let mut x = 0x1234_5678_9abc_def0u64;
    let mut buf = vec![0u8; 256];
    for round in 0..rounds {
        for b in buf.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        // Make the header plausible half the time, to get past `open`.
        if round % 2 == 0 {
            buf[0] = if round % 4 == 0 { LEAF } else { INNER };
            buf[2] = (x % 8) as u8;
            buf[3] = 0;
            buf[5] = 0;
            buf[4] = 100 + (x % 100) as u8;
        }
        exercise(&buf[..]);
    }
}

fn exercise<B: Bytes + ?Sized>(b: &B) {
    crate::read::read_everything(b);
}

#[test]
fn an_optimistic_reader_racing_a_writer_only_trusts_validated_reads() {
    // A node in atomics with a seqlock version; the writer republishes it
    // with "inv" -> the version it writes, and other keys coming and going.
    const LEN: usize = 1024;
    let page: Vec<AtomicU8> = (0..LEN).map(|_| AtomicU8::new(0)).collect();
    let version = AtomicU64::new(0);
    let shared = AtomicBytes(&page);
    let mut local = vec![0u8; LEN];
    leaf(&mut local, None, None);
    NodeMut::new(&mut local).insert(b"inv", &0u64.to_le_bytes(), ALL).unwrap();
    shared.store(0, &local);
    let rounds: u64 = if cfg!(miri) { 12 } else { 3_000 };
    let writer_done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            for v in 1..=rounds {
                let mut node = NodeMut::new(&mut local);
                node.insert(b"inv", &v.to_le_bytes(), ALL).unwrap();
                let k = (v % 40).to_be_bytes();
                if !node.remove(&k) {
                    let _ = node.insert(&k, &[v as u8; 9], ALL);
                }
                version.fetch_add(1, Ordering::AcqRel); // odd: writing
                std::sync::atomic::fence(Ordering::Release);
                shared.store(0, &local);
                version.fetch_add(1, Ordering::Release); // even: stable
            }
            writer_done.store(true, Ordering::Release);
        });
        s.spawn(|| {
            let mut validated = 0;
            // Race the writer; once it is done, one more read must validate.
            loop {
                let last = writer_done.load(Ordering::Acquire);
                let before = version.load(Ordering::Acquire);
                if before % 2 == 1 {
                    continue;
                }
                let read = Node::open(&shared).and_then(|n| {
                    let (i, found) = n.search(b"inv")?;
                    let mut v = [0u8; 8];
                    n.value_at(i, &mut v)?;
                    exercise(&shared);
                    Ok((found, u64::from_le_bytes(v)))
                });
                std::sync::atomic::fence(Ordering::Acquire);
                if version.load(Ordering::Relaxed) == before {
                    // Validated: the bytes were a consistent snapshot.
                    assert_eq!(read, Ok((true, before / 2)), "a validated read saw a torn node");
                    validated += 1;
                }
                if last {
                    break;
                }
            }
            assert!(validated > 0);
        });
    });
}

proptest! {
    // Under Miri: few cases, and no regression file (no file system there).
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 4 } else { 256 },
        failure_persistence: if cfg!(miri) { None } else { ProptestConfig::default().failure_persistence },
        ..ProptestConfig::default()
    })]

    /// A node behaves like a BTreeMap for as long as the entries fit.
    #[test]
    fn a_node_matches_a_btreemap(ops in proptest::collection::vec(
        (0u8..3, proptest::collection::vec(0u8..4, 0..12), proptest::collection::vec(any::<u8>(), 0..40)),
        1..if cfg!(miri) { 40 } else { 200 },
    )) {
        let mut buf = vec![0u8; small_node()];
        leaf(&mut buf, None, None);
        let mut model = BTreeMap::new();
        for (op, key, value) in ops {
            let mut node = NodeMut::new(&mut buf);
            match op {
                0 => match node.insert(&key, &value, ALL) {
                    Ok(Inserted::Added) => prop_assert!(model.insert(key, value).is_none()),
                    Ok(Inserted::Replaced) => prop_assert!(model.insert(key, value).is_some()),
                    Err(Full) => {}
                },
                1 => prop_assert_eq!(node.remove(&key), model.remove(&key).is_some()),
                _ => prop_assert_eq!(get(&buf, &key), model.get(&key).cloned()),
            }
        }
        let want: Vec<(Vec<u8>, Vec<u8>)> = model.into_iter().collect();
        prop_assert_eq!(contents(&buf), want);
    }
}
