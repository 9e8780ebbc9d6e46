//! The exmap backend: the pool is an exmap context (`snowfall_sys::exmap`),
//! pages are mapped with ALLOC before a load fills them and unmapped with
//! FREE at eviction, a batch per call, one page per entry.
//!
//! Interfaces: exmap wants one per concurrently acting thread. The buffer
//! manager does not know its threads, so each call claims a free interface
//! (scanning from a slot chosen by the thread pointer, so a thread tends to
//! reuse its own) and releases it when done; with as many interfaces as
//! threads acting at once, nobody waits.
//!
//! Pool sizing: exmap hands its pool to interfaces in bundles of 513 pages,
//! and up to a bundle per interface can sit unused in that interface's free
//! list. The exmap pool is therefore the buffer manager's pool plus one
//! bundle per interface plus one bundle of headroom; residency is still
//! bounded by the buffer manager's pool.
//!
//! Loads: for a database in a regular file, ALLOC then `pread` from the
//! file (the generic path). When the database is a block device opened
//! `O_DIRECT` (and `Config::exmap_read`, the default), exmap is set up with
//! it as backing and loads use exmap's own READ, which allocates and reads in
//! one call.
//!
//! # Safety
//!
//! Interfaces are used by one thread at a time (the claim); FREE is applied
//! only to pages the buffer manager holds exclusively (the trait's
//! contract); the area is never `mprotect`ed, `madvise`d or partly unmapped.
#![allow(unsafe_code)]

use alloc::boxed::Box;
use core::sync::atomic::{AtomicBool, Ordering};

use rustix::fd::BorrowedFd;
use rustix::io::Errno;
use snowfall_sys::exmap::{self, BUNDLE_PAGES, INTERFACE_ENTRIES, Op};

use super::MemoryBackend;
use crate::error::MemoryError;
use crate::page::{PAGE_SIZE, PageId};

/// The exmap memory backend.
#[derive(Debug)]
pub struct Exmap {
    raw: exmap::Exmap,
    busy: Box<[AtomicBool]>,
    exmap_pool_pages: u64,
    read_from_backing: bool,
}

/// A claimed interface, released on drop.
struct Claim<'a> {
    busy: &'a AtomicBool,
    index: u16,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.busy.store(false, Ordering::Release);
    }
}

impl Exmap {
    /// The exmap pool (in pages) for a buffer pool of `pool_pages` with
    /// `interfaces` interfaces: the pool, a bundle per interface, a bundle
    /// of headroom, rounded up to whole bundles.
    pub const fn exmap_pool_pages(pool_pages: u64, interfaces: u16) -> u64 {
        (pool_pages + BUNDLE_PAGES * (interfaces as u64 + 1)).div_ceil(BUNDLE_PAGES) * BUNDLE_PAGES
    }

    /// Sets exmap up for an area of `area_pages` pages and a buffer pool of
    /// `pool_pages`, with `interfaces` interfaces; `backing` is the database
    /// if it is a block device opened `O_DIRECT` (loads then use exmap's
    /// READ).
    pub fn open(
        area_pages: u64,
        pool_pages: u64,
        interfaces: u16,
        backing: Option<BorrowedFd<'_>>,
    ) -> Result<Exmap, MemoryError> {
        let exmap_pool_pages = Exmap::exmap_pool_pages(pool_pages, interfaces);
        let raw = exmap::Exmap::setup(area_pages, exmap_pool_pages, interfaces, backing).map_err(MemoryError::Exmap)?;
        Ok(Exmap {
            raw,
            busy: (0..interfaces).map(|_| AtomicBool::new(false)).collect(),
            exmap_pool_pages,
            read_from_backing: backing.is_some(),
        })
    }

    /// The exmap pool in pages (memory exmap holds resident from setup on).
    pub fn exmap_pool(&self) -> u64 {
        self.exmap_pool_pages
    }

    /// The kernel's statistics.
    pub fn stats(&self) -> Result<exmap::Stats, Errno> {
        self.raw.stats()
    }

    fn claim(&self) -> Claim<'_> {
        let n = self.busy.len();
        let start = (snowfall_sys::thread::thread_pointer() >> 12) % n.max(1);
        let mut backoff = snowfall_latch::Backoff::new();
        loop {
            for i in (start..n).chain(0..start) {
                if let Some(busy) = self.busy.get(i)
                    && busy.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_ok()
                {
                    return Claim { busy, index: i as u16 };
                }
            }
            // More threads than interfaces are acting at once: wait briefly.
            backoff.pause();
        }
    }

    /// Runs `op` on `pages`, in batches of at most 512 single-page entries,
    /// checking every entry's result.
    fn act(&self, op: Op, pages: &[PageId]) -> Result<(), MemoryError> {
        let claim = self.claim();
        let mut ids = [0u64; INTERFACE_ENTRIES];
        let mut results = [(0i32, 0i16); INTERFACE_ENTRIES];
        let error = |page, errno| match op {
            Op::Alloc => MemoryError::Prepare { page, errno },
            Op::Free => MemoryError::Release { page, errno },
        };
        for chunk in pages.chunks(INTERFACE_ENTRIES) {
            for (slot, page) in ids.iter_mut().zip(chunk) {
                *slot = page.0;
            }
            let batch = ids.get(..chunk.len()).unwrap_or_default();
            let first = chunk.first().copied().unwrap_or(PageId(0));
            // SAFETY: we hold the interface; for FREE the buffer manager
            // holds the pages exclusively (module safety paragraph).
            unsafe { self.raw.action(claim.index, op, batch, &mut results) }.map_err(|errno| error(first, errno))?;
            // ENOMEM is not counted in the ioctl's return: check every entry.
            for (&page, &(res, moved)) in chunk.iter().zip(results.iter()) {
                if res != 0 {
                    return Err(error(page, Errno::from_raw_os_error(-res)));
                }
                // The buffer manager maps only unmapped pages and unmaps
                // only mapped ones: anything else means the kernel's view
                // and ours differ.
                if moved != 1 {
                    log::error!(
                        "exmap {op:?} of {page} moved {moved} pages, not 1: kernel and buffer manager disagree"
                    );
                    return Err(error(page, Errno::NOTRECOVERABLE));
                }
            }
        }
        Ok(())
    }
}

impl MemoryBackend for Exmap {
    fn name(&self) -> &'static str {
        "exmap"
    }

    fn base(&self) -> *mut u8 {
        self.raw.area()
    }

    fn pages(&self) -> u64 {
        self.raw.area_pages()
    }

    fn prepare(&self, pages: &[PageId]) -> Result<(), MemoryError> {
        self.act(Op::Alloc, pages)
    }

    fn release(&self, pages: &[PageId]) -> Result<(), MemoryError> {
        self.act(Op::Free, pages)
    }

    fn released_pages_fault(&self) -> bool {
        true
    }

    fn load_from_backing(&self, page: PageId) -> Option<Result<(), MemoryError>> {
        if !self.read_from_backing {
            return None;
        }
        let claim = self.claim();
        // SAFETY: we hold the interface; the buffer manager holds the page
        // exclusively while it loads.
        let read = unsafe { self.raw.read(claim.index, page.0, 1) };
        Some(match read {
            Ok(n) if n == PAGE_SIZE => Ok(()),
            Ok(_) => Err(MemoryError::Prepare { page, errno: Errno::IO }),
            Err(errno) => Err(MemoryError::Prepare { page, errno }),
        })
    }
}
