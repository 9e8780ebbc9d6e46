//! Compares SnowfallDB with `std::collections::BTreeMap` behind an `RwLock`
//! (an in-memory ceiling) and LMDB (heed) on the workload of the project's
//! performance anchors: 8-byte big-endian keys `splitmix64(i)`, 8-byte
//! values, loaded in `i` order (random key order), then uniform random
//! lookups of existing keys, values checked; at 1 and 2 threads.
//!
//! Engines: `snowfall-mem`, SnowfallDB's B-tree alone over the buffer
//! manager on a memory device (no log, nothing written: the tree's own
//! cost); `snowfall-db`, the whole engine (`snowfall_db::Database`) on real
//! files, default options but a 1 GiB pool, inserting with
//! `Durability::None` and syncing the log at the end of the load;
//! `btreemap`; `lmdb`, a write transaction per 100 K keys committed with
//! `NO_SYNC`, and a forced sync at the end of the load. The final syncs
//! count in the load time, so both file engines pay for durability once.
//! Files go to a fresh directory in the system temp directory (or
//! `SNOWFALL_BENCH_DIR`), removed afterwards. Bytes written per entry are
//! the load's `write_bytes` in `/proc/self/io` (what the process sent
//! towards the disk: direct writes as issued, buffered ones as pages
//! dirtied).
//!
//! `compare all [--keys N] [--lookups N] [--runs R]` runs every engine in a
//! process of its own, interleaved, R times, and prints medians and ratios.
//! `compare one ENGINE KEYS LOOKUPS [INSERT_THREADS]` is one such process.
//! `compare durable [--seconds S] [--runs R]`: durable writes (durable.rs).
//! `compare large [--size B] [--total B] [--seconds S] [--runs R]`: large
//! values (large.rs).
//! `compare tx [--keys N] [--seconds S] [--runs R] [--sync 0|1] [--zipf]`:
//! read-write transactions against LMDB, redb and, with the `rocksdb`
//! feature, RocksDB, keys uniform or Zipfian (tx.rs).

mod durable;
mod large;
mod procfs;
mod suite;
mod tpcc;
mod tx;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::RwLock;
use std::time::Instant;

const ENGINES: [&str; 4] = ["snowfall-mem", "snowfall-db", "btreemap", "lmdb"];

fn splitmix64(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn key(i: u64) -> [u8; 8] {
    splitmix64(i).to_be_bytes()
}

fn value(i: u64) -> [u8; 8] {
    i.to_le_bytes()
}

/// A fresh directory for `name`'s files in the system temp directory (or
/// `SNOWFALL_BENCH_DIR`).
fn fresh_dir(name: &str) -> PathBuf {
    let base = std::env::var_os("SNOWFALL_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    let dir = base.join(format!("snowfall-compare-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One engine: load in key order `0..keys` split over `threads`, look up.
trait Engine: Sync {
    fn insert(&self, i: u64);
    /// Inserts keys `range` on the calling thread.
    fn insert_range(&self, range: std::ops::Range<u64>) {
        range.for_each(|i| self.insert(i));
    }
    /// Ends the load: whatever the engine does to make it durable (timed
    /// with the load).
    fn finish_load(&self) {}
    fn lookup(&self, i: u64) -> bool;
    fn bytes_per_entry(&self, keys: u64) -> f64;
}

/// `snowfall-mem`: the B-tree alone, over a memory device.
struct Snowfall {
    bm: &'static snowfall_buffer::BufferManager,
    tree: snowfall_btree::BTree<'static>,
}

impl Engine for Snowfall {
    fn insert(&self, i: u64) {
        self.tree.insert(&key(i), &value(i)).unwrap();
    }
    fn lookup(&self, i: u64) -> bool {
        let mut out = [0u8; snowfall_btree::MAX_ENTRY];
        let found = self.tree.get_into(&key(i), &mut out).unwrap();
        found.is_some_and(|f| f.len == 8 && !f.reference) && out[..8] == value(i)
    }
    fn bytes_per_entry(&self, _keys: u64) -> f64 {
        let _ = self.bm;
        self.tree.check().unwrap().bytes_per_entry()
    }
}

/// `snowfall-db`: the whole engine on files. The database is leaked (this
/// process ends after one measurement; a close would checkpoint for
/// nothing), its directory removed when the engine is dropped.
struct SnowfallDb {
    db: &'static snowfall_db::Database,
    tree: snowfall_db::Tree<'static>,
    dir: PathBuf,
}

impl Engine for SnowfallDb {
    fn insert(&self, i: u64) {
        self.tree.insert_with(&key(i), &value(i), snowfall_db::Durability::None).unwrap();
    }
    fn finish_load(&self) {
        self.db.sync().unwrap();
    }
    fn lookup(&self, i: u64) -> bool {
        // One buffer per thread, reused (as `snowfall bench` does).
        thread_local!(static OUT: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) });
        OUT.with_borrow_mut(|out| self.tree.get_into(&key(i), out).unwrap() == Some(8) && out[..] == value(i))
    }
    /// Pages in use (the superblock's and the catalog's included).
    fn bytes_per_entry(&self, keys: u64) -> f64 {
        let s = self.db.stats();
        ((s.allocated_pages - s.free_pages) * snowfall_buffer::PAGE_SIZE as u64) as f64 / keys as f64
    }
}

impl Drop for SnowfallDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Map {
    map: RwLock<BTreeMap<[u8; 8], [u8; 8]>>,
    rss_before: u64,
}

impl Engine for Map {
    fn insert(&self, i: u64) {
        self.map.write().unwrap().insert(key(i), value(i));
    }
    fn lookup(&self, i: u64) -> bool {
        self.map.read().unwrap().get(&key(i)) == Some(&value(i))
    }
    fn bytes_per_entry(&self, keys: u64) -> f64 {
        (procfs::status("VmRSS:").saturating_sub(self.rss_before)) as f64 / keys as f64
    }
}

struct Lmdb {
    env: heed::Env,
    db: heed::Database<heed::types::Bytes, heed::types::Bytes>,
    dir: PathBuf,
}

impl Drop for Lmdb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Writes per LMDB write transaction (commits without fsync: NO_SYNC).
const LMDB_COMMIT_EVERY: u64 = 100_000;

impl Engine for Lmdb {
    fn insert(&self, i: u64) {
        self.insert_range(i..i + 1);
    }
    /// LMDB has one writer: each thread commits its own transactions of
    /// [`LMDB_COMMIT_EVERY`] writes (a write transaction belongs to the
    /// thread that began it), waiting for the writer lock in between.
    fn insert_range(&self, range: std::ops::Range<u64>) {
        let mut i = range.start;
        while i < range.end {
            let end = (i + LMDB_COMMIT_EVERY).min(range.end);
            let mut txn = self.env.write_txn().unwrap();
            for j in i..end {
                self.db.put(&mut txn, &key(j), &value(j)).unwrap();
            }
            txn.commit().unwrap();
            i = end;
        }
    }
    /// The commits were `NO_SYNC`: one forced sync makes them durable.
    fn finish_load(&self) {
        self.env.force_sync().unwrap();
    }
    fn lookup(&self, i: u64) -> bool {
        let txn = self.env.read_txn().unwrap();
        self.db.get(&txn, &key(i)).unwrap() == Some(&value(i)[..])
    }
    fn bytes_per_entry(&self, keys: u64) -> f64 {
        let txn = self.env.read_txn().unwrap();
        let s = self.db.stat(&txn).unwrap();
        ((s.branch_pages + s.leaf_pages + s.overflow_pages) * s.page_size as usize) as f64 / keys as f64
    }
}

fn open(engine: &str) -> Box<dyn Engine> {
    match engine {
        "snowfall-mem" => {
            let config = snowfall_buffer::Config {
                pool_bytes: 1 << 30,
                virtual_bytes: 2 << 30,
                ..snowfall_buffer::Config::default()
            };
            let device = snowfall_buffer::device::MemoryDevice::new(config.virtual_pages());
            let bm: &'static _ =
                Box::leak(Box::new(snowfall_buffer::BufferManager::open(config, Box::new(device)).unwrap()));
            let tree = snowfall_btree::BTree::create(bm, snowfall_btree::Config::default()).unwrap();
            Box::new(Snowfall { bm, tree })
        }
        "snowfall-db" => {
            let dir = fresh_dir(engine);
            let db = snowfall_db::Database::builder(dir.join("db").to_str().unwrap()).pool_bytes(1 << 30).create();
            let db: &'static _ = Box::leak(Box::new(db.unwrap()));
            let tree = db.tree("t").unwrap();
            Box::new(SnowfallDb { db, tree, dir })
        }
        "btreemap" => Box::new(Map { map: RwLock::new(BTreeMap::new()), rss_before: procfs::status("VmRSS:") }),
        "lmdb" => {
            let dir = fresh_dir(engine);
            // SAFETY: a fresh directory only this process opens.
            let env = unsafe {
                heed::EnvOpenOptions::new()
                    .map_size(4 << 30)
                    .flags(heed::EnvFlags::NO_SYNC | heed::EnvFlags::NO_META_SYNC)
                    .open(&dir)
                    .unwrap()
            };
            let mut txn = env.write_txn().unwrap();
            let db = env.create_database(&mut txn, None).unwrap();
            txn.commit().unwrap();
            Box::new(Lmdb { env, db, dir })
        }
        other => panic!("unknown engine {other}"),
    }
}

/// Runs `f` on the ranges of `0..n` split over `threads` threads, then
/// `end` on this one; ops/s.
fn timed(threads: u64, n: u64, f: impl Fn(std::ops::Range<u64>) + Sync, end: impl FnOnce()) -> f64 {
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let f = &f;
            s.spawn(move || f(t * n / threads..(t + 1) * n / threads));
        }
    });
    end();
    n as f64 / t0.elapsed().as_secs_f64()
}

/// One engine in this process: loads `keys` keys with `insert_threads`
/// threads, then (if `lookups > 0`) looks keys up at 1 and 2 threads;
/// prints `name value` lines.
fn one(engine: &str, keys: u64, lookups: u64, insert_threads: u64) {
    let written = procfs::io().1;
    let e = open(engine);
    let e = e.as_ref();
    let insert = timed(insert_threads, keys, |r| e.insert_range(r), || e.finish_load());
    println!("insert_{insert_threads} {insert}");
    println!("written_per_entry_{insert_threads} {}", (procfs::io().1 - written) as f64 / keys as f64);
    if lookups == 0 {
        return;
    }
    for threads in [1, 2] {
        let rate = timed(
            threads,
            lookups,
            |r| {
                for i in r {
                    let k = splitmix64(i ^ 0xDEAD_BEEF) % keys;
                    assert!(e.lookup(k), "{engine}: key {k} lost");
                }
            },
            || {},
        );
        println!("lookup_{threads} {rate}");
    }
    println!("bytes_per_entry {}", e.bytes_per_entry(keys));
    println!("peak_rss_mib {}", procfs::peak_rss() as f64 / (1 << 20) as f64);
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

/// Measurements by engine and name: what each process printed.
type Results = BTreeMap<(&'static str, String), Vec<f64>>;

/// Runs this program with `args` in a process of its own and adds the
/// `name value` lines it prints to `results` under `engine`.
fn collect(engine: &'static str, args: &[&str], results: &mut Results) {
    let me = std::env::current_exe().unwrap();
    let out = Command::new(&me).args(args).output().unwrap();
    assert!(out.status.success(), "{engine}: {}", String::from_utf8_lossy(&out.stderr));
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some((name, v)) = line.split_once(' ') {
            results.entry((engine, name.to_string())).or_default().push(v.parse().unwrap());
        }
    }
}

fn all(keys: u64, lookups: u64, runs: u32) {
    let mut results = Results::new();
    for run in 0..runs {
        // Each engine twice: a 1-thread load and the lookups, then a
        // 2-thread load alone; always in a fresh process.
        for (lookups, threads) in [(lookups, 1), (0, 2)] {
            for engine in ENGINES {
                eprintln!("run {}/{runs}: {engine}, load on {threads} thread(s)", run + 1);
                let args = ["one", engine, &keys.to_string(), &lookups.to_string(), &threads.to_string()];
                collect(engine, &args, &mut results);
            }
        }
    }
    println!("{keys} keys, {lookups} lookups per measurement, {runs} interleaved runs (median of runs)");
    println!(
        "load: snowfall-db syncs its log at the end, lmdb forces a sync (timed); written B/entry: the 1-thread load"
    );
    println!(
        "{:<12} {:>14} {:>14} {:>14} {:>14} {:>10} {:>15} {:>10}",
        "engine",
        "insert 1 thr",
        "insert 2 thr",
        "lookup 1 thr",
        "lookup 2 thr",
        "B/entry",
        "written B/entry",
        "peak MiB"
    );
    let get = |e, m: &str| median(results.get(&(e, m.to_string())).cloned().unwrap_or_default());
    for e in ENGINES {
        println!(
            "{:<12} {:>12.3} M {:>12.3} M {:>12.3} M {:>12.3} M {:>10.1} {:>15.1} {:>10.0}",
            e,
            get(e, "insert_1") / 1e6,
            get(e, "insert_2") / 1e6,
            get(e, "lookup_1") / 1e6,
            get(e, "lookup_2") / 1e6,
            get(e, "bytes_per_entry"),
            get(e, "written_per_entry_1"),
            get(e, "peak_rss_mib")
        );
    }
    for (engine, other) in [("snowfall-mem", "btreemap"), ("snowfall-mem", "lmdb"), ("snowfall-db", "lmdb")] {
        print!(
            "{engine} / {other}: insert 1 thr {:.2}x, 2 thr {:.2}x, lookup 1 thr {:.2}x, lookup 2 thr {:.2}x",
            get(engine, "insert_1") / get(other, "insert_1"),
            get(engine, "insert_2") / get(other, "insert_2"),
            get(engine, "lookup_1") / get(other, "lookup_1"),
            get(engine, "lookup_2") / get(other, "lookup_2")
        );
        // Only engines with files write anything.
        let written = (get(engine, "written_per_entry_1"), get(other, "written_per_entry_1"));
        if written.0 > 0.0 && written.1 > 0.0 {
            print!(", bytes written {:.2}x", written.0 / written.1);
        }
        println!();
    }
    println!("raw: {results:?}");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str, default: u64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    match args.get(1).map(String::as_str) {
        Some("one") => one(
            &args[2],
            args[3].parse().unwrap(),
            args[4].parse().unwrap(),
            args.get(5).and_then(|t| t.parse().ok()).unwrap_or(1),
        ),
        Some("all") => all(flag("--keys", 10_000_000), flag("--lookups", 10_000_000), flag("--runs", 5) as u32),
        Some("durable") => durable::durable(flag("--seconds", 3), flag("--runs", 3) as u32),
        Some("large") => large::all(
            flag("--size", 1 << 20) as usize,
            flag("--total", 1 << 30),
            flag("--seconds", 5),
            flag("--runs", 3) as u32,
        ),
        Some("large-one") => {
            large::one(&args[2], args[3].parse().unwrap(), args[4].parse().unwrap(), args[5].parse().unwrap())
        }
        Some("tx") => tx::all(
            flag("--keys", 1_000_000),
            flag("--seconds", 3),
            flag("--runs", 3) as u32,
            flag("--sync", 0) == 1,
            args.iter().any(|a| a == "--zipf"),
        ),
        Some("tx-one") => tx::one(
            &args[2],
            args[3].parse().unwrap(),
            args[4].parse().unwrap(),
            args[5].parse().unwrap(),
            args[6] == "1",
            args[7] == "1",
        ),
        Some("suite") => suite::run(&args),
        Some("suite-one") => suite::one(&args),
        Some("suite-report") => suite::report(&args),
        Some("tpcc") => tpcc::run(&args),
        Some("tpcc-one") => tpcc::one(&args),
        _ => eprintln!(
            "usage: compare suite [--preset tiny|small|full] [--runs R] [--seconds S] [--engines a,b] [--docs FILE] | \
             compare suite-report CSV... [--out DIR] [--docs FILE] | compare tpcc [--warehouses W] [--seconds S] [--runs R] [--docs FILE] |  compare all [--keys N] [--lookups N] [--runs R] | compare one ENGINE KEYS LOOKUPS [THREADS] | \
             compare durable [--seconds S] [--runs R] | compare large [--size B] [--total B] [--seconds S] [--runs R] | \
             compare tx [--keys N] [--seconds S] [--runs R] [--sync 0|1] [--zipf]"
        ),
    }
}
