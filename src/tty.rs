//! Whether standard error is a terminal, so that `load` shows progress only
//! to a person watching (and a script reading standard error sees one line).
//!
//! rustix's `termios::isatty` needs its `termios` feature, which nothing in
//! this build enables; this is the same test (`TIOCGWINSZ` succeeds only on a
//! terminal) through rustix's generic `ioctl`.
//!
//! # Safety
//!
//! `TIOCGWINSZ` writes one `struct winsize` (four `unsigned short`s, 8
//! bytes) through its argument and nothing else; [`Winsize`] is that layout.
//! On a descriptor that is not a terminal the kernel answers `ENOTTY` without
//! writing. Descriptor 2 is borrowed by number only for the call (as
//! `snowfall_rt::io` does): it is open for the life of the process, and if
//! the parent closed it the call fails with `EBADF`, which reads as "not a
//! terminal".
//!
//! # References
//!
//! - [ioctl_tty(2)](https://man7.org/linux/man-pages/man2/ioctl_tty.2.html), `TIOCGWINSZ`
//! - [isatty(3)](https://man7.org/linux/man-pages/man3/isatty.3.html)
#![allow(unsafe_code)]

use rustix::fd::BorrowedFd;
use rustix::ioctl::{Getter, Opcode, ioctl};

/// `TIOCGWINSZ` on x86_64 Linux (`include/uapi/asm-generic/ioctls.h`), the
/// only target this binary supports.
const TIOCGWINSZ: Opcode = 0x5413;

/// The kernel's `struct winsize`: rows, columns, x and y pixels.
#[repr(C)]
struct Winsize([u16; 4]);

const _: () = assert!(core::mem::size_of::<Winsize>() == 8);

/// Whether standard error is a terminal.
pub fn stderr_is_terminal() -> bool {
    // SAFETY: see the module's safety paragraph; the borrow ends with this call.
    let fd = unsafe { BorrowedFd::borrow_raw(snowfall_rt::io::STDERR) };
    // SAFETY: `Winsize` is what `TIOCGWINSZ` writes (module's safety paragraph).
    let getter = unsafe { Getter::<TIOCGWINSZ, Winsize>::new() };
    // SAFETY: the opcode and its output type agree (above); the call has no
    // other effect.
    unsafe { ioctl(fd, getter) }.is_ok()
}
