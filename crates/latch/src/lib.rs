//! SnowfallDB's hybrid latch.
//!
//! One 64-bit word ([`word`]) gives three ways in: **optimistic** reads
//! (remember the version, read, validate that the version did not change),
//! **shared** holds (a reader count) and **exclusive** holds, plus an upgrade
//! from an optimistic read to exclusive. A blocked thread spins briefly,
//! yields, then parks on a futex through a parking table ([`LatchWord`]'s
//! docs hold the memory-ordering argument). The buffer manager's page-state
//! word *is* this word, extended with the `EVICTED` and `MARKED` states and
//! the owner's flag (dirty).
//!
//! Model checked with loom: `RUSTFLAGS="--cfg loom" cargo test -p
//! snowfall-latch --release --test loom`.
//!
//! `no_std`; unsafe code is denied except in [`Mutex`]'s module.
#![no_std]
#![deny(unsafe_code)]

#[cfg(any(test, loom, shuttle))]
extern crate std;

mod latch;
mod mutex;
mod park;
mod sync;
pub mod word;

pub use latch::{Backoff, Evicted, Flag, LatchWord};
pub use mutex::{Mutex, MutexGuard};
pub use word::Word;

#[cfg(all(test, not(any(loom, shuttle))))]
mod tests;
