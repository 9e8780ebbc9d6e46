//! The one place this crate takes atomics, fences, spinning and yielding
//! from: `core` and the kernel normally, a model checker's under
//! `--cfg loom` (exhaustive, `tests/loom.rs`) or `--cfg shuttle` (randomized
//! schedules of whole tree operations, `crates/btree/tests/shuttle.rs`).

#[cfg(not(any(loom, shuttle)))]
pub(crate) use core::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
#[cfg(shuttle)]
pub(crate) use shuttle::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

/// The model checker in use, if any.
#[cfg(loom)]
pub(crate) use loom as model;
#[cfg(shuttle)]
pub(crate) use shuttle as model;

/// One busy-wait step.
#[inline]
pub(crate) fn spin() {
    #[cfg(not(any(loom, shuttle)))]
    core::hint::spin_loop();
    #[cfg(any(loom, shuttle))]
    model::thread::yield_now();
}

/// Gives the processor to another thread.
#[inline]
pub(crate) fn yield_now() {
    #[cfg(not(any(loom, shuttle)))]
    rustix::thread::sched_yield();
    #[cfg(any(loom, shuttle))]
    model::thread::yield_now();
}
