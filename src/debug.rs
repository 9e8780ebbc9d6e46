//! `snowfall debug <what>`: misbehave on purpose so the test-suite can check
//! how the static binary dies: panics exit 101 with their message, an
//! allocation that fails exits 3 saying so, faults that fault recovery must
//! not swallow kill the process with their signal.
//!
//! # Safety
//!
//! The faulting reads here are volatile reads of our own mappings: defined
//! hardware accesses whose only effect is the signal under test.
#![allow(unsafe_code)]

use alloc::string::String;

use snowfall_rt::errln;
use snowfall_sys::PAGE_SIZE;
use snowfall_sys::fault;

use crate::cli::{FAILURE, lossy, usage};
use crate::mapping::Mapping;

/// Runs `snowfall debug <what>`; returns only if the misbehaviour did not
/// end the process (which is itself a failure).
pub fn run(what: &[u8]) -> i32 {
    if let Err(e) = fault::install() {
        errln!("snowfall: cannot install the fault handler: {e}");
        return FAILURE;
    }
    let outcome = match what {
        b"panic" => panic!("deliberate panic requested by `snowfall debug panic`"),
        b"thread-panic" => thread_panic(),
        b"out-of-memory" => out_of_memory(),
        b"panic-after-failed-allocation" => panic_after_failed_allocation(),
        b"segv-unguarded" => segv_unguarded(),
        b"segv-unregistered" => segv_unregistered(),
        b"sigbus-unguarded" => sigbus_unguarded(),
        other => return usage(alloc::format!("unknown debug action '{}'; see --help", lossy(other))),
    };
    match outcome {
        Ok(()) => errln!("snowfall: debug {} did not end the process", lossy(what)),
        Err(e) => errln!("snowfall: debug {}: {e}", lossy(what)),
    }
    FAILURE
}

fn thread_panic() -> Result<(), String> {
    let t = snowfall_rt::thread::spawn(|| panic!("deliberate panic on a spawned thread"))
        .map_err(|e| alloc::format!("spawn: {e}"))?;
    t.join();
    Ok(())
}

/// More bytes than x86_64 Linux gives a process's address space (128 TiB):
/// an allocation of this size fails on every machine, whatever its memory
/// and overcommit settings.
const IMPOSSIBLE_BYTES: usize = 1 << 47;

/// An infallible allocation that fails: the panic handler must report it
/// as out of memory (status 3), not as a bug.
fn out_of_memory() -> Result<(), String> {
    // `black_box` around the vector too: the optimiser may otherwise drop
    // an allocation whose memory is never used.
    let v: alloc::vec::Vec<u8> =
        core::hint::black_box(alloc::vec::Vec::with_capacity(core::hint::black_box(IMPOSSIBLE_BYTES)));
    Err(alloc::format!("allocated {} bytes", v.capacity()))
}

/// A fallible allocation that fails (handled), then an unrelated panic:
/// still a bug (status 101), although the allocator recorded a failure.
fn panic_after_failed_allocation() -> Result<(), String> {
    let mut v: alloc::vec::Vec<u8> = alloc::vec::Vec::new();
    if core::hint::black_box(&mut v).try_reserve_exact(core::hint::black_box(IMPOSSIBLE_BYTES)).is_ok() {
        return Err(alloc::format!("allocated {} bytes", v.capacity()));
    }
    panic!("deliberate panic after a failed allocation was handled")
}

/// A read of an inaccessible page inside a registered range, outside any
/// guard: registration alone must not make a fault recoverable.
fn segv_unguarded() -> Result<(), String> {
    let map = Mapping::checkerboard(2).map_err(|e| alloc::format!("map: {e}"))?;
    let _reg = map.register().map_err(|e| alloc::format!("register: {e}"))?;
    // SAFETY: see the module's safety paragraph.
    unsafe { core::ptr::read_volatile(map.addr(PAGE_SIZE)) };
    Ok(())
}

/// A guarded read of an inaccessible page that no range covers: a bug, not
/// an eviction, so it must reach the default action.
fn segv_unregistered() -> Result<(), String> {
    let map = Mapping::checkerboard(2).map_err(|e| alloc::format!("map: {e}"))?;
    let mut byte = [0u8; 1];
    // SAFETY: the contract of `read_into` is broken on purpose (unregistered,
    // inaccessible memory) to show that such a fault is not swallowed.
    let result = unsafe { fault::read_into(map.addr(PAGE_SIZE), &mut byte) };
    Err(alloc::format!("the fault was swallowed: {result:?}"))
}

/// A read past the end of a file mapping, outside any guard.
fn sigbus_unguarded() -> Result<(), String> {
    let map = Mapping::past_end_of_file(2).map_err(|e| alloc::format!("map: {e}"))?;
    let _reg = map.register().map_err(|e| alloc::format!("register: {e}"))?;
    // SAFETY: see the module's safety paragraph.
    unsafe { core::ptr::read_volatile(map.addr(PAGE_SIZE)) };
    Ok(())
}
