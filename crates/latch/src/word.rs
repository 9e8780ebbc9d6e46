//! The latch word: a state and a version packed in 64 bits.
//!
//! ```text
//!  63        56 55     54     53                                     0
//! +------------+------+------+----------------------------------------+
//! |   state    |parked| flag |               version                  |
//! +------------+------+------+----------------------------------------+
//! ```
//!
//! - **state** (8 bits): `EVICTED` (0), `UNLOCKED` (1), shared by 1..=249
//!   readers (2..=250), `MARKED` (251), `LOCKED` (252). `EVICTED` and `MARKED`
//!   belong to the buffer manager (a page not in memory; a resident page the
//!   clock has marked for eviction); a plain latch never enters them.
//!   `EVICTED` is 0 so that an array of page states costs memory only where
//!   pages were used: untouched zero pages of an anonymous mapping read as
//!   "evicted, version 0".
//! - **parked**: some thread sleeps waiting for this word to change; whoever
//!   releases the latch must wake the parking slot.
//! - **flag**: one bit for the owner (the buffer manager's "dirty"); the
//!   latch only carries it.
//! - **version** (54 bits): bumped by every exclusive unlock and by eviction,
//!   so an optimistic reader that sees the same version before and after its
//!   reads knows no writer intervened. It wraps after 2^54 bumps.

use static_assertions::const_assert;

/// Bits of the version.
pub const VERSION_BITS: u32 = 54;
/// Mask of the version bits.
pub const VERSION_MASK: u64 = (1 << VERSION_BITS) - 1;
/// The owner's flag bit.
pub const FLAG: u64 = 1 << VERSION_BITS;
/// Set while a thread is parked on the word.
pub const PARKED: u64 = 1 << (VERSION_BITS + 1);
const STATE_SHIFT: u32 = 56;
const_assert!(VERSION_BITS + 2 == STATE_SHIFT);

/// The page is not in memory (buffer manager only). Must be 0.
pub const EVICTED: u8 = 0;
/// Nobody holds the latch.
pub const UNLOCKED: u8 = 1;
/// Most readers that can share the latch at once.
pub const MAX_READERS: u8 = 249;
/// Resident, unlocked, and marked by the clock as an eviction candidate
/// (buffer manager only). Any access clears the mark.
pub const MARKED: u8 = UNLOCKED + MAX_READERS + 1;
/// Held exclusively.
pub const LOCKED: u8 = MARKED + 1;
const_assert!(EVICTED == 0 && MARKED == 251 && LOCKED == 252);

/// A value of the latch word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Word(pub u64);

impl Word {
    /// A word with `state` and `version`, no flags.
    pub const fn new(state: u8, version: u64) -> Word {
        Word(((state as u64) << STATE_SHIFT) | (version & VERSION_MASK))
    }

    /// The state byte.
    pub const fn state(self) -> u8 {
        (self.0 >> STATE_SHIFT) as u8
    }

    /// The version.
    pub const fn version(self) -> u64 {
        self.0 & VERSION_MASK
    }

    /// The owner's flag.
    pub const fn flag(self) -> bool {
        self.0 & FLAG != 0
    }

    /// Whether a thread is parked on the word.
    pub const fn parked(self) -> bool {
        self.0 & PARKED != 0
    }

    /// How many readers share the latch (0 unless shared).
    pub const fn readers(self) -> u8 {
        match self.state() {
            s @ 2..=250 => s - UNLOCKED,
            _ => 0,
        }
    }

    /// Whether a shared or exclusive lock can be taken right now.
    pub const fn is_free(self) -> bool {
        matches!(self.state(), UNLOCKED | MARKED)
    }

    /// Whether an optimistic read can start: resident and not held exclusively.
    pub const fn is_readable(self) -> bool {
        !matches!(self.state(), EVICTED | LOCKED)
    }

    /// The same word with another state.
    pub const fn with_state(self, state: u8) -> Word {
        Word((self.0 & !(0xff << STATE_SHIFT)) | ((state as u64) << STATE_SHIFT))
    }

    /// The same word with the version advanced by one (wrapping) and the
    /// flag and parked bits kept.
    pub const fn bumped(self) -> Word {
        Word((self.0 & !VERSION_MASK) | (self.version().wrapping_add(1) & VERSION_MASK))
    }

    /// The same word with the flag set or cleared.
    pub const fn with_flag(self, flag: bool) -> Word {
        if flag { Word(self.0 | FLAG) } else { Word(self.0 & !FLAG) }
    }

    /// The same word without the parked bit.
    pub const fn unparked(self) -> Word {
        Word(self.0 & !PARKED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_without_touching_each_other() {
        let w = Word::new(LOCKED, VERSION_MASK).with_flag(true);
        assert_eq!((w.state(), w.version(), w.flag(), w.parked()), (LOCKED, VERSION_MASK, true, false));
        let b = w.bumped();
        assert_eq!((b.state(), b.version(), b.flag()), (LOCKED, 0, true), "the version wraps inside its bits");
        let u = Word(b.0 | PARKED).with_state(UNLOCKED).unparked();
        assert_eq!((u.state(), u.version(), u.flag(), u.parked()), (UNLOCKED, 0, true, false));
        assert_eq!(Word(0).state(), EVICTED);
    }

    #[test]
    fn reader_counts_map_onto_shared_states() {
        assert_eq!(Word::new(UNLOCKED + 1, 0).readers(), 1);
        assert_eq!(Word::new(UNLOCKED + MAX_READERS, 0).readers(), MAX_READERS);
        for s in [EVICTED, UNLOCKED, MARKED, LOCKED] {
            assert_eq!(Word::new(s, 0).readers(), 0);
        }
        assert!(Word::new(MARKED, 0).is_free() && !Word::new(LOCKED, 0).is_free());
        assert!(Word::new(UNLOCKED + 3, 0).is_readable() && !Word::new(EVICTED, 0).is_readable());
    }
}
