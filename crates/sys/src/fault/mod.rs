//! Fault recovery: a SIGSEGV or SIGBUS inside a registered address range,
//! raised by a guarded accessor, becomes `Err(Fault { addr, .. })`.
//!
//! Optimistic readers of the buffer pool may touch a page while another
//! thread evicts it. With the exmap backend the evicted page is unmapped and
//! the read faults; the reader must then restart, not crash. So every
//! optimistic access to pool memory goes through a *guard* from this module.
//!
//! # The mechanism: a signal-context rewrite
//!
//! [`catch`] enters a small assembly trampoline that saves the callee-saved
//! registers and stack pointer in a frame on the caller's stack, links the
//! frame into a per-thread list and calls the guarded body. The handler
//! (installed by [`install`], raw `rt_sigaction` with our own restorer)
//! recovers a fault only if it is a hardware memory fault, its address lies
//! in a registered range and the thread is inside a guard. It then writes the
//! address into the innermost frame, points the saved context's `rip` at a
//! landing pad and its `rsp`/`rbx` at the frame, and *returns*. The kernel's
//! `rt_sigreturn` restores that edited context, including the signal mask and
//! the alternate-stack state, and the landing pad makes the trampoline
//! return "faulted". Everything else is passed to the action that was
//! installed before ours, or gets the default action.
//!
//! We chose this over the `sjlj` crate's `sigsetjmp`/`siglongjmp`: saving the
//! signal mask costs a `rt_sigprocmask` system call on every guarded access
//! (measured 190-440 ns), and not saving it leaves the signal blocked after
//! the jump unless the handler is installed with `SA_NODEFER`, and the jump
//! leaves the handler without the kernel restoring its state. Returning
//! through `rt_sigreturn` needs neither; the no-fault path costs a few
//! nanoseconds (docs/BENCHMARKS.md). It also avoids Rust's lack of
//! `returns_twice`: the save and the call are one assembly routine, which
//! Rust sees as a function that returns once.
//!
//! # Contract for guarded code
//!
//! On a fault the frames of the guarded body are abandoned: no destructor
//! runs and nothing is unwound. So guarded code must be a leaf of plain
//! loads, stores and arithmetic: it never allocates, takes a lock, runs a
//! user callback, or holds anything that needs dropping (the closure itself
//! is checked at compile time to need no drop). The accessors here
//! ([`read_into`], [`Registration::read`]) are such leaves, written in
//! assembly.
//!
//! # Optimistic reads are a seqlock
//!
//! Pool memory is read while writers may change it. In Rust a plain read
//! racing a write is undefined behaviour, so pool bytes are copied by
//! assembly (`rep movsb`), whose effect is the hardware's: a possibly torn
//! copy. The caller treats the copy as garbage until it has validated it: an
//! Acquire fence, then a reload of the page's version word; if the version
//! changed, the copy is discarded and the read restarts. This is the seqlock
//! argument: a writer bumps the version before and after it writes, so an
//! unchanged version means no write overlapped the copy.
//!
//! # Safety
//!
//! This module and its submodules hold the crate's fault-handling unsafe
//! code. The soundness argument is the contract above plus two facts: the
//! trampoline restores every callee-saved register and the stack pointer on
//! both of its exits (trampoline.rs), and the handler edits only the
//! interrupted context of its own thread and the guard frame that thread
//! pushed (handler.rs).
//!
//! # Limits
//!
//! - A signal handler that interrupts guarded code and itself touches a
//!   registered range must use its own guard.
//! - Nested guards are supported: the innermost guard catches the fault.
//! - x86_64 Linux only.
#![allow(unsafe_code)]

mod handler;
mod ranges;
mod trampoline;

use core::ffi::c_void;
use core::fmt;
use core::mem::MaybeUninit;
use core::sync::atomic::Ordering;

use rustix::io::Errno;

pub use ranges::MAX_RANGES;
use trampoline::{GuardFrame, snowfall_sys_guard_call, snowfall_sys_guarded_copy};

/// Which signal a recovered fault raised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// SIGSEGV: the address is not mapped, or not with the needed access.
    Segv,
    /// SIGBUS: the mapping exists but has no backing (for example past the
    /// end of a file).
    Bus,
}

/// The fault the handler recorded in `frame`.
///
/// # Safety
///
/// `frame` is a guard frame whose guard returned "faulted": the handler
/// wrote its fault fields.
unsafe fn recorded_fault(frame: &MaybeUninit<GuardFrame>) -> Fault {
    let frame = frame.as_ptr();
    // SAFETY: per the contract both fields were written by the handler.
    let (addr, signal) = unsafe { ((*frame).fault_addr, (*frame).fault_signal) };
    let kind = if signal == crate::signal::SIGBUS { FaultKind::Bus } else { FaultKind::Segv };
    Fault { addr, kind }
}

/// A fault recovered inside a guard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The exact faulting address the kernel reported.
    pub addr: usize,
    /// The signal.
    pub kind: FaultKind,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sig = match self.kind {
            FaultKind::Segv => "SIGSEGV",
            FaultKind::Bus => "SIGBUS",
        };
        write!(f, "{sig} at {:#x}", self.addr)
    }
}

/// Installs the process-wide SIGSEGV and SIGBUS handler. Idempotent and
/// thread-safe; the handlers installed before it keep receiving every
/// signal it does not recover.
pub fn install() -> Result<(), Errno> {
    handler::install()
}

/// Whether [`install`] has completed in this process.
pub fn is_installed() -> bool {
    handler::is_installed()
}

/// Faults recovered so far in this process, over all threads.
pub fn recovered_count() -> u64 {
    handler::RECOVERED.load(Ordering::Relaxed)
}

/// Runs `f` as a guard: a recoverable fault inside it returns `Err(Fault)`.
///
/// Without [`install`] nothing is recovered and a fault has its usual effect.
///
/// # Safety
///
/// `f` must be a leaf as the module documentation describes: no allocation,
/// no locks, no user callbacks, no values needing drop in any frame a fault
/// could abandon (the closure's own captures are checked at compile time).
/// It must not panic (a panic here aborts). Its result is only meaningful
/// once the caller has validated it against concurrent writers.
#[inline]
pub unsafe fn catch<R: Copy, F: FnOnce() -> R>(f: F) -> Result<R, Fault> {
    const {
        assert!(!core::mem::needs_drop::<F>(), "a guarded closure must not own values that need dropping");
    }
    struct Call<F, R> {
        f: MaybeUninit<F>,
        out: MaybeUninit<R>,
    }
    unsafe extern "C" fn body<R: Copy, F: FnOnce() -> R>(arg: *mut c_void) {
        let call = arg.cast::<Call<F, R>>();
        // SAFETY: `arg` is the `Call` below, initialised with `f`, which is
        // read exactly once.
        unsafe {
            let f = (*call).f.assume_init_read();
            (*call).out.write(f());
        }
    }
    let mut call = Call { f: MaybeUninit::new(f), out: MaybeUninit::uninit() };
    // Left uninitialised: the trampoline fills in the registers, the handler the fault.
    let mut frame = MaybeUninit::<GuardFrame>::uninit();
    // SAFETY: `body::<R, F>` matches the trampoline's signature and reads the
    // `Call` we pass; `frame` outlives the call. The caller upholds the
    // contract for what `f` does.
    let faulted = unsafe { snowfall_sys_guard_call(body::<R, F>, (&raw mut call).cast(), frame.as_mut_ptr()) };
    if faulted == 0 {
        // SAFETY: the body returned normally, so it wrote `out`.
        Ok(unsafe { call.out.assume_init() })
    } else {
        // SAFETY: the guard faulted, so the handler recorded the fault.
        Err(unsafe { recorded_fault(&frame) })
    }
}

/// Copies `dst.len()` bytes from `src` with a single `rep movsb`, outside
/// Rust's memory model: the copy may race with writers and be torn.
///
/// # Safety
///
/// `src..src + dst.len()` must be readable (or lie in a registered range
/// when called inside [`catch`]).
#[inline]
pub unsafe fn racy_read_into(src: *const u8, dst: &mut [u8]) {
    // SAFETY: `dst` is writable for its length; the caller vouches for `src`.
    // `rep movsb` copies forwards with the direction flag clear (ABI).
    unsafe {
        core::arch::asm!(
            "rep movsb",
            inout("rcx") dst.len() => _,
            inout("rsi") src => _,
            inout("rdi") dst.as_mut_ptr() => _,
            options(nostack, preserves_flags)
        );
    }
}

/// Loads the 8 bytes at `src` (any alignment) with one `mov`, outside
/// Rust's memory model like [`racy_read_into`]: a small read racing a writer
/// returns some value, which the caller validates before use.
///
/// # Safety
///
/// `src..src + 8` must be readable.
#[inline]
pub unsafe fn racy_load_u64(src: *const u8) -> u64 {
    let value: u64;
    // SAFETY: the caller vouches that the 8 bytes are readable; x86-64
    // loads need no alignment.
    unsafe {
        core::arch::asm!("mov {v}, qword ptr [{p}]", v = out(reg) value, p = in(reg) src, options(nostack, readonly, preserves_flags));
    }
    value
}

/// A guarded copy from memory that may fault: `dst.len()` bytes from `src`.
/// Returns the fault, with its exact address, if one occurred.
///
/// # Safety
///
/// Every byte of `src..src + dst.len()` must be either readable or inside a
/// registered range (an address outside both crashes the process, as it
/// should: it is a bug, not an eviction). The copy may be torn by
/// concurrent writers: validate before use.
#[inline]
pub unsafe fn read_into(src: *const u8, dst: &mut [u8]) -> Result<(), Fault> {
    let mut frame = MaybeUninit::<GuardFrame>::uninit();
    // SAFETY: `dst` is writable for its length, the caller vouches for
    // `src`, and `frame` outlives the call. The guard's body is one
    // `rep movsb`: a leaf, as `catch` requires.
    let faulted = unsafe { snowfall_sys_guarded_copy(dst.as_mut_ptr(), src, frame.as_mut_ptr(), dst.len()) };
    // SAFETY: if the guard faulted, the handler recorded the fault.
    if faulted == 0 { Ok(()) } else { Err(unsafe { recorded_fault(&frame) }) }
}

/// Why a range could not be registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegisterError {
    /// All [`MAX_RANGES`] slots are in use.
    TableFull,
    /// The range is empty or wraps around the address space.
    BadRange {
        /// Start address.
        start: usize,
        /// Length in bytes.
        len: usize,
    },
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisterError::TableFull => write!(f, "all {MAX_RANGES} fault-recovery ranges are in use"),
            RegisterError::BadRange { start, len } => {
                write!(f, "cannot register {len} bytes at {start:#x}: empty or wrapping range")
            }
        }
    }
}

/// A registered range: guarded faults inside it are recovered until this
/// value is dropped.
#[derive(Debug)]
pub struct Registration {
    slot: usize,
    start: usize,
    len: usize,
}

impl Registration {
    /// Registers `len` bytes at `start`.
    ///
    /// # Safety
    ///
    /// The range must stay reserved for this process (mapped, possibly
    /// without access, never unmapped or replaced by another mapping) until
    /// the registration is dropped: guarded code reads and writes it
    /// assuming nothing else lives there.
    pub unsafe fn new(start: *const u8, len: usize) -> Result<Registration, RegisterError> {
        let start = start as usize;
        let end = start.checked_add(len).filter(|_| len > 0).ok_or(RegisterError::BadRange { start, len })?;
        let slot = ranges::insert(start, end).ok_or(RegisterError::TableFull)?;
        Ok(Registration { slot, start, len })
    }

    /// The first address of the range.
    pub fn start(&self) -> *const u8 {
        self.start as *const u8
    }

    /// The length of the range in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the range is empty (never: registration refuses that).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Guarded, bounds-checked copy of `dst.len()` bytes at `offset` into the
    /// range. A fault becomes `Err(ReadError::Fault)`; a read past the end
    /// of the range is refused before it is attempted.
    #[inline]
    pub fn read(&self, offset: usize, dst: &mut [u8]) -> Result<(), ReadError> {
        let in_bounds = offset.checked_add(dst.len()).is_some_and(|end| end <= self.len);
        if !in_bounds {
            return Err(ReadError::OutOfBounds { offset, len: dst.len(), range_len: self.len });
        }
        // SAFETY: the bytes lie inside this registered range, which the
        // registration's contract keeps reserved.
        unsafe { read_into((self.start + offset) as *const u8, dst) }.map_err(ReadError::Fault)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        ranges::remove(self.slot);
    }
}

/// Why [`Registration::read`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// The requested bytes are not all inside the range.
    OutOfBounds {
        /// Requested offset.
        offset: usize,
        /// Requested length.
        len: usize,
        /// The range's length.
        range_len: usize,
    },
    /// The read faulted.
    Fault(Fault),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::OutOfBounds { offset, len, range_len } => {
                write!(f, "read of {len} bytes at offset {offset} exceeds the {range_len}-byte range")
            }
            ReadError::Fault(fault) => write!(f, "read faulted: {fault}"),
        }
    }
}

#[cfg(test)]
mod tests;
