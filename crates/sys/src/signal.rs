//! Raw `rt_sigaction(2)` with our own `SA_RESTORER` trampoline.
//!
//! Without libc nobody supplies the restorer: the kernel builds the signal
//! frame, sets the handler's return address to `sa_restorer`, and that code
//! must call `rt_sigreturn(2)`, which restores the interrupted context (all
//! registers, the signal mask, the alternate-stack state) from the frame. The
//! fault-recovery module relies on exactly that: its handler edits the saved
//! context and returns, and `rt_sigreturn` resumes at the edited context.
//!
//! # Safety
//!
//! Installing a handler changes what every thread of the process does on that
//! signal, so [`set`] is `unsafe`: the handler must be async-signal-safe (no
//! allocation, no locks, no logging) and must uphold whatever the previous
//! handler's users relied on. The restorer is a naked function of two
//! instructions and never returns; the kernel only ever enters it as the
//! return address of a signal frame.
#![allow(unsafe_code)]

use core::ffi::{c_int, c_void};
use core::mem::offset_of;
use core::sync::atomic::{AtomicBool, Ordering};

use linux_raw_sys::general as k;
use rustix::io::Errno;
use static_assertions::const_assert_eq;

use crate::syscall::syscall4;

/// A signal number, as the kernel numbers them (`SIGSEGV` is 11).
pub type Signal = u32;
/// Invalid memory reference.
pub const SIGSEGV: Signal = k::SIGSEGV;
/// Bus error (for example, touching a page of a file mapping past the end of the file).
pub const SIGBUS: Signal = k::SIGBUS;

/// Write to a pipe with no reader.
pub const SIGPIPE: Signal = k::SIGPIPE;
/// Interrupt from the terminal (Ctrl-C).
pub const SIGINT: Signal = k::SIGINT;
/// Termination request.
pub const SIGTERM: Signal = k::SIGTERM;

/// `SIG_DFL`: the default action.
pub const SIG_DFL: usize = 0;
/// `SIG_IGN`: ignore the signal.
pub const SIG_IGN: usize = 1;

/// A handler that receives the `siginfo` and the interrupted `ucontext`.
pub type SiginfoHandler = unsafe extern "C" fn(c_int, *mut SigInfo, *mut c_void);
/// A handler that receives only the signal number (no `SA_SIGINFO`).
pub type PlainHandler = unsafe extern "C" fn(c_int);

/// The kernel's `struct sigaction` for `rt_sigaction` on x86_64 (not libc's,
/// which orders the fields differently and has a 128-byte mask).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelSigaction {
    /// `SIG_DFL`, `SIG_IGN` or the handler's address.
    pub handler: usize,
    /// `SA_*` flags.
    pub flags: u64,
    /// Address of the code the handler returns to; must call `rt_sigreturn`.
    pub restorer: usize,
    /// Signals blocked while the handler runs (bit `n - 1` for signal `n`).
    pub mask: u64,
}
const_assert_eq!(core::mem::size_of::<KernelSigaction>(), 32);
const_assert_eq!(core::mem::size_of::<KernelSigaction>(), core::mem::size_of::<k::kernel_sigaction>());
const_assert_eq!(offset_of!(KernelSigaction, restorer), offset_of!(k::kernel_sigaction, sa_restorer));
const_assert_eq!(offset_of!(KernelSigaction, mask), offset_of!(k::kernel_sigaction, sa_mask));

/// The size of the kernel's signal set, the last argument of `rt_sigaction`.
const KERNEL_SIGSET_BYTES: usize = core::mem::size_of::<u64>();

impl KernelSigaction {
    /// The default action (`SIG_DFL`).
    pub const DEFAULT: KernelSigaction = KernelSigaction { handler: SIG_DFL, flags: 0, restorer: 0, mask: 0 };

    /// An action that calls `handler` with `SA_SIGINFO`, on the thread's
    /// alternate stack if it has one (`SA_ONSTACK`), returning through our
    /// restorer. `extra_flags` adds flags such as `SA_NODEFER`.
    pub fn siginfo(handler: SiginfoHandler, extra_flags: u64) -> KernelSigaction {
        KernelSigaction {
            handler: handler as *const () as usize,
            flags: u64::from(k::SA_SIGINFO | k::SA_RESTORER | k::SA_ONSTACK) | extra_flags,
            restorer: restore_rt as *const () as usize,
            mask: 0,
        }
    }

    /// Whether the handler is called with `siginfo` and `ucontext`.
    pub fn takes_siginfo(&self) -> bool {
        self.flags & u64::from(k::SA_SIGINFO) != 0
    }

    /// Whether this is `SIG_DFL` or `SIG_IGN` rather than a function.
    pub fn is_default_or_ignore(&self) -> bool {
        self.handler == SIG_DFL || self.handler == SIG_IGN
    }
}

/// The restorer: the return address the kernel gives every handler we
/// install. It only calls `rt_sigreturn(2)`, which does not return.
#[unsafe(naked)]
unsafe extern "C" fn restore_rt() -> ! {
    core::arch::naked_asm!(
        "mov eax, {nr}",
        "syscall",
        // rt_sigreturn never returns; trap if it ever did.
        "ud2",
        nr = const k::__NR_rt_sigreturn,
    )
}

/// Reads the current action for `sig` without changing it.
pub fn query(sig: Signal) -> Result<KernelSigaction, Errno> {
    let mut old = KernelSigaction::DEFAULT;
    // SAFETY: a null new action only reads; `old` is a writable kernel
    // sigaction of the size the kernel writes.
    unsafe {
        syscall4(k::__NR_rt_sigaction, sig as usize, 0, (&raw mut old) as usize, KERNEL_SIGSET_BYTES)?;
    }
    Ok(old)
}

/// Sets the action for `sig` and returns the previous one.
///
/// # Safety
///
/// If `action` names a handler, it must be async-signal-safe, must be sound
/// for every thread that may receive `sig`, and its `restorer` must call
/// `rt_sigreturn` (use [`KernelSigaction::siginfo`], which installs ours).
/// Whoever relied on the previous action must no longer need it.
///
/// # References
///
/// `rt_sigaction(2)`, `sigreturn(2)`.
pub unsafe fn set(sig: Signal, action: &KernelSigaction) -> Result<KernelSigaction, Errno> {
    let mut old = KernelSigaction::DEFAULT;
    // SAFETY: both pointers are kernel sigactions of the right size; the
    // caller vouches for the handler itself.
    unsafe {
        syscall4(
            k::__NR_rt_sigaction,
            sig as usize,
            (action as *const KernelSigaction) as usize,
            (&raw mut old) as usize,
            KERNEL_SIGSET_BYTES,
        )?;
    }
    Ok(old)
}

/// Ignores `sig` (`SIG_IGN`). Safe: no handler of ours runs. For
/// `SIGPIPE`, a write to a closed pipe then fails with `EPIPE` instead of
/// killing the process.
pub fn ignore(sig: Signal) -> Result<(), Errno> {
    let action = KernelSigaction { handler: SIG_IGN, ..KernelSigaction::DEFAULT };
    // SAFETY: `SIG_IGN` runs no code of ours.
    unsafe { set(sig, &action) }.map(|_| ())
}

/// One flag per signal number (1..=64), set by [`catch`]'s handler.
static RAISED: [AtomicBool; 65] = [const { AtomicBool::new(false) }; 65];

/// The handler [`catch`] installs: sets the signal's flag, nothing else
/// (a store to a static atomic is async-signal-safe).
unsafe extern "C" fn note(sig: c_int) {
    if let Some(flag) = usize::try_from(sig).ok().and_then(|i| RAISED.get(i)) {
        flag.store(true, Ordering::Relaxed);
    }
}

/// Makes `sig` set a flag that [`raised`] reads, instead of its default
/// action. Without `SA_RESTART`: a system call it interrupts fails with
/// `EINTR`, so a loop blocked in one notices.
pub fn catch(sig: Signal) -> Result<(), Errno> {
    let action = KernelSigaction {
        handler: note as PlainHandler as *const () as usize,
        flags: u64::from(k::SA_RESTORER | k::SA_ONSTACK),
        restorer: restore_rt as *const () as usize,
        mask: 0,
    };
    // SAFETY: `note` only stores to a static atomic (async-signal-safe);
    // the restorer is ours and calls `rt_sigreturn`.
    unsafe { set(sig, &action) }.map(|_| ())
}

/// Whether `sig` arrived since [`catch`] was called for it.
pub fn raised(sig: Signal) -> bool {
    RAISED.get(sig as usize).is_some_and(|f| f.load(Ordering::Relaxed))
}

/// The leading fields of the kernel's `siginfo_t` for a fault (SIGSEGV,
/// SIGBUS): the rest of the 128-byte record is not read.
#[repr(C)]
#[derive(Debug)]
pub struct SigInfo {
    /// Signal number.
    pub signo: c_int,
    /// Unused on Linux for faults.
    pub errno: c_int,
    /// Why the signal was sent: > 0 and < `SI_KERNEL` for a hardware fault
    /// (`SEGV_MAPERR`, `SEGV_ACCERR`, `BUS_ADRERR`, ...); <= 0 if a process
    /// sent it (`kill`, `tgkill`, `sigqueue`).
    pub code: c_int,
    _pad: c_int,
    /// The faulting address, for faults.
    pub addr: usize,
}
const_assert_eq!(offset_of!(SigInfo, addr), offset_of!(k::siginfo__bindgen_ty_1__bindgen_ty_1, _sifields));
const_assert_eq!(core::mem::size_of::<k::siginfo>(), 128);

impl SigInfo {
    /// Whether the kernel raised this signal for a memory access by the
    /// interrupted instruction (not a signal sent by a process, and not the
    /// `SI_KERNEL` general-protection case, which has no address).
    pub fn is_memory_fault(&self) -> bool {
        self.code > 0 && (self.code as u32) < k::SI_KERNEL
    }
}
