//! A mutex on the latch word, for the engine's own small shared structures
//! (free lists, device tables): no std, parks on the futex when contended.
//!
//! # Safety
//!
//! The data is reached only through a [`MutexGuard`], which exists only
//! while the latch is held exclusively, so at most one `&mut T` exists at a
//! time; the latch's Acquire/Release ordering publishes the data between
//! holders.
#![allow(unsafe_code)]

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};

use crate::latch::{Backoff, Flag, LatchWord};

/// Mutual exclusion around a `T`.
#[derive(Debug, Default)]
pub struct Mutex<T> {
    latch: LatchWord,
    data: UnsafeCell<T>,
}

// SAFETY: the latch hands the `T` to one thread at a time (see the module's
// safety paragraph); sending it between threads needs `T: Send`.
unsafe impl<T: Send> Sync for Mutex<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for Mutex<T> {}

impl<T> Mutex<T> {
    /// A new unlocked mutex.
    #[cfg(not(any(loom, shuttle)))]
    pub const fn new(data: T) -> Mutex<T> {
        Mutex { latch: LatchWord::new(), data: UnsafeCell::new(data) }
    }

    /// A new unlocked mutex.
    #[cfg(any(loom, shuttle))]
    pub fn new(data: T) -> Mutex<T> {
        Mutex { latch: LatchWord::new(), data: UnsafeCell::new(data) }
    }

    /// Locks, waiting (spinning, then parking) while another thread holds it.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        // A mutex's latch is never evicted: only the buffer manager's page
        // states use that state, and it never lends them to a Mutex.
        while self.latch.lock_exclusive().is_err() {}
        MutexGuard { mutex: self }
    }

    /// Locks as [`lock`](Self::lock) does, but spins longer before it
    /// parks ([`Backoff::patient`]): for a lock held briefly and taken back
    /// to back by several threads (the version store's commit lock).
    pub fn lock_patiently(&self) -> MutexGuard<'_, T> {
        while self.latch.lock_exclusive_with(Backoff::patient()).is_err() {}
        MutexGuard { mutex: self }
    }

    /// Locks if no other thread holds it, without waiting.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        // `then`, not `then_some`: a guard made and dropped on failure
        // would release the holder's lock.
        matches!(self.latch.try_lock_exclusive(), Ok(true)).then(|| MutexGuard { mutex: self })
    }

    /// The data, through exclusive access to the mutex itself.
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    /// The data, consuming the mutex.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

/// Holds the lock; unlocks when dropped.
#[must_use = "dropping the guard unlocks at once"]
pub struct MutexGuard<'a, T> {
    mutex: &'a Mutex<T>,
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the guard proves the exclusive hold (module safety paragraph).
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as above, and `&mut self` makes this the only reference.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.mutex.latch.unlock_exclusive(Flag::Keep);
    }
}
