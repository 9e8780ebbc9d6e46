//! Guards: the only way to touch a page.
//!
//! - [`ExclusiveGuard`]: the page latched exclusively; `&mut Page`. Writing
//!   through it marks the page dirty when the guard is dropped.
//! - [`SharedGuard`]: latched shared; `&Page`.
//! - [`OptimisticGuard`]: nothing latched; a version to validate. Reads go
//!   through [`PageView`], which bounds-checks every offset and copies with
//!   assembly (guarded against faults when the memory backend unmaps
//!   evicted pages), so a reader racing a writer or an eviction reads
//!   garbage at worst, never crashes, and learns from validation that it
//!   must restart.
//!
//! # Safety
//!
//! References to page memory exist only inside guards that hold the
//! matching latch mode; optimistic reads create none (see
//! `snowfall_sys::fault` for why assembly copies may race with writers).
#![allow(unsafe_code)]

use core::marker::PhantomData;

use snowfall_latch::word::MARKED;
use snowfall_latch::{Backoff, Flag, Word};
use snowfall_sys::fault;
use static_assertions::const_assert;

use crate::error::Error;
use crate::manager::BufferManager;
use crate::page::{BODY_SIZE, HEADER_SIZE, Page, PageId};
use crate::stats::Counter;

/// A page latched exclusively.
#[must_use = "dropping the guard unlatches the page at once"]
pub struct ExclusiveGuard<'a> {
    bm: &'a BufferManager,
    page: PageId,
    dirty: bool,
}

impl<'a> ExclusiveGuard<'a> {
    pub(crate) fn new(bm: &'a BufferManager, page: PageId, dirty: bool) -> Self {
        ExclusiveGuard { bm, page, dirty }
    }

    /// The page's id.
    #[inline]
    pub fn id(&self) -> PageId {
        self.page
    }

    /// The page.
    pub fn page(&self) -> &Page {
        // SAFETY: latched exclusively (module safety paragraph).
        unsafe { &*self.bm.page_ptr(self.page) }
    }

    /// The page, writable; the page will be written back before it leaves memory.
    pub fn page_mut(&mut self) -> &mut Page {
        if !self.dirty {
            // Before the change is made, so before it is logged.
            self.bm.note_change(self.page);
        }
        self.dirty = true;
        // SAFETY: latched exclusively and `&mut self` is unique.
        unsafe { &mut *self.bm.page_ptr(self.page) }
    }

    /// Hands the latch to the caller without releasing it.
    pub(crate) fn into_held(self) -> PageId {
        let page = self.page;
        core::mem::forget(self);
        page
    }
}

impl Drop for ExclusiveGuard<'_> {
    fn drop(&mut self) {
        if let Some(latch) = self.bm.states.get(self.page) {
            latch.unlock_exclusive(if self.dirty { Flag::Set } else { Flag::Keep });
        }
    }
}

/// A page latched shared.
#[must_use = "dropping the guard unlatches the page at once"]
pub struct SharedGuard<'a> {
    bm: &'a BufferManager,
    page: PageId,
}

impl<'a> SharedGuard<'a> {
    pub(crate) fn new(bm: &'a BufferManager, page: PageId) -> Self {
        SharedGuard { bm, page }
    }

    /// The page's id.
    #[inline]
    pub fn id(&self) -> PageId {
        self.page
    }

    /// The page.
    pub fn page(&self) -> &Page {
        // SAFETY: latched shared: no writer exists (module safety paragraph).
        unsafe { &*self.bm.page_ptr(self.page) }
    }
}

impl Drop for SharedGuard<'_> {
    fn drop(&mut self) {
        if let Some(latch) = self.bm.states.get(self.page) {
            latch.unlock_shared();
        }
    }
}

/// An optimistic read saw something impossible (an offset out of bounds, a
/// fault): the read must restart. Not an error: the buffer manager retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Invalid;

/// Bounds-checked, fault-proof reads of a page's body that may race with
/// writers. Results mean nothing until the read is validated.
pub struct PageView<'a> {
    page: *const u8,
    guarded: bool,
    _bm: PhantomData<&'a BufferManager>,
}

impl<'a> PageView<'a> {
    #[inline]
    fn new(bm: &'a BufferManager, page: PageId) -> Self {
        PageView { page: bm.page_ptr(page).cast(), guarded: bm.guarded_reads, _bm: PhantomData }
    }

    /// Copies `dst.len()` bytes at `at` of the page; callers check that
    /// they lie inside the page and that `at >= 8`.
    #[inline]
    fn copy(&self, at: usize, dst: &mut [u8]) -> Result<(), Invalid> {
        let src = self.page.wrapping_add(at);
        if self.guarded {
            // SAFETY: in bounds of the page (checked by callers), inside the
            // registered reservation: a fault becomes `Invalid`.
            unsafe { fault::read_into(src, dst) }.map_err(|_| Invalid)
        } else if dst.len() <= SHORT_COPY {
            self.copy_short(at, dst);
            Ok(())
        } else {
            // SAFETY: in bounds of the page, in the always-readable reservation.
            unsafe { fault::racy_read_into(src, dst) };
            Ok(())
        }
    }

    /// [`copy`](Self::copy) for the short reads of a node search (a header,
    /// a slot, a length, a prefix) in 8-byte loads: `rep movsb` is
    /// microcoded, and with it the profile showed a lookup stalled after
    /// each short copy (the node header, the prefix in the lower fence),
    /// where plain loads let the next cache misses of the search overlap.
    /// A copy shorter than 8 bytes loads the 8 bytes that end where it ends
    /// (`at >= 8`: inside the page).
    #[inline]
    fn copy_short(&self, at: usize, dst: &mut [u8]) {
        let n = dst.len();
        let load = |from: usize| -> [u8; 8] {
            // SAFETY: `from..from + 8` lies inside the page (below), in the
            // always-readable reservation.
            u64::from_le(unsafe { fault::racy_load_u64(self.page.wrapping_add(from)) }).to_le_bytes()
        };
        if n < 8 {
            // `at + n - 8 >= 0` since `at >= 8`; ends at `at + n`.
            let word = load(at + n - 8);
            dst.copy_from_slice(word.get(8 - n..).unwrap_or_default());
            return;
        }
        // Whole words from the start, then the last 8 bytes (overlapping).
        let mut done = 0;
        while done + 8 < n {
            if let Some(d) = dst.get_mut(done..done + 8) {
                d.copy_from_slice(&load(at + done));
            }
            done += 8;
        }
        if let Some(d) = dst.get_mut(n - 8..) {
            d.copy_from_slice(&load(at + n - 8));
        }
    }

    /// Copies `dst.len()` bytes at `offset` of the body.
    #[inline]
    pub fn read(&self, offset: usize, dst: &mut [u8]) -> Result<(), Invalid> {
        match offset.checked_add(dst.len()) {
            Some(end) if end <= BODY_SIZE => self.copy(HEADER_SIZE + offset, dst),
            _ => Err(Invalid),
        }
    }

    /// The byte at `offset` of the body.
    #[inline]
    pub fn u8_at(&self, offset: usize) -> Result<u8, Invalid> {
        let mut b = [0; 1];
        self.read(offset, &mut b)?;
        Ok(b[0])
    }

    /// The little-endian `u16` at `offset` of the body.
    #[inline]
    pub fn u16_at(&self, offset: usize) -> Result<u16, Invalid> {
        let mut b = [0; 2];
        self.read(offset, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }

    /// The little-endian `u32` at `offset` of the body.
    #[inline]
    pub fn u32_at(&self, offset: usize) -> Result<u32, Invalid> {
        let mut b = [0; 4];
        self.read(offset, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// The little-endian `u64` at `offset` of the body.
    #[inline]
    pub fn u64_at(&self, offset: usize) -> Result<u64, Invalid> {
        let mut b = [0; 8];
        self.read(offset, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// The page's log sequence number.
    pub fn lsn(&self) -> Result<u64, Invalid> {
        let mut b = [0; 8];
        self.copy(16, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }
}

/// A page read optimistically: no latch held, only the version seen.
pub struct OptimisticGuard<'a> {
    bm: &'a BufferManager,
    page: PageId,
    snapshot: Word,
}

impl<'a> OptimisticGuard<'a> {
    /// The page's id.
    #[inline]
    pub fn id(&self) -> PageId {
        self.page
    }

    /// Reads of the page, to be validated.
    #[inline]
    pub fn view(&self) -> PageView<'a> {
        PageView::new(self.bm, self.page)
    }

    /// Whether no writer or eviction came since the guard was taken: reads
    /// made through [`view`](Self::view) so far are consistent.
    #[inline]
    pub fn validate(&self) -> bool {
        self.bm.states.get(self.page).is_some_and(|l| l.validate(self.snapshot))
    }

    /// Latches the page shared if nothing changed since the guard was
    /// taken; otherwise hands the guard back.
    pub fn try_share(self) -> Result<SharedGuard<'a>, OptimisticGuard<'a>> {
        match self.bm.states.get(self.page) {
            Some(latch) if latch.try_share(self.snapshot) => Ok(SharedGuard::new(self.bm, self.page)),
            _ => Err(self),
        }
    }

    /// Latches the page exclusively if nothing changed since the guard was
    /// taken; otherwise hands the guard back.
    pub fn try_upgrade(self) -> Result<ExclusiveGuard<'a>, OptimisticGuard<'a>> {
        match self.bm.states.get(self.page) {
            Some(latch) if latch.try_upgrade(self.snapshot) => Ok(ExclusiveGuard::new(self.bm, self.page, false)),
            _ => Err(self),
        }
    }
}

/// The longest copy [`PageView`] makes with plain loads (a node header).
const SHORT_COPY: usize = 32;
const_assert!(HEADER_SIZE >= 8);

/// Optimistic attempts before a reader falls back to a shared latch.
pub const OPTIMISTIC_ATTEMPTS: u32 = 16;

impl BufferManager {
    /// Starts an optimistic read of `page`, loading it if it is evicted.
    #[inline]
    pub fn optimistic(&self, page: PageId) -> Result<OptimisticGuard<'_>, Error> {
        let latch = self.latch(page)?;
        loop {
            match latch.optimistic() {
                Ok(snapshot) => {
                    if snapshot.state() == MARKED {
                        // Used again: tell the clock.
                        latch.unmark(snapshot);
                    }
                    return Ok(OptimisticGuard { bm: self, page, snapshot });
                }
                Err(_evicted) => self.load_unlatched(page, latch)?,
            }
        }
    }

    /// Runs `read` on `page` optimistically until a run validates (restarting
    /// with backoff), then falls back to a shared latch after
    /// [`OPTIMISTIC_ATTEMPTS`]. `read` may run several times and must have
    /// no effect besides its result. If it reports [`Invalid`] under the
    /// shared latch too, the page does not hold what it expects:
    /// [`Error::Unreadable`].
    pub fn read_optimistic<R>(
        &self,
        page: PageId,
        mut read: impl FnMut(&PageView<'_>) -> Result<R, Invalid>,
    ) -> Result<R, Error> {
        let mut backoff = Backoff::new();
        for _ in 0..OPTIMISTIC_ATTEMPTS {
            let guard = self.optimistic(page)?;
            let result = read(&guard.view());
            if guard.validate() {
                match result {
                    Ok(value) => {
                        self.count(Counter::Hit, 1);
                        return Ok(value);
                    }
                    // Consistent but unreadable: confirm under the latch.
                    Err(Invalid) => break,
                }
            }
            self.count(Counter::Restart, 1);
            backoff.pause();
        }
        let guard = self.fix_shared(page)?;
        let result = read(&PageView::new(self, page));
        drop(guard);
        result.map_err(|Invalid| Error::Unreadable { page })
    }
}
