//! Optimistic readers racing evictions never return wrong data and never
//! crash: with the madvise backend an evicted page reads as zeros, with
//! exmap (here its user-space emulation) it faults and the fault guard turns
//! the fault into a failed read; either way validation rejects it and the
//! reader restarts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, reason = "tests: a panic is a failure")]

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::{BACKENDS, memory_bm_with};
use snowfall_buffer::memory::MemoryKind;
use snowfall_buffer::scenario::{check_body, fill_body};
use snowfall_buffer::{BODY_SIZE, PageId};

const MAX_READS: usize = 200_000;
const WANTED_RACES: u64 = 100;
/// With a backend whose released pages fault, also wait for this many faults.
const WANTED_FAULTS: u64 = 20;

#[test]
fn optimistic_reads_racing_evictions_restart_and_never_see_wrong_data() {
    for memory in BACKENDS {
        let faults_before = snowfall_sys::fault::recovered_count();
        race(memory);
        let faults = snowfall_sys::fault::recovered_count() - faults_before;
        eprintln!("{memory:?}: {faults} faults recovered");
        if memory == MemoryKind::EmulatedExmap {
            assert!(
                faults >= WANTED_FAULTS,
                "readers touched unmapped pages only {faults} times: the fault path went untested"
            );
        }
    }
}

fn race(memory: MemoryKind) {
    let faults_before = snowfall_sys::fault::recovered_count();
    let enough = move |valid: u64, invalid: u64| {
        valid >= WANTED_RACES
            && invalid >= WANTED_RACES
            && (memory != MemoryKind::EmulatedExmap
                || snowfall_sys::fault::recovered_count() - faults_before >= WANTED_FAULTS)
    };
    let (bm, _device) = memory_bm_with(memory, 1, 64);
    let pages: Vec<PageId> = (0..64)
        .map(|i| {
            let mut g = bm.allocate().unwrap();
            let id = g.id();
            fill_body(g.page_mut().body_mut(), id, i);
            id
        })
        .collect();
    let stop = AtomicBool::new(false);
    let validated = AtomicU64::new(0);
    let invalid = AtomicU64::new(0);
    std::thread::scope(|s| {
        // Evicts everything, over and over.
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                bm.evict_until(0).unwrap();
            }
        });
        for r in 0..2 {
            let (bm, pages, validated, invalid) = (&bm, &pages, &validated, &invalid);
            s.spawn(move || {
                let mut body = vec![0u8; BODY_SIZE];
                // Bounded: stop after enough races were seen, or after MAX_READS.
                for i in 0..MAX_READS {
                    if enough(validated.load(Ordering::Relaxed), invalid.load(Ordering::Relaxed)) {
                        break;
                    }
                    let page = pages[(i * 7 + r) % pages.len()];
                    let guard = bm.optimistic(page).unwrap();
                    // Small pieces, as a B-tree search reads: a wider window for evictions.
                    let view = guard.view();
                    // A pause between pieces lets an eviction land mid-read.
                    let read = body.chunks_mut(32).enumerate().try_for_each(|(c, chunk)| {
                        for _ in 0..20 {
                            std::hint::spin_loop();
                        }
                        view.read(c * 32, chunk)
                    });
                    if guard.validate() {
                        read.unwrap();
                        let version = check_body(&body, page).unwrap();
                        assert_eq!(version, page.0, "{page}: a validated read returned another version");
                        validated.fetch_add(1, Ordering::Relaxed);
                    } else {
                        invalid.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        // Let the readers finish, then stop the evictor.
        while validated.load(Ordering::Relaxed) + invalid.load(Ordering::Relaxed) < 2 * MAX_READS as u64
            && !enough(validated.load(Ordering::Relaxed), invalid.load(Ordering::Relaxed))
        {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        stop.store(true, Ordering::Relaxed);
    });
    let (ok, bad) = (validated.load(Ordering::Relaxed), invalid.load(Ordering::Relaxed));
    eprintln!("validated {ok}, rejected {bad}, {:?}", bm.stats());
    assert!(bad > 0, "no read ever raced an eviction: the test proved nothing");
    assert!(ok > 0);
    bm.check_invariants().unwrap();
}
