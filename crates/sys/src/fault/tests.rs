//! Fault recovery under the std test harness (which installs its own SIGSEGV
//! handler first: ours must chain to it).

extern crate std;

use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::vec::Vec;

use rustix::mm::{MapFlags, MprotectFlags, ProtFlags, mmap, mmap_anonymous, mprotect, munmap};

use super::*;
use crate::PAGE_SIZE;

/// An anonymous mapping, unmapped on drop.
struct Map {
    ptr: *mut u8,
    len: usize,
}

impl Map {
    fn anonymous(pages: usize, prot: ProtFlags) -> Map {
        let len = pages * PAGE_SIZE;
        // SAFETY: a fresh mapping at a kernel-chosen address aliases nothing.
        let ptr = unsafe { mmap_anonymous(core::ptr::null_mut(), len, prot, MapFlags::PRIVATE | MapFlags::NORESERVE) }
            .unwrap();
        Map { ptr: ptr.cast(), len }
    }

    fn addr(&self, offset: usize) -> *const u8 {
        self.ptr.wrapping_add(offset)
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        // SAFETY: the mapping is ours; every registration of it was dropped first.
        unsafe { munmap(self.ptr.cast(), self.len) }.unwrap();
    }
}

/// A mapping with readable pages (filled with their page number) and
/// inaccessible pages, alternating, registered for fault recovery.
fn checkerboard(pages: usize) -> (Map, Registration) {
    install().unwrap();
    let map = Map::anonymous(pages, ProtFlags::READ | ProtFlags::WRITE);
    for p in 0..pages {
        // SAFETY: page `p` is inside the read-write mapping.
        let page = unsafe { core::slice::from_raw_parts_mut(map.ptr.add(p * PAGE_SIZE), PAGE_SIZE) };
        page.fill(p as u8);
        if p % 2 == 1 {
            // SAFETY: changing protection of our own mapping.
            unsafe { mprotect(page.as_mut_ptr().cast(), PAGE_SIZE, MprotectFlags::empty()) }.unwrap();
        }
    }
    // SAFETY: the mapping outlives the registration (tuple order: `map` is
    // dropped after the registration by the callers' bindings).
    let reg = unsafe { Registration::new(map.ptr, map.len) }.unwrap();
    (map, reg)
}

#[test]
fn a_guard_without_a_fault_returns_the_value() {
    install().unwrap();
    // SAFETY: a leaf computation.
    assert_eq!(unsafe { catch(|| 6 * 7) }, Ok(42));
    let (map, reg) = checkerboard(2);
    let mut buf = [0u8; 16];
    reg.read(100, &mut buf).unwrap();
    assert_eq!(buf, [0u8; 16]);
    drop((reg, map));
}

#[test]
fn a_fault_reports_its_exact_address_and_signal() {
    let (map, reg) = checkerboard(4);
    let before = recovered_count();
    for offset in [PAGE_SIZE, PAGE_SIZE + 1, 2 * PAGE_SIZE - 1, 3 * PAGE_SIZE + 777] {
        let mut buf = [0u8; 1];
        let err = reg.read(offset, &mut buf).unwrap_err();
        assert_eq!(err, ReadError::Fault(Fault { addr: map.addr(offset) as usize, kind: FaultKind::Segv }));
    }
    assert!(recovered_count() >= before + 4);
    drop((reg, map));
}

#[test]
fn a_copy_running_into_a_bad_page_faults_at_its_first_byte() {
    let (map, reg) = checkerboard(2);
    let mut buf = [0u8; 64];
    let err = reg.read(PAGE_SIZE - 32, &mut buf).unwrap_err();
    assert_eq!(err, ReadError::Fault(Fault { addr: map.addr(PAGE_SIZE) as usize, kind: FaultKind::Segv }));
    // The bytes before the bad page were copied.
    assert_eq!(&buf[..32], &[0u8; 32]);
    drop((reg, map));
}

#[test]
fn reads_outside_the_range_are_refused_before_they_run() {
    let (map, reg) = checkerboard(2);
    let mut buf = [0u8; 8];
    assert_eq!(
        reg.read(2 * PAGE_SIZE - 4, &mut buf),
        Err(ReadError::OutOfBounds { offset: 2 * PAGE_SIZE - 4, len: 8, range_len: 2 * PAGE_SIZE })
    );
    assert!(matches!(reg.read(usize::MAX, &mut buf), Err(ReadError::OutOfBounds { .. })));
    drop((reg, map));
}

#[test]
fn a_read_past_the_end_of_a_file_mapping_is_a_recovered_sigbus() {
    install().unwrap();
    let fd = rustix::fs::memfd_create("snowfall-sigbus", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    rustix::fs::ftruncate(&fd, PAGE_SIZE as u64).unwrap();
    // SAFETY: a fresh shared mapping of our own memfd, two pages of which
    // only the first has file backing.
    let ptr: *mut u8 = unsafe { mmap(core::ptr::null_mut(), 2 * PAGE_SIZE, ProtFlags::READ, MapFlags::SHARED, &fd, 0) }
        .unwrap()
        .cast();
    // SAFETY: the mapping outlives the registration.
    let reg = unsafe { Registration::new(ptr, 2 * PAGE_SIZE) }.unwrap();
    let mut buf = [0u8; 8];
    reg.read(8, &mut buf).unwrap();
    let err = reg.read(PAGE_SIZE + 8, &mut buf).unwrap_err();
    assert_eq!(err, ReadError::Fault(Fault { addr: ptr as usize + PAGE_SIZE + 8, kind: FaultKind::Bus }));
    drop(reg);
    // SAFETY: our mapping, no longer registered.
    unsafe { munmap(ptr.cast(), 2 * PAGE_SIZE) }.unwrap();
}

#[test]
fn nested_guards_catch_in_the_innermost_and_restore_the_outer() {
    let (map, reg) = checkerboard(4);
    let bad_inner = map.addr(PAGE_SIZE + 5);
    let bad_outer = map.addr(3 * PAGE_SIZE + 9);
    // SAFETY: both closures are leaves (guarded copies and plain values).
    let outer = unsafe {
        catch(move || {
            let mut b = [0u8; 1];
            let inner = read_into(bad_inner, &mut b);
            let ok = read_into(map_addr_ok(bad_inner), &mut b);
            // Still inside the outer guard: this fault belongs to it.
            let mut c = [0u8; 1];
            racy_read_into(bad_outer, &mut c);
            (inner, ok)
        })
    };
    assert_eq!(outer, Err(Fault { addr: bad_outer as usize, kind: FaultKind::Segv }));
    // The inner result is checked on a run without the outer fault.
    // SAFETY: as above.
    let outer = unsafe {
        catch(move || {
            let mut b = [0u8; 1];
            read_into(bad_inner, &mut b)
        })
    };
    assert_eq!(outer, Ok(Err(Fault { addr: bad_inner as usize, kind: FaultKind::Segv })));
    drop((reg, map));
}

/// The readable byte one page before `p`.
fn map_addr_ok(p: *const u8) -> *const u8 {
    p.wrapping_sub(PAGE_SIZE)
}

#[test]
fn thousands_of_faults_on_several_threads_at_once_each_report_their_address() {
    const THREADS: usize = 4;
    const FAULTS: usize = 2000;
    let (map, reg) = checkerboard(64);
    let base = map.ptr as usize;
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let reg = &reg;
            s.spawn(move || {
                let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ t as u64;
                for _ in 0..FAULTS {
                    // xorshift: a different page and offset each time.
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let page = (x as usize % 32) * 2 + 1;
                    let offset = page * PAGE_SIZE + (x >> 32) as usize % PAGE_SIZE;
                    let mut b = [0u8; 1];
                    assert_eq!(
                        reg.read(offset, &mut b),
                        Err(ReadError::Fault(Fault { addr: base + offset, kind: FaultKind::Segv }))
                    );
                    reg.read(offset - PAGE_SIZE, &mut b).unwrap();
                    assert_eq!(b[0], (page - 1) as u8);
                }
            });
        }
    });
    drop((reg, map));
}

/// Runs the ignored test `name` in a child copy of this test binary and
/// returns how it ended.
fn run_child(name: &str) -> std::process::Output {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--ignored", "--nocapture", "--test-threads=1"])
        .output()
        .unwrap()
}

fn assert_killed_by(out: &std::process::Output, signal: i32) {
    assert_eq!(
        out.status.signal(),
        Some(signal),
        "child ended with {:?}; stderr: {}",
        out.status,
        std::string::String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_unguarded_fault_in_a_registered_range_still_kills() {
    assert_killed_by(&run_child("fault::tests::child_unguarded_fault_in_registered_range"), 11);
}

#[test]
fn a_guarded_fault_outside_every_range_still_kills() {
    assert_killed_by(&run_child("fault::tests::child_guarded_fault_outside_ranges"), 11);
}

#[test]
fn a_fault_after_its_range_was_unregistered_kills() {
    assert_killed_by(&run_child("fault::tests::child_guarded_fault_after_unregister"), 11);
}

#[test]
fn a_fault_we_do_not_recover_reaches_the_handler_installed_before_ours() {
    let out = run_child("fault::tests::child_previous_handler_runs");
    assert_eq!(out.status.code(), Some(PREVIOUS_HANDLER_EXIT), "{out:?}");
}

#[test]
fn the_range_table_refuses_registrations_beyond_its_size() {
    let out = run_child("fault::tests::child_fill_range_table");
    assert!(out.status.success(), "{}", std::string::String::from_utf8_lossy(&out.stdout));
}

#[test]
#[ignore = "run in a child process by an_unguarded_fault_in_a_registered_range_still_kills"]
fn child_unguarded_fault_in_registered_range() {
    let (map, _reg) = checkerboard(2);
    // SAFETY: deliberately unsound-looking but defined: a volatile read of
    // an inaccessible page, outside any guard, to show the process dies.
    unsafe { core::ptr::read_volatile(map.addr(PAGE_SIZE)) };
    unreachable!("the read above must kill the process");
}

#[test]
#[ignore = "run in a child process by a_guarded_fault_outside_every_range_still_kills"]
fn child_guarded_fault_outside_ranges() {
    install().unwrap();
    let map = Map::anonymous(1, ProtFlags::empty());
    let mut b = [0u8; 1];
    // SAFETY: the contract is broken on purpose (unregistered, inaccessible
    // memory) to show that such a fault is not swallowed.
    let _ = unsafe { read_into(map.addr(0), &mut b) };
    unreachable!("the read above must kill the process");
}

#[test]
#[ignore = "run in a child process by a_fault_after_its_range_was_unregistered_kills"]
fn child_guarded_fault_after_unregister() {
    let (map, reg) = checkerboard(2);
    let mut b = [0u8; 1];
    assert!(reg.read(PAGE_SIZE, &mut b).is_err());
    drop(reg);
    // SAFETY: as above, on purpose.
    let _ = unsafe { read_into(map.addr(PAGE_SIZE), &mut b) };
    unreachable!("the read above must kill the process");
}

/// The exit status of the handler installed before ours in
/// `child_previous_handler_runs`.
const PREVIOUS_HANDLER_EXIT: i32 = 42;

/// A SIGSEGV handler that ends the process with a recognisable status.
unsafe extern "C" fn previous_handler(
    _sig: core::ffi::c_int,
    _info: *mut crate::signal::SigInfo,
    _ctx: *mut core::ffi::c_void,
) {
    // SAFETY: exit_group ends the process; its one argument is the status.
    let _ = unsafe {
        crate::syscall::syscall4(linux_raw_sys::general::__NR_exit_group, PREVIOUS_HANDLER_EXIT as usize, 0, 0, 0)
    };
}

#[test]
#[ignore = "run in a child process by a_fault_we_do_not_recover_reaches_the_handler_installed_before_ours"]
fn child_previous_handler_runs() {
    let action = crate::signal::KernelSigaction::siginfo(previous_handler, 0);
    // SAFETY: the handler only calls exit_group, which is async-signal-safe.
    unsafe { crate::signal::set(crate::signal::SIGSEGV, &action) }.unwrap();
    let (map, reg) = checkerboard(2);
    let unregistered = Map::anonymous(1, ProtFlags::empty());
    let mut b = [0u8; 1];
    // Recovered by ours: the previous handler does not see it.
    assert!(reg.read(PAGE_SIZE, &mut b).is_err());
    // SAFETY: on purpose: unregistered memory, so ours passes it on.
    let _ = unsafe { read_into(unregistered.addr(0), &mut b) };
    drop(map);
    unreachable!("the previous handler must have ended the process");
}

#[test]
#[ignore = "run in a child process by the_range_table_refuses_registrations_beyond_its_size"]
fn child_fill_range_table() {
    let map = Map::anonymous(1, ProtFlags::READ);
    // SAFETY: the mapping outlives every registration.
    let regs: Vec<_> = (0..MAX_RANGES).map(|_| unsafe { Registration::new(map.ptr, PAGE_SIZE) }.unwrap()).collect();
    // SAFETY: as above.
    assert_eq!(unsafe { Registration::new(map.ptr, PAGE_SIZE) }.unwrap_err(), RegisterError::TableFull);
    // SAFETY: as above.
    let empty = unsafe { Registration::new(map.ptr, 0) };
    assert_eq!(empty.unwrap_err(), RegisterError::BadRange { start: map.ptr as usize, len: 0 });
    drop(regs);
    // SAFETY: as above.
    let again = unsafe { Registration::new(map.ptr, PAGE_SIZE) };
    assert!(again.is_ok());
}
