//! **An emulation of exmap in user space**, for tests on machines without
//! the module (every CI run): the same observable semantics, built from
//! `mprotect` and `madvise` on a private mapping.
//!
//! - the area is `PROT_NONE`: touching a page that was never allocated, or
//!   was freed, raises SIGSEGV at its exact address, as with exmap;
//! - ALLOC makes a page read-write and fills it with a poison pattern,
//!   because exmap's recycled pages keep old bytes: nobody may rely on
//!   fresh pages being zero; already allocated pages are skipped, their
//!   contents kept;
//! - FREE discards the page (`MADV_DONTNEED`) and makes it `PROT_NONE`;
//! - a pool limit: allocating beyond it fails with `ENOMEM`, as exmap does
//!   when its pool runs dry.
//!
//! Differences from the real module, by design of an emulation: no
//! per-interface free lists (no stranding), and every page protection
//! change splits the mapping (`vm.max_map_count`, 65,530 by default,
//! limits it to some tens of thousands of scattered resident pages).
//!
//! # Safety
//!
//! The mapping is ours from creation to `Drop`. Protection changes and
//! discards apply only to pages the buffer manager holds exclusively (the
//! backend trait's contract); optimistic readers touch them only through
//! the fault guard.
#![allow(unsafe_code)]

use alloc::boxed::Box;
use core::sync::atomic::{AtomicU64, Ordering};

use rustix::io::Errno;
use rustix::mm::{Advice, MapFlags, MprotectFlags, ProtFlags, madvise, mmap_anonymous, mprotect, munmap};

use super::MemoryBackend;
use crate::error::MemoryError;
use crate::page::{PAGE_SIZE, PageId};

/// The byte freshly allocated pages are filled with.
pub const POISON: u8 = 0xA5;

/// exmap's semantics in user space (an emulation, for tests).
#[derive(Debug)]
pub struct EmulatedExmap {
    base: *mut u8,
    pages: u64,
    /// One bit per page: allocated.
    allocated: Box<[AtomicU64]>,
    in_use: AtomicU64,
    pool_pages: u64,
}

// SAFETY: shared memory managed under the buffer manager's latches.
unsafe impl Send for EmulatedExmap {}
// SAFETY: as above.
unsafe impl Sync for EmulatedExmap {}

impl EmulatedExmap {
    /// An area of `pages` pages whose pool holds `pool_pages`.
    pub fn reserve(pages: u64, pool_pages: u64) -> Result<EmulatedExmap, MemoryError> {
        let bytes = pages.saturating_mul(PAGE_SIZE as u64);
        let len = usize::try_from(bytes).map_err(|_| MemoryError::Reserve { bytes, errno: Errno::NOMEM })?;
        // SAFETY: a fresh inaccessible mapping at a kernel-chosen address.
        let base = unsafe {
            mmap_anonymous(core::ptr::null_mut(), len, ProtFlags::empty(), MapFlags::PRIVATE | MapFlags::NORESERVE)
        }
        .map_err(|errno| MemoryError::Reserve { bytes, errno })?;
        let words = pages.div_ceil(64) as usize;
        Ok(EmulatedExmap {
            base: base.cast(),
            pages,
            allocated: (0..words).map(|_| AtomicU64::new(0)).collect(),
            in_use: AtomicU64::new(0),
            pool_pages,
        })
    }

    /// Pages allocated now.
    pub fn in_use(&self) -> u64 {
        self.in_use.load(Ordering::Relaxed)
    }

    fn bit(&self, page: PageId) -> Option<(&AtomicU64, u64)> {
        self.allocated.get((page.0 / 64) as usize).map(|w| (w, 1 << (page.0 % 64)))
    }

    fn page_ptr(&self, page: PageId) -> *mut u8 {
        self.base.wrapping_add(page.offset() as usize)
    }
}

impl MemoryBackend for EmulatedExmap {
    fn name(&self) -> &'static str {
        "exmap (user-space emulation)"
    }

    fn base(&self) -> *mut u8 {
        self.base
    }

    fn pages(&self) -> u64 {
        self.pages
    }

    fn prepare(&self, pages: &[PageId]) -> Result<(), MemoryError> {
        for &page in pages {
            let (word, bit) = self.bit(page).ok_or(MemoryError::Prepare { page, errno: Errno::FAULT })?;
            if word.load(Ordering::Acquire) & bit != 0 {
                continue; // already mapped: skipped, contents kept
            }
            if self.in_use.fetch_add(1, Ordering::AcqRel) >= self.pool_pages {
                self.in_use.fetch_sub(1, Ordering::AcqRel);
                return Err(MemoryError::Prepare { page, errno: Errno::NOMEM });
            }
            // SAFETY: one page of our mapping, held exclusively by the caller.
            unsafe { mprotect(self.page_ptr(page).cast(), PAGE_SIZE, MprotectFlags::READ | MprotectFlags::WRITE) }
                .map_err(|errno| MemoryError::Prepare { page, errno })?;
            // SAFETY: now writable; nobody else touches it (as above).
            unsafe { core::ptr::write_bytes(self.page_ptr(page), POISON, PAGE_SIZE) };
            word.fetch_or(bit, Ordering::AcqRel);
        }
        Ok(())
    }

    fn release(&self, pages: &[PageId]) -> Result<(), MemoryError> {
        for &page in pages {
            let (word, bit) = self.bit(page).ok_or(MemoryError::Release { page, errno: Errno::FAULT })?;
            if word.fetch_and(!bit, Ordering::AcqRel) & bit == 0 {
                continue;
            }
            let at = self.page_ptr(page).cast();
            // SAFETY: one page of our mapping, held exclusively by the caller.
            unsafe {
                madvise(at, PAGE_SIZE, Advice::LinuxDontNeed).map_err(|errno| MemoryError::Release { page, errno })?;
                mprotect(at, PAGE_SIZE, MprotectFlags::empty())
                    .map_err(|errno| MemoryError::Release { page, errno })?;
            }
            self.in_use.fetch_sub(1, Ordering::AcqRel);
        }
        Ok(())
    }

    fn released_pages_fault(&self) -> bool {
        true
    }
}

impl Drop for EmulatedExmap {
    fn drop(&mut self) {
        // SAFETY: our mapping; the buffer manager that used it is gone.
        let _ = unsafe { munmap(self.base.cast(), self.pages as usize * PAGE_SIZE) };
    }
}
