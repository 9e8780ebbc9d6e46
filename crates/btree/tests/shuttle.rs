//! Split and merge races under shuttle's randomized scheduler: the whole
//! stack (latches, buffer manager, tree) built with `--cfg shuttle`, so every
//! latch operation is a point where shuttle may switch threads. One thread
//! splits nodes (inserts), one merges them (removes), one reads (lookups of
//! keys nobody touches, and scans); with four entries a node every write
//! changes the structure. Run:
//! `RUSTFLAGS="--cfg shuttle" cargo test -p snowfall-btree --release --test shuttle`.
#![cfg(shuttle)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, reason = "tests: a panic is a failure")]

mod common;

use std::ops::Bound;

use common::key;
use shuttle::sync::Arc;
use shuttle::thread;
use snowfall_btree::{BTree, Config, Direction};
use snowfall_buffer::memory::MemoryKind;

const CONFIG: Config = Config { max_entries: 4, restarts: 4 };

fn scenario() {
    race(Arc::new(common::bm(MemoryKind::Madvise, 1, 16)));
}

/// The same with a 10-page pool over the exmap emulation: pages are
/// evicted all the time and optimistic readers fault on them.
fn scenario_evicting() {
    let device = snowfall_buffer::device::MemoryDevice::new(4096);
    let config = snowfall_buffer::Config {
        pool_bytes: 10 * 4096,
        virtual_bytes: 16 << 20,
        eviction_batch: 2,
        memory: MemoryKind::EmulatedExmap,
        ..snowfall_buffer::Config::default()
    };
    let bm = Arc::new(snowfall_buffer::BufferManager::open(config, Box::new(device)).unwrap());
    race(bm.clone());
    assert!(bm.stats().evictions > 0, "the 10-page pool never overflowed");
}

fn race(bm: Arc<snowfall_buffer::BufferManager>) {
    let root = {
        let tree = BTree::create(&bm, CONFIG).unwrap();
        for k in 0..24 {
            tree.insert(&key(k), &[k as u8]).unwrap();
        }
        tree.root()
    };
    let writer = {
        let bm = bm.clone();
        thread::spawn(move || {
            let tree = BTree::open(&bm, root, CONFIG);
            for k in 24..40 {
                tree.insert(&key(k), &[k as u8]).unwrap();
            }
        })
    };
    let remover = {
        let bm = bm.clone();
        thread::spawn(move || {
            let tree = BTree::open(&bm, root, CONFIG);
            for k in 0..16 {
                assert!(tree.remove(&key(k)).unwrap());
            }
        })
    };
    let reader = {
        let bm = bm.clone();
        thread::spawn(move || {
            let tree = BTree::open(&bm, root, CONFIG);
            for k in 16..24 {
                assert_eq!(tree.get(&key(k)).unwrap(), Some(vec![k as u8]), "untouched key {k}");
            }
            let mut seen = Vec::new();
            tree.scan(Bound::Included(&key(10)), Direction::Forward, |k, _| {
                seen.push(k.to_vec());
                true
            })
            .unwrap();
            assert!(seen.windows(2).all(|w| w[0] < w[1]), "scan out of order");
            for k in 16..24 {
                assert!(seen.contains(&key(k).to_vec()), "scan skipped untouched key {k}");
            }
        })
    };
    writer.join().unwrap();
    remover.join().unwrap();
    reader.join().unwrap();
    let tree = BTree::open(&bm, root, CONFIG);
    let shape = tree.check().unwrap();
    assert_eq!(shape.entries, 24);
    for k in 0..40 {
        assert_eq!(tree.get(&key(k)).unwrap().is_some(), k >= 16, "key {k}");
    }
}

#[test]
fn splits_and_merges_race_with_readers() {
    shuttle::check_random(scenario, 2000);
}

#[test]
fn splits_and_merges_race_with_readers_pct() {
    shuttle::check_pct(scenario, 2000, 3);
}

#[test]
fn splits_and_merges_race_with_readers_while_pages_are_evicted() {
    shuttle::check_random(scenario_evicting, 500);
}
