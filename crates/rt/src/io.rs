//! Writing to file descriptors without std: stdout and stderr, a stack line
//! buffer whose content goes out in one `write(2)`, and the `outln!` /
//! `errln!` macros.
//!
//! # Safety
//!
//! Borrowing descriptors 0-2 by number: they are open for the life of the
//! process (the kernel passes them; nothing here closes them), and a write
//! to one the parent closed fails with `EBADF`, which is reported.
#![allow(unsafe_code)]

use core::fmt;

use rustix::fd::BorrowedFd;
use rustix::io::Errno;

/// Standard output.
pub const STDOUT: i32 = 1;
/// Standard error.
pub const STDERR: i32 = 2;

/// The most bytes one line buffer holds. Kept below `PIPE_BUF` (4096) so a
/// full line written to a pipe is one atomic write: lines from different
/// threads never interleave.
pub const LINE_MAX: usize = 4000;
const PIPE_BUF: usize = 4096;
const _: () = assert!(LINE_MAX < PIPE_BUF);

/// What replaces the end of a line that did not fit.
const TRUNCATED: &[u8] = b" [truncated]\n";

/// Standard input.
pub const STDIN: i32 = 0;

/// Reads from standard input into `buf` (one `read(2)`; `EINTR` is
/// returned, so a caller can look at what interrupted it).
pub fn read_stdin(buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: see the module's safety paragraph; the borrow does not outlive this call.
    let fd = unsafe { BorrowedFd::borrow_raw(STDIN) };
    rustix::io::read(fd, buf)
}

/// Writes all of `bytes` to `fd`, retrying on `EINTR` and short writes.
pub fn write_all(fd: i32, mut bytes: &[u8]) -> Result<(), Errno> {
    // SAFETY: see the module's safety paragraph; the borrow does not outlive this call.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    while !bytes.is_empty() {
        match rustix::io::write(fd, bytes) {
            Ok(0) => return Err(Errno::IO),
            Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A line formatted on the stack, at most [`LINE_MAX`] bytes.
pub struct LineBuf {
    buf: [u8; LINE_MAX],
    len: usize,
    truncated: bool,
}

impl Default for LineBuf {
    fn default() -> Self {
        LineBuf::new()
    }
}

impl LineBuf {
    /// An empty line.
    pub const fn new() -> LineBuf {
        LineBuf { buf: [0; LINE_MAX], len: 0, truncated: false }
    }

    /// Appends as much of `s` as fits; returns the part that did not.
    fn push<'a>(&mut self, s: &'a [u8]) -> &'a [u8] {
        let room = LINE_MAX - self.len;
        let (now, rest) = s.split_at(s.len().min(room));
        if let Some(dst) = self.buf.get_mut(self.len..self.len + now.len()) {
            dst.copy_from_slice(now);
            self.len += now.len();
        }
        rest
    }

    /// The bytes so far.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    /// Whether text was cut off because the line was full.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// Ends the line with `\n`, marking it when text was cut off; the result
    /// is at most [`LINE_MAX`] bytes.
    pub fn finish(&mut self) -> &[u8] {
        if self.truncated || self.len == LINE_MAX {
            self.len = self.len.min(LINE_MAX - TRUNCATED.len());
            let _ = self.push(TRUNCATED);
            self.truncated = true;
        } else if self.as_bytes().last() != Some(&b'\n') {
            let _ = self.push(b"\n");
        }
        self.as_bytes()
    }

    /// Finishes the line and writes it to `fd` in one `write(2)`. Errors are
    /// ignored: this is for diagnostics, which have nowhere else to go.
    pub fn write_line_to(mut self, fd: i32) {
        let _ = write_all(fd, self.finish());
    }
}

impl fmt::Write for LineBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if !self.push(s.as_bytes()).is_empty() {
            self.truncated = true;
        }
        Ok(())
    }
}

/// A buffered writer to a descriptor: output goes out in writes of up to
/// [`LINE_MAX`] bytes, nothing is cut off. Call [`Writer::flush`] at the end.
pub struct Writer {
    fd: i32,
    line: LineBuf,
    error: Option<Errno>,
}

impl Writer {
    /// A writer to `fd`.
    pub const fn new(fd: i32) -> Writer {
        Writer { fd, line: LineBuf::new(), error: None }
    }

    /// Writes out what is buffered; returns the first error seen.
    pub fn flush(&mut self) -> Result<(), Errno> {
        if self.error.is_none()
            && let Err(e) = write_all(self.fd, self.line.as_bytes())
        {
            self.error = Some(e);
        }
        self.line.len = 0;
        self.error.map_or(Ok(()), Err)
    }
}

impl fmt::Write for Writer {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = self.line.push(s.as_bytes());
        while !rest.is_empty() {
            self.flush().map_err(|_| fmt::Error)?;
            rest = self.line.push(rest);
        }
        Ok(())
    }
}

/// Prints a line to stdout (like `println!`); returns `Err(Errno)` if the
/// write failed (for example a closed pipe).
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        let mut w = $crate::io::Writer::new($crate::io::STDOUT);
        let _ = ::core::fmt::Write::write_fmt(&mut w, ::core::format_args!($($arg)*));
        let _ = ::core::fmt::Write::write_str(&mut w, "\n");
        w.flush()
    }};
}

/// Prints a line to stderr (like `eprintln!`), ignoring write errors.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {{
        let mut w = $crate::io::Writer::new($crate::io::STDERR);
        let _ = ::core::fmt::Write::write_fmt(&mut w, ::core::format_args!($($arg)*));
        let _ = ::core::fmt::Write::write_str(&mut w, "\n");
        let _ = w.flush();
    }};
}
