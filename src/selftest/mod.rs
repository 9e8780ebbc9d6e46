//! `snowfall selftest`: checks, inside the static binary itself, what the
//! std test harness cannot see: the `.init_array` logger, the auxiliary
//! vector as origin's start-up left it, threads on origin parking on
//! futexes, and fault recovery without libc, on several threads at once.
//!
//! Each check prints one `ok` or `FAIL` line; the exit status is 0 only if
//! every check passed.

mod auxv;
mod faults;
mod logger;
mod mem;
mod threads;

use alloc::string::String;

use snowfall_rt::outln;

use crate::cli::{FAILURE, SUCCESS, Startup};

/// A check's outcome: a short account of what was verified, or what failed.
pub type Outcome = Result<String, String>;

/// Runs every check; returns the exit status.
pub fn run(startup: Startup) -> i32 {
    let checks: [(&str, &dyn Fn() -> Outcome); 15] = [
        ("logger registered from .init_array", &|| logger::registered_before_main(startup)),
        ("log record format and level filter", &logger::record_format),
        ("log records from threads never interleave", &logger::records_do_not_interleave),
        ("log records are capped below PIPE_BUF", &logger::long_records_are_truncated),
        ("auxv matches /proc/self/auxv", &auxv::matches_procfs),
        ("threads park on a futex and wake together", &threads::park_and_wake_all),
        ("futex ping-pong between two threads", &threads::ping_pong),
        ("futex wait times out", &threads::wait_times_out),
        ("guarded read without a fault", &faults::no_fault),
        ("guarded reads are bounds-checked", &faults::bounds_checked),
        ("nested guards", &faults::nested_guards),
        ("SIGSEGV and SIGBUS recovered on threads at once", &faults::faults_on_threads),
        ("every thread has an alternate signal stack", &faults::alternate_stacks),
        ("memcpy agrees with a byte loop", &mem::memcpy_matches_a_byte_loop),
        ("memmove agrees with a byte loop, overlapping", &mem::memmove_matches_a_byte_loop),
    ];
    let mut failed = 0;
    for (name, check) in checks {
        let printed = match check() {
            Ok(detail) => outln!("ok    {name}: {detail}"),
            Err(why) => {
                failed += 1;
                outln!("FAIL  {name}: {why}")
            }
        };
        if printed.is_err() {
            failed += 1;
        }
    }
    let total = checks.len();
    let _ = if failed == 0 {
        outln!("selftest: all {total} checks passed")
    } else {
        outln!("selftest: {failed} of {total} checks FAILED")
    };
    if failed == 0 { SUCCESS } else { FAILURE }
}

/// `Err(message)` unless `cond`.
pub fn ensure(cond: bool, message: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(message()) }
}

/// Reads a whole (small) file, such as one in procfs.
pub fn read_file(path: &str) -> Result<alloc::vec::Vec<u8>, String> {
    use rustix::fs::{Mode, OFlags, open};
    let fd = sys(path, open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()))?;
    let mut bytes = alloc::vec::Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        match rustix::io::read(&fd, &mut chunk) {
            Ok(0) => return Ok(bytes),
            Ok(n) => bytes.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(alloc::format!("read {path}: {e}")),
        }
    }
}

/// Runs `f` and turns a system-call error into a message naming `what`.
pub fn sys<T>(what: &str, r: Result<T, snowfall_sys::Errno>) -> Result<T, String> {
    r.map_err(|e| alloc::format!("{what}: {e}"))
}
