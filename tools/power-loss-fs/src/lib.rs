//! Our emulation of power loss at the file-system level, for crash tests of
//! SnowfallDB: a FUSE file system over a backing directory that keeps every
//! change not yet made durable in memory and loses it when the power fails.
//! (LazyFS does the same in C++; it is not used here because it is only on
//! GitHub, which CI cannot reach.)
//!
//! What it models, as POSIX promises and as ext4, SQLite and RocksDB
//! assume:
//! - a file's writes and size changes are durable once `fsync` or
//!   `fdatasync` of the file (through any handle) returned; before that
//!   they are visible to every program but lost by a power loss;
//! - a name created, renamed or removed in a directory is durable once that
//!   directory was fsynced (and a new directory's own name, in its parent);
//!   an fsync of the file itself does not make its name durable;
//! - optionally, a power loss in the middle of writing back: each unsynced
//!   512-byte sector, and an unsynced size change, independently reaches
//!   the disk or not ([`PowerLoss::Torn`]).
//!
//! What it does not model: reordering or loss of *synced* data (a disk
//! lying about its cache flush), bit rot, partial directory updates (an
//! unsynced name is always lost, never kept), write-back that persists
//! unsynced data before any power loss (other than `Torn`), `O_SYNC`
//! writes, or durability of permissions and times; hard links, symbolic
//! links, special files and cross-directory renames are refused.
//!
//! The backing directory always holds exactly the durable state, so after
//! [`Mounted::power_loss`] it is what a reboot finds: open it directly, or
//! mount it again.

mod content;
mod fuse;
mod mount;
mod state;

pub use content::Torn;
pub use mount::Mounted;
/// The seeded generator (the engine's own, so that seeds mean the same everywhere).
pub use snowfall_buffer::scenario::SplitMix64;
pub use state::{PowerLoss, Report};
