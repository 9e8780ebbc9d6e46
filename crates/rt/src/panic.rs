//! The panic handler: one line on stderr in one write, then exit. Panics
//! abort (`panic = "abort"`): nothing is unwound, so a panic on any thread
//! ends the whole process. Three kinds are told apart:
//!
//! - **out of memory** (exit status [`EXIT_OUT_OF_MEMORY`]): the `alloc`
//!   crate panics with "memory allocation of N bytes failed" when an
//!   infallible allocation gets null, and our global allocator recorded a
//!   failed allocation of exactly N bytes (`allocator.rs`). Reported as
//!   "snowfall: out of memory: an allocation of N bytes failed".
//! - **cannot start** (exit status [`EXIT_CANNOT_START`]): a panic before
//!   origin called our `.init_array` function (`startup.rs`). Only origin's
//!   `_start` code has run then, and it unwraps what the kernel refuses it
//!   (the `mmap` of the main thread's TLS block, the stack limit): the
//!   process could not be set up, which is not a bug in this program. We
//!   cannot change origin's code, so it is reported, honestly, as
//!   "snowfall: cannot start: origin's start-up failed at FILE:LINE:
//!   MESSAGE" (its message is all we know). TLS is not set up yet at that
//!   point, and nothing here uses it.
//! - anything else is a bug: "snowfall: panicked at FILE:LINE: MESSAGE",
//!   exit status [`EXIT_PANIC`] (as a std program's panicking main thread).

use core::fmt::{self, Write};
use core::panic::PanicInfo;

use crate::io::{LineBuf, STDERR};

/// Exit status after a panic (a bug).
pub const EXIT_PANIC: i32 = 101;
/// Exit status when an allocation failed: the binary's status for errors
/// it cannot do anything about (its database-error status).
pub const EXIT_OUT_OF_MEMORY: i32 = 3;
/// Exit status when origin's start-up failed before any of our code ran.
pub const EXIT_CANNOT_START: i32 = 3;

#[panic_handler]
fn on_panic(info: &PanicInfo<'_>) -> ! {
    let mut line = LineBuf::new();
    let (file, at) = info.location().map_or(("<unknown>", 0), |l| (short_path(l.file()), l.line()));
    let status = if !crate::startup::origin_started() {
        let _ = write!(line, "snowfall: cannot start: origin's start-up failed at {file}:{at}: {}", info.message());
        EXIT_CANNOT_START
    } else if let Some(bytes) = allocation_failure(info) {
        let _ = write!(line, "snowfall: out of memory: an allocation of {bytes} bytes failed");
        EXIT_OUT_OF_MEMORY
    } else {
        let _ = write!(line, "snowfall: panicked at {file}:{at}: {}", info.message());
        EXIT_PANIC
    };
    line.write_line_to(STDERR);
    crate::exit_immediately(status)
}

/// The size of the failed allocation this panic reports, if it is the
/// `alloc` crate's panic for one our allocator saw fail.
fn allocation_failure(info: &PanicInfo<'_>) -> Option<usize> {
    let bytes = crate::allocator::failed_bytes()?;
    let mut expected = Fixed::new();
    write!(expected, "memory allocation of {bytes} bytes failed").ok()?;
    let mut message = Fixed::new();
    write!(message, "{}", info.message()).ok()?;
    (message.as_bytes() == expected.as_bytes()).then_some(bytes)
}

/// A source path without the registry's prefix:
/// `.../registry/src/index.crates.io-HASH/origin-0.26.2/src/x.rs` becomes
/// `origin-0.26.2/src/x.rs`.
fn short_path(file: &str) -> &str {
    const REGISTRY: &str = "/registry/src/";
    file.find(REGISTRY)
        .and_then(|i| file.get(i + REGISTRY.len()..))
        .and_then(|index| index.find('/').and_then(|j| index.get(j + 1..)))
        .unwrap_or(file)
}

/// A short message formatted on the stack; writing more than fits fails.
struct Fixed {
    buf: [u8; 64],
    len: usize,
}

impl Fixed {
    const fn new() -> Fixed {
        Fixed { buf: [0; 64], len: 0 }
    }

    fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

impl Write for Fixed {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        self.buf.get_mut(self.len..end).ok_or(fmt::Error)?.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}
