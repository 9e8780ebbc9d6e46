//! Buffer-manager throughput: optimistic reads of resident pages, page
//! faults (loads) and evictions, at 1 and 2 threads, with the in-memory
//! device (the buffer manager's own cost) and with a file opened O_DIRECT
//! (the disk's cost). Each figure is the median of 5 runs.
//!
//! Run: `cargo bench -p snowfall-buffer --bench buffer`
//! (`-- quick` for one short run of each, `-- only=optimistic|faults|evictions|disk` for one
//! group). Results: docs/BENCHMARKS.md.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use snowfall_buffer::device::{FileDevice, FileOptions, MemoryDevice};
use snowfall_buffer::scenario::{SplitMix64, populate};
use snowfall_buffer::{BufferManager, Config, Device, PageId};

const MIB: u64 = 1 << 20;

fn config(pool_mib: u64, virtual_mib: u64) -> Config {
    Config { pool_bytes: pool_mib * MIB, virtual_bytes: virtual_mib * MIB, ..Config::default() }
}

/// Runs `work(thread)` on `threads` threads at once; returns the wall time.
fn timed(threads: usize, work: impl Fn(usize) + Sync) -> Duration {
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let work = &work;
            s.spawn(move || work(t));
        }
    });
    t0.elapsed()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// A buffer manager holding `pages` written pages, all evicted, or all
/// resident if the pool holds them.
fn loaded(device: Box<dyn Device>, pool_mib: u64, pages: u64) -> (BufferManager, Vec<PageId>) {
    let bm = BufferManager::open(config(pool_mib, 4096), device).unwrap();
    let ids = populate(&bm, pages).unwrap();
    bm.flush().unwrap();
    (bm, ids)
}

struct Row {
    what: String,
    threads: usize,
    per_sec: f64,
    unit: &'static str,
}

fn optimistic_reads(runs: usize, ops: u64, rows: &mut Vec<Row>) {
    let (bm, ids) = loaded(Box::new(MemoryDevice::new(1 << 16)), 64, 8192);
    // One hot page per thread: the buffer manager's own cost, no cache misses.
    for threads in [1, 2] {
        let rates = (0..runs)
            .map(|_| {
                let elapsed = timed(threads, |t| {
                    let id = ids[t];
                    for _ in 0..ops {
                        black_box(bm.read_optimistic(black_box(id), |v| v.u64_at(8)).unwrap());
                    }
                });
                (threads as u64 * ops) as f64 / elapsed.as_secs_f64()
            })
            .collect();
        rows.push(Row {
            what: "optimistic read of 8 bytes, one hot page per thread".into(),
            threads,
            per_sec: median(rates),
            unit: "reads/s",
        });
    }
    for threads in [1, 2] {
        let rates = (0..runs)
            .map(|_| {
                let elapsed = timed(threads, |t| {
                    let mut rng = SplitMix64(t as u64 + 1);
                    for _ in 0..ops {
                        let id = ids[rng.below(ids.len() as u64) as usize];
                        black_box(bm.read_optimistic(id, |v| v.u64_at(8)).unwrap());
                    }
                });
                (threads as u64 * ops) as f64 / elapsed.as_secs_f64()
            })
            .collect();
        rows.push(Row {
            what: "optimistic read, resident page (32 MiB set)".into(),
            threads,
            per_sec: median(rates),
            unit: "reads/s",
        });
    }
}

/// Random shared fixes of a working set 8x the pool: nearly every fix loads
/// a page and, the pool being full, evicts one (clean: no write-back).
fn faults(runs: usize, ops: u64, device: &str, rows: &mut Vec<Row>) {
    for threads in [1, 2] {
        let rates = (0..runs)
            .map(|_| {
                let file = std::env::temp_dir().join(format!("snowfall-bench-{}", std::process::id()));
                let dev: Box<dyn Device> = if device == "memory" {
                    Box::new(MemoryDevice::new(1 << 16))
                } else {
                    let _ = std::fs::remove_file(&file);
                    Box::new(FileDevice::open(file.to_str().unwrap(), FileOptions::default()).unwrap())
                };
                let (bm, ids) = loaded(dev, 16, 8 * 4096);
                bm.evict_until(0).unwrap();
                let before = bm.stats();
                let elapsed = timed(threads, |t| {
                    let mut rng = SplitMix64(t as u64 + 7);
                    for _ in 0..ops {
                        let id = ids[rng.below(ids.len() as u64) as usize];
                        black_box(bm.fix_shared(id).unwrap().page().lsn());
                    }
                });
                let after = bm.stats();
                let _ = std::fs::remove_file(&file);
                (after.faults - before.faults) as f64 / elapsed.as_secs_f64()
            })
            .collect();
        rows.push(Row {
            what: format!("page faults (loads + clean evictions), {device} device"),
            threads,
            per_sec: median(rates),
            unit: "pages/s",
        });
    }
}

/// Allocating and writing fresh pages through a small pool: every page is
/// later evicted dirty, so this is the write-back + eviction rate.
fn dirty_evictions(runs: usize, pages: u64, rows: &mut Vec<Row>) {
    for threads in [1, 2] {
        let rates = (0..runs)
            .map(|_| {
                let device = Arc::new(MemoryDevice::new(1 << 17));
                let bm = BufferManager::open(config(16, 4096), Box::new(device)).unwrap();
                let elapsed = timed(threads, |_| {
                    for i in 0..pages {
                        let mut g = bm.allocate().unwrap();
                        let id = g.id();
                        g.page_mut().body_mut()[..8].copy_from_slice(&(id.0 ^ i).to_le_bytes());
                    }
                });
                bm.stats().write_backs as f64 / elapsed.as_secs_f64()
            })
            .collect();
        rows.push(Row {
            what: "dirty evictions (write-back + release), memory device".into(),
            threads,
            per_sec: median(rates),
            unit: "pages/s",
        });
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let runs = if quick { 1 } else { 5 };
    // `-- only=<name>`: run one group (optimistic, faults, evictions, disk).
    let only = std::env::args().find_map(|a| a.strip_prefix("only=").map(String::from));
    let wanted = |name: &str| only.as_deref().is_none_or(|o| o == name);
    let mut rows = Vec::new();
    if wanted("optimistic") {
        optimistic_reads(runs, if quick { 200_000 } else { 2_000_000 }, &mut rows);
    }
    if wanted("faults") {
        faults(runs, if quick { 20_000 } else { 200_000 }, "memory", &mut rows);
    }
    if wanted("evictions") {
        dirty_evictions(runs, if quick { 10_000 } else { 60_000 }, &mut rows);
    }
    if wanted("disk") {
        faults(runs.min(3), if quick { 2_000 } else { 20_000 }, "O_DIRECT file", &mut rows);
    }
    println!("\n{:<58} {:>7} {:>14}", "benchmark (median of runs)", "threads", "rate");
    for r in &rows {
        println!("{:<58} {:>7} {:>12.0} {}", r.what, r.threads, r.per_sec, r.unit);
    }
}
