//! Raw x86_64 Linux system calls for the two calls rustix does not expose in
//! the form we need (`rt_sigaction` with our own restorer, `sigaltstack`).
//!
//! # Safety
//!
//! A system call can do anything to the process; each caller states why its
//! arguments are valid for the call it makes. This module only encodes the
//! x86_64 calling convention: number in `rax`, arguments in `rdi`, `rsi`,
//! `rdx`, `r10`, result in `rax`, `rcx` and `r11` clobbered by the `syscall`
//! instruction. A result in `-4095..=-1` is a negated errno.
#![allow(unsafe_code)]

use rustix::io::Errno;

/// Issues system call `nr` with four arguments.
///
/// # Safety
///
/// The arguments must be valid for system call `nr` (see its man page): in
/// particular every pointer must point to memory of the size and layout the
/// kernel reads or writes for that call.
pub(crate) unsafe fn syscall4(nr: u32, a1: usize, a2: usize, a3: usize, a4: usize) -> Result<usize, Errno> {
    // SAFETY: the caller's contract; the kernel ignores the unused fifth
    // argument of a four-argument call.
    unsafe { syscall5(nr, a1, a2, a3, a4, 0) }
}

/// Issues system call `nr` with five arguments.
///
/// # Safety
///
/// As [`syscall4`].
pub(crate) unsafe fn syscall5(nr: u32, a1: usize, a2: usize, a3: usize, a4: usize, a5: usize) -> Result<usize, Errno> {
    let ret: isize;
    // SAFETY: as in `syscall4`, with the fifth argument in r8.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") nr as isize => ret,
            in("rdi") a1,
            in("rsi") a2,
            in("rdx") a3,
            in("r10") a4,
            in("r8") a5,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack, preserves_flags)
        );
    }
    result(ret)
}

/// A raw return value as a result: `-4095..=-1` is a negated errno.
fn result(ret: isize) -> Result<usize, Errno> {
    if (-4095..0).contains(&ret) { Err(Errno::from_raw_os_error(-ret as i32)) } else { Ok(ret as usize) }
}
