//! The system layer of SnowfallDB: the few Linux facilities the engine needs
//! and that neither `core` nor rustix give in the shape we need.
//!
//! This crate is `no_std`, needs no allocator and never links origin or libc,
//! so it works the same under the std test harness, inside the static
//! libc-free `snowfall` binary, and inside a host application that embeds the
//! engine.
//!
//! - [`signal`]: raw `rt_sigaction` with our own `SA_RESTORER` trampoline.
//! - [`altstack`]: a per-thread alternate signal stack.
//! - [`fault`]: turning SIGSEGV/SIGBUS inside registered memory ranges into
//!   `Err(Fault)` for small audited accessors (optimistic readers of the
//!   buffer pool).
//! - [`futex`]: wait and wake on 32-bit words.
//! - [`kmod`]: loading kernel modules (for the binary as a VM's `/init`).
//! - [`clock`]: a monotonic clock.
//! - [`discard`]: batched `MADV_DONTNEED` of scattered ranges.
//! - [`exmap`]: the exmap kernel module's ABI.
//! - [`auxv`]: the ELF auxiliary vector as a typed struct.
//! - [`thread`]: a cheap per-thread value for sharding counters.
//!
//! Unsafe code is denied at the crate root and allowed only in the modules
//! that need it; each of those opens with a `# Safety` paragraph.
#![no_std]
#![deny(unsafe_code)]

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
compile_error!("snowfall-sys supports x86_64 Linux only (raw syscalls, ucontext layout, asm)");

pub mod altstack;
pub mod auxv;
pub mod clock;
pub mod discard;
pub mod exmap;
pub mod fault;
pub mod futex;
pub mod kmod;
pub mod signal;
mod syscall;
pub mod thread;

/// The page size of x86_64 Linux. The kernel has no other base page size on
/// this architecture; the auxiliary vector's `AT_PAGESZ` is checked against it
/// by the binary's self-test.
pub const PAGE_SIZE: usize = 4096;

pub use rustix::io::Errno;
