//! Write throughput by durability setting, and recovery time by log size,
//! on real files (the directory in `SNOWFALL_BENCH_DIR`, default the
//! system temp directory). `cargo bench -p snowfall-db --bench durability
//! [-- quick] [-- recovery]` (`recovery`: only the recovery times). Prints medians of runs; docs/BENCHMARKS.md has the figures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use snowfall_buffer::device::{FileDevice, FileOptions};
use snowfall_buffer::memory::MemoryKind;
use snowfall_buffer::scenario::SplitMix64;
use snowfall_db::{Database, Durability, Options, Spawn};

struct Threads;

impl Spawn for Threads {
    fn spawn(&self, task: Box<dyn FnOnce() + Send>) -> Result<(), &'static str> {
        std::thread::Builder::new().spawn(task).map(|_| ()).map_err(|_| "std::thread::Builder::spawn failed")
    }
}

fn dir() -> std::path::PathBuf {
    std::env::var_os("SNOWFALL_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into)
}

fn options() -> Options {
    Options {
        pool_bytes: 512 << 20,
        max_bytes: Some(8 << 30),
        memory: MemoryKind::Madvise,
        log_bytes: 1 << 30,
        checkpoint_bytes: 256 << 20,
        spawn: Some(Arc::new(Threads)),
        ..Options::default()
    }
}

#[allow(clippy::big_endian_bytes, reason = "keys sort like numbers")]
fn key(i: u64) -> [u8; 8] {
    let mut r = SplitMix64(i);
    r.next_u64().to_be_bytes()
}

fn fresh(name: &str) -> String {
    let path = dir().join(format!("snowfall-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(format!("{}.wal", path.display()));
    path.to_str().unwrap().to_owned()
}

fn cleanup(path: &str) {
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(format!("{path}.wal"));
}

/// Inserts for `time` with `threads` threads; (ops/s, log bytes per op, ops per flush).
fn throughput(durability: Durability, threads: u64, time: Duration) -> (f64, f64, f64) {
    let path = fresh("write");
    let db = Database::open(&path, options()).unwrap();
    let t = db.tree("t").unwrap();
    let (blocks0, flushes0) = (db.log().stats().blocks, db.log().stats().flushes);
    let start = Instant::now();
    let counts: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|th| {
                let t = &t;
                s.spawn(move || {
                    let mut n = 0;
                    while start.elapsed() < time {
                        for _ in 0..16 {
                            let i = (n << 8) | th;
                            t.insert_with(&key(i), &i.to_le_bytes(), durability).unwrap();
                            n += 1;
                        }
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let secs = start.elapsed().as_secs_f64();
    let ops: u64 = counts.iter().sum();
    let stats = db.log().stats();
    let log_bytes = (stats.blocks - blocks0) as f64 * 4096.0;
    let flushes = (stats.flushes - flushes0).max(1) as f64;
    db.close().unwrap();
    cleanup(&path);
    (ops as f64 / secs, log_bytes / ops as f64, ops as f64 / flushes)
}

/// Writes about `log_mib` MiB of log with no checkpoint, abandons the
/// database as a crash would, and times the reopen; (seconds, records
/// redone, MiB of log).
fn recovery(log_mib: u64) -> (f64, u64, f64) {
    let path = fresh("recovery");
    let open = |path: &str| {
        let data = FileDevice::open(path, FileOptions::default()).unwrap();
        let log = FileDevice::open(&format!("{path}.wal"), FileOptions::default()).unwrap();
        let options =
            Options { checkpoint_bytes: u64::MAX, checkpoint_interval: Duration::MAX, spawn: None, ..options() };
        Database::open_on(Box::new(data), Box::new(log), path, options).unwrap()
    };
    let db = open(&path);
    let t = db.tree("t").unwrap();
    let start_lsn = db.log().appended();
    let mut i = 0u64;
    while db.log().appended() - start_lsn < log_mib << 20 {
        t.insert_with(&key(i), &[i as u8; 100], Durability::None).unwrap();
        i += 1;
    }
    db.sync().unwrap();
    let written = (db.log().appended() - start_lsn) as f64 / (1 << 20) as f64;
    // A crash: no checkpoint, no close.
    std::mem::forget(db);
    let t0 = Instant::now();
    let db = open(&path);
    let secs = t0.elapsed().as_secs_f64();
    let redone = db.recovery().records_redone;
    assert_eq!(db.tree("t").unwrap().get(&key(i - 1)).unwrap(), Some(vec![(i - 1) as u8; 100]));
    drop(db);
    cleanup(&path);
    (secs, redone, written)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let only_recovery = std::env::args().any(|a| a == "recovery");
    let (runs, time) = if quick { (1, Duration::from_millis(300)) } else { (3, Duration::from_secs(3)) };
    if !only_recovery {
        throughputs(runs, time);
    }
    recoveries(runs, quick);
}

fn throughputs(runs: usize, time: Duration) {
    println!("write throughput, 8-byte random keys and values, {runs} run(s) of {time:?} each (median)");
    println!("{:<8} {:>8} {:>14} {:>16} {:>14}", "setting", "threads", "ops/s", "log bytes/op", "ops/flush");
    for durability in [Durability::Sync, Durability::Group, Durability::None] {
        for threads in [1, 2] {
            let r: Vec<_> = (0..runs).map(|_| throughput(durability, threads, time)).collect();
            println!(
                "{:<8} {:>8} {:>14.0} {:>16.1} {:>14.1}",
                format!("{durability:?}"),
                threads,
                median(r.iter().map(|x| x.0).collect()),
                median(r.iter().map(|x| x.1).collect()),
                median(r.iter().map(|x| x.2).collect())
            );
        }
    }
}

fn recoveries(runs: usize, quick: bool) {
    println!("recovery time by log size (median of {runs})");
    println!("{:>10} {:>14} {:>12} {:>10}", "log MiB", "records", "seconds", "MiB/s");
    for mib in if quick { vec![16] } else { vec![16, 64, 256] } {
        let r: Vec<_> = (0..runs).map(|_| recovery(mib)).collect();
        let secs = median(r.iter().map(|x| x.0).collect());
        let written = median(r.iter().map(|x| x.2).collect());
        println!("{:>10.0} {:>14} {:>12.3} {:>10.0}", written, r[0].1, secs, written / secs);
    }
}
