//! The one place this crate takes atomics, fences, spinning and yielding
//! from: `core` and the kernel normally, loom's models under `--cfg loom`
//! (model checking: `RUSTFLAGS="--cfg loom" cargo test -p snowfall-latch
//! --release --test loom`).

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

/// One busy-wait step.
#[inline]
pub(crate) fn spin() {
    #[cfg(not(loom))]
    core::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// Gives the processor to another thread.
#[inline]
pub(crate) fn yield_now() {
    #[cfg(not(loom))]
    rustix::thread::sched_yield();
    #[cfg(loom)]
    loom::thread::yield_now();
}
