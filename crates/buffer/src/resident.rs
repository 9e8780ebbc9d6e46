//! The resident set: which pages are in memory, and the clock hand that
//! walks them to find eviction candidates.
//!
//! An open-addressing hash table of page ids (as in vmcache), twice the pool
//! size rounded up to a power of two, so probes stay short. Insert and
//! remove are lock-free compare-and-swaps; removal leaves a tombstone that a
//! later insert reuses. The clock hand is one atomic counter: each evicting
//! thread claims the next `n` slots, so concurrent evictions scan disjoint
//! parts of the table.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::error::Error;
use crate::page::PageId;

const EMPTY: u64 = u64::MAX;
const TOMBSTONE: u64 = u64::MAX - 1;

/// The set of resident page ids.
pub(crate) struct ResidentSet {
    /// Never grows: allocated once, at its full size, by `new`.
    slots: Vec<AtomicU64>,
    mask: u64,
    hand: AtomicU64,
}

fn hash(page: PageId) -> u64 {
    // A multiplicative hash: consecutive ids land far apart.
    page.0.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29)
}

impl ResidentSet {
    /// A set for at most `pool_pages` pages. Its size follows the pool the
    /// user asked for, so an allocation that fails is an error, not an abort.
    pub(crate) fn new(pool_pages: u64) -> Result<ResidentSet, Error> {
        let capacity = pool_pages.max(1).checked_mul(2).and_then(u64::checked_next_power_of_two);
        let bytes = capacity.and_then(|c| c.checked_mul(core::mem::size_of::<AtomicU64>() as u64));
        let out_of_memory = Error::OutOfMemory { what: "the resident-page table", bytes: bytes.unwrap_or(u64::MAX) };
        let len = capacity.and_then(|c| usize::try_from(c).ok()).ok_or(out_of_memory)?;
        let mut slots = Vec::new();
        slots.try_reserve_exact(len).map_err(|_| out_of_memory)?;
        slots.resize_with(len, || AtomicU64::new(EMPTY));
        Ok(ResidentSet { slots, mask: len as u64 - 1, hand: AtomicU64::new(0) })
    }

    /// Bytes of memory the table uses.
    pub(crate) fn bytes(&self) -> usize {
        self.slots.len() * core::mem::size_of::<AtomicU64>()
    }

    /// The slot for a probe position (`index & mask` is always in bounds).
    fn slot(&self, index: u64) -> Option<&AtomicU64> {
        self.slots.get((index & self.mask) as usize)
    }

    /// Adds `page`, which must not be in the set. The set never holds more
    /// than the pool, so a free slot always exists.
    pub(crate) fn insert(&self, page: PageId) {
        debug_assert!(page.0 < TOMBSTONE);
        let mut i = hash(page);
        while let Some(slot) = self.slot(i) {
            let cur = slot.load(Ordering::Relaxed);
            if (cur == EMPTY || cur == TOMBSTONE)
                && slot.compare_exchange(cur, page.0, Ordering::AcqRel, Ordering::Relaxed).is_ok()
            {
                return;
            }
            i = i.wrapping_add(1);
        }
    }

    /// Removes `page`; returns whether it was there.
    pub(crate) fn remove(&self, page: PageId) -> bool {
        let mut i = hash(page);
        for _ in 0..self.slots.len() {
            let Some(slot) = self.slot(i) else { return false };
            match slot.load(Ordering::Relaxed) {
                EMPTY => return false,
                cur if cur == page.0 => {
                    return slot.compare_exchange(cur, TOMBSTONE, Ordering::AcqRel, Ordering::Relaxed).is_ok();
                }
                _ => i = i.wrapping_add(1),
            }
        }
        false
    }

    /// Advances the clock hand by `n` slots and calls `visit` for each page
    /// found in them.
    pub(crate) fn clock_batch(&self, n: usize, mut visit: impl FnMut(PageId)) {
        let start = self.hand.fetch_add(n as u64, Ordering::Relaxed);
        for i in start..start + n as u64 {
            let cur = self.slot(i).map_or(EMPTY, |s| s.load(Ordering::Acquire));
            if cur != EMPTY && cur != TOMBSTONE {
                visit(PageId(cur));
            }
        }
    }

    /// Calls `visit` for every page in the set, without moving the hand.
    pub(crate) fn clock_all(&self, mut visit: impl FnMut(PageId)) {
        for slot in self.slots.iter() {
            let cur = slot.load(Ordering::Acquire);
            if cur != EMPTY && cur != TOMBSTONE {
                visit(PageId(cur));
            }
        }
    }

    /// Slots in the table (one full turn of the clock).
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Pages in the set right now (a full scan; for checks and tests).
    #[cfg(test)]
    pub(crate) fn count(&self) -> u64 {
        self.slots.iter().filter(|s| s.load(Ordering::Relaxed) < TOMBSTONE).count() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserted_pages_are_found_by_the_clock_until_removed() {
        let set = ResidentSet::new(8).unwrap();
        for p in 0..8 {
            set.insert(PageId(p * 1000));
        }
        assert_eq!(set.count(), 8);
        assert!(set.remove(PageId(3000)));
        assert!(!set.remove(PageId(3000)));
        assert!(!set.remove(PageId(42)));
        set.insert(PageId(9));
        let mut seen = std::vec::Vec::new();
        set.clock_batch(set.capacity(), |p| seen.push(p.0));
        seen.sort_unstable();
        assert_eq!(seen, [0, 9, 1000, 2000, 4000, 5000, 6000, 7000]);
    }

    #[test]
    fn churn_through_tombstones_keeps_the_set_exact() {
        let set = ResidentSet::new(16).unwrap();
        for round in 0..1000u64 {
            for p in 0..16 {
                set.insert(PageId(round * 16 + p));
            }
            for p in 0..16 {
                assert!(set.remove(PageId(round * 16 + p)));
            }
        }
        assert_eq!(set.count(), 0);
    }

    #[test]
    fn a_table_too_large_to_allocate_is_an_error_not_an_abort() {
        // 2^50 pages (4 EiB of pool): a 2^54-byte table, which no
        // allocator can provide.
        let Err(e) = ResidentSet::new(1 << 50) else { panic!("allocated 2^54 bytes") };
        assert_eq!(e, Error::OutOfMemory { what: "the resident-page table", bytes: 1 << 54 });
        assert_eq!(
            std::format!("{e}"),
            "out of memory: cannot allocate 18014398509481984 bytes for the resident-page table"
        );
    }
}
