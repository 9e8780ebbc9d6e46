//! Durable writes side by side: every write acknowledged only once it is on
//! disk. SnowfallDB with `Durability::Sync` (its log synced per write,
//! concurrent writers sharing syncs) against LMDB with its default flags (a
//! write transaction per write, synced at commit). Fresh files in the
//! system temp directory (or `SNOWFALL_BENCH_DIR`) for every measurement.
//!
//! `compare durable [--seconds S] [--runs R]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use snowfall_db::{Database, Durability, Options, Spawn};

use crate::{fresh_dir, key, median, value};

const ENGINES: [&str; 2] = ["snowfall", "lmdb"];

struct Threads;

impl Spawn for Threads {
    fn spawn(&self, task: Box<dyn FnOnce() + Send>) -> Result<(), &'static str> {
        std::thread::Builder::new().spawn(task).map(|_| ()).map_err(|_| "std::thread::Builder::spawn failed")
    }
}

/// Runs `put(i)` on `threads` threads for `time`; writes per second.
fn rate(threads: u64, time: Duration, put: impl Fn(u64) + Sync) -> f64 {
    let start = Instant::now();
    let total: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let put = &put;
                s.spawn(move || {
                    let mut n = 0;
                    while start.elapsed() < time {
                        put((n << 8) | t);
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    total as f64 / start.elapsed().as_secs_f64()
}

fn measure(engine: &str, threads: u64, time: Duration) -> f64 {
    let dir = fresh_dir(&format!("durable-{engine}"));
    let r = match engine {
        "snowfall" => {
            let options = Options { spawn: Some(Arc::new(Threads)), ..Options::default() };
            let db = Database::open(dir.join("db").to_str().unwrap(), options).unwrap();
            let t = db.tree("t").unwrap();
            let r = rate(threads, time, |i| {
                t.insert_with(&key(i), &value(i), Durability::Sync).unwrap();
            });
            db.close().unwrap();
            r
        }
        "lmdb" => {
            // SAFETY: a fresh directory only this process opens.
            let env = unsafe { heed::EnvOpenOptions::new().map_size(1 << 30).open(&dir).unwrap() };
            let mut txn = env.write_txn().unwrap();
            let db: heed::Database<heed::types::Bytes, heed::types::Bytes> =
                env.create_database(&mut txn, None).unwrap();
            txn.commit().unwrap();
            rate(threads, time, |i| {
                let mut txn = env.write_txn().unwrap();
                db.put(&mut txn, &key(i), &value(i)).unwrap();
                txn.commit().unwrap();
            })
        }
        other => panic!("unknown engine {other}"),
    };
    let _ = std::fs::remove_dir_all(&dir);
    r
}

/// Both engines at 1 and 2 threads, interleaved, `runs` times.
pub fn durable(seconds: u64, runs: u32) {
    let time = Duration::from_secs(seconds);
    let mut results: std::collections::BTreeMap<(&str, u64), Vec<f64>> = Default::default();
    for run in 0..runs {
        for threads in [1, 2] {
            for engine in ENGINES {
                eprintln!("run {}/{runs}: {engine}, {threads} thread(s)", run + 1);
                results.entry((engine, threads)).or_default().push(measure(engine, threads, time));
            }
        }
    }
    println!("durable writes (acknowledged once on disk), {seconds} s each, {runs} interleaved runs (median)");
    println!("{:<10} {:>14} {:>14}", "engine", "1 thread", "2 threads");
    let get = |e, t| median(results.get(&(e, t)).cloned().unwrap_or_default());
    for e in ENGINES {
        println!("{:<10} {:>12.0}/s {:>12.0}/s", e, get(e, 1), get(e, 2));
    }
    println!(
        "snowfall / lmdb: 1 thread {:.2}x, 2 threads {:.2}x",
        get("snowfall", 1) / get("lmdb", 1),
        get("snowfall", 2) / get("lmdb", 2)
    );
    println!("raw: {results:?}");
}
