//! Redo reproduces the tree: every unit the tree logs, replayed in order
//! on page copies (images of new and rewritten pages, operations elsewhere),
//! rebuilds exactly the pages the tree holds, with splits, merges, root
//! growth and shrink among them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::collections::HashMap;
use std::sync::Mutex;

use common::{bm, key, splitmix64};
use snowfall_btree::journal::{Decoded, Image, Journal, Op, Unit};
use snowfall_btree::{BTree, Config};
use snowfall_buffer::PageId;
use snowfall_buffer::memory::MemoryKind;
use snowfall_node::{NodeMut, SplitKind};
use snowfall_wal::LogError;

/// A journal that keeps encoded units in memory.
struct Recorder {
    units: Mutex<Vec<Vec<u8>>>,
}

impl Journal for Recorder {
    fn log(&self, unit: &Unit<'_>) -> Result<u64, LogError> {
        let mut units = self.units.lock().unwrap();
        let mut bytes = Vec::new();
        unit.encode(&mut bytes);
        units.push(bytes);
        // LSNs: 1, 2, 3, ... (units are logged in order under the lock).
        Ok(units.len() as u64)
    }
}

fn replay(units: &[Vec<u8>], start: &HashMap<PageId, Vec<u8>>) -> HashMap<PageId, Vec<u8>> {
    let mut pages = start.clone();
    for bytes in units {
        let unit = Decoded::decode(bytes).expect("decodes");
        for (page, op) in &unit.changes {
            if let Op::Image(_) = op {
                pages.insert(*page, vec![0; snowfall_buffer::BODY_SIZE]);
            }
            let body = pages.get_mut(page).unwrap_or_else(|| panic!("{page} changed before its image"));
            op.apply(body).unwrap_or_else(|_| panic!("{page}: {op:?} does not apply"));
        }
        for page in &unit.freed {
            pages.remove(page);
        }
    }
    pages
}

fn check(max_entries: usize, seed: u64, ops: u64, drain: bool) {
    check_keys(max_entries, seed, ops, drain, |_, r| r % (ops * 2));
}

/// [`check`] with the key of the `i`-th write, random number `r`, from
/// `key_of`; returns the split operations logged, in order and balanced.
fn check_keys(max_entries: usize, seed: u64, ops: u64, drain: bool, key_of: impl Fn(u64, u64) -> u64) -> [usize; 2] {
    let bm = bm(MemoryKind::Madvise, 8, 64);
    let tree = BTree::create(&bm, Config { max_entries, ..Config::default() }).unwrap();
    let root = tree.root();
    let start: HashMap<_, _> = [(root, bm.fix_shared(root).unwrap().page().body().to_vec())].into();
    let recorder = Recorder { units: Mutex::new(Vec::new()) };
    let tree = tree.with_journal(&recorder);
    let mut keys = Vec::new();
    // The references each key holds: every write must release the one it
    // replaces or removes, and no other.
    let mut references: HashMap<u64, Vec<u8>> = HashMap::new();
    let released = || {
        let units = recorder.units.lock().unwrap();
        // The write's unit; merges after a remove come after it.
        let write = units.iter().rev().find_map(|u| Decoded::decode(u).unwrap().write).unwrap();
        write.released.map(<[u8]>::to_vec)
    };
    for i in 0..ops {
        let r = splitmix64(seed ^ i);
        let batch = if r.is_multiple_of(5) { 1 + r % 3 } else { 0 };
        if r.is_multiple_of(3) && !keys.is_empty() {
            let k: u64 = keys.swap_remove((r >> 8) as usize % keys.len());
            assert!(tree.delete(&key(k), batch).unwrap().existed);
            assert_eq!(released(), references.remove(&k), "remove of {k}");
        } else {
            let k = key_of(i, r);
            let value = vec![(r >> 16) as u8; (r >> 24) as usize % 40];
            // One write in seven stores a reference (up to the largest).
            let reference = r.is_multiple_of(7);
            let value = if reference { vec![(r >> 16) as u8; 1 + (r >> 24) as usize % 256] } else { value };
            let stored = snowfall_btree::Stored { bytes: &value, reference };
            if !tree.put_stored(&key(k), stored, batch).unwrap().existed {
                keys.push(k);
            }
            let old = if reference { references.insert(k, value.clone()) } else { references.remove(&k) };
            assert_eq!(released(), old, "write of {k}");
        }
    }
    if drain {
        // Merges all the way down to a root leaf.
        for k in keys.drain(..) {
            assert!(tree.delete(&key(k), 0).unwrap().existed);
            assert_eq!(released(), references.remove(&k), "remove of {k}");
        }
        assert_eq!(tree.check().unwrap().height, 1);
    }
    tree.check().unwrap();
    let replayed = replay(&recorder.units.lock().unwrap(), &start);
    let mut live = 0;
    for (page, body) in &replayed {
        let mut mine = body.clone();
        let mut theirs = bm.fix_shared(*page).unwrap().page().body().to_vec();
        assert_eq!(
            NodeMut::new(&mut mine).contents().unwrap(),
            NodeMut::new(&mut theirs).contents().unwrap(),
            "{page} differs after redo (seed {seed})"
        );
        // Byte for byte but the free gap (which an image zeroes), the
        // header's run hint too (redo never reads it, but reproduces it).
        assert_eq!(Image::of(&mine), Image::of(&theirs), "{page}'s bytes differ after redo (seed {seed})");
        live += 1;
    }
    let shape = tree.check().unwrap();
    assert_eq!(live as u64, shape.inner_pages + shape.leaf_pages, "pages alive after redo (seed {seed})");
    let mut splits = [0; 2];
    for bytes in recorder.units.lock().unwrap().iter() {
        for (_, op) in Decoded::decode(bytes).unwrap().changes {
            if let Op::Split { kind, .. } = op {
                splits[usize::from(kind == SplitKind::Balanced)] += 1;
            }
        }
    }
    splits
}

#[test]
fn redo_rebuilds_a_tree_of_tiny_nodes() {
    for seed in 0..8 {
        check(4, seed, 3000, seed % 2 == 0);
    }
}

#[test]
fn redo_rebuilds_a_tree_of_full_nodes() {
    check(usize::MAX, 99, 40_000, false);
    check(usize::MAX, 100, 20_000, true);
}

/// In-order loads split where the run goes on, a choice the log records:
/// redo repeats it. Ascending keys, and two ascending runs interleaved at
/// random (one of them inside the key space), with removes.
#[test]
fn redo_rebuilds_a_tree_loaded_in_order() {
    for max_entries in [4, 16, usize::MAX] {
        let [in_order, balanced] = check_keys(max_entries, 7, 20_000, false, |i, _| i);
        assert!(in_order > 10 * balanced, "{in_order} splits in order, {balanced} balanced");
        let [in_order, _] =
            check_keys(max_entries, 8, 20_000, max_entries == 16, |i, r| if r % 2 == 0 { i } else { 1 << 40 | i });
        assert!(in_order > 0);
    }
}

/// A small write's unit (8-byte key and value, one leaf change, the key
/// not repeated) stays small: this is most of the log's volume.
#[test]
fn a_small_write_encodes_in_27_bytes() {
    use snowfall_btree::journal::{Change, Write};
    let key = [7u8; 8];
    let write = Write { tree: PageId(2), key: &key, batch: 0, before: None, released: None };
    let change = Change { page: PageId(20_000), op: Op::Insert { key: &key, value: &[1; 8], reference: false } };
    let mut out = Vec::new();
    Unit { write: Some(write), changes: &[change], freed: &[] }.encode(&mut out);
    assert_eq!(out.len(), 27, "{out:?}");
    let decoded = Decoded::decode(&out).unwrap();
    assert_eq!(decoded.write, Some(write));
    assert_eq!(decoded.changes, vec![(PageId(20_000), Op::Insert { key: &key, value: &[1; 8], reference: false })]);
}

/// A write of a reference, replacing a reference inside a batch: the
/// inserted reference, the value before (a reference) and the released
/// reference all come back as they were.
#[test]
fn references_round_trip_through_a_unit() {
    use snowfall_btree::Stored;
    use snowfall_btree::journal::{Change, Write};
    let key = *b"big";
    let before = Stored { bytes: b"old reference", reference: true };
    let write =
        Write { tree: PageId(2), key: &key, batch: 9, before: Some(Some(before)), released: Some(b"old reference") };
    let change = Change { page: PageId(5), op: Op::Insert { key: &key, value: b"new reference", reference: true } };
    let mut out = Vec::new();
    Unit { write: Some(write), changes: &[change], freed: &[] }.encode(&mut out);
    let decoded = Decoded::decode(&out).unwrap();
    assert_eq!(decoded.write, Some(write));
    assert_eq!(decoded.changes, vec![(PageId(5), change.op)]);
    // A released reference without a write is malformed.
    assert!(Decoded::decode(&[4, 0]).is_err());
}

/// Decoding refuses every malformed variation of a valid unit instead of
/// misreading it: each truncation, unknown flag bits, a "same key" mark on
/// an op without a key or in a unit without a write, counts beyond the
/// bytes left, an empty freed list, and trailing bytes.
#[test]
fn decoding_refuses_malformed_units() {
    use snowfall_btree::journal::{Change, Write};
    let key = *b"key";
    let old = snowfall_btree::Stored { bytes: b"old", reference: false };
    let write = Write { tree: PageId(300), key: &key, batch: 5, before: Some(Some(old)), released: None };
    let changes = [
        Change { page: PageId(9), op: Op::Insert { key: &key, value: b"new", reference: false } },
        Change { page: PageId(4), op: Op::SetChild { index: 2, child: 1 << 40 } },
        Change { page: PageId(4), op: Op::Remove { key: b"other" } },
    ];
    let mut good = Vec::new();
    Unit { write: Some(write), changes: &changes, freed: &[PageId(77), PageId(1 << 33)] }.encode(&mut good);
    let decoded = Decoded::decode(&good).unwrap();
    assert_eq!(decoded.freed, vec![PageId(77), PageId(1 << 33)]);
    assert_eq!(decoded.changes.len(), 3);
    for len in 0..good.len() {
        assert!(Decoded::decode(&good[..len]).is_err(), "truncated to {len} of {}", good.len());
    }
    let mut trailing = good.clone();
    trailing.push(0);
    assert!(Decoded::decode(&trailing).is_err(), "trailing byte");
    let mut flags = good.clone();
    flags[0] |= 8;
    assert!(Decoded::decode(&flags).is_err(), "unknown flag bit");

    // A unit of one change, without a write: | flags | count | page | op | operands |.
    let decode = |b: &[u8]| Decoded::decode(b).is_ok();
    assert!(decode(&[0, 1, 9, 3, 2]), "remove at index 2");
    assert!(!decode(&[0, 1, 9, 3 | 0x80, 2]), "same-key mark on remove at");
    assert!(!decode(&[0, 1, 9, 1 | 0x80, 1, 7]), "same-key insert without a write");
    assert!(!decode(&[0, 9, 9, 3, 2]), "more changes than bytes");
    assert!(!decode(&[0, 0x80, 0, 9, 3, 2]), "a count not in its shortest form");
    assert!(!decode(&[2, 0, 0]), "an empty freed list");
    assert!(!decode(&[2, 200, 1, 0]), "more freed ids than bytes");
    assert!(decode(&[2, 1, 5, 0]), "one freed page, no changes");
    let huge = [0, 1, 9, 2, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01];
    assert!(!decode(&huge), "a key length of u64::MAX (found by fuzzing: an overflow)");
}
