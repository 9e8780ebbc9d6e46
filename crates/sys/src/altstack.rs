//! A per-thread alternate signal stack (`sigaltstack(2)`).
//!
//! Our handlers are installed with `SA_ONSTACK`, so a thread with an
//! alternate stack handles signals there. That matters when the fault *is*
//! the thread's stack (an overflow into the guard page) and keeps the handler
//! from growing a deep stack further. The setting is per thread: every thread
//! must install its own at start and remove it before it exits.
//!
//! # Safety
//!
//! The stack is an anonymous mapping owned by [`AltStack`]; it is unmapped
//! only after the kernel no longer uses it for this thread (the thread's
//! alternate stack was switched off and we are not running on it).
#![allow(unsafe_code)]

use core::ptr::null_mut;

use linux_raw_sys::general as k;
use rustix::io::Errno;
use rustix::mm::{MapFlags, MprotectFlags, ProtFlags, mmap_anonymous, mprotect, munmap};
use static_assertions::const_assert_eq;

use crate::PAGE_SIZE;
use crate::syscall::syscall4;

/// Room above the kernel's minimum signal frame size for the handler's own
/// frames. The fault handler needs well under 1 KiB; chained handlers (for
/// example std's stack-overflow reporter) need more.
pub const HANDLER_STACK_BYTES: usize = 64 * 1024;

/// The kernel's `stack_t`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct StackT {
    sp: usize,
    flags: i32,
    size: usize,
}
const_assert_eq!(core::mem::size_of::<StackT>(), core::mem::size_of::<k::stack_t>());

/// The calling thread's current alternate stack, as the kernel reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Current {
    /// Lowest address of the stack.
    pub base: usize,
    /// Size in bytes.
    pub size: usize,
    /// Whether an alternate stack is set (not `SS_DISABLE`).
    pub enabled: bool,
    /// Whether the thread is executing on it right now (`SS_ONSTACK`).
    pub on_stack: bool,
}

/// Returns the calling thread's alternate-stack setting.
pub fn current() -> Result<Current, Errno> {
    let mut old = StackT { sp: 0, flags: 0, size: 0 };
    // SAFETY: a null new stack only reads; `old` is a writable `stack_t`.
    unsafe { syscall4(k::__NR_sigaltstack, 0, (&raw mut old) as usize, 0, 0)? };
    Ok(Current {
        base: old.sp,
        size: old.size,
        enabled: old.flags & k::SS_DISABLE as i32 == 0,
        on_stack: old.flags & k::SS_ONSTACK as i32 != 0,
    })
}

/// An alternate signal stack installed for the calling thread. Dropping it
/// switches it off and unmaps it; drop it on the thread that installed it.
#[derive(Debug)]
pub struct AltStack {
    /// Start of the mapping (the guard page); 0 if the thread already had an
    /// alternate stack that belongs to someone else.
    map: usize,
    map_len: usize,
}

impl AltStack {
    /// Gives the calling thread an alternate signal stack of
    /// `min_signal_stack + HANDLER_STACK_BYTES` bytes (rounded up to pages)
    /// above a guard page, unless it already has one, which is then left
    /// alone (std's harness installs its own on the threads it creates).
    /// `min_signal_stack` is the auxiliary vector's `AT_MINSIGSTKSZ`.
    pub fn install(min_signal_stack: usize) -> Result<AltStack, Errno> {
        if current()?.enabled {
            return Ok(AltStack { map: 0, map_len: 0 });
        }
        let stack_len =
            (min_signal_stack.max(k::MINSIGSTKSZ as usize) + HANDLER_STACK_BYTES).next_multiple_of(PAGE_SIZE);
        let map_len = stack_len + PAGE_SIZE;
        // SAFETY: a fresh anonymous mapping at an address of the kernel's choosing aliases nothing.
        let map =
            unsafe { mmap_anonymous(null_mut(), map_len, ProtFlags::READ | ProtFlags::WRITE, MapFlags::PRIVATE)? };
        let stack = StackT { sp: map as usize + PAGE_SIZE, flags: 0, size: stack_len };
        // SAFETY: the guard page lies inside the mapping we just made. Then
        // `stack` describes writable memory this value owns until `drop`.
        let installed = unsafe {
            mprotect(map, PAGE_SIZE, MprotectFlags::empty())
                .and_then(|()| syscall4(k::__NR_sigaltstack, (&raw const stack) as usize, 0, 0, 0))
        };
        if let Err(e) = installed {
            // SAFETY: the mapping is ours and not in use by the kernel.
            let _ = unsafe { munmap(map, map_len) };
            return Err(e);
        }
        Ok(AltStack { map: map as usize, map_len })
    }

    /// Whether this value owns the stack (false when the thread already had one).
    pub fn is_owned(&self) -> bool {
        self.map != 0
    }
}

impl Drop for AltStack {
    fn drop(&mut self) {
        if self.map == 0 {
            return;
        }
        let ours = self.map + PAGE_SIZE;
        match current() {
            // Unmap only if the kernel's setting is still ours and we are
            // not running on it; otherwise leak it rather than leave the
            // kernel pointing at unmapped memory.
            Ok(cur) if cur.enabled && cur.base == ours && !cur.on_stack => {
                let off = StackT { sp: 0, flags: k::SS_DISABLE as i32, size: 0 };
                // SAFETY: switching the alternate stack off is always sound.
                let disabled = unsafe { syscall4(k::__NR_sigaltstack, (&raw const off) as usize, 0, 0, 0) };
                if disabled.is_ok() {
                    // SAFETY: the mapping is ours and the kernel no longer uses it.
                    let _ = unsafe { munmap(self.map as *mut _, self.map_len) };
                }
            }
            _ => {}
        }
    }
}
