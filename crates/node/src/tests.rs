//! Node layout tests. They run under Miri too (`cargo +nightly miri test -p
//! snowfall-node`), where sizes are reduced.
#![allow(clippy::big_endian_bytes, reason = "test keys are big-endian numbers so they sort like numbers")]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::vec;
use std::vec::Vec;

use proptest::prelude::*;

use crate::layout::{HEADER, INNER, LEAF, MAX_ENTRY, MAX_KEY, MIN_NODE};
use crate::{AtomicBytes, Bytes, Entry, Full, Inserted, Node, NodeMut, SplitKind, Torn};

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
    NodeMut::new(&mut copy).contents().unwrap().all().map(|e| (e.key.to_vec(), e.value.to_vec())).collect()
}

/// Entries with whether each value is a reference.
fn flagged(buf: &[u8]) -> Vec<(Vec<u8>, Vec<u8>, bool)> {
    let mut copy = buf.to_vec();
    NodeMut::new(&mut copy).contents().unwrap().all().map(|e| (e.key.to_vec(), e.value.to_vec(), e.reference)).collect()
}

/// The value of `key` and whether it is a reference.
fn get_flagged(buf: &[u8], key: &[u8]) -> Option<(Vec<u8>, bool)> {
    let n = Node::open(buf).unwrap();
    let (i, found) = n.search(key).unwrap();
    found.then(|| {
        let mut v = [0u8; MAX_ENTRY];
        let (len, reference) = n.value_kind_at(i, &mut v).unwrap();
        assert_eq!(n.is_reference(i).unwrap(), reference);
        (v[..len].to_vec(), reference)
    })
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
fn references_keep_their_flag_through_replace_split_merge_and_compaction() {
    let mut buf = vec![0u8; NODE];
    leaf(&mut buf, None, None);
    let mut node = NodeMut::new(&mut buf);
    assert!(!node.has_references());
    let reference = |key: &'static [u8], value: &'static [u8]| Entry { key, value, reference: true };
    // Short references (the 2-byte length form is forced) and long ones.
    assert_eq!(node.insert_entry(reference(b"a", &[7; 37]), ALL), Ok(Inserted::Added));
    assert_eq!(node.insert_entry(reference(b"c", &[9; 200]), ALL), Ok(Inserted::Added));
    assert_eq!(node.insert(b"b", &[7; 37], ALL), Ok(Inserted::Added));
    assert!(node.has_references());
    assert_eq!(get_flagged(&buf, b"a"), Some((vec![7; 37], true)));
    assert_eq!(get_flagged(&buf, b"b"), Some((vec![7; 37], false)));
    // A value of the same length but the other kind is not overwritten in place.
    let mut node = NodeMut::new(&mut buf);
    assert_eq!(node.insert(b"a", &[7; 37], ALL), Ok(Inserted::Replaced));
    assert_eq!(node.insert_entry(reference(b"b", &[7; 37]), ALL), Ok(Inserted::Replaced));
    assert_eq!(get_flagged(&buf, b"a"), Some((vec![7; 37], false)));
    assert_eq!(get_flagged(&buf, b"b"), Some((vec![7; 37], true)));
    let mut node = NodeMut::new(&mut buf);
    node.remove(b"a");
    node.compact();
    assert_eq!(flagged(&buf), [(b"b".to_vec(), vec![7; 37], true), (b"c".to_vec(), vec![9; 200], true)]);
    // Split and merge back.
    let mut right = vec![0u8; NODE];
    let sep = NodeMut::new(&mut buf).split(&mut NodeMut::new(&mut right), b"d", SplitKind::Balanced).unwrap();
    assert!(!sep.is_empty());
    assert_eq!([flagged(&buf), flagged(&right)].concat().len(), 2);
    assert!([flagged(&buf), flagged(&right)].concat().iter().all(|e| e.2));
    NodeMut::new(&mut buf).merge(&NodeMut::new(&mut right), &sep).unwrap();
    assert_eq!(flagged(&buf), [(b"b".to_vec(), vec![7; 37], true), (b"c".to_vec(), vec![9; 200], true)]);
    assert!(NodeMut::new(&mut buf).has_references());
    let mut node = NodeMut::new(&mut buf);
    node.remove(b"b");
    node.remove(b"c");
    node.compact();
    assert!(!node.has_references(), "a rebuild without references clears the flag");
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
    let sep = NodeMut::new(&mut buf).split(&mut NodeMut::new(&mut right_buf), &[], SplitKind::Balanced).unwrap();
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
    let sep = NodeMut::new(&mut buf).split(&mut NodeMut::new(&mut right_buf), &[], SplitKind::Balanced).unwrap();
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

/// Splits `buf` for `incoming` as the node chooses; returns the right half
/// and the separator.
fn split(buf: &mut [u8], incoming: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let kind = NodeMut::new(buf).split_kind(incoming).unwrap();
    split_as(buf, incoming, kind)
}

fn split_as(buf: &mut [u8], incoming: &[u8], kind: SplitKind) -> (Vec<u8>, Vec<u8>) {
    let mut right = vec![0u8; buf.len()];
    let predicted = NodeMut::new(buf).split_separator(incoming, kind).unwrap();
    let sep = NodeMut::new(buf).split(&mut NodeMut::new(&mut right), incoming, kind).unwrap();
    assert_eq!(sep, predicted, "split_separator predicts the split");
    (right, sep)
}

fn used(buf: &[u8]) -> f64 {
    Node::open(buf).unwrap().used() as f64 / buf.len() as f64
}

/// The run hint's slot.
fn run(buf: &mut [u8]) -> usize {
    NodeMut::new(buf).run().0
}

#[test]
fn a_leaf_filled_in_order_splits_before_its_last_entry() {
    let mut buf = vec![0u8; small_node()];
    leaf(&mut buf, Some(&10u64.to_be_bytes()), None);
    let keys = fill(&mut buf, 11u64.., 8);
    let n = keys.len();
    assert_eq!(run(&mut buf), n, "the run is at the end");
    let next = (11 + n as u64).to_be_bytes();
    let (right, sep) = split(&mut buf, &next);
    assert_eq!((contents(&buf).len(), contents(&right).len()), (n - 1, 1));
    assert!(sep.as_slice() < next.as_slice() && contents(&buf).iter().all(|(k, _)| k.as_slice() <= sep.as_slice()));
    assert!(used(&buf) > 0.75, "left half {:.2} full", used(&buf));
    // The run goes on in the right half, and splits in order there too.
    let mut right = right;
    assert_eq!(run(&mut right), 1);
    NodeMut::new(&mut right).insert(&next, b"12345678", ALL).unwrap();
    assert_eq!(run(&mut right), 2);
}

#[test]
fn an_ascending_run_inside_a_leaf_splits_where_it_goes_on() {
    let mut buf = vec![0u8; small_node()];
    leaf(&mut buf, None, None);
    // Keys "b..." first, then "a:0", "a:1", ... before them.
    let mut node = NodeMut::new(&mut buf);
    for i in 0..4u64 {
        node.insert(&[b"b".as_slice(), &i.to_be_bytes()].concat(), b"bbbbbbbb", ALL).unwrap();
    }
    let run_key = |i: u64| [b"a:".as_slice(), &i.to_be_bytes()].concat();
    let mut i = 0;
    while node.insert(&run_key(i), b"aaaaaaaa", ALL).is_ok() {
        i += 1;
    }
    assert_eq!(node.run().0, i as usize);
    let (right, sep) = split(&mut buf, &run_key(i));
    // The b keys moved right; the run stays left, with room for its next key.
    assert_eq!(contents(&right).len(), 4);
    assert_eq!(contents(&buf).len(), i as usize);
    assert_eq!(sep, b"b", "above the incoming key, below the b keys");
    assert_eq!(run(&mut buf), i as usize, "the incoming key continues the run at the left half's end");
    NodeMut::new(&mut buf).insert(&run_key(i), b"aaaaaaaa", ALL).unwrap();
    assert!(used(&buf) > 0.85, "left half {:.2} full", used(&buf));
}

#[test]
fn an_insert_off_the_run_splits_in_the_middle() {
    let mut buf = vec![0u8; small_node()];
    leaf(&mut buf, None, None);
    let keys = fill(&mut buf, (0u64..).map(|k| k * 10), 8);
    let n = keys.len();
    // Between two existing keys, not after the last one added.
    for incoming in [5u64, 10 * (n as u64 / 2) + 5] {
        let mut copy = buf.clone();
        assert_eq!(NodeMut::new(&mut copy).split_kind(&incoming.to_be_bytes()), Ok(SplitKind::Balanced));
        let (right, _) = split(&mut copy, &incoming.to_be_bytes());
        let (l, r) = (contents(&copy).len(), contents(&right).len());
        assert!(l.abs_diff(r) <= 1, "{l} vs {r}");
        assert_eq!(run(&mut copy.clone()), 0, "a balanced split forgets the run");
    }
    // Replacing an existing key at the run's slot is not an insert in order.
    NodeMut::new(&mut buf).remove(&(10 * (n as u64 - 1)).to_be_bytes());
    let last = 10 * (n as u64 - 2);
    assert_eq!(run(&mut buf), n - 1);
    let (right, _) = split(&mut buf.clone(), &(last + 1).to_be_bytes());
    assert_eq!(contents(&right).len(), 1, "after the last key: in order");
    let mut copy = buf.clone();
    let (right, _) = split(&mut copy, &last.to_be_bytes());
    assert!(contents(&copy).len().abs_diff(contents(&right).len()) <= 1, "the last key itself: balanced");
}

#[test]
fn a_split_of_a_given_kind_does_not_read_the_run_hint() {
    // What redo relies on: the log records the kind, not the hint.
    let mut buf = vec![0u8; small_node()];
    leaf(&mut buf, None, None);
    let n = fill(&mut buf, (0u64..).map(|k| k * 10), 8).len();
    for kind in [SplitKind::InOrder, SplitKind::Balanced] {
        for incoming in [10 * n as u64, 10 * (n as u64 / 3) + 5] {
            let results: Vec<_> = [0, 1, n / 3, n, 0xffff]
                .into_iter()
                .map(|hint| {
                    let mut copy = buf.clone();
                    NodeMut::new(&mut copy).set_run(hint, hint % 5);
                    let (right, sep) = split_as(&mut copy, &incoming.to_be_bytes(), kind);
                    (copy, right, sep)
                })
                .collect();
            assert!(results.windows(2).all(|w| w[0] == w[1]), "{kind:?} for {incoming}");
        }
    }
}

#[test]
fn a_run_counts_as_in_order_from_its_third_key() {
    let mut buf = vec![0u8; NODE];
    leaf(&mut buf, None, None);
    let mut node = NodeMut::new(&mut buf);
    let kind = |node: &NodeMut<'_>, k: u64| node.split_kind(&k.to_be_bytes()).unwrap();
    for k in [10u64, 50, 30] {
        node.insert(&k.to_be_bytes(), b"v", ALL).unwrap();
    }
    // 30 went before 50, not after it: 35 would be the second key in a row.
    assert_eq!(node.run(), (2, 1));
    assert_eq!(kind(&node, 35), SplitKind::Balanced);
    node.insert(&35u64.to_be_bytes(), b"v", ALL).unwrap();
    assert_eq!(node.run(), (3, 2));
    assert_eq!(kind(&node, 36), SplitKind::InOrder);
    assert_eq!(kind(&node, 34), SplitKind::Balanced, "not after the key added last");
    assert_eq!(kind(&node, 50), SplitKind::Balanced, "an existing key");
}

#[test]
fn removes_and_compaction_keep_the_run_on_its_key() {
    let mut buf = vec![0u8; NODE];
    leaf(&mut buf, None, None);
    let mut node = NodeMut::new(&mut buf);
    for k in [10u64, 20, 30, 40] {
        node.insert(&k.to_be_bytes(), b"v", ALL).unwrap();
    }
    node.insert(&25u64.to_be_bytes(), b"v", ALL).unwrap();
    assert_eq!(node.run().0, 3, "just after 25");
    node.remove(&10u64.to_be_bytes());
    assert_eq!(node.run().0, 2, "a slot before it went");
    node.remove(&40u64.to_be_bytes());
    assert_eq!(node.run().0, 2, "a slot after it went");
    node.insert(&25u64.to_be_bytes(), &[1; 50], ALL).unwrap();
    assert_eq!(node.run().0, 2, "replacing is not adding");
    node.compact();
    assert_eq!(node.run().0, 2);
    node.remove(&25u64.to_be_bytes());
    assert_eq!(node.run().0, 1, "its own key went: the run goes on after 20");
    node.remove(&20u64.to_be_bytes());
    assert_eq!(node.run().0, 0, "none left before it");
}

#[test]
fn an_inner_node_filled_in_order_splits_before_its_last_separator() {
    let mut buf = vec![0u8; small_node()];
    NodeMut::new(&mut buf).init(INNER, None, None, 999);
    let mut node = NodeMut::new(&mut buf);
    let mut n = 0u64;
    while node.insert(&(n * 10).to_be_bytes(), &(1000 + n).to_le_bytes(), ALL).is_ok() {
        n += 1;
    }
    // The right child (keys above the last separator) splits.
    let incoming = (n * 10).to_be_bytes();
    let (right, sep) = split(&mut buf, &incoming);
    let (l, r) = (Node::open(&buf[..]).unwrap(), Node::open(&right[..]).unwrap());
    assert_eq!((l.count() as u64, r.count()), (n - 2, 1));
    assert_eq!(sep, ((n - 2) * 10).to_be_bytes());
    assert_eq!(r.right_child().unwrap(), 999);
    assert_eq!(l.right_child().unwrap(), 1000 + n - 2);
    let mut right = right;
    assert_eq!(run(&mut right), 1, "the right child's separator goes at 1, continuing the run");
    // Inside: the run of separators goes on at slot 5; slot 5's separator goes up
    // and the splitting child (slot 5's) becomes the left half's right child.
    let mut buf = vec![0u8; small_node()];
    NodeMut::new(&mut buf).init(INNER, None, None, 999);
    let mut node = NodeMut::new(&mut buf);
    for k in (0..20u64).chain([1000, 1010, 1020]).chain(20..n - 3) {
        node.insert(&(k * 10).to_be_bytes(), &(1000 + k).to_le_bytes(), ALL).unwrap();
    }
    let at = node.run().0;
    let incoming = ((n - 3) * 10 + 5).to_be_bytes();
    let (right, sep) = split(&mut buf, &incoming);
    let l = Node::open(&buf[..]).unwrap();
    assert_eq!(sep, 10_000u64.to_be_bytes());
    assert_eq!(l.count(), at);
    assert_eq!(l.right_child().unwrap(), 2000);
    assert_eq!(Node::open(&right[..]).unwrap().count(), 2);
    assert_eq!(run(&mut buf), at, "the new separator goes at the left half's end");
}

#[test]
fn an_in_order_split_whose_left_half_would_not_fit_is_balanced() {
    // Small entries, a long key, then a short one after it: an in-order
    // split keeps all but the short entry left, with the long key as its
    // upper fence (no shorter key separates the two), which needs more
    // room than the short entry frees.
    let mut buf = vec![0u8; NODE];
    leaf(&mut buf, None, None);
    let mut node = NodeMut::new(&mut buf);
    let long = [vec![b'y'], vec![b'z'; MAX_KEY - 1]].concat();
    let mut i = 0u64;
    while node.free_space() > MAX_KEY + 64 {
        node.insert(&i.to_be_bytes(), b"v", ALL).unwrap();
        i += 1;
    }
    node.insert(&long, b"", ALL).unwrap();
    node.insert(b"z", b"v", ALL).unwrap();
    let incoming = [b"z".as_slice(), &[1; 100]].concat();
    assert_eq!(node.insert(&incoming, &[0; 900], ALL), Err(Full));
    let n = contents(&buf).len();
    assert_eq!(run(&mut buf), n, "the incoming key continues the run");
    let (right, sep) = split(&mut buf, &incoming);
    let (l, r) = (contents(&buf), contents(&right));
    assert_eq!(l.len() + r.len(), n);
    assert!(r.len() > 2 && l.len() > 2, "balanced, not in order: {} and {}", l.len(), r.len());
    assert!(
        l.iter().all(|(k, _)| k.as_slice() <= sep.as_slice()) && r.iter().all(|(k, _)| k.as_slice() > sep.as_slice())
    );
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
        (0u8..4, proptest::collection::vec(0u8..4, 0..12), proptest::collection::vec(any::<u8>(), 0..40)),
        1..if cfg!(miri) { 40 } else { 200 },
    )) {
        let mut buf = vec![0u8; small_node()];
        leaf(&mut buf, None, None);
        let mut model = BTreeMap::new();
        for (op, key, value) in ops {
            let mut node = NodeMut::new(&mut buf);
            match op {
                // Inline values and references.
                0 | 3 => {
                    let reference = op == 3;
                    match node.insert_entry(Entry { key: &key, value: &value, reference }, ALL) {
                        Ok(Inserted::Added) => prop_assert!(model.insert(key, (value, reference)).is_none()),
                        Ok(Inserted::Replaced) => prop_assert!(model.insert(key, (value, reference)).is_some()),
                        Err(Full) => {}
                    }
                }
                1 => prop_assert_eq!(node.remove(&key), model.remove(&key).is_some()),
                _ => prop_assert_eq!(get_flagged(&buf, &key), model.get(&key).cloned()),
            }
        }
        let want: Vec<(Vec<u8>, Vec<u8>, bool)> = model.into_iter().map(|(k, (v, r))| (k, v, r)).collect();
        prop_assert_eq!(flagged(&buf), want);
    }

    /// Any split, in order or not, keeps every entry, on its side of the
    /// separator, and leaves the run inside each half.
    #[test]
    fn a_split_keeps_every_entry_on_its_side(
        ops in proptest::collection::vec((0u8..4, any::<u16>()), 2..if cfg!(miri) { 40 } else { 400 }),
        next_in_order in any::<bool>(),
        incoming in any::<u16>(),
        forced in proptest::option::of(any::<bool>()),
    ) {
        let mut buf = vec![0u8; small_node()];
        leaf(&mut buf, None, None);
        let mut next = 0u32;
        for (op, k) in ops {
            let mut node = NodeMut::new(&mut buf);
            let value = [op; 12];
            match op {
                // Mostly appends (ascending), some random inserts and removes.
                0 | 1 => {
                    next += 1 + u32::from(k % 3);
                    let _ = node.insert(&next.to_be_bytes(), &value, ALL);
                }
                // Some of them references, which splits must keep as such.
                2 => {
                    let key = u32::from(k).to_be_bytes();
                    let _ = node.insert_entry(Entry { key: &key, value: &value, reference: k % 2 == 0 }, ALL);
                }
                _ => { node.remove(&u32::from(k).to_be_bytes()); }
            }
        }
        let before = contents(&buf);
        let before_flagged = flagged(&buf);
        prop_assume!(before.len() >= 2);
        let incoming = if next_in_order { next + 1 } else { u32::from(incoming) }.to_be_bytes();
        // A kind other than the node's choice (a log could say so) is safe too.
        let (mut right, sep) = match forced {
            None => split(&mut buf, &incoming),
            Some(true) => split_as(&mut buf, &incoming, SplitKind::InOrder),
            Some(false) => split_as(&mut buf, &incoming, SplitKind::Balanced),
        };
        let (l, r) = (contents(&buf), contents(&right));
        prop_assert!(!l.is_empty() && !r.is_empty());
        prop_assert!(l.iter().all(|(k, _)| k.as_slice() <= sep.as_slice()));
        prop_assert!(r.iter().all(|(k, _)| k.as_slice() > sep.as_slice()));
        prop_assert_eq!([l.clone(), r.clone()].concat(), before);
        prop_assert_eq!([flagged(&buf), flagged(&right)].concat(), before_flagged);
        prop_assert!(run(&mut buf) <= l.len() && run(&mut right) <= r.len());
    }
}
