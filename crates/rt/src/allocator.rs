//! The global allocator: dlmalloc over rustix's `mmap`, wrapped so that an
//! allocation it cannot make is remembered. It has one global lock, which is
//! fine for the shim (argument parsing, thread start-up); the engine keeps
//! allocation off its hot paths.
//!
//! Why the wrapper: stable Rust has no way to set an alloc error handler,
//! so when an infallible allocation (`Box::new`, `Vec::push`) gets null the
//! `alloc` crate panics with "memory allocation of N bytes failed". The
//! wrapper records N before returning null, so the panic handler can tell
//! that panic (the machine is out of memory: exit status 3) from a bug
//! (exit status 101). Fallible allocations (`try_reserve`) that get null
//! are recorded too, harmlessly: the record only ever confirms a panic
//! message, it never makes one.
//!
//! # Safety
//!
//! Every method forwards its arguments unchanged to `GlobalDlmalloc` and
//! returns its result unchanged, so the wrapper meets `GlobalAlloc`'s
//! contract exactly when dlmalloc does; it only looks at whether the result
//! is null.
#![allow(unsafe_code)]

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering};

use rustix_dlmalloc::GlobalDlmalloc;

/// The size of the last allocation that failed; 0 if none has (a zero-size
/// allocation never reaches the allocator).
static FAILED_BYTES: AtomicUsize = AtomicUsize::new(0);

/// dlmalloc, remembering failures.
struct Recording;

#[global_allocator]
static GLOBAL: Recording = Recording;

/// Returns `ptr`, recording `bytes` first if it is null.
#[inline]
fn noted(ptr: *mut u8, bytes: usize) -> *mut u8 {
    if ptr.is_null() {
        // Relaxed: the panic that may follow runs on this thread, after
        // this store in program order.
        FAILED_BYTES.store(bytes, Ordering::Relaxed);
    }
    ptr
}

// SAFETY: see the module's safety paragraph.
unsafe impl GlobalAlloc for Recording {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, forwarded unchanged.
        noted(unsafe { GlobalDlmalloc.alloc(layout) }, layout.size())
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, forwarded unchanged.
        noted(unsafe { GlobalDlmalloc.alloc_zeroed(layout) }, layout.size())
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, forwarded unchanged.
        unsafe { GlobalDlmalloc.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, forwarded unchanged.
        noted(unsafe { GlobalDlmalloc.realloc(ptr, layout, new_size) }, new_size)
    }
}

/// The size of the last allocation that failed, if any has.
pub(crate) fn failed_bytes() -> Option<usize> {
    match FAILED_BYTES.load(Ordering::Relaxed) {
        0 => None,
        bytes => Some(bytes),
    }
}
