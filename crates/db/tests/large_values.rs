//! Values of any size: sizes on both sides of the inline limit and of page
//! boundaries through every read and write call, reopen, batches, the
//! integrity check, a damaged value, drop_tree, and the file bound when
//! large values are overwritten again and again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::ops::Bound;

use common::{TempPath, small};
use snowfall_db::{Batch, Database, Direction, Durability, Error, MAX_ENTRY, Options};

/// A value of `len` bytes that differs for every `(seed, len)`.
fn value(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ len as u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Lengths around the inline limit for an 8-byte key and around pages.
fn lengths() -> Vec<usize> {
    let limit = MAX_ENTRY - 8;
    vec![0, 1, limit - 1, limit, limit + 1, 4095, 4096, 4097, 3 * 4096, (1 << 20) + 1]
}

#[expect(clippy::big_endian_bytes, reason = "keys sort like the numbers they encode")]
fn key(i: usize) -> [u8; 8] {
    (i as u64).to_be_bytes()
}

#[test]
fn every_size_round_trips_through_every_call_and_a_reopen() {
    let path = TempPath::new("large-sizes");
    let lens = lengths();
    {
        let db = Database::open(path.str(), small()).unwrap();
        let t = db.tree("t").unwrap();
        for (i, &len) in lens.iter().enumerate() {
            assert!(!t.insert(&key(i), &value(1, len)).unwrap());
        }
        let mut out = Vec::new();
        for (i, &len) in lens.iter().enumerate() {
            let want = value(1, len);
            assert_eq!(t.get(&key(i)).unwrap().as_deref(), Some(&want[..]), "get {len}");
            assert_eq!(t.get_into(&key(i), &mut out).unwrap(), Some(len), "get_into {len}");
            assert_eq!(out, want);
            assert_eq!(t.get_with(&key(i), |v| v == want.as_slice()).unwrap(), Some(true), "get_with {len}");
        }
        let forward: Vec<(Vec<u8>, Vec<u8>)> = t.range::<[u8]>(..).map(Result::unwrap).collect();
        let mut backward: Vec<(Vec<u8>, Vec<u8>)> = t.range::<[u8]>(..).rev().map(Result::unwrap).collect();
        backward.reverse();
        assert_eq!(forward, backward);
        assert_eq!(forward.len(), lens.len());
        for (i, (k, v)) in forward.iter().enumerate() {
            assert_eq!((k.as_slice(), v.len()), (&key(i)[..], lens[i]));
            assert_eq!(*v, value(1, lens[i]));
        }
        // Replace every value by one of another size (large by small, small
        // by large), then remove every other key.
        for (i, &len) in lens.iter().enumerate() {
            let other = lens[lens.len() - 1 - i];
            assert!(t.insert_with(&key(i), &value(2, other), Durability::Sync).unwrap());
            assert_eq!(t.get(&key(i)).unwrap().map(|v| v.len()), Some(other), "replaced {len} by {other}");
        }
        for i in (0..lens.len()).step_by(2) {
            assert!(t.remove(&key(i)).unwrap());
        }
        let checked = db.check_integrity().unwrap();
        assert_eq!(checked.entries, (lens.len() / 2) as u64);
        // The odd keys hold the sizes of the even ones before them, reversed.
        let large = (1..lens.len()).step_by(2).filter(|&i| lens[lens.len() - 1 - i] > MAX_ENTRY - 8).count();
        assert_eq!(checked.large_values, large as u64);
        db.close().unwrap();
    }
    let db = Database::open(path.str(), Options { create: false, ..small() }).unwrap();
    let t = db.existing_tree("t").unwrap();
    for i in 0..lens.len() {
        let want = (i % 2 == 1).then(|| value(2, lens[lens.len() - 1 - i]));
        assert_eq!(t.get(&key(i)).unwrap(), want, "after reopen, key {i}");
    }
    db.check_integrity().unwrap();
}

#[test]
fn a_value_over_the_limit_is_a_typed_error_and_writes_nothing() {
    let path = TempPath::new("large-limit");
    let db = Database::open(path.str(), small()).unwrap();
    let t = db.tree("t").unwrap();
    // A value over 4 GiB - 1 would take 4 GiB of memory to pass; the limit
    // is the constant `check_entry` compares with.
    assert_eq!(snowfall_db::MAX_VALUE, u32::MAX as usize);
    let e = t.insert(&[1; 1025], b"x").unwrap_err();
    assert!(matches!(e, Error::Tree(snowfall_db::TreeError::KeyTooLarge { .. })), "{e}");
    assert_eq!(t.get(&[1; 8]).unwrap(), None);
}

#[test]
fn large_values_in_batches_commit_together() {
    let path = TempPath::new("large-batch");
    let db = Database::open(path.str(), small()).unwrap();
    let t = db.tree("t").unwrap();
    t.insert(&key(1), &value(3, 10_000)).unwrap();
    let mut batch = Batch::new();
    batch.insert(&t, &key(1), &value(4, 20_000));
    batch.insert(&t, &key(2), &value(5, 5_000));
    batch.remove(&t, &key(3));
    db.write(&batch, Durability::Sync).unwrap();
    assert_eq!(t.get(&key(1)).unwrap(), Some(value(4, 20_000)));
    assert_eq!(t.get(&key(2)).unwrap(), Some(value(5, 5_000)));
    db.check_integrity().unwrap();
}

/// Overwriting large values again and again reuses the space the old
/// values leave: the file stays within the live data plus what waits for a
/// checkpoint (released values are reused once their release is durable).
#[test]
fn overwriting_large_values_keeps_the_file_bounded() {
    let path = TempPath::new("large-bound");
    let db = Database::open(path.str(), small()).unwrap();
    let t = db.tree("t").unwrap();
    let (keys, len) = (8, 64 << 10);
    for round in 0..200u64 {
        for k in 0..keys {
            t.insert(&key(k), &value(round, len)).unwrap();
        }
        if round % 50 == 49 {
            db.checkpoint().unwrap();
        }
    }
    db.checkpoint().unwrap();
    let pages = db.stats().allocated_pages;
    let live = (keys * len / 4096) as u64;
    // Live values, one more generation of each (released, waiting for the
    // log to be durable), the tree and the bookkeeping pages.
    assert!(pages <= 2 * live + 64, "{pages} pages for {live} pages of live values");
    eprintln!("{pages} pages in the file for {live} pages of live values");
    for k in 0..keys {
        assert_eq!(t.get(&key(k)).unwrap(), Some(value(199, len)));
    }
    db.check_integrity().unwrap();
}

#[test]
fn a_damaged_large_value_is_an_error_naming_its_page_never_wrong_bytes() {
    let path = TempPath::new("large-damage");
    {
        let db = Database::open(path.str(), small()).unwrap();
        let t = db.tree("t").unwrap();
        t.insert(&key(1), &value(6, 3 * 4096)).unwrap();
        db.close().unwrap();
    }
    // The value is the only thing past the tree's pages: flip a byte in
    // the last page of the file.
    let mut bytes = std::fs::read(path.str()).unwrap();
    let at = bytes.len() - 4096 + 100;
    bytes[at] ^= 0xFF;
    std::fs::write(path.str(), &bytes).unwrap();
    let db = Database::open(path.str(), Options { create: false, ..small() }).unwrap();
    let t = db.existing_tree("t").unwrap();
    let e = t.get(&key(1)).unwrap_err();
    assert!(matches!(e, Error::CorruptValue { .. }), "{e}");
    assert!(e.to_string().contains("damaged"), "{e}");
    assert!(db.check_integrity().is_err());
}

#[test]
fn dropping_a_tree_frees_its_large_values() {
    let path = TempPath::new("large-drop");
    let mut db = Database::open(path.str(), small()).unwrap();
    {
        let t = db.tree("t").unwrap();
        for k in 0..20 {
            t.insert(&key(k), &value(7, 50_000)).unwrap();
        }
    }
    db.checkpoint().unwrap();
    let before = db.stats().allocated_pages;
    db.drop_tree("t").unwrap();
    db.checkpoint().unwrap();
    db.check().unwrap();
    let t = db.tree("u").unwrap();
    for k in 0..20 {
        t.insert(&key(k), &value(8, 50_000)).unwrap();
    }
    db.checkpoint().unwrap();
    assert!(db.stats().allocated_pages <= before + 16, "{} > {before}", db.stats().allocated_pages);
    db.check_integrity().unwrap();
    let n = t.range::<[u8]>(..).count();
    assert_eq!(n, 20);
    let mut seen = 0;
    t.scan(Bound::Unbounded, Direction::Backward, |_, v| {
        seen += usize::from(v == value(8, 50_000).as_slice());
        true
    })
    .unwrap();
    assert_eq!(seen, 20);
}

/// Random inserts (sizes on both sides of the inline limit and of page
/// boundaries, up to a 64 MiB value), removes, reads and reopens against a
/// `BTreeMap`.
#[test]
fn random_writes_of_every_size_match_a_btreemap() {
    use snowfall_buffer::scenario::SplitMix64;
    let path = TempPath::new("large-model");
    let limit = MAX_ENTRY - 8;
    let sizes = [0, 1, 100, limit - 1, limit, limit + 1, 4095, 4096, 4097, 20_000, (1 << 20) + 1];
    let mut model: std::collections::BTreeMap<u64, Vec<u8>> = std::collections::BTreeMap::new();
    let mut rng = SplitMix64(14);
    let mut db = Database::open(path.str(), small()).unwrap();
    for step in 0..600u64 {
        let t = db.tree("t").unwrap();
        let k = rng.below(40);
        match rng.below(6) {
            0 => assert_eq!(t.remove(&key(k as usize)).unwrap(), model.remove(&k).is_some(), "step {step}"),
            1 => assert_eq!(t.get(&key(k as usize)).unwrap(), model.get(&k).cloned(), "step {step}"),
            _ => {
                let v = value(step, sizes[rng.below(sizes.len() as u64) as usize]);
                assert_eq!(t.insert(&key(k as usize), &v).unwrap(), model.insert(k, v).is_some(), "step {step}");
            }
        }
        if step == 300 {
            // One 64 MiB value among them.
            let v = value(step, 64 << 20);
            t.insert(&key(7), &v).unwrap();
            model.insert(7, v);
        }
        if step % 150 == 149 {
            db.close().unwrap();
            db = Database::open(path.str(), Options { create: false, ..small() }).unwrap();
        }
    }
    let t = db.tree("t").unwrap();
    let got: Vec<(Vec<u8>, Vec<u8>)> = t.range::<[u8]>(..).map(Result::unwrap).collect();
    let want: Vec<(Vec<u8>, Vec<u8>)> = model.iter().map(|(k, v)| (key(*k as usize).to_vec(), v.clone())).collect();
    assert!(got == want, "the tree differs from the model");
    db.check_integrity().unwrap();
}

/// Readers of a large value while one writer replaces it with values of
/// other sizes and removes it: each read returns one of the values whole,
/// or nothing, never a mix.
#[test]
fn readers_see_the_old_value_whole_or_the_new_one_while_it_is_overwritten() {
    let path = TempPath::new("large-race");
    let db = Database::open(path.str(), small()).unwrap();
    let t = db.tree("t").unwrap();
    // Up to 16 keys of 30-380 KB: more than the 4 MiB pool, so cached
    // extents are evicted under their readers' feet, and reused (each size
    // twice: in the same shape). A value starts with its key, so a read that
    // found another key's bytes (a stale cached extent) fails too.
    let versions: Vec<Vec<u8>> = (0..6).map(|i| value(100 + i, 30_000 + 70_000 * (i % 3) as usize)).collect();
    let of = |k: &[u8; 8], v: usize| {
        let mut bytes = versions[v].clone();
        bytes[..8].copy_from_slice(k);
        bytes
    };
    let is_a_version = |k: &[u8; 8], got: &[u8]| got[..8] == k[..] && versions.iter().any(|v| v[8..] == got[8..]);
    t.insert(&key(1), &of(&key(1), 0)).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let reads = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|s| {
        for reader in 0..2u64 {
            let (t, is_a_version, stop, reads) = (&t, &is_a_version, &stop, &reads);
            s.spawn(move || {
                let mut out = Vec::new();
                let mut i = reader;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    i = i.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    let k = key((i >> 33) as usize % 16);
                    // In place (the cached extent latched) or copied.
                    let whole = if reader == 0 {
                        t.get_with(&k, |v| is_a_version(&k, v)).unwrap()
                    } else {
                        t.get_into(&k, &mut out).unwrap().map(|_| is_a_version(&k, &out))
                    };
                    assert!(whole.unwrap_or(true), "a read of {k:?} matches no version");
                    reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
        for round in 0..1_000usize {
            let k = key(round * 7 % 16);
            if round % 7 == 6 {
                t.remove_with(&k, Durability::None).unwrap();
            } else {
                t.insert_with(&k, &of(&k, round % versions.len()), Durability::None).unwrap();
            }
            if round % 50 == 0 {
                db.sync().unwrap();
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    assert!(reads.into_inner() > 100);
    db.check_integrity().unwrap();
}

/// A value written in chunks of odd sizes and read back in other odd
/// sizes, at offsets, and whole; a small one ends up inline; a writer
/// dropped before its commit leaves nothing behind.
#[test]
fn streamed_values_round_trip_and_uncommitted_ones_leave_nothing() {
    let path = TempPath::new("large-stream");
    let db = Database::open(path.str(), small()).unwrap();
    let t = db.tree("t").unwrap();
    let want = value(9, (5 << 20) + 123);
    let mut w = t.writer(&key(1)).unwrap();
    for chunk in want.chunks(65_537) {
        w.write(chunk).unwrap();
    }
    assert_eq!(w.len(), want.len() as u64);
    assert!(!w.commit(Durability::Sync).unwrap());
    assert_eq!(t.get(&key(1)).unwrap().as_deref(), Some(&want[..]));
    let mut r = t.reader(&key(1)).unwrap().unwrap();
    assert_eq!(r.len(), want.len() as u64);
    let mut got = Vec::new();
    let mut chunk = vec![0u8; 100_003];
    loop {
        let n = r.read(&mut chunk).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&chunk[..n]);
    }
    assert!(got == want);
    for offset in [0u64, 1, 4095, 4096, (1 << 20) - 1, 1 << 20, 5 << 20, want.len() as u64 - 1] {
        let mut b = [0u8; 5000];
        let n = r.read_at(offset, &mut b).unwrap();
        assert_eq!(&b[..n], &want[offset as usize..(offset as usize + 5000).min(want.len())], "at {offset}");
    }
    r.verify().unwrap();
    drop(r);
    // Small: inline.
    let mut w = t.writer(&key(2)).unwrap();
    w.write(b"small ").unwrap();
    w.write(b"value").unwrap();
    w.commit(Durability::None).unwrap();
    assert_eq!(t.get(&key(2)).unwrap().as_deref(), Some(&b"small value"[..]));
    // Dropped: its extents are free again.
    let mut w = t.writer(&key(3)).unwrap();
    w.write(&value(10, 3 << 20)).unwrap();
    drop(w);
    assert_eq!(t.get(&key(3)).unwrap(), None);
    assert_eq!(db.check_integrity().unwrap().entries, 2);
}

/// A reader keeps the value it opened while writers replace and remove
/// it, and reuse of its extent waits for it.
#[test]
fn a_reader_keeps_its_value_while_writers_replace_it() {
    let path = TempPath::new("large-reader-pin");
    let db = Database::open(path.str(), small()).unwrap();
    let t = db.tree("t").unwrap();
    let first = value(11, 200_000);
    t.insert(&key(1), &first).unwrap();
    let mut r = t.reader(&key(1)).unwrap().unwrap();
    for round in 0..20 {
        t.insert_with(&key(1), &value(12 + round, 200_000), Durability::Sync).unwrap();
    }
    t.remove_with(&key(1), Durability::Sync).unwrap();
    db.checkpoint().unwrap();
    let mut got = vec![0u8; first.len()];
    let mut at = 0;
    while at < got.len() {
        at += r.read(&mut got[at..]).unwrap();
    }
    assert!(got == first, "the reader's value changed under it");
    drop(r);
    assert_eq!(t.get(&key(1)).unwrap(), None);
    db.check_integrity().unwrap();
}

/// Sequential reads check the checksum at the end.
#[test]
fn a_streamed_read_of_a_damaged_value_fails_at_the_end() {
    let path = TempPath::new("large-stream-damage");
    {
        let db = Database::open(path.str(), small()).unwrap();
        db.tree("t").unwrap().insert(&key(1), &value(13, 3 * 4096)).unwrap();
        db.close().unwrap();
    }
    let mut bytes = std::fs::read(path.str()).unwrap();
    let at = bytes.len() - 4096 + 7;
    bytes[at] ^= 1;
    std::fs::write(path.str(), &bytes).unwrap();
    let db = Database::open(path.str(), Options { create: false, ..small() }).unwrap();
    let t = db.existing_tree("t").unwrap();
    let mut r = t.reader(&key(1)).unwrap().unwrap();
    let mut buf = vec![0u8; 4096];
    let mut result = Ok(1);
    while matches!(result, Ok(n) if n > 0) {
        result = r.read(&mut buf);
    }
    assert!(matches!(result, Err(Error::CorruptValue { .. })), "{result:?}");
}

/// A batch of large values is limited by what the log holds of it (their
/// references), not by the values' bytes.
#[test]
fn a_batch_of_many_large_values_fits_the_log() {
    let path = TempPath::new("large-batch-size");
    let db = Database::open(path.str(), small()).unwrap();
    let t = db.tree("t").unwrap();
    let mut batch = Batch::new();
    let big = value(20, 1 << 20);
    for k in 0..64 {
        batch.insert(&t, &key(k), &big);
    }
    db.write(&batch, Durability::Sync).unwrap();
    for k in 0..64 {
        assert_eq!(t.get(&key(k)).unwrap().as_deref(), Some(&big[..]));
    }
    db.check_integrity().unwrap();
}

/// The integrity check counts the pages a pending cut of the continuous
/// checkpoint set aside for its free list (it once called them leaked:
/// a value overwritten in place 32 times with checkpoints every 2 MiB of
/// log was enough).
#[test]
fn check_counts_the_pages_a_pending_checkpoint_holds() {
    let path = TempPath::new("large-pending-cut");
    let db = Database::open(path.str(), small()).unwrap();
    let t = db.tree("t").unwrap();
    t.insert_with(&key(0), &vec![1; 40_000], Durability::None).unwrap();
    for round in 0..64u8 {
        t.insert_with(&key(0), &vec![round; 45_000], Durability::None).unwrap();
        db.sync().unwrap();
        db.check().unwrap_or_else(|e| panic!("round {round}: {e}"));
    }
    db.close().unwrap();
}
