//! Large values side by side: SnowfallDB (`snowfall_db::Database`, default
//! options: a 256 MiB pool) against LMDB (heed, `NO_SYNC` commits of 64 MiB
//! of values each, one forced sync at the end). Both read values in place
//! (`get_with`, LMDB's `get`): in memory when the values fit the pool. Each engine, in a process of
//! its own, writes `total / size` values of `size` bytes (keys `0..n`, 8
//! bytes big-endian), syncs, then reads uniformly random keys for a fixed
//! time, checking every value whole (its length, its first 8 bytes, which
//! hold the key, and the rest against the shared pattern). Reported: write
//! and read MB/s, and the file's size over the values' bytes.
//!
//! `compare large [--size BYTES] [--total BYTES] [--seconds S] [--runs R]`
//! `compare large-one ENGINE SIZE TOTAL SECONDS` is one such process.

use std::time::Instant;

use crate::{Results, collect, fresh_dir, median, splitmix64};

const ENGINES: [&str; 2] = ["snowfall-db", "lmdb"];

/// Bytes of values per LMDB write transaction.
const LMDB_COMMIT_BYTES: u64 = 64 << 20;

/// The value of key `i`: `i` in its first 8 bytes, then the pattern.
fn fill(i: u64, pattern: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&i.to_le_bytes());
    out.extend_from_slice(&pattern[8..]);
}

fn check(i: u64, pattern: &[u8], got: &[u8]) -> bool {
    got.len() == pattern.len() && got[..8] == i.to_le_bytes() && got[8..] == pattern[8..]
}

fn pattern(size: usize) -> Vec<u8> {
    (0..size.max(8) as u64).map(|i| splitmix64(i) as u8).collect()
}

fn file_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum()
}

/// One engine: prints `write_mb_s`, `read_mb_s`, `reads`, `file_ratio`.
pub fn one(engine: &str, size: usize, total: u64, seconds: f64) {
    let n = (total / size as u64).max(1);
    let pattern = pattern(size);
    let dir = fresh_dir(&format!("large-{engine}"));
    let mut buf = Vec::with_capacity(size);
    let (write_s, read) = match engine {
        "snowfall-db" => {
            let db =
                snowfall_db::Database::open(dir.join("db").to_str().unwrap(), snowfall_db::Options::default()).unwrap();
            let t = db.tree("t").unwrap();
            let t0 = Instant::now();
            for i in 0..n {
                fill(i, &pattern, &mut buf);
                t.insert_with(&i.to_be_bytes(), &buf, snowfall_db::Durability::None).unwrap();
            }
            db.sync().unwrap();
            let write_s = t0.elapsed().as_secs_f64();
            // In place, as LMDB's `get` reads its map.
            let read = reads(seconds, n, |i, _| {
                t.get_with(&i.to_be_bytes(), |v| check(i, &pattern, v)).unwrap().unwrap_or(false)
            });
            // The log's preallocated ring is not data: count the data file.
            let data = std::fs::metadata(dir.join("db")).unwrap().len();
            db.close().unwrap();
            println!("file_ratio {}", data as f64 / (n * size as u64) as f64);
            (write_s, read)
        }
        "lmdb" => {
            // SAFETY: a fresh directory only this process opens.
            let env = unsafe {
                heed::EnvOpenOptions::new()
                    .map_size((total * 3).max(1 << 30) as usize)
                    .flags(heed::EnvFlags::NO_SYNC | heed::EnvFlags::NO_META_SYNC)
                    .open(&dir)
                    .unwrap()
            };
            let mut txn = env.write_txn().unwrap();
            let db: heed::Database<heed::types::Bytes, heed::types::Bytes> =
                env.create_database(&mut txn, None).unwrap();
            txn.commit().unwrap();
            let per_txn = (LMDB_COMMIT_BYTES / size as u64).max(1);
            let t0 = Instant::now();
            let mut i = 0;
            while i < n {
                let mut txn = env.write_txn().unwrap();
                for j in i..(i + per_txn).min(n) {
                    fill(j, &pattern, &mut buf);
                    db.put(&mut txn, &j.to_be_bytes(), &buf).unwrap();
                }
                txn.commit().unwrap();
                i += per_txn;
            }
            env.force_sync().unwrap();
            let write_s = t0.elapsed().as_secs_f64();
            let read = reads(seconds, n, |i, _| {
                let txn = env.read_txn().unwrap();
                db.get(&txn, &i.to_be_bytes()).unwrap().is_some_and(|v| check(i, &pattern, v))
            });
            println!("file_ratio {}", file_bytes(&dir) as f64 / (n * size as u64) as f64);
            (write_s, read)
        }
        other => panic!("unknown engine {other}"),
    };
    let _ = std::fs::remove_dir_all(&dir);
    println!("write_mb_s {}", (n * size as u64) as f64 / write_s / 1e6);
    println!("read_mb_s {}", read as f64 * size as f64 / seconds / 1e6);
    println!("reads {read}");
}

/// Reads random keys of `0..n` for `seconds`; the number read (each checked).
fn reads(seconds: f64, n: u64, mut get: impl FnMut(u64, &mut Vec<u8>) -> bool) -> u64 {
    let mut out = Vec::new();
    let t0 = Instant::now();
    let mut count = 0;
    while t0.elapsed().as_secs_f64() < seconds {
        let i = splitmix64(count ^ 0xBEEF) % n;
        assert!(get(i, &mut out), "key {i} lost or wrong");
        count += 1;
    }
    count
}

/// Every engine, interleaved, `runs` times; medians and ratios.
pub fn all(size: usize, total: u64, seconds: u64, runs: u32) {
    let mut results = Results::new();
    for run in 0..runs {
        for engine in ENGINES {
            eprintln!("run {}/{runs}: {engine}, {size}-byte values", run + 1);
            let args = ["large-one", engine, &size.to_string(), &total.to_string(), &seconds.to_string()];
            collect(engine, &args, &mut results);
        }
    }
    let get = |e, m: &str| median(results.get(&(e, m.to_string())).cloned().unwrap_or_default());
    println!(
        "{size}-byte values, {} MiB written, reads for {seconds} s, {runs} interleaved runs (medians)",
        total >> 20
    );
    println!("{:<12} {:>12} {:>12} {:>12}", "engine", "write MB/s", "read MB/s", "file/data");
    for e in ENGINES {
        println!(
            "{:<12} {:>12.1} {:>12.1} {:>12.3}",
            e,
            get(e, "write_mb_s"),
            get(e, "read_mb_s"),
            get(e, "file_ratio")
        );
    }
    println!(
        "snowfall-db / lmdb: write {:.2}x, read {:.2}x",
        get("snowfall-db", "write_mb_s") / get("lmdb", "write_mb_s"),
        get("snowfall-db", "read_mb_s") / get("lmdb", "read_mb_s")
    );
    println!("raw: {results:?}");
}
