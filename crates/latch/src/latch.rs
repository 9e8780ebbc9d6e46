//! [`LatchWord`]: the hybrid latch's operations on one 64-bit word.

use crate::park;
use crate::sync::{AtomicU64, Ordering, fence, spin, yield_now};
use crate::word::{EVICTED, LOCKED, MARKED, MAX_READERS, PARKED, UNLOCKED, Word};

/// The page is evicted: the buffer manager must load it before it can be latched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Evicted;

/// What an exclusive unlock does with the owner's flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flag {
    /// Leave it as it is.
    Keep,
    /// Set it (the buffer manager: the page is now dirty).
    Set,
}

/// Spinning, then yielding, then parking: how a blocked thread waits.
#[derive(Debug)]
pub struct Backoff {
    step: u32,
    /// Rounds of spinning before yielding.
    spin_rounds: u32,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff::new()
    }
}

impl Backoff {
    /// Rounds of exponential spinning (1, 2, 4, ... 2^SPIN_ROUNDS spins).
    #[cfg(not(any(loom, shuttle)))]
    const SPIN_ROUNDS: u32 = 6;
    /// Rounds of yielding after the spinning.
    #[cfg(not(any(loom, shuttle)))]
    const YIELD_ROUNDS: u32 = 4;
    // Under loom every spin is a scheduling point: park at once.
    #[cfg(any(loom, shuttle))]
    const SPIN_ROUNDS: u32 = 0;
    #[cfg(any(loom, shuttle))]
    const YIELD_ROUNDS: u32 = 0;

    /// Spinning rounds of a [`patient`](Self::patient) backoff: 1,023
    /// spins in all, tens of microseconds.
    #[cfg(not(any(loom, shuttle)))]
    const PATIENT_SPIN_ROUNDS: u32 = 10;
    #[cfg(any(loom, shuttle))]
    const PATIENT_SPIN_ROUNDS: u32 = 0;

    /// A fresh backoff.
    pub const fn new() -> Backoff {
        Backoff { step: 0, spin_rounds: Self::SPIN_ROUNDS }
    }

    /// A backoff that spins 16 times longer before it yields: for a lock
    /// whose holders run for microseconds, back to back, on other cores.
    /// Handing such a lock over through the futex costs a sleep, a wake-up
    /// system call and a context switch, longer than the wait.
    pub const fn patient() -> Backoff {
        Backoff { step: 0, spin_rounds: Self::PATIENT_SPIN_ROUNDS }
    }

    /// Waits a little longer each call; returns `false` once the caller
    /// should park instead.
    pub fn snooze(&mut self) -> bool {
        if self.step < self.spin_rounds {
            for _ in 0..(1u32 << self.step) {
                spin();
            }
        } else if self.step < self.spin_rounds + Self::YIELD_ROUNDS {
            yield_now();
        } else {
            return false;
        }
        self.step += 1;
        true
    }

    /// Waits a little longer each call, never parking (for restarting
    /// optimistic readers, which hold nothing to wake them).
    pub fn pause(&mut self) {
        if !self.snooze() {
            yield_now();
        }
    }
}

/// A hybrid latch in one word: optimistic reads validated by version,
/// shared and exclusive modes, and parking on a futex when blocked. The
/// buffer manager's page states are arrays of these.
///
/// Memory ordering (the argument, once): lock acquisitions are Acquire
/// read-modify-writes and releases are Release, so data protected by the
/// latch is ordered as under any lock. After an exclusive acquisition a
/// Release fence orders the acquisition before the holder's writes. An
/// optimistic reader loads the word with Acquire (seeing every write made
/// before the release that produced that version), reads the data, and
/// validates with an Acquire fence followed by a reload: if its reads saw
/// any write of a later holder, the fence pair (the writer's Release fence,
/// the reader's Acquire fence) makes the reload see that holder's
/// acquisition or something later, so the version or state differs and the
/// read is discarded. The parking protocol uses SeqCst (see `park.rs`).
#[repr(transparent)]
#[derive(Debug)]
pub struct LatchWord(AtomicU64);

impl Default for LatchWord {
    fn default() -> Self {
        LatchWord::new()
    }
}

impl LatchWord {
    /// An unlocked latch at version 0.
    #[cfg(not(any(loom, shuttle)))]
    pub const fn new() -> LatchWord {
        LatchWord(AtomicU64::new(Word::new(UNLOCKED, 0).0))
    }

    /// An unlocked latch at version 0.
    #[cfg(any(loom, shuttle))]
    pub fn new() -> LatchWord {
        LatchWord(AtomicU64::new(Word::new(UNLOCKED, 0).0))
    }

    /// A latch in the `EVICTED` state at version 0 (buffer manager pages;
    /// the same bits as zeroed memory).
    #[cfg(not(any(loom, shuttle)))]
    pub const fn evicted() -> LatchWord {
        LatchWord(AtomicU64::new(Word::new(EVICTED, 0).0))
    }

    /// A latch in the `EVICTED` state at version 0.
    #[cfg(any(loom, shuttle))]
    pub fn evicted() -> LatchWord {
        LatchWord(AtomicU64::new(Word::new(EVICTED, 0).0))
    }

    /// The current word (Acquire).
    #[inline]
    pub fn load(&self) -> Word {
        Word(self.0.load(Ordering::Acquire))
    }

    #[inline]
    fn cas(&self, current: Word, new: Word, success: Ordering) -> Result<(), Word> {
        self.0.compare_exchange(current.0, new.0, success, Ordering::Relaxed).map(|_| ()).map_err(Word)
    }

    // ---------------------------------------------------------------- optimistic

    /// Starts an optimistic read: returns the word to validate against,
    /// waiting while the latch is held exclusively.
    #[inline]
    pub fn optimistic(&self) -> Result<Word, Evicted> {
        let mut backoff = Backoff::new();
        loop {
            let w = self.load();
            match w.state() {
                EVICTED => return Err(Evicted),
                LOCKED => self.wait(w, &mut backoff),
                _ => return Ok(w),
            }
        }
    }

    /// Whether nothing wrote under the latch since `snapshot` was taken by
    /// [`optimistic`](Self::optimistic). Reads made in between are valid
    /// only if this returns true.
    #[inline]
    pub fn validate(&self, snapshot: Word) -> bool {
        fence(Ordering::Acquire);
        let now = Word(self.0.load(Ordering::Relaxed));
        now.version() == snapshot.version() && now.is_readable()
    }

    // ---------------------------------------------------------------- shared

    /// Takes the latch shared if that is possible without waiting.
    pub fn try_lock_shared(&self) -> Result<bool, Evicted> {
        let w = self.load();
        self.try_shared_from(w).map(|r| r.is_ok())
    }

    fn try_shared_from(&self, w: Word) -> Result<Result<(), Word>, Evicted> {
        let next = match w.state() {
            EVICTED => return Err(Evicted),
            UNLOCKED | MARKED => UNLOCKED + 1,
            LOCKED => return Ok(Err(w)),
            s if s - UNLOCKED >= MAX_READERS => return Ok(Err(w)),
            s => s + 1,
        };
        Ok(self.cas(w, w.with_state(next), Ordering::Acquire))
    }

    /// Takes the latch shared, waiting while it is held exclusively (or by
    /// the maximum number of readers).
    pub fn lock_shared(&self) -> Result<(), Evicted> {
        let mut backoff = Backoff::new();
        let mut w = self.load();
        loop {
            match self.try_shared_from(w)? {
                Ok(()) => return Ok(()),
                Err(now) if now.state() == LOCKED || now.readers() >= MAX_READERS => {
                    self.wait(now, &mut backoff);
                    w = self.load();
                }
                // Lost a race with another reader: retry at once.
                Err(now) => w = now,
            }
        }
    }

    /// Releases a shared hold.
    pub fn unlock_shared(&self) {
        let mut w = self.load();
        loop {
            debug_assert!(w.readers() > 0, "unlock_shared without a shared hold: {w:?}");
            let last = w.readers() <= 1;
            let next = if last { w.with_state(UNLOCKED).unparked() } else { w.with_state(w.state() - 1) };
            match self.cas(w, next, Ordering::SeqCst) {
                Ok(()) => {
                    if last && w.parked() {
                        self.unpark();
                    }
                    return;
                }
                Err(now) => w = now,
            }
        }
    }

    // ---------------------------------------------------------------- exclusive

    /// Takes the latch exclusively if that is possible without waiting.
    pub fn try_lock_exclusive(&self) -> Result<bool, Evicted> {
        let w = self.load();
        match w.state() {
            EVICTED => Err(Evicted),
            UNLOCKED | MARKED => Ok(self.acquire_exclusive(w)),
            _ => Ok(false),
        }
    }

    fn acquire_exclusive(&self, w: Word) -> bool {
        let ok = self.cas(w, w.with_state(LOCKED), Ordering::Acquire).is_ok();
        if ok {
            // Order the acquisition before the holder's writes (see the type's docs).
            fence(Ordering::Release);
        }
        ok
    }

    /// Takes the latch exclusively, waiting while anyone holds it.
    pub fn lock_exclusive(&self) -> Result<(), Evicted> {
        self.lock_exclusive_with(Backoff::new())
    }

    /// As [`lock_exclusive`](Self::lock_exclusive), waiting as `backoff` says.
    pub fn lock_exclusive_with(&self, mut backoff: Backoff) -> Result<(), Evicted> {
        loop {
            let w = self.load();
            match w.state() {
                EVICTED => return Err(Evicted),
                UNLOCKED | MARKED => {
                    if self.acquire_exclusive(w) {
                        return Ok(());
                    }
                }
                _ => self.wait(w, &mut backoff),
            }
        }
    }

    /// Takes the latch exclusively if the word is still exactly `observed`
    /// and free (the clock: evict only what it saw unused).
    pub fn try_lock_exclusive_if(&self, observed: Word) -> bool {
        observed.is_free() && self.acquire_exclusive(observed)
    }

    /// Takes the latch shared if the word is still exactly `observed`.
    pub fn try_lock_shared_if(&self, observed: Word) -> bool {
        matches!(self.try_shared_from(observed), Ok(Ok(())))
    }

    /// Takes a shared hold if no writer or eviction came since `snapshot`
    /// (an optimistic read's word): readers that came and went meanwhile
    /// do not matter. Never waits.
    pub fn try_share(&self, snapshot: Word) -> bool {
        let mut w = self.load();
        while w.version() == snapshot.version() {
            match self.try_shared_from(w) {
                Ok(Ok(())) => return true,
                // Lost a race with another reader: retry from what it left.
                Ok(Err(now)) if now.state() != LOCKED && now.readers() < MAX_READERS => w = now,
                _ => return false,
            }
        }
        false
    }

    /// Upgrades an optimistic read to an exclusive hold if nothing changed
    /// since `snapshot`.
    pub fn try_upgrade(&self, snapshot: Word) -> bool {
        let w = self.load();
        w.version() == snapshot.version() && w.is_free() && self.acquire_exclusive(w)
    }

    /// Upgrades a shared hold to exclusive if the caller is the only reader.
    pub fn try_upgrade_shared(&self) -> bool {
        let w = self.load();
        w.readers() == 1 && self.acquire_exclusive(w)
    }

    /// Releases an exclusive hold: a new version, the flag as asked.
    pub fn unlock_exclusive(&self, flag: Flag) {
        self.release_exclusive(UNLOCKED, flag == Flag::Set);
    }

    fn release_exclusive(&self, state: u8, flag: bool) {
        let mut w = self.load();
        loop {
            debug_assert_eq!(w.state(), LOCKED, "release without an exclusive hold: {w:?}");
            let next = w.bumped().with_state(state).unparked().with_flag(flag || (w.flag() && state != EVICTED));
            match self.cas(w, next, Ordering::SeqCst) {
                Ok(()) => {
                    if w.parked() {
                        self.unpark();
                    }
                    return;
                }
                // Only a parking waiter can change the word under us.
                Err(now) => w = now,
            }
        }
    }

    // ---------------------------------------------------------------- buffer manager states

    /// `EVICTED` -> `LOCKED`: the caller will load the page.
    pub fn try_lock_evicted(&self) -> bool {
        let w = self.load();
        w.state() == EVICTED && self.acquire_exclusive(w)
    }

    /// `LOCKED` -> `EVICTED` with a new version and the flag cleared: the
    /// page left memory.
    pub fn unlock_evicted(&self) {
        self.release_exclusive(EVICTED, false);
    }

    /// `UNLOCKED` -> `MARKED` if the word is still `observed`.
    pub fn try_mark(&self, observed: Word) -> bool {
        observed.state() == UNLOCKED && self.cas(observed, observed.with_state(MARKED), Ordering::Relaxed).is_ok()
    }

    /// `MARKED` -> `UNLOCKED` (the page was used again), if still `observed`.
    pub fn unmark(&self, observed: Word) {
        if observed.state() == MARKED {
            let _ = self.cas(observed, observed.with_state(UNLOCKED), Ordering::Relaxed);
        }
    }

    /// Clears the owner's flag while the caller holds the latch shared (the
    /// buffer manager: the page was written back). Exclusive holders, the
    /// only ones who set the flag, are excluded meanwhile.
    pub fn clear_flag_shared(&self) {
        let mut w = self.load();
        loop {
            debug_assert!(w.readers() > 0, "clear_flag_shared without a shared hold: {w:?}");
            match self.cas(w, w.with_flag(false), Ordering::Relaxed) {
                Ok(()) => return,
                Err(now) => w = now,
            }
        }
    }

    // ---------------------------------------------------------------- parking

    /// Waits until the word is likely to differ from `observed`: spins and
    /// yields first, then parks (see `park.rs` for the protocol).
    fn wait(&self, observed: Word, backoff: &mut Backoff) {
        if backoff.snooze() {
            return;
        }
        let slot = park::slot(self.addr());
        let seen = slot.sequence();
        let now = Word(self.0.load(Ordering::SeqCst));
        if now != observed {
            return;
        }
        if !now.parked() && self.cas(now, Word(now.0 | PARKED), Ordering::SeqCst).is_err() {
            return;
        }
        slot.sleep(seen);
    }

    fn unpark(&self) {
        park::slot(self.addr()).wake_all();
    }

    fn addr(&self) -> usize {
        core::ptr::from_ref(self) as usize
    }
}
