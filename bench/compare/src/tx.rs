//! Read-write transactions side by side: SnowfallDB (`begin_write`,
//! snapshot isolation, conflicts retried), LMDB (heed: one writer at a
//! time) and redb (one writer at a time). `keys` 8-byte keys with 8-byte
//! values are loaded first; then each thread runs transactions of 4 to 16
//! operations for `seconds`: half reads (each value checked), half updates
//! (which write the value the key always has, so reads stay checkable),
//! keys uniform over `0..keys`, or with `--zipf` Zipfian with exponent 0.99
//! (YCSB's "zipfian"), scrambled as YCSB's scrambled zipfian is: rank `r`
//! (1 the most frequent, from rand_distr's `Zipf`, drawn with rand's
//! `SmallRng`) is key `splitmix64(r) % keys`, so the hot keys are spread
//! over the tree rather than all in its first leaf (as in YCSB, ranks may
//! share a key and some keys get none). The operations depend only on the
//! (thread, transaction) pair, so a retried transaction replays the same
//! ones. Durability: with `sync`, every commit is durable when it
//! returns (SnowfallDB `Durability::Sync`, group commit; LMDB's default
//! sync; redb `Durability::Immediate`); without, none is synced
//! (SnowfallDB `Durability::None`, LMDB `NO_SYNC`, redb `Durability::None`).
//! Reported: committed transactions per second, conflicts per second
//! (SnowfallDB's and RocksDB's: LMDB and redb never conflict, they run one
//! writer at a time), and the median and 99th percentile latency of a
//! committed transaction: from its first begin to its successful commit,
//! retries and waits for the writer lock included (each thread keeps its
//! own samples; merged at the end).
//!
//! With the cargo feature `rocksdb` (off by default), a fourth engine:
//! RocksDB's `OptimisticTransactionDB`, linked dynamically against the
//! system librocksdb, never compiled from source (Debian 12: `apt-get
//! install librocksdb-dev libclang-dev`, RocksDB 7.8.3; libclang for the
//! bindings):
//! `ROCKSDB_LIB_DIR=/usr/lib/x86_64-linux-gnu cargo run --release --features rocksdb -- tx --keys 10000 --seconds 1 --runs 1`.
//! Each transaction takes a snapshot (`set_snapshot(true)`) and reads at it
//! with plain gets (`get_pinned_opt`, no copy; not `get_for_update`, so
//! reads are not validated), so commit validation is snapshot isolation's
//! write-write check, as SnowfallDB's; a commit that fails with
//! Busy (a conflict) or TryAgain (the memtable no longer holds the history
//! to check against, after a flush) counts as a conflict and is retried.
//! The load is one WriteBatch without WAL, then a flush (a synced table
//! file), so it is durable before the run, as the others' loads are, and
//! the run starts from a table on disk rather than from a memtable holding
//! everything. Durability: with `sync`, each commit syncs the WAL
//! (`set_sync(true)`); without, the WAL is written but not synced
//! (`set_sync(false)`, RocksDB's default). Otherwise RocksDB's default
//! options (plus `create_if_missing`), as the others run with theirs: no
//! tuning for this workload.
//!
//! `compare tx [--keys N] [--seconds S] [--runs R] [--sync 0|1] [--zipf]`
//! runs each engine at 1 and 2 threads in processes of their own,
//! interleaved; `compare tx-one ENGINE THREADS KEYS SECONDS SYNC ZIPF` (SYNC
//! and ZIPF 0 or 1) is one such process.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use rand::{RngExt, SeedableRng};
use redb::ReadableTable;

use crate::{Results, collect, fresh_dir, median, splitmix64};

#[cfg(not(feature = "rocksdb"))]
const ENGINES: [&str; 3] = ["snowfall-db", "lmdb", "redb"];
#[cfg(feature = "rocksdb")]
const ENGINES: [&str; 4] = ["snowfall-db", "lmdb", "redb", "rocksdb"];

const TABLE: redb::TableDefinition<'_, u64, u64> = redb::TableDefinition::new("t");

/// The value key `k` always holds.
fn value_of(k: u64) -> u64 {
    splitmix64(k ^ 0xABCD)
}

/// Which keys transactions touch: `count` keys, uniform or Zipfian.
#[derive(Clone, Copy)]
struct Keys {
    count: u64,
    zipf: Option<rand_distr::Zipf<f64>>,
}

impl Keys {
    fn new(count: u64, zipf: bool) -> Keys {
        // YCSB's zipfian constant.
        let zipf = zipf.then(|| rand_distr::Zipf::new(count as f64, 0.99).unwrap());
        Keys { count, zipf }
    }
}

/// The operations of transaction `n` of thread `t`: (key, update?).
fn ops(t: u64, n: u64, keys: Keys) -> impl Iterator<Item = (u64, bool)> {
    let r = splitmix64(t << 48 ^ n);
    // Seeded from (t, n) alone: a retry draws the same keys.
    let mut rng = keys.zipf.map(|_| rand::rngs::SmallRng::seed_from_u64(r));
    (0..4 + r % 13).map(move |j| {
        let rj = splitmix64(r ^ j);
        let k = match (keys.zipf, rng.as_mut()) {
            // Scrambled: rank 1 is not key 0.
            (Some(zipf), Some(rng)) => splitmix64(rng.sample(zipf) as u64) % keys.count,
            _ => rj % keys.count,
        };
        (k, rj >> 63 == 1)
    })
}

/// What [`run`] measured.
struct Measured {
    tx_per_s: f64,
    /// Latency of a committed transaction (retries included), microseconds.
    p50_us: f64,
    p99_us: f64,
}

/// Runs `tx(thread, n)` (which returns once transaction `n` committed) on
/// `threads` threads for `seconds`.
fn run(threads: u64, seconds: u64, tx: impl Fn(u64, u64) + Sync) -> Measured {
    let t0 = Instant::now();
    let stop = AtomicBool::new(false);
    let mut nanos: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (stop, tx) = (&stop, &tx);
                s.spawn(move || {
                    // Each thread its own samples: nothing shared while running.
                    let mut nanos = Vec::with_capacity(1 << 20);
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let begin = Instant::now();
                        tx(t, n);
                        nanos.push(begin.elapsed().as_nanos() as u64);
                        n += 1;
                    }
                    nanos
                })
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_secs(seconds));
        stop.store(true, Ordering::Relaxed);
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let tx_per_s = nanos.len() as f64 / t0.elapsed().as_secs_f64();
    nanos.sort_unstable();
    // Nearest rank.
    let percentile = |p: f64| {
        let i = ((p * nanos.len() as f64).ceil() as usize).clamp(1, nanos.len().max(1)) - 1;
        nanos.get(i).map_or(0.0, |&ns| ns as f64 / 1e3)
    };
    Measured { tx_per_s, p50_us: percentile(0.50), p99_us: percentile(0.99) }
}

/// One engine, one process: prints `tx_per_s`, `aborts_per_s`, `p50_us`
/// and `p99_us`.
pub fn one(engine: &str, threads: u64, keys: u64, seconds: u64, sync: bool, zipf: bool) {
    let dir = fresh_dir(&format!("tx-{engine}"));
    let aborts = AtomicU64::new(0);
    let picked = Keys::new(keys, zipf);
    let measured = match engine {
        "snowfall-db" => {
            let db =
                snowfall_db::Database::open(dir.join("db").to_str().unwrap(), snowfall_db::Options::default()).unwrap();
            let t = db.tree("t").unwrap();
            for k in 0..keys {
                t.insert_with(&k.to_be_bytes(), &value_of(k).to_le_bytes(), snowfall_db::Durability::None).unwrap();
            }
            db.sync().unwrap();
            let durability = if sync { snowfall_db::Durability::Sync } else { snowfall_db::Durability::None };
            let n = run(threads, seconds, |t, n| {
                loop {
                    let tx = db.begin_write().unwrap();
                    let tree = tx.tree("t").unwrap();
                    for (k, update) in ops(t, n, picked) {
                        if update {
                            tree.insert(&k.to_be_bytes(), &value_of(k).to_le_bytes()).unwrap();
                        } else {
                            let ok = tree.get_with(&k.to_be_bytes(), |v| v == value_of(k).to_le_bytes()).unwrap();
                            assert_eq!(ok, Some(true), "key {k}");
                        }
                    }
                    match tx.commit(durability) {
                        Ok(()) => break,
                        Err(snowfall_db::Error::Conflict { .. }) => {
                            aborts.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
            });
            db.close().unwrap();
            n
        }
        "lmdb" => {
            let mut flags = heed::EnvFlags::empty();
            if !sync {
                flags |= heed::EnvFlags::NO_SYNC | heed::EnvFlags::NO_META_SYNC;
            }
            // SAFETY: a fresh directory only this process opens.
            let env = unsafe { heed::EnvOpenOptions::new().map_size(4 << 30).flags(flags).open(&dir).unwrap() };
            let mut wtxn = env.write_txn().unwrap();
            let db: heed::Database<heed::types::U64<heed::byteorder::BE>, heed::types::U64<heed::byteorder::LE>> =
                env.create_database(&mut wtxn, None).unwrap();
            for k in 0..keys {
                db.put(&mut wtxn, &k, &value_of(k)).unwrap();
            }
            wtxn.commit().unwrap();
            env.force_sync().unwrap();
            run(threads, seconds, |t, n| {
                let mut tx = env.write_txn().unwrap();
                for (k, update) in ops(t, n, picked) {
                    if update {
                        db.put(&mut tx, &k, &value_of(k)).unwrap();
                    } else {
                        assert_eq!(db.get(&tx, &k).unwrap(), Some(value_of(k)), "key {k}");
                    }
                }
                tx.commit().unwrap();
            })
        }
        "redb" => {
            let db = redb::Database::create(dir.join("redb")).unwrap();
            let w = db.begin_write().unwrap();
            {
                let mut table = w.open_table(TABLE).unwrap();
                for k in 0..keys {
                    table.insert(k, value_of(k)).unwrap();
                }
            }
            w.commit().unwrap();
            let durability = if sync { redb::Durability::Immediate } else { redb::Durability::None };
            run(threads, seconds, |t, n| {
                let mut w = db.begin_write().unwrap();
                w.set_durability(durability).unwrap();
                {
                    let mut table = w.open_table(TABLE).unwrap();
                    for (k, update) in ops(t, n, picked) {
                        if update {
                            table.insert(k, value_of(k)).unwrap();
                        } else {
                            assert_eq!(table.get(k).unwrap().map(|v| v.value()), Some(value_of(k)), "key {k}");
                        }
                    }
                }
                w.commit().unwrap();
            })
        }
        #[cfg(feature = "rocksdb")]
        "rocksdb" => {
            let mut opts = rocksdb::Options::default();
            opts.create_if_missing(true);
            let db: rocksdb::OptimisticTransactionDB = rocksdb::OptimisticTransactionDB::open(&opts, &dir).unwrap();
            // No WAL for the load: the flush writes it to a table file and
            // syncs it.
            let mut batch = rocksdb::WriteBatchWithTransaction::<true>::default();
            for k in 0..keys {
                batch.put(k.to_be_bytes(), value_of(k).to_le_bytes());
            }
            db.write_without_wal(batch).unwrap();
            db.flush().unwrap();
            let mut write = rocksdb::WriteOptions::default();
            write.set_sync(sync);
            let mut options = rocksdb::OptimisticTransactionOptions::default();
            options.set_snapshot(true);
            run(threads, seconds, |t, n| {
                loop {
                    let tx = db.transaction_opt(&write, &options);
                    {
                        // `set_snapshot` only sets where conflicts are
                        // checked from: reads see it through ReadOptions.
                        let snapshot = tx.snapshot();
                        let mut read = rocksdb::ReadOptions::default();
                        read.set_snapshot(&snapshot);
                        for (k, update) in ops(t, n, picked) {
                            if update {
                                tx.put(k.to_be_bytes(), value_of(k).to_le_bytes()).unwrap();
                            } else {
                                let v = tx.get_pinned_opt(k.to_be_bytes(), &read).unwrap();
                                assert_eq!(v.as_deref(), Some(&value_of(k).to_le_bytes()[..]), "key {k}");
                            }
                        }
                    }
                    match tx.commit() {
                        Ok(()) => break,
                        Err(e) if matches!(e.kind(), rocksdb::ErrorKind::Busy | rocksdb::ErrorKind::TryAgain) => {
                            aborts.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        }
        other => panic!("unknown engine {other}"),
    };
    let _ = std::fs::remove_dir_all(&dir);
    println!("tx_per_s {}", measured.tx_per_s);
    println!("aborts_per_s {}", aborts.load(Ordering::Relaxed) as f64 / seconds as f64);
    println!("p50_us {}", measured.p50_us);
    println!("p99_us {}", measured.p99_us);
}

/// Every engine at 1 and 2 threads, interleaved, `runs` times.
pub fn all(keys: u64, seconds: u64, runs: u32, sync: bool, zipf: bool) {
    let mut results = Results::new();
    let labels: Vec<(&'static str, u64)> = ENGINES.iter().flat_map(|&e| [(e, 1u64), (e, 2)]).collect();
    for run in 0..runs {
        for &(engine, threads) in &labels {
            eprintln!("run {}/{runs}: {engine}, {threads} threads", run + 1);
            let (t, k, s) = (threads.to_string(), keys.to_string(), seconds.to_string());
            let mut got = Results::new();
            let flag = |on: bool| if on { "1" } else { "0" };
            collect(engine, &["tx-one", engine, &t, &k, &s, flag(sync), flag(zipf)], &mut got);
            for ((e, name), v) in got {
                results.entry((e, format!("{name}@{threads}"))).or_default().extend(v);
            }
        }
    }
    let get = |e: &str, m: &str| median(results.get(&(e, m.to_string())).cloned().unwrap_or_default());
    println!(
        "transactions of 4-16 ops (half reads, half updates), {keys} keys {}, {seconds} s, {} commits, {runs} \
         interleaved runs (medians)",
        if zipf { "Zipfian (s = 0.99, scrambled)" } else { "uniform" },
        if sync { "durable" } else { "unsynced" }
    );
    println!(
        "{:<12} {:>14} {:>14} {:>14} {:>18} {:>18}",
        "engine", "tx/s 1 thread", "tx/s 2 threads", "aborts/s 2 thr", "p50/p99 us 1 thr", "p50/p99 us 2 thr"
    );
    // Latency of a committed transaction, first begin to commit.
    let latency = |e: &str, threads: u64| {
        format!("{:.1}/{:.1}", get(e, &format!("p50_us@{threads}")), get(e, &format!("p99_us@{threads}")))
    };
    for e in ENGINES {
        println!(
            "{:<12} {:>14.0} {:>14.0} {:>14.0} {:>18} {:>18}",
            e,
            get(e, "tx_per_s@1"),
            get(e, "tx_per_s@2"),
            get(e, "aborts_per_s@2"),
            latency(e, 1),
            latency(e, 2)
        );
    }
    for other in ENGINES.into_iter().filter(|&e| e != "snowfall-db") {
        println!(
            "snowfall-db / {other}: {:.2}x at 1 thread, {:.2}x at 2 threads",
            get("snowfall-db", "tx_per_s@1") / get(other, "tx_per_s@1"),
            get("snowfall-db", "tx_per_s@2") / get(other, "tx_per_s@2")
        );
    }
    println!("raw: {results:?}");
}
