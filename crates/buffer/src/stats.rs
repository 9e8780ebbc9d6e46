//! Statistics, counted per thread shard so that counting a hit never
//! writes a cache line another thread is writing.

use core::sync::atomic::{AtomicU64, Ordering};

const SHARDS: usize = 16;

#[repr(align(128))]
#[derive(Default)]
struct Shard {
    hits: AtomicU64,
    faults: AtomicU64,
    evictions: AtomicU64,
    write_backs: AtomicU64,
    restarts: AtomicU64,
}

/// The counters.
#[derive(Default)]
pub(crate) struct Counters {
    shards: [Shard; SHARDS],
}

/// Which counter.
#[derive(Clone, Copy)]
pub(crate) enum Counter {
    Hit,
    Fault,
    Eviction,
    WriteBack,
    Restart,
}

impl Counters {
    #[inline]
    fn shard(&self) -> &Shard {
        let tp = snowfall_sys::thread::thread_pointer() as u64;
        let i = (tp.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60) as usize;
        self.shards.get(i % SHARDS).unwrap_or(&self.shards[0])
    }

    /// Adds `n` to a counter.
    #[inline]
    pub(crate) fn add(&self, counter: Counter, n: u64) {
        let s = self.shard();
        let c = match counter {
            Counter::Hit => &s.hits,
            Counter::Fault => &s.faults,
            Counter::Eviction => &s.evictions,
            Counter::WriteBack => &s.write_backs,
            Counter::Restart => &s.restarts,
        };
        c.fetch_add(n, Ordering::Relaxed);
    }

    fn sum(&self, f: impl Fn(&Shard) -> &AtomicU64) -> u64 {
        self.shards.iter().map(|s| f(s).load(Ordering::Relaxed)).sum()
    }

    pub(crate) fn snapshot(&self, resident_pages: u64, extent_pages: u64) -> Stats {
        Stats {
            hits: self.sum(|s| &s.hits),
            faults: self.sum(|s| &s.faults),
            evictions: self.sum(|s| &s.evictions),
            write_backs: self.sum(|s| &s.write_backs),
            restarts: self.sum(|s| &s.restarts),
            resident_bytes: resident_pages * crate::PAGE_SIZE as u64,
            extent_bytes: extent_pages * crate::PAGE_SIZE as u64,
        }
    }
}

/// A snapshot of the buffer manager's statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Page accesses that found the page resident.
    pub hits: u64,
    /// Pages loaded from the device.
    pub faults: u64,
    /// Pages evicted.
    pub evictions: u64,
    /// Dirty pages written back.
    pub write_backs: u64,
    /// Optimistic reads that had to restart.
    pub restarts: u64,
    /// Bytes of resident pages now.
    pub resident_bytes: u64,
    /// Of those, bytes of cached extents (large values).
    pub extent_bytes: u64,
}
