//! Space and shape: bytes per entry for a random-order load of 8-byte keys
//! and 8-byte values (a design target: at most 30), and merging that really
//! shrinks the tree after mass removal.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, reason = "tests: a panic is a failure")]

mod common;

use common::{key, splitmix64};
use snowfall_btree::{BTree, Config, Shape};
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
    assert!(Error::ValueTooLarge { len: 1, max: 0 }.to_string().contains("large values are not supported yet"));
    // The largest entries work, and many of them force splits with long keys.
    for i in 0..300u32 {
        let mut k = vec![0xAB; MAX_KEY];
        k[MAX_KEY - 4..].copy_from_slice(&i.to_le_bytes());
        assert!(!tree.insert(&k, b"").unwrap());
        let mut k2 = vec![0x11; 500];
        k2[..4].copy_from_slice(&i.to_le_bytes());
        assert!(!tree.insert(&k2, &vec![5u8; MAX_ENTRY - 500]).unwrap());
    }
    let shape = tree.check().unwrap();
    assert_eq!(shape.entries, 600);
    for i in 0..300u32 {
        let mut k = vec![0xAB; MAX_KEY];
        k[MAX_KEY - 4..].copy_from_slice(&i.to_le_bytes());
        assert_eq!(tree.get(&k).unwrap(), Some(vec![]));
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
