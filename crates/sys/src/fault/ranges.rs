//! The table of registered address ranges, read by the fault handler.
//!
//! The handler may run at any instant on any thread, so it cannot take a lock
//! or follow a pointer that could be freed: the table is a fixed array of
//! slots, each a small seqlock (`seq` odd while the slot changes). The handler
//! skips a slot that is changing, which is the right answer: a range being
//! registered is not registered yet, and one being removed must no longer be
//! touched by guarded code.

use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};

/// How many ranges can be registered at once. The buffer pool needs one per
/// pool; tests and the self-test need a handful.
pub const MAX_RANGES: usize = 32;

struct Slot {
    /// Claimed by a registration (serialises writers of this slot).
    claimed: AtomicBool,
    /// Even: stable; odd: being written.
    seq: AtomicU64,
    start: AtomicUsize,
    /// Exclusive end; 0 for an empty slot.
    end: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const, reason = "used only to initialise the static array")]
const EMPTY: Slot = Slot {
    claimed: AtomicBool::new(false),
    seq: AtomicU64::new(0),
    start: AtomicUsize::new(0),
    end: AtomicUsize::new(0),
};

static SLOTS: [Slot; MAX_RANGES] = [EMPTY; MAX_RANGES];

/// Claims a free slot and publishes `[start, end)` in it; returns the slot.
pub(super) fn insert(start: usize, end: usize) -> Option<usize> {
    let (index, slot) = SLOTS
        .iter()
        .enumerate()
        .find(|(_, s)| s.claimed.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_ok())?;
    write(slot, start, end);
    Some(index)
}

/// Empties slot `index` and frees it for reuse.
pub(super) fn remove(index: usize) {
    if let Some(slot) = SLOTS.get(index) {
        write(slot, 0, 0);
        slot.claimed.store(false, Ordering::Release);
    }
}

fn write(slot: &Slot, start: usize, end: usize) {
    // Only the claimant writes a slot, so a plain increment cannot race.
    let seq = slot.seq.load(Ordering::Relaxed);
    slot.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
    // Order the odd sequence before the field stores (the seqlock writer side).
    fence(Ordering::Release);
    slot.start.store(start, Ordering::Relaxed);
    slot.end.store(end, Ordering::Relaxed);
    slot.seq.store(seq.wrapping_add(2), Ordering::Release);
}

/// Whether `addr` lies in a registered range. Async-signal-safe: a bounded
/// scan of atomics, no locks, no retries.
pub(super) fn contains(addr: usize) -> bool {
    SLOTS.iter().any(|slot| {
        let before = slot.seq.load(Ordering::Acquire);
        if before % 2 == 1 {
            return false;
        }
        let start = slot.start.load(Ordering::Relaxed);
        let end = slot.end.load(Ordering::Relaxed);
        // Order the field loads before the validating load (seqlock reader side).
        fence(Ordering::Acquire);
        before == slot.seq.load(Ordering::Relaxed) && start <= addr && addr < end
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserted_ranges_contain_their_addresses_until_removed() {
        let a = insert(0x1000_0000, 0x1000_2000).unwrap();
        assert!(contains(0x1000_0000) && contains(0x1000_1fff));
        assert!(!contains(0x0fff_ffff) && !contains(0x1000_2000));
        remove(a);
        assert!(!contains(0x1000_0000));
    }
}
