//! The SIGSEGV/SIGBUS handler: recover, or pass the signal on.
//!
//! A signal is recovered when it is a hardware memory fault, the faulting
//! address lies in a registered range, and the thread is inside a guard. The
//! handler then records the fault in the innermost guard frame and edits the
//! interrupted context (`rip`, `rsp`, `rbx`) so that returning through our
//! restorer (`rt_sigreturn`) resumes at the trampoline's landing pad. The
//! kernel restores the signal mask and the alternate-stack state from the
//! frame as for any handler return, so the next fault is handled like the
//! first: no `SA_NODEFER`, no mask bookkeeping.
//!
//! Anything else goes to the action that was installed before ours: its
//! handler if it had one (called with the same arguments), otherwise the
//! default action (the faulting instruction re-executes and the process dies
//! by the signal, with a core dump where enabled).
//!
//! # Safety
//!
//! The handler is async-signal-safe: it reads atomics and the thread's guard
//! pointer, writes only the guard frame of its own thread and the kernel's
//! signal frame, and makes raw system calls. The `ucontext` layout is the
//! kernel's x86_64 `struct ucontext` (offsets asserted below).
#![allow(unsafe_code)]

use core::ffi::{c_int, c_void};
use core::mem::offset_of;
use core::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};

use linux_raw_sys::general as k;
use rustix::io::Errno;
use static_assertions::const_assert_eq;

use super::ranges;
use super::trampoline::{snowfall_sys_guard_current, snowfall_sys_guard_landing};
use crate::signal::{self, KernelSigaction, PlainHandler, SIGBUS, SIGSEGV, SigInfo, SiginfoHandler};
use crate::syscall::syscall4;

/// The general registers of the kernel's x86_64 `struct sigcontext`, in its order.
#[repr(C)]
struct SigContext {
    r8_to_r15: [u64; 8],
    rdi: u64,
    rsi: u64,
    rbp: u64,
    rbx: u64,
    rdx: u64,
    rax: u64,
    rcx: u64,
    rsp: u64,
    rip: u64,
}

/// The leading part of the kernel's x86_64 `struct ucontext`.
#[repr(C)]
struct UContext {
    flags: u64,
    link: usize,
    stack: [u64; 3],
    mcontext: SigContext,
}
// glibc's REG_RBX = 11, REG_RSP = 15, REG_RIP = 16 gregs after uc_mcontext at 40.
const_assert_eq!(offset_of!(UContext, mcontext), 40);
const_assert_eq!(offset_of!(UContext, mcontext) + offset_of!(SigContext, rbx), 40 + 11 * 8);
const_assert_eq!(offset_of!(UContext, mcontext) + offset_of!(SigContext, rsp), 40 + 15 * 8);
const_assert_eq!(offset_of!(UContext, mcontext) + offset_of!(SigContext, rip), 40 + 16 * 8);

/// The action in place before ours, per signal, for chaining.
struct Previous {
    handler: AtomicUsize,
    flags: AtomicU64,
}

static PREVIOUS_SEGV: Previous = Previous { handler: AtomicUsize::new(0), flags: AtomicU64::new(0) };
static PREVIOUS_BUS: Previous = Previous { handler: AtomicUsize::new(0), flags: AtomicU64::new(0) };

fn previous(sig: u32) -> &'static Previous {
    if sig == SIGBUS { &PREVIOUS_BUS } else { &PREVIOUS_SEGV }
}

impl Previous {
    fn store(&self, action: &KernelSigaction) {
        self.flags.store(action.flags, Ordering::Relaxed);
        self.handler.store(action.handler, Ordering::Release);
    }
}

/// Faults recovered since the process started (all threads).
pub(super) static RECOVERED: AtomicU64 = AtomicU64::new(0);

const NOT_INSTALLED: u8 = 0;
const INSTALLING: u8 = 1;
const INSTALLED: u8 = 2;
static STATE: AtomicU8 = AtomicU8::new(NOT_INSTALLED);

/// Installs the handler for SIGSEGV and SIGBUS once per process; later calls
/// return at once. The previous actions are kept for chaining.
pub(super) fn install() -> Result<(), Errno> {
    loop {
        match STATE.compare_exchange(NOT_INSTALLED, INSTALLING, Ordering::Acquire, Ordering::Acquire) {
            Ok(_) => break,
            Err(INSTALLED) => return Ok(()),
            // Another thread is installing: its two system calls finish quickly.
            Err(_) => core::hint::spin_loop(),
        }
    }
    let result = install_both();
    STATE.store(if result.is_ok() { INSTALLED } else { NOT_INSTALLED }, Ordering::Release);
    result
}

fn install_both() -> Result<(), Errno> {
    let ours = KernelSigaction::siginfo(on_fault as SiginfoHandler, 0);
    for sig in [SIGSEGV, SIGBUS] {
        // Record the old action before ours can run, then again from the
        // swap itself in case it changed in between.
        previous(sig).store(&signal::query(sig)?);
        // SAFETY: `on_fault` is async-signal-safe and sound for every thread
        // (see the module's safety paragraph); it forwards whatever it does
        // not recover to the previous action.
        let old = unsafe { signal::set(sig, &ours)? };
        previous(sig).store(&old);
    }
    Ok(())
}

/// Whether [`install`] has completed.
pub(super) fn is_installed() -> bool {
    STATE.load(Ordering::Acquire) == INSTALLED
}

unsafe extern "C" fn on_fault(sig: c_int, info: *mut SigInfo, ctx: *mut c_void) {
    // SAFETY: the kernel passes a valid siginfo for a SA_SIGINFO handler.
    let fault = unsafe { &*info };
    if fault.is_memory_fault() {
        // SAFETY: reading this thread's guard pointer is always sound.
        let frame = unsafe { snowfall_sys_guard_current() };
        if !frame.is_null() && ranges::contains(fault.addr) {
            // SAFETY: a non-null guard pointer is the innermost live
            // `GuardFrame` of this thread (the trampoline pops it before
            // its frame dies); `ctx` is the kernel's ucontext for this
            // delivery, which `rt_sigreturn` will restore.
            unsafe {
                (*frame).fault_addr = fault.addr;
                (*frame).fault_signal = sig as u32;
                let mc = &mut (*ctx.cast::<UContext>()).mcontext;
                mc.rip = snowfall_sys_guard_landing as *const () as u64;
                mc.rsp = (*frame).rsp;
                mc.rbx = frame as u64;
            }
            RECOVERED.fetch_add(1, Ordering::Relaxed);
            return;
        }
    }
    // SAFETY: same arguments the kernel gave us.
    unsafe { forward(sig, info, ctx) };
}

/// Passes a signal we do not recover to the previous action.
///
/// # Safety
///
/// The arguments must be those the kernel passed to `on_fault`.
unsafe fn forward(sig: c_int, info: *mut SigInfo, ctx: *mut c_void) {
    let prev = previous(sig as u32);
    let handler = prev.handler.load(Ordering::Acquire);
    let flags = prev.flags.load(Ordering::Relaxed);
    let prev_action = KernelSigaction { handler, flags, restorer: 0, mask: 0 };
    if prev_action.is_default_or_ignore() {
        // A fault ignored is a fault repeated forever; the kernel itself
        // resets an ignored synchronous fault to the default. So: default.
        // SAFETY: restoring SIG_DFL is always sound.
        let _ = unsafe { signal::set(sig as u32, &KernelSigaction::DEFAULT) };
        // SAFETY: `info` is valid (see above).
        if !unsafe { &*info }.is_memory_fault() {
            // Sent by a process: nothing re-executes, so send it again. It
            // stays blocked until this handler returns, then kills us.
            // SAFETY: getpid/gettid take no arguments; tgkill to ourselves
            // with a valid signal number.
            unsafe {
                let pid = syscall4(k::__NR_getpid, 0, 0, 0, 0).unwrap_or(0);
                let tid = syscall4(k::__NR_gettid, 0, 0, 0, 0).unwrap_or(0);
                let _ = syscall4(k::__NR_tgkill, pid, tid, sig as usize, 0);
            }
        }
        // A hardware fault re-executes the instruction and now gets the default action.
        return;
    }
    if prev_action.takes_siginfo() {
        // SAFETY: the previous handler was installed for this signal with
        // SA_SIGINFO, so this is the signature it expects.
        unsafe {
            let f: SiginfoHandler = core::mem::transmute::<usize, SiginfoHandler>(handler);
            f(sig, info, ctx);
        }
    } else {
        // SAFETY: as above, without SA_SIGINFO.
        unsafe {
            let f: PlainHandler = core::mem::transmute::<usize, PlainHandler>(handler);
            f(sig);
        }
    }
}
