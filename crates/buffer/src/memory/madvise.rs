//! The `madvise` backend: one anonymous private mapping for the whole
//! reservation (`MAP_NORESERVE`, so only touched pages cost memory), huge
//! pages off (a 2 MiB page would break the per-page memory bound), and
//! eviction by `MADV_DONTNEED` (a whole batch per system call where the
//! kernel allows: `snowfall_sys::discard`), after which a page reads as zeros.
//!
//! # Safety
//!
//! The mapping is created here and unmapped only in `Drop`; nothing else
//! maps over it. `MADV_DONTNEED` is applied only to pages the buffer manager
//! holds exclusively (the trait's contract), so no reference into them
//! exists; optimistic readers reach them only through assembly copies.
#![allow(unsafe_code)]

use alloc::vec::Vec;

use rustix::mm::{Advice, MapFlags, ProtFlags, madvise, mmap_anonymous, munmap};
use snowfall_sys::discard::Discarder;

use super::MemoryBackend;
use crate::error::MemoryError;
use crate::page::{PAGE_SIZE, PageId};

/// Runs of at least this many pages are populated by `prepare`.
const POPULATE_MIN: usize = 16;

/// Anonymous memory released with `MADV_DONTNEED`.
#[derive(Debug)]
pub struct Madvise {
    base: *mut u8,
    pages: u64,
    discarder: Discarder,
}

// SAFETY: the mapping is plain memory shared by all threads; the buffer
// manager's latches decide who touches which page.
unsafe impl Send for Madvise {}
// SAFETY: as above.
unsafe impl Sync for Madvise {}

impl Madvise {
    /// Reserves `pages` pages of address space.
    pub fn reserve(pages: u64) -> Result<Madvise, MemoryError> {
        let bytes = pages.saturating_mul(PAGE_SIZE as u64);
        let len =
            usize::try_from(bytes).map_err(|_| MemoryError::Reserve { bytes, errno: rustix::io::Errno::NOMEM })?;
        // SAFETY: a fresh mapping at a kernel-chosen address aliases nothing.
        let base = unsafe {
            mmap_anonymous(
                core::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE | MapFlags::NORESERVE,
            )
        }
        .map_err(|errno| MemoryError::Reserve { bytes, errno })?;
        // Transparent huge pages would make one touched page cost 2 MiB.
        // SAFETY: advice on our own mapping.
        if let Err(e) = unsafe { madvise(base, len, Advice::LinuxNoHugepage) } {
            log::warn!("madvise(MADV_NOHUGEPAGE) on the buffer pool failed: {e}; the memory bound may not hold");
        }
        Ok(Madvise { base: base.cast(), pages, discarder: Discarder::new() })
    }
}

impl MemoryBackend for Madvise {
    fn name(&self) -> &'static str {
        "madvise"
    }

    fn base(&self) -> *mut u8 {
        self.base
    }

    fn pages(&self) -> u64 {
        self.pages
    }

    fn prepare(&self, pages: &[PageId]) -> Result<(), MemoryError> {
        // Anonymous memory appears on first touch. A run of pages (a cached
        // extent's frames) is populated in one call instead: a page fault
        // per page costs a quarter of copying a megabyte into them. Where
        // the kernel lacks `MADV_POPULATE_WRITE` (before 5.14), first touch
        // it is.
        let (Some(first), Some(last)) = (pages.first(), pages.last()) else { return Ok(()) };
        let run = last.0.wrapping_sub(first.0) + 1;
        if pages.len() < POPULATE_MIN || run != pages.len() as u64 || last.0 >= self.pages {
            return Ok(());
        }
        let at = self.base.wrapping_add(first.offset() as usize).cast();
        // SAFETY: advice on a range inside our own mapping, whose pages the
        // caller holds exclusively; populating does not change their
        // contents as the caller sees them (anonymous memory reads as zeros).
        if let Err(errno) = unsafe { madvise(at, run as usize * PAGE_SIZE, Advice::LinuxPopulateWrite) }
            && errno != rustix::io::Errno::INVAL
        {
            return Err(MemoryError::Prepare { page: *first, errno });
        }
        Ok(())
    }

    fn release(&self, pages: &[PageId]) -> Result<(), MemoryError> {
        // One range per run of consecutive pages, all in one call when the
        // kernel allows (one TLB flush for the batch).
        let mut ranges = Vec::with_capacity(pages.len());
        let mut i = 0;
        while let Some(&first) = pages.get(i) {
            let mut run = 1;
            while pages.get(i + run).is_some_and(|p| p.0 == first.0 + run as u64) {
                run += 1;
            }
            debug_assert!(first.0 + run as u64 <= self.pages);
            ranges.push((self.base as usize + first.offset() as usize, run * PAGE_SIZE));
            i += run;
        }
        let first = pages.first().copied().unwrap_or(PageId(0));
        // SAFETY: the ranges lie inside our mapping and their pages are held
        // exclusively by the caller (see the module's safety paragraph).
        unsafe { self.discarder.discard(&ranges) }.map_err(|errno| MemoryError::Release { page: first, errno })
    }

    fn released_pages_fault(&self) -> bool {
        false
    }
}

impl Drop for Madvise {
    fn drop(&mut self) {
        // SAFETY: our mapping; the buffer manager that used it is gone.
        let _ = unsafe { munmap(self.base.cast(), self.pages as usize * PAGE_SIZE) };
    }
}
