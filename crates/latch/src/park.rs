//! The parking table: where threads sleep until a latch word changes.
//!
//! A latch word is 64 bits and a futex is 32, so threads do not sleep on the
//! word itself but on one of a fixed set of 32-bit sequence counters, chosen
//! by hashing the word's address. Protocol (all SeqCst, which is what makes
//! it free of lost wake-ups; see `LatchWord::park`):
//!
//! - a waiter reads the slot's sequence, re-reads the latch word and returns
//!   if it changed, sets the word's `PARKED` bit (or finds it set), and
//!   sleeps on the slot unless the sequence moved;
//! - a releaser that clears a `PARKED` bit increments the sequence and wakes
//!   every sleeper of the slot.
//!
//! Unrelated latches that hash to the same slot only cause spurious wake-ups,
//! after which waiters re-check their word.

use crate::sync::{AtomicU32, Ordering};

/// Number of slots (a power of two).
#[cfg(not(any(loom, shuttle)))]
const SLOTS: usize = 256;
#[cfg(any(loom, shuttle))]
const SLOTS: usize = 1;

/// One parking slot, alone on its cache line so unrelated wake-ups do not
/// contend.
#[repr(align(64))]
pub(crate) struct Slot {
    seq: AtomicU32,
    /// Under a model checker, a futex is emulated with a mutex and a
    /// condition variable.
    #[cfg(any(loom, shuttle))]
    lock: crate::sync::model::sync::Mutex<()>,
    #[cfg(any(loom, shuttle))]
    cond: crate::sync::model::sync::Condvar,
}

#[cfg(not(any(loom, shuttle)))]
static TABLE: [Slot; SLOTS] = [const { Slot { seq: AtomicU32::new(0) } }; SLOTS];

#[cfg(any(loom, shuttle))]
crate::sync::model::lazy_static! {
    static ref TABLE: [Slot; SLOTS] = [const { () }; SLOTS].map(|()| Slot {
        seq: AtomicU32::new(0),
        lock: crate::sync::model::sync::Mutex::new(()),
        cond: crate::sync::model::sync::Condvar::new(),
    });
}

/// The slot for the latch word at `addr`.
pub(crate) fn slot(addr: usize) -> &'static Slot {
    // Fibonacci hashing of the word index spreads neighbouring words.
    let index = ((addr >> 3) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SLOTS.trailing_zeros());
    let table: &'static [Slot; SLOTS] = &TABLE;
    // `index < SLOTS` by construction; fall back to slot 0 rather than panic.
    table.get(index as usize).unwrap_or(&table[0])
}

impl Slot {
    /// The current sequence, read before deciding to sleep.
    pub(crate) fn sequence(&self) -> u32 {
        self.seq.load(Ordering::SeqCst)
    }

    /// Sleeps unless the sequence is no longer `seen`. May return spuriously.
    pub(crate) fn sleep(&self, seen: u32) {
        #[cfg(not(any(loom, shuttle)))]
        {
            // Any outcome (woken, value changed, interrupted) means: re-check.
            let _ = snowfall_sys::futex::wait(&self.seq, seen, None);
        }
        #[cfg(any(loom, shuttle))]
        {
            let guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            if self.seq.load(Ordering::SeqCst) == seen {
                drop(self.cond.wait(guard));
            }
        }
    }

    /// Advances the sequence and wakes every sleeper.
    pub(crate) fn wake_all(&self) {
        self.seq.fetch_add(1, Ordering::SeqCst);
        #[cfg(not(any(loom, shuttle)))]
        snowfall_sys::futex::wake_all(&self.seq);
        #[cfg(any(loom, shuttle))]
        {
            let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.cond.notify_all();
        }
    }
}
