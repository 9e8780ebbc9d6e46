//! `snowfall qemu-guest`: the program `tests/qemu/run.sh` boots as `/init`
//! of a virtual machine, to run the buffer manager's scenarios on a kernel
//! where the exmap module can be loaded.
//!
//! It mounts `/dev`, `/proc`, `/sys` and a tmpfs on `/tmp`, loads the
//! modules listed in `/modules/order` (one `file.ko params...` per line),
//! then runs the same scenario functions as the cargo tests (seeded stress
//! with an oracle, write-back round trip) on every memory backend that is
//! there: madvise, the user-space emulation of exmap, and, with the module,
//! exmap over a regular file in tmpfs (ALLOC, then `pread`), over
//! `/dev/ram0` opened `O_DIRECT` (exmap's own READ, and ALLOC + `pread`),
//! and `auto`, which must pick exmap. Each scenario uses one buffer manager
//! (one exmap context) for a seeded stress run and then a write-back round
//! trip, as a database uses one for its lifetime.
//! It prints `SNOWFALL-QEMU: PASS` or `SNOWFALL-QEMU: FAIL <why>` on the
//! console and powers the machine off. With `SNOWFALL_EXMAP=required` (on
//! the kernel command line) a missing `/dev/exmap` is a failure.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use rustix::fs::{Mode, OFlags};
use snowfall_buffer::device::{FileDevice, FileOptions};
use snowfall_buffer::memory::MemoryKind;
use snowfall_buffer::scenario::{Parallel, RaceBounds, Stress, eviction_race, round_trip, stress};
use snowfall_buffer::{BufferManager, Config, Device};
use snowfall_rt::outln;

use crate::cli::{FAILURE, usage};

const MIB: u64 = 1 << 20;

/// Origin threads for the scenarios.
struct OriginThreads;

impl Parallel for OriginThreads {
    fn run(&self, threads: usize, work: &(dyn Fn(usize) + Sync)) {
        if let Err(e) = snowfall_rt::thread::run_parallel(threads, work) {
            // The scenario then finds its work undone and reports it.
            log::error!("cannot start {threads} threads: {e}");
        }
    }
}

/// Runs the guest; powers off (as PID 1) or returns the exit status.
pub fn run() -> i32 {
    if rustix::process::getpid().as_raw_nonzero().get() != 1 {
        return usage(String::from("qemu-guest runs only as /init of the test virtual machine (PID 1)"));
    }
    match steps() {
        Ok(summary) => {
            let _ = outln!("SNOWFALL-QEMU: PASS ({summary})");
        }
        Err(why) => {
            let _ = outln!("SNOWFALL-QEMU: FAIL {why}");
        }
    }
    rustix::fs::sync();
    // Only returns on failure; then exiting PID 1 panics the kernel, which
    // the harness sees as a missing PASS.
    let _ = rustix::system::reboot(rustix::system::RebootCommand::PowerOff);
    FAILURE
}

fn steps() -> Result<String, String> {
    mount_all()?;
    load_modules()?;
    let exmap_required = snowfall_rt::env::var("SNOWFALL_EXMAP") == Some(b"required".as_slice());
    let exmap_present = rustix::fs::access("/dev/exmap", rustix::fs::Access::EXISTS).is_ok();
    if exmap_required && !exmap_present {
        return Err(String::from("SNOWFALL_EXMAP=required but /dev/exmap does not exist after loading the modules"));
    }
    // (name, backend, database, use exmap's READ for a block device)
    let mut runs: Vec<(&str, MemoryKind, &str, bool)> = alloc::vec![
        ("madvise, file in tmpfs", MemoryKind::Madvise, "/tmp/db-madvise", false),
        ("exmap emulation, file in tmpfs", MemoryKind::EmulatedExmap, "/tmp/db-emulated", false),
    ];
    if exmap_present {
        runs.push(("exmap, file in tmpfs (ALLOC + pread)", MemoryKind::Exmap, "/tmp/db-exmap", true));
        runs.push(("exmap, /dev/ram0 O_DIRECT (exmap READ)", MemoryKind::Exmap, "/dev/ram0", true));
        runs.push(("exmap, /dev/ram0 O_DIRECT (ALLOC + pread)", MemoryKind::Exmap, "/dev/ram0", false));
        runs.push(("auto (must pick exmap)", MemoryKind::Auto, "/tmp/db-auto", true));
    }
    for &(name, memory, path, exmap_read) in &runs {
        scenario(name, memory, path, exmap_read)?;
    }
    Ok(format!("{} scenario sets, exmap {}", runs.len(), if exmap_present { "loaded" } else { "not loaded" }))
}

/// One backend over one device: stress, then a write-back round trip on a
/// fresh buffer manager over the same device.
fn scenario(name: &str, memory: MemoryKind, path: &str, exmap_read: bool) -> Result<(), String> {
    let config = Config {
        pool_bytes: MIB,
        virtual_bytes: 64 * MIB,
        memory,
        exmap_interfaces: 2,
        exmap_read,
        ..Config::default()
    };
    let open = || -> Result<BufferManager, String> {
        let block = path.starts_with("/dev/");
        let device = FileDevice::open(path, FileOptions { create: !block, direct: true, read_only: false })
            .map_err(|e| format!("{name}: open {path}: {e}"))?;
        let direct = device.is_direct();
        let bm =
            BufferManager::open(config, Box::new(device) as Box<dyn Device>).map_err(|e| format!("{name}: {e}"))?;
        let want = match memory {
            MemoryKind::Madvise => "madvise",
            MemoryKind::EmulatedExmap => "exmap (user-space emulation)",
            MemoryKind::Exmap | MemoryKind::Auto => "exmap",
        };
        if bm.memory().name() != want {
            return Err(format!("{name}: got the {} backend, wanted {want}", bm.memory().name()));
        }
        let _ = outln!("      {name}: {} backend, {path} {}", want, if direct { "O_DIRECT" } else { "buffered" });
        Ok(bm)
    };
    let bm = open()?;
    let s = Stress {
        threads: 2,
        pages: 1024,
        ops_per_thread: 3000,
        seed: 0x5EED_0003,
        write_percent: 40,
        optimistic_percent: 40,
    };
    let report = stress(&bm, &s, &OriginThreads).map_err(|f| format!("{name}: stress: {f}"))?;
    bm.flush().map_err(|e| format!("{name}: flush: {e}"))?;
    // The same buffer manager (one exmap context per database, as in use):
    // the round trip allocates pages after the stress run's.
    round_trip(&bm).map_err(|f| format!("{name}: write-back round trip: {f}"))?;
    // Readers racing an evictor: with exmap, reads of evicted pages fault.
    let faulting = bm.memory().released_pages_fault();
    let bounds = RaceBounds { races: 50, faults: if faulting { 5 } else { 0 }, max_reads: 50_000 };
    let race = eviction_race(&bm, bounds, &OriginThreads).map_err(|f| format!("{name}: eviction race: {f}"))?;
    if faulting && race.faults == 0 {
        return Err(format!("{name}: no optimistic read ever faulted: the fault path went untested ({race:?})"));
    }
    let _ = outln!(
        "ok    {name}: stress {} writes, {} shared, {} optimistic reads ({} loads, {} evictions); \
         round trip of {} pages; eviction race {} validated, {} rejected, {} faults recovered",
        report.writes,
        report.shared_reads,
        report.optimistic_reads,
        report.stats.faults,
        report.stats.evictions,
        3 * bm.config().pool_pages(),
        race.validated,
        race.rejected,
        race.faults
    );
    Ok(())
}

fn mount_all() -> Result<(), String> {
    use rustix::mount::{MountFlags, mount};
    for (source, target, fstype) in [
        ("devtmpfs", "/dev", "devtmpfs"),
        ("proc", "/proc", "proc"),
        ("sysfs", "/sys", "sysfs"),
        ("tmpfs", "/tmp", "tmpfs"),
    ] {
        let _ = rustix::fs::mkdir(target, Mode::from_raw_mode(0o755));
        mount(source, target, fstype, MountFlags::empty(), None)
            .map_err(|e| format!("mount {fstype} on {target}: {e}"))?;
    }
    Ok(())
}

fn load_modules() -> Result<(), String> {
    let list = crate::selftest::read_file("/modules/order").unwrap_or_default();
    let list = core::str::from_utf8(&list).map_err(|_| String::from("/modules/order is not UTF-8"))?;
    for line in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (file, params) = line.split_once(' ').unwrap_or((line, ""));
        let path = format!("/modules/{file}");
        let fd = rustix::fs::open(path.as_str(), OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| format!("open {path}: {e}"))?;
        let params = alloc::ffi::CString::new(params).map_err(|_| format!("{path}: parameters contain NUL"))?;
        use rustix::fd::AsFd;
        snowfall_sys::kmod::finit_module(fd.as_fd(), &params).map_err(|e| format!("load {path} ({line}): {e}"))?;
        let _ = outln!("      loaded {line}");
    }
    Ok(())
}
