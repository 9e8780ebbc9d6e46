//! Which extents a read may load into a full pool.
//!
//! Loading an extent into a full pool evicts others, and costs more than
//! reading it past the pool (its frames are released, zeroed by the kernel
//! on first touch, pinned for the read), so with data several times the
//! pool, caching every extent read would make every read slower and keep no
//! more of them. So, as 2Q and TinyLFU do, an extent that misses while the
//! pool is full is admitted only if it missed recently before: the first
//! miss is remembered (a *ghost*: its first page id in a small direct-mapped
//! table, one slot per 2 MiB of pool, so it remembers about as many extents
//! as the pool holds of 2 MiB ones) and read past the pool; a second miss
//! while remembered loads it. While the pool has room, everything is
//! admitted (a cold cache warms at once).

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

/// Pool pages per ghost slot (2 MiB).
const PAGES_PER_SLOT: u64 = 512;

pub(crate) struct Ghosts {
    /// First page id + 1 of a recently missed extent, or 0.
    slots: Box<[AtomicU64]>,
}

impl Ghosts {
    pub(crate) fn new(pool_pages: u64) -> Ghosts {
        let n = (pool_pages / PAGES_PER_SLOT).max(16) as usize;
        Ghosts { slots: (0..n).map(|_| AtomicU64::new(0)).collect::<Vec<_>>().into_boxed_slice() }
    }

    /// Whether a miss of the extent starting at `start` in a full pool may
    /// load it: yes if it missed recently (it is forgotten then); else it is
    /// remembered, and no.
    pub(crate) fn admit(&self, start: u64) -> bool {
        let Some(slot) = self.slots.get(slot_of(start, self.slots.len())) else { return true };
        let tag = start + 1;
        if slot.load(Ordering::Relaxed) == tag {
            slot.store(0, Ordering::Relaxed);
            return true;
        }
        slot.store(tag, Ordering::Relaxed);
        false
    }
}

fn slot_of(start: u64, slots: usize) -> usize {
    (start.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize % slots
}

#[cfg(test)]
mod tests {
    use super::Ghosts;

    #[test]
    fn a_second_miss_is_admitted_a_first_is_remembered() {
        let g = Ghosts::new(16 * 512);
        assert!(!g.admit(100));
        assert!(g.admit(100));
        assert!(!g.admit(100), "admitted once, forgotten");
        // Many other misses push it out.
        assert!(!g.admit(7));
        for other in 1_000..2_000 {
            g.admit(other);
        }
        assert!(!g.admit(7), "forgotten after many other misses");
    }
}
