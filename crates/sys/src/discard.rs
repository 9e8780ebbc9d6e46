//! Discarding many ranges of anonymous memory at once (`MADV_DONTNEED`).
//!
//! Every `madvise(2)` call ends with a TLB flush, and while another thread
//! of the process runs on another CPU that flush is an inter-processor
//! interrupt. Evicting a batch of scattered pages one `madvise` at a time
//! pays that per page. `process_madvise(2)` on our own process takes the
//! whole batch as an iovec; since Linux 6.13 it accepts `MADV_DONTNEED` for
//! the calling process and since 6.16 flushes the TLB once per call. Older
//! kernels refuse it (`EINVAL`); then we remember that and call `madvise`
//! per range.
//!
//! # Safety
//!
//! Discarding memory replaces its contents with zeros on next touch; the
//! caller vouches that nothing it cares about lives there and no reference
//! into it exists ([`Discarder::discard`]'s contract). The system calls only
//! receive pointers to the iovec array on our stack.
#![allow(unsafe_code)]

use core::sync::atomic::{AtomicBool, Ordering};

use linux_raw_sys::general as k;
use rustix::fd::{AsRawFd, OwnedFd};
use rustix::io::Errno;
use rustix::mm::{Advice, madvise};

use crate::syscall::syscall5;

/// Ranges discarded per system call (the kernel's `UIO_MAXIOV` is 1024).
const IOV_BATCH: usize = 512;

#[repr(C)]
#[derive(Clone, Copy)]
struct Iovec {
    base: usize,
    len: usize,
}

/// Discards ranges of this process's memory, batched when the kernel allows.
#[derive(Debug)]
pub struct Discarder {
    /// A pidfd for ourselves, if the kernel has `pidfd_open`.
    pidfd: Option<OwnedFd>,
    /// Whether `process_madvise(MADV_DONTNEED)` works here (cleared on refusal).
    batched: AtomicBool,
}

impl Default for Discarder {
    fn default() -> Self {
        Discarder::new()
    }
}

impl Discarder {
    /// A discarder for the calling process.
    pub fn new() -> Discarder {
        let pidfd = rustix::process::pidfd_open(rustix::process::getpid(), rustix::process::PidfdFlags::empty()).ok();
        let batched = AtomicBool::new(pidfd.is_some());
        Discarder { pidfd, batched }
    }

    /// Whether batches go to the kernel in one call (so far).
    pub fn is_batched(&self) -> bool {
        self.batched.load(Ordering::Relaxed)
    }

    /// Discards every `(address, length)` range (page-aligned).
    ///
    /// # Safety
    ///
    /// Each range is private anonymous memory of this process whose
    /// contents the caller no longer needs and into which no reference
    /// exists; afterwards it reads as zeros.
    pub unsafe fn discard(&self, ranges: &[(usize, usize)]) -> Result<(), Errno> {
        if let Some(pidfd) = self.pidfd.as_ref().filter(|_| self.is_batched()) {
            // SAFETY: the caller's contract covers every range.
            match unsafe { Self::process_madvise(pidfd, ranges) } {
                Ok(()) => return Ok(()),
                Err(Errno::INVAL | Errno::NOSYS | Errno::PERM) => {
                    self.batched.store(false, Ordering::Relaxed);
                    log::info!("process_madvise(MADV_DONTNEED) refused by this kernel; discarding range by range");
                }
                Err(e) => return Err(e),
            }
        }
        for &(addr, len) in ranges {
            // SAFETY: the caller's contract covers every range.
            unsafe { madvise(addr as *mut _, len, Advice::LinuxDontNeed)? };
        }
        Ok(())
    }

    /// # Safety
    ///
    /// As [`discard`](Self::discard).
    unsafe fn process_madvise(pidfd: &OwnedFd, ranges: &[(usize, usize)]) -> Result<(), Errno> {
        for chunk in ranges.chunks(IOV_BATCH) {
            let mut iov = [Iovec { base: 0, len: 0 }; IOV_BATCH];
            for (slot, &(base, len)) in iov.iter_mut().zip(chunk) {
                *slot = Iovec { base, len };
            }
            // SAFETY: `iov[..chunk.len()]` is a valid iovec array on our
            // stack; the ranges are the caller's (contract above).
            let advised = unsafe {
                syscall5(
                    k::__NR_process_madvise,
                    pidfd.as_raw_fd() as usize,
                    iov.as_ptr() as usize,
                    chunk.len(),
                    k::MADV_DONTNEED as usize,
                    0,
                )?
            };
            // The kernel stops early only on an error within the batch:
            // finish the rest range by range, which reports that error.
            let mut skip = advised;
            for &(addr, len) in chunk {
                if skip >= len {
                    skip -= len;
                    continue;
                }
                // SAFETY: the caller's contract covers every range.
                unsafe { madvise((addr + skip) as *mut _, len - skip, Advice::LinuxDontNeed)? };
                skip = 0;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use rustix::mm::{MapFlags, ProtFlags, mmap_anonymous, munmap};

    use super::*;
    use crate::PAGE_SIZE;

    #[test]
    fn discarded_ranges_read_as_zero_and_the_rest_is_kept() {
        let pages = 64;
        // SAFETY: a fresh private mapping, ours alone.
        let base = unsafe {
            mmap_anonymous(
                core::ptr::null_mut(),
                pages * PAGE_SIZE,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE,
            )
        }
        .unwrap()
        .cast::<u8>();
        // SAFETY: inside the mapping.
        let mem = unsafe { core::slice::from_raw_parts_mut(base, pages * PAGE_SIZE) };
        for discarder in [Discarder::new(), Discarder { pidfd: None, batched: AtomicBool::new(false) }] {
            mem.fill(0xAB);
            let ranges: Vec<(usize, usize)> =
                (0..pages).step_by(3).map(|p| (base as usize + p * PAGE_SIZE, PAGE_SIZE)).collect();
            // SAFETY: the ranges are ours and no reference into them is live
            // across the call (`mem` is re-read afterwards).
            unsafe { discarder.discard(&ranges) }.unwrap();
            for p in 0..pages {
                let page = &mem[p * PAGE_SIZE..(p + 1) * PAGE_SIZE];
                let want = if p % 3 == 0 { 0 } else { 0xAB };
                assert!(page.iter().all(|&b| b == want), "page {p}, batched {}", discarder.is_batched());
            }
        }
        // SAFETY: our mapping.
        unsafe { munmap(base.cast(), pages * PAGE_SIZE) }.unwrap();
    }
}
