//! Threads on origin (c-scape's pthreads do not build on current
//! toolchains; origin's threads plus futex cover what the engine needs).
//!
//! Every thread started here installs its own alternate signal stack before
//! running the closure and removes it before exiting, so the fault handler
//! (installed with `SA_ONSTACK`) never runs on a thread without one.
//!
//! # Safety
//!
//! origin's `create` copies one pointer argument to the new thread: a boxed
//! closure, moved (not shared) to it and run once; its result comes back
//! boxed through origin's return value and is read once, by `join`. The
//! `Send` bounds make both transfers sound. A handle is joined or detached
//! exactly once (join consumes it; drop detaches it otherwise).
#![allow(unsafe_code)]

use alloc::boxed::Box;
use core::ffi::c_void;
use core::fmt;
use core::marker::PhantomData;
use core::ptr::NonNull;

use rustix::io::Errno;
use snowfall_sys::altstack::AltStack;

/// Stack size for threads started by [`spawn`].
pub const DEFAULT_STACK_BYTES: usize = 2 << 20;

/// A thread could not be started: origin's `create` failed (the `mmap` of
/// its stack or the `clone`), or there was no memory to track it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpawnError {
    /// What the kernel said (`ENOMEM` for memory, `EAGAIN` for a limit on
    /// threads or processes).
    pub errno: Errno,
}

impl SpawnError {
    /// Why, in words, as a `&'static str` (what a database's `Spawn` returns):
    /// the errnos thread creation is documented to return by name, any
    /// other as "an unexpected errno" (its number is in `errno`).
    pub fn reason(&self) -> &'static str {
        match self.errno {
            Errno::NOMEM => "out of memory (ENOMEM)",
            Errno::AGAIN => "the limit on threads or processes was reached (EAGAIN)",
            Errno::NOSPC => "the limit on process ids was reached (ENOSPC)",
            Errno::PERM => "not permitted (EPERM)",
            _ => "the kernel refused (an unexpected errno)",
        }
    }
}

/// Says why, without the "cannot start" (callers say what could not start).
impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.errno {
            Errno::NOMEM | Errno::AGAIN | Errno::NOSPC | Errno::PERM => f.write_str(self.reason()),
            errno => write!(f, "{errno}"),
        }
    }
}

/// An owned thread; joining it returns the closure's result.
#[must_use = "dropping a handle detaches the thread"]
pub struct JoinHandle<T> {
    thread: Option<origin::thread::Thread>,
    _result: PhantomData<T>,
}

// SAFETY: the handle only names the thread; the result it will read is `Send`.
unsafe impl<T: Send> Send for JoinHandle<T> {}

/// Starts a thread running `f`, with [`DEFAULT_STACK_BYTES`] of stack.
pub fn spawn<F, T>(f: F) -> Result<JoinHandle<T>, SpawnError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    spawn_with_stack(DEFAULT_STACK_BYTES, f)
}

/// Starts a thread running `f` with `stack_bytes` of stack.
pub fn spawn_with_stack<F, T>(stack_bytes: usize, f: F) -> Result<JoinHandle<T>, SpawnError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let closure = NonNull::from(Box::leak(Box::new(f))).cast::<c_void>();
    // SAFETY: `start::<F, T>` takes ownership of the boxed `F` (sendable)
    // and returns a boxed `T` (sendable); see the module's safety paragraph.
    let created = unsafe {
        origin::thread::create(start::<F, T>, &[Some(closure)], stack_bytes, origin::thread::default_guard_size())
    };
    match created {
        Ok(thread) => Ok(JoinHandle { thread: Some(thread), _result: PhantomData }),
        Err(e) => {
            // SAFETY: the thread was not created, so the box is still ours.
            drop(unsafe { Box::from_raw(closure.cast::<F>().as_ptr()) });
            Err(SpawnError { errno: e })
        }
    }
}

/// The new thread's entry: alternate stack, closure, boxed result.
///
/// # Safety
///
/// `args[0]` is a `Box<F>` leaked by `spawn_with_stack` for this thread alone.
unsafe fn start<F, T>(args: &mut [Option<NonNull<c_void>>]) -> Option<NonNull<c_void>>
where
    F: FnOnce() -> T,
{
    let closure = args.first().copied().flatten()?;
    // SAFETY: per the contract, a `Box<F>` owned by this thread.
    let f = unsafe { Box::from_raw(closure.cast::<F>().as_ptr()) };
    let min = crate::env::auxv().map_or(0, |a| a.min_signal_stack);
    let altstack = AltStack::install(min);
    if let Err(e) = &altstack {
        log::warn!("thread {} has no alternate signal stack: {e}", current_os_id());
    }
    let result = f();
    drop(altstack);
    Some(NonNull::from(Box::leak(Box::new(result))).cast())
}

impl<T> JoinHandle<T> {
    /// Waits for the thread to finish and returns the closure's result.
    pub fn join(mut self) -> T {
        let thread = self.thread.take();
        // SAFETY: the handle owned the thread and is consumed here, so it is
        // joined exactly once; its return value is the boxed `T` from `start`.
        let result = thread.and_then(|t| unsafe { origin::thread::join(t) });
        match result {
            // SAFETY: as above: a `Box<T>` leaked by `start`, read once.
            Some(ptr) => *unsafe { Box::from_raw(ptr.cast::<T>().as_ptr()) },
            // `start` returns null only if origin lost its argument.
            None => panic!("thread returned no result"),
        }
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            // SAFETY: never joined (join takes the thread out first).
            unsafe { origin::thread::detach(t) };
        }
    }
}

/// Calls `work(t)` for `t` in `0..threads`, each on a new thread, and
/// returns when all have returned (a scoped spawn: `work` may borrow from
/// the caller). If a thread cannot be started, the ones already running are
/// joined (they run `work` to its end) and the error returned.
pub fn run_parallel(threads: usize, work: &(dyn Fn(usize) + Sync)) -> Result<(), SpawnError> {
    // SAFETY: every thread started here is joined before this function
    // returns (on success and on error), so `work` outlives all of them;
    // only the lifetime is changed, not the type.
    let work: &'static (dyn Fn(usize) + Sync) = unsafe { core::mem::transmute(work) };
    // `threads` comes from the caller's input: a failed allocation is an error, not an abort.
    let mut handles = alloc::vec::Vec::new();
    handles.try_reserve_exact(threads).map_err(|_| SpawnError { errno: Errno::NOMEM })?;
    let mut failed = None;
    for t in 0..threads {
        match spawn(move || work(t)) {
            Ok(h) => handles.push(h),
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    for h in handles {
        h.join();
    }
    failed.map_or(Ok(()), Err)
}

/// The kernel's id of the calling thread (its TID).
pub fn current_os_id() -> i32 {
    origin::thread::current_id().as_raw_nonzero().get()
}

/// Yields the processor to another thread.
pub fn yield_now() {
    origin::thread::yield_current();
}
