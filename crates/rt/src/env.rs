//! What the kernel handed the program at exec: arguments, environment and
//! the auxiliary vector, recorded once by the `.init_array` function before
//! `origin_main` runs and before any other thread exists.
//!
//! # Safety
//!
//! The values are written exactly once, by [`record`], on the only thread,
//! before anything reads them, and published with a Release store of
//! `RECORDED`; readers check it with Acquire. The argument and environment
//! strings live on the initial stack for the whole life of the process.
#![allow(unsafe_code)]

use core::cell::UnsafeCell;
use core::ffi::CStr;
use core::sync::atomic::{AtomicBool, Ordering};

use snowfall_sys::auxv::Auxv;
use snowfall_sys::clock::Instant;

struct Exec {
    argc: usize,
    argv: *const *const u8,
    envp: *const *const u8,
    auxv: Option<Auxv>,
    start: Instant,
}

struct Recorded(UnsafeCell<Exec>);
// SAFETY: written once before any reader or second thread exists (see the
// module's safety paragraph), read-only afterwards.
unsafe impl Sync for Recorded {}

static EXEC: Recorded = Recorded(UnsafeCell::new(Exec {
    argc: 0,
    argv: core::ptr::null(),
    envp: core::ptr::null(),
    auxv: None,
    start: Instant::ZERO,
}));
static RECORDED: AtomicBool = AtomicBool::new(false);

/// Records the exec-time values.
///
/// # Safety
///
/// Must be called once, before any other thread exists and before any
/// reader, with the `argc`, `argv` and `envp` the kernel passed at exec.
pub(crate) unsafe fn record(argc: usize, argv: *const *const u8, envp: *const *const u8) {
    // SAFETY: per the contract the pointers are the exec-time ones.
    let auxv = unsafe { Auxv::from_envp(envp) }.ok();
    // SAFETY: single-threaded and before any reader (the contract).
    unsafe { *EXEC.0.get() = Exec { argc, argv, envp, auxv, start: Instant::now() } };
    RECORDED.store(true, Ordering::Release);
}

fn exec() -> Option<&'static Exec> {
    // SAFETY: after the Acquire load sees `true` the value is immutable.
    RECORDED.load(Ordering::Acquire).then(|| unsafe { &*EXEC.0.get() })
}

/// Whether the `.init_array` function ran (it always has by `origin_main`,
/// unless the linker dropped this crate).
pub fn recorded() -> bool {
    exec().is_some()
}

/// The `argv` pointer the `.init_array` function saw, for checking that it
/// matches what `origin_main` received.
pub fn argv_ptr() -> *const *const u8 {
    exec().map_or(core::ptr::null(), |e| e.argv)
}

/// The program's arguments, `argv[0]` first.
pub fn args() -> impl ExactSizeIterator<Item = &'static CStr> {
    let (argc, argv) = exec().map_or((0, core::ptr::null()), |e| (e.argc, e.argv));
    (0..argc).map(move |i| {
        // SAFETY: argv holds argc valid NUL-terminated strings that live
        // on the initial stack for the whole process.
        unsafe { CStr::from_ptr((*argv.add(i)).cast()) }
    })
}

/// The value of environment variable `name`, if set (exec-time environment).
pub fn var(name: &str) -> Option<&'static [u8]> {
    let mut p = exec()?.envp;
    loop {
        // SAFETY: envp is a NULL-terminated array of NUL-terminated strings
        // on the initial stack; we stop at the NULL.
        let entry = unsafe { *p };
        if entry.is_null() {
            return None;
        }
        // SAFETY: as above.
        let bytes = unsafe { CStr::from_ptr(entry.cast()) }.to_bytes();
        if let Some(value) = bytes.strip_prefix(name.as_bytes()).and_then(|r| r.strip_prefix(b"=")) {
            return Some(value);
        }
        // SAFETY: the array continues until its NULL.
        p = unsafe { p.add(1) };
    }
}

/// The auxiliary vector, typed; `None` only if it could not be parsed.
pub fn auxv() -> Option<&'static Auxv> {
    exec()?.auxv.as_ref()
}

/// When the program started (the `.init_array` function ran).
pub fn start_time() -> Instant {
    exec().map_or(Instant::ZERO, |e| e.start)
}
