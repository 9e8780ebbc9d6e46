//! `snowfall debug <what>`: misbehave on purpose so the test-suite can check
//! how the static binary dies: panics exit 101 with their message, faults
//! that fault recovery must not swallow kill the process with their signal.
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
