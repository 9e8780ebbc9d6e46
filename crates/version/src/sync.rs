//! Atomics from `core`, or shuttle's under `--cfg shuttle` (so that every
//! atomic step of a model in `tests/shuttle.rs` is a scheduling point).

#[cfg(not(shuttle))]
pub(crate) use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
#[cfg(shuttle)]
pub(crate) use shuttle::sync::atomic::{AtomicBool, AtomicU64, Ordering};
