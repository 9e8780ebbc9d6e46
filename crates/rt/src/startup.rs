//! Program start-up before `origin_main`: the `.init_array` function.
//!
//! origin's `_start` sets up thread-local storage and then calls every
//! function in `.init_array` with `(argc, argv, envp)`, as glibc does; ours
//! records them, gives the main thread its alternate signal stack and
//! registers the logger, so `origin_main` starts with logging working.
//!
//! Its first act is to note that origin's own start-up is over: a panic
//! before that is origin failing to set up the process (see `panic.rs`).
//!
//! # Safety
//!
//! The function runs once, single-threaded, with the kernel's exec-time
//! arguments: exactly the preconditions of `env::record`. It is placed in
//! `.init_array` with `#[used]` so the compiler keeps it; the crate must be
//! linked (the binary references it) for the linker to keep it.
#![allow(unsafe_code)]

use core::sync::atomic::{AtomicBool, Ordering};

use snowfall_sys::altstack::AltStack;

/// Set when origin calls our `.init_array` function: origin's start-up
/// (TLS for the main thread, the stack limits) is done by then.
static ORIGIN_STARTED: AtomicBool = AtomicBool::new(false);

/// Whether origin's start-up is over (our `.init_array` function was
/// called). Before that, only origin's `_start` code has run: a panic there
/// means the process could not be set up, not a bug of ours.
pub(crate) fn origin_started() -> bool {
    ORIGIN_STARTED.load(Ordering::Relaxed)
}

type InitFn = unsafe extern "C" fn(i32, *mut *mut u8, *mut *mut u8);

#[used]
#[unsafe(link_section = ".init_array")]
static INIT: InitFn = init;

unsafe extern "C" fn init(argc: i32, argv: *mut *mut u8, envp: *mut *mut u8) {
    // Relaxed: read only by a panic on this same thread before any other
    // thread exists, or after `origin_main` has started threads (whose
    // creation orders this store before them).
    ORIGIN_STARTED.store(true, Ordering::Relaxed);
    // SAFETY: called once by origin's start-up, before `origin_main` and any
    // other thread, with the exec-time values (see the module's safety paragraph).
    unsafe { crate::env::record(argc.max(0) as usize, argv.cast_const().cast(), envp.cast_const().cast()) };
    crate::logger::init();
    match crate::env::auxv() {
        // The main thread's alternate stack lives as long as the process.
        Some(auxv) => match AltStack::install(auxv.min_signal_stack) {
            Ok(stack) => core::mem::forget(stack),
            Err(e) => log::warn!("no alternate signal stack for the main thread: {e}"),
        },
        None => log::error!("the auxiliary vector after envp could not be parsed"),
    }
}
