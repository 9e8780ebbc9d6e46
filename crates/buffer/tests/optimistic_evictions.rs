//! Optimistic readers racing evictions never return wrong data and never
//! crash: with the madvise backend an evicted page reads as zeros, with
//! exmap (here its user-space emulation) it faults and the fault guard turns
//! the fault into a failed read; either way validation rejects it and the
//! reader restarts. (The same scenario runs under QEMU on real exmap.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, reason = "tests: a panic is a failure")]

mod common;

use common::{BACKENDS, Threads, memory_bm_with};
use snowfall_buffer::memory::MemoryKind;
use snowfall_buffer::scenario::{RaceBounds, eviction_race};

#[test]
fn optimistic_reads_racing_evictions_restart_and_never_see_wrong_data() {
    for memory in BACKENDS {
        let faulting = memory == MemoryKind::EmulatedExmap;
        let bounds = RaceBounds { races: 100, faults: if faulting { 20 } else { 0 }, max_reads: 200_000 };
        let (bm, _device) = memory_bm_with(memory, 1, 64);
        let report = eviction_race(&bm, bounds, &Threads).unwrap_or_else(|f| panic!("{memory:?}: {f}"));
        eprintln!("{memory:?}: {report:?}, {:?}", bm.stats());
        assert!(report.rejected >= 1 && report.validated >= 1, "{memory:?}: the race never happened: {report:?}");
        if faulting {
            assert!(report.faults >= 1, "readers never touched an unmapped page: the fault path went untested");
        }
    }
}
