//! Self-checks of fault recovery inside the static binary: exact addresses,
//! SIGSEGV and SIGBUS, thousands of faults on several threads at once,
//! nested guards, bounds checks, and an alternate signal stack per thread.
//!
//! # Safety
//!
//! The guarded reads here target our own mappings, inside their registered
//! ranges, which stay mapped and registered until every thread that reads
//! them has been joined.
#![allow(unsafe_code)]

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};
use core::time::Duration;

use snowfall_rt::thread::spawn;
use snowfall_sys::PAGE_SIZE;
use snowfall_sys::altstack;
use snowfall_sys::clock::Instant;
use snowfall_sys::fault::{self, Fault, FaultKind, ReadError};

use super::{Outcome, ensure, sys};
use crate::mapping::Mapping;

const THREADS: usize = 4;
const FAULTS_PER_KIND: usize = 1000;
const SEGV_PAGES: usize = 64;
const BUS_PAGES: usize = 16;

fn install() -> Result<(), String> {
    sys("install the fault handler", fault::install())
}

fn map<T>(what: &str, r: Result<T, impl core::fmt::Display>) -> Result<T, String> {
    r.map_err(|e| alloc::format!("{what}: {e}"))
}

pub fn no_fault() -> Outcome {
    install()?;
    let m = map("map", Mapping::checkerboard(4))?;
    let reg = map("register", m.register())?;
    let mut buf = [0u8; 256];
    map("guarded read", reg.read(2 * PAGE_SIZE + 100, &mut buf))?;
    ensure(buf.iter().all(|&b| b == 2), || String::from("guarded read returned wrong bytes"))?;
    // SAFETY: a leaf computation.
    let value = unsafe { fault::catch(|| 6 * 7) };
    ensure(value == Ok(42), || alloc::format!("catch returned {value:?}"))?;
    Ok(String::from("256 bytes read through a guard; catch(|| 6 * 7) == Ok(42)"))
}

pub fn bounds_checked() -> Outcome {
    install()?;
    let m = map("map", Mapping::checkerboard(2))?;
    let reg = map("register", m.register())?;
    let mut buf = [0u8; 8];
    let past_end = reg.read(m.len() - 4, &mut buf);
    let expected = Err(ReadError::OutOfBounds { offset: m.len() - 4, len: 8, range_len: m.len() });
    ensure(past_end == expected, || alloc::format!("read past the end gave {past_end:?}"))?;
    Ok(String::from("a read crossing the end of its range is refused before it runs"))
}

pub fn nested_guards() -> Outcome {
    install()?;
    let m = map("map", Mapping::checkerboard(4))?;
    let _reg = map("register", m.register())?;
    let inner_bad = m.addr(PAGE_SIZE + 5);
    let good = m.addr(5);
    let outer_bad = m.addr(3 * PAGE_SIZE + 9);
    // SAFETY: leaves of guarded copies from the registered mapping.
    let outer = unsafe {
        fault::catch(move || {
            let mut b = [0u8; 1];
            let inner = fault::read_into(inner_bad, &mut b);
            let after = fault::read_into(good, &mut b);
            // Back in the outer guard: this fault is the outer guard's.
            fault::racy_read_into(outer_bad, &mut b);
            (inner, after)
        })
    };
    let expect_outer = Err(Fault { addr: outer_bad as usize, kind: FaultKind::Segv });
    ensure(outer == expect_outer, || alloc::format!("outer guard returned {outer:?}"))?;
    // SAFETY: as above.
    let outer = unsafe {
        fault::catch(move || {
            let mut b = [0u8; 1];
            (fault::read_into(inner_bad, &mut b), fault::read_into(good, &mut b))
        })
    };
    let expect = Ok((Err(Fault { addr: inner_bad as usize, kind: FaultKind::Segv }), Ok(())));
    ensure(outer == expect, || alloc::format!("nested guards returned {outer:?}"))?;
    Ok(String::from("inner fault caught by the inner guard, the next fault by the outer one"))
}

/// One thread's share of [`faults_on_threads`]: returns the faults it saw.
fn fault_loop(seed: u64, segv_base: usize, bus_base: usize) -> Result<usize, String> {
    let mut x = seed | 1;
    let mut next = move || {
        // xorshift64: a different page and offset every time.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as usize
    };
    let mut b = [0u8; 1];
    for _ in 0..FAULTS_PER_KIND {
        let r = next();
        let page = (r % (SEGV_PAGES / 2)) * 2 + 1;
        let segv_at = segv_base + page * PAGE_SIZE + (r >> 40) % PAGE_SIZE;
        // SAFETY: inside the registered checkerboard (see the module's safety paragraph).
        let got = unsafe { fault::read_into(segv_at as *const u8, &mut b) };
        let want = Err(Fault { addr: segv_at, kind: FaultKind::Segv });
        ensure(got == want, || alloc::format!("read at {segv_at:#x}: {got:?}, expected {want:?}"))?;
        // SAFETY: as above; the page before is readable.
        let got = unsafe { fault::read_into((segv_at - PAGE_SIZE) as *const u8, &mut b) };
        ensure(got.is_ok() && usize::from(b[0]) == page - 1, || alloc::format!("readable page gave {got:?} {b:?}"))?;
        let r = next();
        let bus_at = bus_base + (1 + r % (BUS_PAGES - 1)) * PAGE_SIZE + (r >> 40) % PAGE_SIZE;
        // SAFETY: inside the registered file mapping, past the end of the file.
        let got = unsafe { fault::read_into(bus_at as *const u8, &mut b) };
        let want = Err(Fault { addr: bus_at, kind: FaultKind::Bus });
        ensure(got == want, || alloc::format!("read at {bus_at:#x}: {got:?}, expected {want:?}"))?;
    }
    Ok(2 * FAULTS_PER_KIND)
}

pub fn faults_on_threads() -> Outcome {
    install()?;
    let segv = map("map", Mapping::checkerboard(SEGV_PAGES))?;
    let bus = map("map a memory file", Mapping::past_end_of_file(BUS_PAGES))?;
    let segv_reg = map("register", segv.register())?;
    let bus_reg = map("register", bus.register())?;
    let (segv_base, bus_base) = (segv.addr(0) as usize, bus.addr(0) as usize);
    let before = fault::recovered_count();
    let ready = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let handles = (0..THREADS)
        .map(|t| {
            let ready = ready.clone();
            spawn(move || {
                // Start together so the faults overlap in time.
                ready.fetch_add(1, Ordering::AcqRel);
                let deadline = Instant::now().saturating_add(Duration::from_secs(30));
                while ready.load(Ordering::Acquire) < THREADS && Instant::now() < deadline {
                    core::hint::spin_loop();
                }
                fault_loop(0x9E37_79B9_7F4A_7C15 ^ (t as u64 + 1), segv_base, bus_base)
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| alloc::format!("spawn: {e}"))?;
    let results: Vec<Result<usize, String>> = handles.into_iter().map(|h| h.join()).collect();
    let elapsed = t0.elapsed();
    drop((segv_reg, bus_reg));
    let per_thread = results.into_iter().collect::<Result<Vec<usize>, String>>()?;
    let total: usize = per_thread.iter().sum();
    let counted = fault::recovered_count() - before;
    ensure(counted == total as u64, || alloc::format!("handler counted {counted} recoveries, threads saw {total}"))?;
    Ok(alloc::format!(
        "{THREADS} threads x ({FAULTS_PER_KIND} SIGSEGV + {FAULTS_PER_KIND} SIGBUS), each at its exact address; {total} in {} ms",
        elapsed.as_millis()
    ))
}

pub fn alternate_stacks() -> Outcome {
    let min = snowfall_rt::env::auxv().map_or(0, |a| a.min_signal_stack);
    let check = move || -> Result<usize, String> {
        let cur = altstack::current().map_err(|e| alloc::format!("sigaltstack: {e}"))?;
        ensure(cur.enabled && !cur.on_stack && cur.size >= min, || alloc::format!("alternate stack {cur:?}"))?;
        Ok(cur.size)
    };
    let main_size = check()?;
    let handles =
        (0..2).map(|_| spawn(check)).collect::<Result<Vec<_>, _>>().map_err(|e| alloc::format!("spawn: {e}"))?;
    let sizes = handles.into_iter().map(|h| h.join()).collect::<Result<Vec<usize>, String>>()?;
    Ok(alloc::format!("main thread {main_size} bytes, spawned threads {sizes:?} bytes (AT_MINSIGSTKSZ {min})"))
}
