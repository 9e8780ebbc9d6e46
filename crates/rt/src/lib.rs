//! The runtime shim of the static `snowfall` binary, on origin: no libc, no
//! std.
//!
//! Linking this crate gives a program:
//! - startup: origin's `_start` calls our `.init_array` function with
//!   `(argc, argv, envp)` before `origin_main`; it records the arguments and
//!   environment ([`env`]), parses the auxiliary vector into the typed
//!   [`snowfall_sys::auxv::Auxv`] the engine receives, gives the main thread
//!   an alternate signal stack, and registers the logger ([`logger`]);
//! - [`io`]: stdout and stderr writers and the `outln!`/`errln!` macros;
//! - [`thread`]: threads on origin, each with its own alternate signal stack;
//! - [`exit`] and [`exit_immediately`];
//! - the global allocator (dlmalloc on rustix, remembering the size of an
//!   allocation that failed) and the panic handler: one line on stderr,
//!   exit status 3 for an allocation that failed ([`EXIT_OUT_OF_MEMORY`])
//!   or a failure of origin's start-up ([`EXIT_CANNOT_START`]), 101 for
//!   any other panic ([`EXIT_PANIC`]);
//! - `memcpy`/`memmove` tuned for short copies ([`mem`](crate), reached
//!   through the linker's `--wrap`).
//!
//! The binary must name something from this crate (it calls [`env::args`]
//! at least), or the linker drops it and its `.init_array` entry with it.
//!
//! Unsafe code is denied at the crate root and allowed only in the modules
//! that need it; each of those opens with a `# Safety` paragraph.
#![no_std]
#![deny(unsafe_code)]
// A unit-test build (`cargo build --all-targets` makes one even with
// `test = false`) links std, which has its own start-up, allocator and
// panic handler: the shim is then empty.
#![cfg(not(test))]

extern crate alloc;

mod allocator;
pub mod env;
pub mod io;
pub mod logger;
mod mem;
mod panic;
mod startup;
pub mod thread;

pub use panic::{EXIT_CANNOT_START, EXIT_OUT_OF_MEMORY, EXIT_PANIC};

/// Runs the program's at-exit functions, then exits with `status`.
pub fn exit(status: i32) -> ! {
    origin::program::exit(status)
}

/// Exits with `status` at once: no at-exit functions, no flushing.
pub fn exit_immediately(status: i32) -> ! {
    origin::program::immediate_exit(status)
}
