//! The key-value API: range iterators from both ends against a model,
//! iterators while another thread writes, reads in place.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;

use common::{TempPath, key, small, unkey};
use snowfall_buffer::scenario::SplitMix64;
use snowfall_db::{Database, Durability, Entry};

fn bound(rng: &mut SplitMix64, keys: u64) -> Bound<[u8; 8]> {
    match rng.below(3) {
        0 => Bound::Unbounded,
        1 => Bound::Included(key(rng.below(keys + 2))),
        _ => Bound::Excluded(key(rng.below(keys + 2))),
    }
}

#[test]
fn ranges_from_both_ends_match_a_model() {
    let path = TempPath::new("range-model");
    let db = Database::open(path.str(), small()).unwrap();
    let t = db.tree("t").unwrap();
    let mut model = BTreeMap::new();
    let mut rng = SplitMix64(11);
    const KEYS: u64 = 3000;
    for _ in 0..4000 {
        let k = rng.below(KEYS);
        let v = vec![k as u8; rng.below(40) as usize];
        t.insert_with(&key(k), &v, Durability::None).unwrap();
        model.insert(key(k).to_vec(), v);
    }
    for case in 0..300 {
        let (low, high) = (bound(&mut rng, KEYS), bound(&mut rng, KEYS));
        let want: Vec<Entry> = match (low, high) {
            // BTreeMap refuses inverted or empty-excluded ranges; ours are empty.
            (Bound::Included(l) | Bound::Excluded(l), Bound::Included(h) | Bound::Excluded(h)) if l > h => Vec::new(),
            (Bound::Excluded(l), Bound::Excluded(h)) if l == h => Vec::new(),
            _ => {
                let (lo, hi) = (low.map(|k| k.to_vec()), high.map(|k| k.to_vec()));
                model.range((lo, hi)).map(|(k, v)| (k.clone(), v.clone())).collect()
            }
        };
        let mut it = t.range::<[u8; 8]>((low, high));
        // Take from a random end each step; the ends must meet exactly.
        let (mut front, mut back) = (Vec::new(), Vec::new());
        loop {
            let e = if rng.below(2) == 0 { it.next().map(|e| (true, e)) } else { it.next_back().map(|e| (false, e)) };
            match e {
                Some((true, e)) => front.push(e.unwrap()),
                Some((false, e)) => back.push(e.unwrap()),
                None => break,
            }
        }
        assert!(it.next().is_none() && it.next_back().is_none(), "case {case}: not fused");
        back.reverse();
        front.extend(back);
        assert_eq!(front.len(), want.len(), "case {case}: {low:?}..{high:?}");
        assert!(front == want, "case {case}: {low:?}..{high:?}: entries differ");
    }
    let all: Vec<Entry> = t.range::<[u8]>(..).rev().map(Result::unwrap).collect();
    assert_eq!(all.len(), model.len());
    assert!(all.iter().rev().map(|(k, _)| k).eq(model.keys()));
}

/// While a writer inserts and removes other keys, an iterator returns
/// every stable key exactly once, in order, and nothing outside its range.
#[test]
fn an_iterator_during_writes_sees_each_stable_key_once_in_order() {
    let path = TempPath::new("range-writes");
    let db = Database::open(path.str(), small()).unwrap();
    let t = db.tree("t").unwrap();
    // Stable keys: multiples of 4; the writer churns the others.
    for k in (0..20_000).step_by(4) {
        t.insert_with(&key(k), b"stable", Durability::None).unwrap();
    }
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut rng = SplitMix64(5);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let k = rng.below(20_000) | 1;
                if rng.below(2) == 0 {
                    t.insert_with(&key(k), &[9; 200], Durability::None).unwrap();
                } else {
                    t.remove_with(&key(k), Durability::None).unwrap();
                }
            }
        });
        for round in 0..20 {
            let (lo, hi) = (round * 500, 20_000 - round * 300);
            let forward = round % 2 == 0;
            let it = t.range(key(lo)..key(hi));
            let keys: Vec<u64> = if forward {
                it.map(|e| unkey(&e.unwrap().0)).collect()
            } else {
                it.rev().map(|e| unkey(&e.unwrap().0)).collect()
            };
            assert!(keys.iter().all(|k| (lo..hi).contains(k)), "round {round}: a key outside the range");
            let ordered =
                if forward { keys.windows(2).all(|w| w[0] < w[1]) } else { keys.windows(2).all(|w| w[0] > w[1]) };
            assert!(ordered, "round {round}: out of order or repeated");
            let stable = keys.iter().filter(|k| *k % 4 == 0).count() as u64;
            assert_eq!(stable, (hi - lo).div_ceil(4), "round {round}: stable keys missed");
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    db.check().unwrap();
}

#[test]
fn a_value_is_read_in_place_under_a_latch() {
    let path = TempPath::new("get-with");
    let db = Database::open(path.str(), small()).unwrap();
    let t = db.tree("t").unwrap();
    t.insert(b"k", &[3; 500]).unwrap();
    assert_eq!(
        t.get_with(b"k", |v| (v.len(), v.iter().map(|&b| u64::from(b)).sum::<u64>())).unwrap(),
        Some((500, 1500))
    );
    assert_eq!(t.get_with(b"missing", <[u8]>::len).unwrap(), None);
}

#[test]
fn the_integrity_check_verifies_every_page_and_log_record_and_names_a_bad_page() {
    let path = TempPath::new("integrity");
    let db = Database::builder(path.str()).pool_bytes(4 << 20).log_bytes(16 << 20).create().unwrap();
    let t = db.tree("t").unwrap();
    for i in 0..20_000u64 {
        t.insert_with(&key(i), &[1; 40], Durability::None).unwrap();
    }
    let report = db.check_integrity().unwrap();
    assert_eq!(report.entries, 20_000);
    assert!(report.pages_verified > 200, "{report:?}");
    t.insert(b"after", b"the checkpoint").unwrap();
    let stats = db.stats();
    assert_eq!(stats.trees, 1);
    assert!(stats.allocated_pages > stats.free_pages && stats.log_records > 20_000, "{stats:?}");
    db.close().unwrap();
    // Flip a bit in the middle of the file: a leaf of the tree.
    let mut bytes = std::fs::read(path.str()).unwrap();
    let page = bytes.len() / 4096 / 2;
    bytes[page * 4096 + 2000] ^= 1;
    std::fs::write(path.str(), &bytes).unwrap();
    let db = Database::builder(path.str()).open().unwrap();
    match db.check_integrity() {
        Err(snowfall_db::Error::Integrity { what, .. }) => assert!(what.contains(&format!("page {page}")), "{what}"),
        other => panic!("expected an integrity error, got {other:?}"),
    }
}

#[test]
fn open_without_create_refuses_a_missing_file() {
    let path = TempPath::new("missing");
    let e = Database::builder(path.str()).open().unwrap_err();
    assert!(e.to_string().contains(path.str()), "{e}");
    assert!(!std::path::Path::new(path.str()).exists());
}

#[test]
fn a_dropped_tree_is_gone_and_its_pages_are_reused() {
    let path = TempPath::new("drop");
    let mut db = Database::builder(path.str()).pool_bytes(4 << 20).log_bytes(16 << 20).create().unwrap();
    for name in ["a", "b"] {
        let t = db.tree(name).unwrap();
        for i in 0..8000u64 {
            t.insert_with(&key(i), &[5; 400], Durability::None).unwrap();
        }
    }
    let pages = db.stats().allocated_pages;
    assert_eq!(db.tree_names(), ["a", "b"]);
    db.drop_tree("a").unwrap();
    assert!(matches!(db.drop_tree("a"), Err(snowfall_db::Error::NoSuchTree { .. })));
    assert_eq!(db.tree_names(), ["b"]);
    assert!(db.existing_tree("a").is_err());
    db.check().unwrap();
    // A new tree of the same size fits in the freed pages.
    let c = db.tree("c").unwrap();
    for i in 0..8000u64 {
        c.insert_with(&key(i), &[6; 400], Durability::None).unwrap();
    }
    assert!(db.stats().allocated_pages <= pages + 16, "{} pages after, {pages} before", db.stats().allocated_pages);
    db.close().unwrap();
    let db = Database::builder(path.str()).open().unwrap();
    assert_eq!(db.tree_names(), ["b", "c"]);
    assert_eq!(db.check_integrity().unwrap().entries, 16_000);
}

#[test]
fn every_handle_is_send_and_sync() {
    fn both<T: Send + Sync>() {}
    both::<Database>();
    both::<snowfall_db::Tree<'_>>();
    both::<snowfall_db::Range<'_>>();
    both::<snowfall_db::Batch>();
    both::<snowfall_db::Builder>();
    both::<snowfall_db::Error>();
}

/// Dropping a database without `close` closes it cleanly too: writes
/// acknowledged without a sync are in the file, and the next open has
/// nothing to redo.
#[test]
fn drop_without_close_closes_cleanly() {
    let path = TempPath::new("drop-close");
    {
        let db = Database::builder(path.str()).durability(Durability::None).create().unwrap();
        let t = db.tree("t").unwrap();
        for i in 0..1000u64 {
            t.insert(&key(i), b"unsynced").unwrap();
        }
    }
    let db = Database::builder(path.str()).open().unwrap();
    assert_eq!(db.recovery().records_redone, 0, "the drop took no final checkpoint");
    assert_eq!(db.existing_tree("t").unwrap().range::<[u8]>(..).count(), 1000);
}
