//! Seeded stress: threads write, read shared and read optimistically random
//! pages of a working set 16 times the pool, checked against an oracle.
//! A failure prints its seed; rerun with `SNOWFALL_SEED=<seed>`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, reason = "tests: a panic is a failure")]

mod common;

use common::{BACKENDS, Threads, memory_bm_with, seed};
use snowfall_buffer::scenario::{Stress, stress};

fn run(s: Stress, pool_mib: u64, virtual_mib: u64) {
    for memory in BACKENDS {
        run_with(memory, s, pool_mib, virtual_mib);
    }
}

fn run_with(memory: snowfall_buffer::memory::MemoryKind, s: Stress, pool_mib: u64, virtual_mib: u64) {
    let (bm, _device) = memory_bm_with(memory, pool_mib, virtual_mib);
    let t0 = std::time::Instant::now();
    match stress(&bm, &s, &Threads) {
        Ok(report) => {
            eprintln!("{memory:?} {s:?}\n  -> {report:?} in {:?}", t0.elapsed());
            assert!(report.stats.evictions > 0, "the pool never filled: the test did not exercise eviction");
            assert!(report.stats.write_backs > 0);
            assert!(report.optimistic_reads > 0 && report.writes > 0 && report.shared_reads > 0);
        }
        Err(f) => panic!("stress failed on {memory:?}: {f}\nreproduce with SNOWFALL_SEED={:#x}", f.seed),
    }
}

#[test]
fn a_pool_sixteen_times_smaller_than_the_data_stays_consistent() {
    // 16 MiB pool, 256 MiB of pages.
    let s = Stress {
        threads: 4,
        pages: 256 * 256,
        ops_per_thread: 25_000,
        seed: seed(0x5EED_0001),
        write_percent: 30,
        optimistic_percent: 40,
    };
    run(s, 16, 512);
}

#[test]
fn a_hot_working_set_with_many_writers_stays_consistent() {
    // Contention: 2 MiB of pages in a 1 MiB pool, mostly writes.
    let s = Stress {
        threads: 4,
        pages: 512,
        ops_per_thread: 20_000,
        seed: seed(0x5EED_0002),
        write_percent: 60,
        optimistic_percent: 30,
    };
    run(s, 1, 64);
}
