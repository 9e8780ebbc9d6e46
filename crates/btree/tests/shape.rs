//! Space and shape: bytes per entry for a random-order load of 8-byte keys
//! and 8-byte values (a design target: at most 30), pages filled by loads
//! in order, and merging that really shrinks the tree after mass removal.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, reason = "tests: a panic is a failure")]

mod common;

use common::{key, splitmix64};
use snowfall_btree::{BTree, Config, MAX_ENTRY, Shape};
use snowfall_buffer::PAGE_SIZE;
use snowfall_buffer::memory::MemoryKind;

const N: u64 = 200_000;

fn load(tree: &BTree<'_>, keys: impl Iterator<Item = u64>) {
    for k in keys {
        tree.insert(&key(k), &k.to_le_bytes()).unwrap();
    }
}

#[test]
fn a_random_order_load_takes_at_most_30_bytes_per_entry() {
    let bm = common::bm(MemoryKind::Madvise, 64, 1024);
    let tree = BTree::create(&bm, Config::default()).unwrap();
    load(&tree, (0..N).map(splitmix64));
    let shape = tree.check().unwrap();
    eprintln!("{shape:?}: {:.1} bytes per entry", shape.bytes_per_entry());
    assert_eq!(shape.entries, N);
    assert!(shape.bytes_per_entry() <= 30.0, "{:.1} bytes per entry", shape.bytes_per_entry());
}

/// The shape of a fresh tree loaded with `keys` (8-byte values).
fn loaded(config: Config, keys: impl Iterator<Item = u64>) -> Shape {
    let bm = common::bm(MemoryKind::Madvise, 64, 1024);
    let tree = BTree::create(&bm, config).unwrap();
    load(&tree, keys);
    tree.check().unwrap()
}

fn show(what: &str, shape: &Shape) {
    eprintln!(
        "{what}: {shape:?}: {:.1} bytes per entry, leaves {:.0} % full, inner pages {:.0} %",
        shape.bytes_per_entry(),
        100.0 * shape.leaf_fill(),
        100.0 * shape.inner_fill()
    );
}

#[test]
fn an_ascending_load_fills_pages_and_a_random_one_keeps_the_usual_fill() {
    let ascending = loaded(Config::default(), 0..N);
    let random = loaded(Config::default(), (0..N).map(splitmix64));
    show("ascending", &ascending);
    show("random", &random);
    assert_eq!((ascending.entries, random.entries), (N, N));
    // In order: about 200 entries a leaf (each left half holds all the
    // entries a leaf without a common prefix takes, 20 bytes each, which
    // re-encoded with its fences' prefix take 16: about 80 % full).
    assert!(ascending.bytes_per_entry() < 22.0, "{:.1} bytes per entry", ascending.bytes_per_entry());
    assert!(ascending.leaf_fill() > 0.76, "leaves {:.2} full", ascending.leaf_fill());
    // Random order: the usual ~70 %, no in-order splits to speak of.
    assert!((0.62..0.76).contains(&random.leaf_fill()), "leaves {:.2} full", random.leaf_fill());
    assert!(random.bytes_per_entry() > 26.0, "{:.1} bytes per entry", random.bytes_per_entry());
}

#[test]
fn a_descending_load_is_balanced_as_before() {
    // Runs downwards are not detected (as in vmcache and LeanStore): each
    // split leaves its right half with about half the entries.
    let descending = loaded(Config::default(), (0..N).rev());
    show("descending", &descending);
    assert_eq!(descending.entries, N);
    assert!((0.35..0.6).contains(&descending.leaf_fill()), "leaves {:.2} full", descending.leaf_fill());
}

#[test]
fn an_ascending_run_inside_the_key_space_fills_its_pages() {
    // Random keys, then 2^62, 2^62 + 1, ...: a run that starts inside a
    // leaf, with random keys after it all the way.
    let bm = common::bm(MemoryKind::Madvise, 64, 1024);
    let tree = BTree::create(&bm, Config::default()).unwrap();
    load(&tree, (0..N / 2).map(splitmix64));
    let before = tree.check().unwrap();
    let run = 1u64 << 62;
    load(&tree, run..run + N);
    let after = tree.check().unwrap();
    show("random around", &before);
    show("with the run", &after);
    let run_bytes = ((after.pages() - before.pages()) * PAGE_SIZE as u64) as f64 / N as f64;
    eprintln!("{run_bytes:.1} bytes per entry of the run");
    assert!(run_bytes < 22.0, "{run_bytes:.1} bytes per entry of the run");
}

#[test]
fn two_ascending_runs_interleaved_fill_their_pages() {
    // As two threads loading halves of the key space in order: the lower
    // run goes on inside the key space, before the upper one's keys.
    let keys = (0..N / 2).flat_map(|i| [i, N / 2 + i]);
    let shape = loaded(Config::default(), keys);
    show("two runs", &shape);
    assert!(shape.bytes_per_entry() < 22.0, "{:.1} bytes per entry", shape.bytes_per_entry());
}

#[test]
fn inner_nodes_filled_in_order_split_before_their_last_separator() {
    // Nodes capped at 16 entries, so that inner nodes are many and their
    // fill is a count: in order, leaves keep 15 entries and inner nodes 14
    // separators (15 children); in random order about 70 % of 16.
    let config = Config { max_entries: 16, ..Config::default() };
    let ascending = loaded(config, 0..20_000);
    let random = loaded(config, (0..20_000).map(splitmix64));
    let per_leaf = |s: &Shape| s.entries as f64 / s.leaf_pages as f64;
    // Every page but the root is some inner node's child.
    let children = |s: &Shape| (s.pages() - 1) as f64 / s.inner_pages as f64;
    for (what, s) in [("ascending", &ascending), ("random", &random)] {
        eprintln!("{what}: {s:?}: {:.1} entries a leaf, {:.1} children an inner node", per_leaf(s), children(s));
    }
    assert!(per_leaf(&ascending) > 14.5 && children(&ascending) > 14.0);
    assert!(per_leaf(&random) < 13.0 && children(&random) < 13.0);
}

#[test]
fn long_keys_loaded_in_order_split_and_stay_findable() {
    // Keys of 908 to 1,024 bytes sharing 900 (so separators are long),
    // half of them with values up to the entry limit: in order, in order
    // between existing keys, and descending. Every split must still leave
    // room, and the tree must hold them all.
    let bm = common::bm(MemoryKind::Madvise, 64, 1024);
    let tree = BTree::create(&bm, Config::default()).unwrap();
    let key_of = |i: u64| [vec![0xAB; 900], key(i).to_vec(), vec![0xCD; i as usize % 117]].concat();
    let value_of = |i: u64| vec![i as u8; if i.is_multiple_of(2) { MAX_ENTRY - key_of(i).len() } else { 0 }];
    let order = (0..1000).step_by(2).chain(1000..2000).chain((1..1000).step_by(2)).chain((2000..3000).rev());
    for i in order {
        tree.insert(&key_of(i), &value_of(i)).unwrap();
    }
    let shape = tree.check().unwrap();
    show("long keys", &shape);
    assert_eq!(shape.entries, 3000);
    for i in 0..3000 {
        assert_eq!(tree.get(&key_of(i)).unwrap(), Some(value_of(i)), "key {i}");
    }
}

#[test]
fn removing_most_keys_shrinks_the_tree_to_the_size_of_a_fresh_one() {
    let bm = common::bm(MemoryKind::Madvise, 64, 1024);
    let tree = BTree::create(&bm, Config::default()).unwrap();
    load(&tree, (0..N).map(splitmix64));
    let full = tree.check().unwrap();
    // Remove 99 %, in random order; keep every 100th key.
    for i in (0..N).filter(|i| i % 100 != 0) {
        assert!(tree.remove(&key(splitmix64(i))).unwrap());
    }
    let shrunk = tree.check().unwrap();
    let fresh_tree = BTree::create(&bm, Config::default()).unwrap();
    load(&fresh_tree, (0..N).filter(|i| i % 100 == 0).map(splitmix64));
    let fresh: Shape = fresh_tree.check().unwrap();
    eprintln!("full {full:?}\nafter removing 99 %: {shrunk:?}\nfresh from the survivors: {fresh:?}");
    assert_eq!(shrunk.entries, fresh.entries);
    assert!(shrunk.pages() <= 3 * fresh.pages(), "{} pages after removal, {} fresh", shrunk.pages(), fresh.pages());
    assert!(shrunk.height <= fresh.height + 1, "height {} after removal, {} fresh", shrunk.height, fresh.height);
    assert!(
        shrunk.pages() * 20 < full.pages(),
        "the tree did not shrink: {} -> {} pages",
        full.pages(),
        shrunk.pages()
    );
}

#[test]
fn keys_and_values_beyond_the_limits_are_typed_errors() {
    use snowfall_btree::{Error, MAX_ENTRY, MAX_KEY};
    let bm = common::bm(MemoryKind::Madvise, 4, 64);
    let tree = BTree::create(&bm, Config::default()).unwrap();
    let long_key = vec![7u8; MAX_KEY + 1];
    assert_eq!(tree.insert(&long_key, b"v"), Err(Error::KeyTooLarge { len: MAX_KEY + 1, max: MAX_KEY }));
    assert_eq!(tree.get(&long_key), Err(Error::KeyTooLarge { len: MAX_KEY + 1, max: MAX_KEY }));
    let big = vec![1u8; MAX_ENTRY];
    assert_eq!(tree.insert(b"key", &big), Err(Error::ValueTooLarge { len: MAX_ENTRY, max: MAX_ENTRY - 3 }));
    assert!(Error::ValueTooLarge { len: 1, max: 0 }.to_string().contains("at most 0 bytes fit"));
    // The largest entries work, and many of them force splits with long keys.
    for i in 0..300u32 {
        let mut k = vec![0xAB; MAX_KEY];
        k[MAX_KEY - 4..].copy_from_slice(&i.to_le_bytes());
        assert!(!tree.insert(&k, b"").unwrap());
        let mut k2 = vec![0x11; 500];
        k2[..4].copy_from_slice(&i.to_le_bytes());
        assert!(!tree.insert(&k2, &vec![5u8; MAX_ENTRY - 500]).unwrap());
    }
    // References of the largest size beside the largest keys split too.
    let reference = [9u8; snowfall_btree::MAX_REFERENCE];
    for i in 0..100u32 {
        let mut k = vec![0xCD; MAX_KEY];
        k[MAX_KEY - 4..].copy_from_slice(&i.to_le_bytes());
        let stored = snowfall_btree::Stored { bytes: &reference, reference: true };
        assert!(!tree.put_stored(&k, stored, 0).unwrap().existed);
    }
    let too_long = [9u8; snowfall_btree::MAX_REFERENCE + 1];
    let stored = snowfall_btree::Stored { bytes: &too_long, reference: true };
    assert!(matches!(tree.put_stored(b"k", stored, 0), Err(Error::ValueTooLarge { .. })));
    let shape = tree.check().unwrap();
    assert_eq!((shape.entries, shape.references), (700, 100));
    for i in 0..100u32 {
        let mut k = vec![0xAB; MAX_KEY];
        k[MAX_KEY - 4..].copy_from_slice(&i.to_le_bytes());
        assert_eq!(tree.get(&k).unwrap(), Some(vec![]));
        k.fill(0xCD);
        k[MAX_KEY - 4..].copy_from_slice(&i.to_le_bytes());
        let mut out = [0u8; MAX_ENTRY];
        let found = tree.get_into(&k, &mut out).unwrap().unwrap();
        assert_eq!((found.len, found.reference), (reference.len(), true));
    }
}

#[test]
fn page_ids_name_every_page_and_read_no_leaf_but_the_first() {
    // A 2 MiB pool (512 frames) for a tree of about 1,500 pages.
    let bm = common::bm(MemoryKind::Madvise, 2, 1024);
    let tree = BTree::create(&bm, Config::default()).unwrap();
    load(&tree, (0..N).map(splitmix64));
    let mut all = Vec::new();
    let shape = tree.check_pages(&mut |p| all.push(p)).unwrap();
    assert!(shape.pages() > 1000 && shape.height >= 3, "{shape:?}");
    let faults = bm.stats().faults;
    let mut ids = tree.page_ids().unwrap();
    let loaded = bm.stats().faults - faults;
    assert!(loaded <= shape.inner_pages + 1, "{loaded} pages loaded for {} inner pages", shape.inner_pages);
    assert_eq!(ids.first(), all.first(), "the root first");
    ids.sort_unstable();
    all.sort_unstable();
    assert_eq!(ids, all);
}
