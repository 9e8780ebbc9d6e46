//! A cheap identity of the calling thread, for spreading per-thread
//! counters over shards without a system call or a thread-local.
//!
//! # Safety
//!
//! On x86_64 Linux the word at `fs:0` is the thread pointer (the TLS ABI
//! requires the thread control block to point at itself there); glibc,
//! musl and origin all set it up before any Rust code runs on a thread.
#![allow(unsafe_code)]

/// The calling thread's thread pointer: distinct for threads alive at the
/// same time, reused after a thread exits. Not a kernel thread id.
#[inline]
pub fn thread_pointer() -> usize {
    let tp: usize;
    // SAFETY: see the module's safety paragraph; a plain load.
    unsafe { core::arch::asm!("mov {}, qword ptr fs:[0]", out(reg) tp, options(nostack, readonly, preserves_flags)) };
    tp
}

/// How many CPUs the calling thread may run on (at least 1).
pub fn available_cpus() -> u32 {
    rustix::thread::sched_getaffinity(None).map_or(1, |set| set.count()).max(1)
}

#[cfg(test)]
mod tests {
    extern crate std;

    #[test]
    fn threads_alive_together_have_distinct_pointers() {
        let here = super::thread_pointer();
        assert_ne!(here, 0);
        let there = std::thread::spawn(super::thread_pointer).join().unwrap();
        assert_ne!(here, there);
        assert_eq!(here, super::thread_pointer());
    }

    #[test]
    fn at_least_one_cpu_is_available() {
        let n = super::available_cpus();
        assert!((1..=4096).contains(&n), "{n}");
    }
}
