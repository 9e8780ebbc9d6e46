//! Loading a kernel module from an open file (`finit_module(2)`), for the
//! binary when it runs as `/init` of a test virtual machine.
//!
//! # Safety
//!
//! The system call only reads the descriptor and the NUL-terminated
//! parameter string we pass.
#![allow(unsafe_code)]

use core::ffi::CStr;

use linux_raw_sys::general as k;
use rustix::fd::{AsRawFd, BorrowedFd};
use rustix::io::Errno;

use crate::syscall::syscall4;

/// Loads the module in `file` with `params` (`"name=value ..."`).
pub fn finit_module(file: BorrowedFd<'_>, params: &CStr) -> Result<(), Errno> {
    // SAFETY: a valid descriptor and a NUL-terminated string; flags 0.
    unsafe { syscall4(k::__NR_finit_module, file.as_raw_fd() as usize, params.as_ptr() as usize, 0, 0) }.map(|_| ())
}
