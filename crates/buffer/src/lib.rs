//! SnowfallDB's buffer manager, in the style of vmcache (Leis et al.,
//! "Virtual-Memory Assisted Buffer Management", SIGMOD 2023).
//!
//! One virtual reservation covers the whole database: page `i` always lives
//! at `base + i * 4096`, so a page id *is* its address and no translation
//! table is needed. Beside it, one latch word per page ([`snowfall_latch`])
//! holds the page's state (evicted, unlocked, shared, marked, locked), its
//! version for optimistic readers, and its dirty flag. Pages not in memory
//! are loaded explicitly with `pread` while their latch is held; a clock
//! over the resident set evicts in batches, writing dirty pages back first,
//! and gives memory back through a [`MemoryBackend`]. Resident pages never
//! exceed the configured pool.
//!
//! - [`page`]: the page and the header the buffer manager owns;
//! - [`BufferManager`]: open, allocate/free, fix (guards), flush;
//! - [`guard`]: exclusive, shared and optimistic guards;
//! - [`device`]: file, memory and fault-injecting storage;
//! - [`memory`]: memory backends (`madvise`; exmap's seam);
//! - [`scenario`]: seeded workloads with an oracle, shared by the tests and
//!   the binary.
//!
//! Layout of this crate, bottom-up: `states.rs` (page-state array),
//! `resident.rs` (resident set and clock), `load.rs` (page faults),
//! `evict.rs` (batched eviction and write-back), `changes.rs` (where each
//! dirty page's oldest unwritten change lies in the log, and write-back
//! oldest first), `manager.rs`, `guard.rs`.
#![no_std]
#![deny(unsafe_code)]

extern crate alloc;
#[cfg(test)]
extern crate std;

mod admission;
mod changes;
mod config;
pub mod device;
mod error;
mod evict;
mod extent_cache;
mod extent_holds;
mod extents;
mod free_space;
pub mod guard;
mod load;
mod manager;
pub mod memory;
pub mod page;
mod resident;
pub mod scenario;
mod states;
mod stats;

pub use changes::WrittenBack;
pub use config::{Config, DEFAULT_EVICTION_BATCH, MAX_EVICTION_BATCH};
pub use device::Device;
pub use error::{ConfigError, DeviceError, Error, IoOp, MemoryError};
pub use extent_cache::{ExtentGuard, NewExtent};
pub use extent_holds::ExtentHold;
pub use extents::{Extent, ExtentPin};
pub use free_space::FreeSpace;
pub use guard::{ExclusiveGuard, Invalid, OptimisticGuard, PageView, SharedGuard};
pub use manager::{BufferManager, CheckpointAllocation, NoLog, PageState, WriteBackHook};
pub use memory::MemoryBackend;
pub use page::{BODY_SIZE, FORMAT_VERSION, HEADER_SIZE, PAGE_SIZE, Page, PageId};
pub use stats::Stats;
