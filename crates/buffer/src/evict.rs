//! Eviction: a clock over the resident set, in batches.
//!
//! One pass claims the next slots of the resident set. An `UNLOCKED` page is
//! marked; a page still `MARKED` when the hand comes back was not used in
//! between and becomes a victim: clean victims are latched exclusively,
//! dirty ones shared. Dirty victims are written back as a batch (the
//! write-ahead-log hook first, "log before data"), from sealed copies, so
//! readers keep reading meanwhile; those that wrote and can be upgraded to
//! exclusive join the clean ones. Then the whole batch's memory is released
//! in one backend call and the pages become `EVICTED` with a new version,
//! which fails every optimistic reader still looking at them.
//!
//! A write that fails leaves its page dirty and resident, and the error goes
//! to whoever triggered the eviction.
//!
//! A victim that is a cached extent's head (`extent_cache.rs`) is never
//! dirty; evicting it releases all its frames.
//!
//! # Safety
//!
//! Write-back copies a page through a `&Page` created while the evictor
//! holds the page's latch shared (no writer can exist).
#![allow(unsafe_code)]

use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use snowfall_latch::Flag;
use snowfall_latch::word::Word;
use snowfall_latch::word::{MARKED, UNLOCKED};

use crate::error::Error;
use crate::manager::BufferManager;
use crate::page::{PAGE_SIZE, Page, PageId};
use crate::stats::Counter;

/// Write buffers kept for reuse between batches.
pub(crate) const SPARE_WRITE_BUFFERS: usize = 2;

impl BufferManager {
    /// Evicts up to one batch of pages; returns how many left memory.
    pub(crate) fn evict_batch(&self) -> Result<usize, Error> {
        let batch = self.config().eviction_batch;
        let mut clean: Vec<PageId> = Vec::with_capacity(batch);
        let mut dirty: Vec<PageId> = Vec::with_capacity(batch);
        let turn = self.resident.capacity();
        let step = batch.min(turn);
        let mut scanned = 0;
        // Up to two turns of the clock: the first may only mark pages.
        while clean.len() + dirty.len() < batch && scanned < 2 * turn {
            self.resident.clock_batch(step, |page| {
                if clean.len() + dirty.len() >= batch {
                    return;
                }
                let Some(latch) = self.states.get(page) else { return };
                let w = latch.load();
                match w.state() {
                    // Not a page a checkpoint is writing: two writes of one
                    // page must never race.
                    MARKED if w.flag() && !self.in_flight(page) && latch.try_lock_shared_if(w) => dirty.push(page),
                    MARKED if !w.flag() && latch.try_lock_exclusive_if(w) => clean.push(page),
                    UNLOCKED => {
                        latch.try_mark(w);
                    }
                    _ => {}
                }
            });
            scanned += step;
        }

        let (_, write_error) = self.write_back(&dirty);
        for &page in &dirty {
            let Some(latch) = self.states.get(page) else { continue };
            if !latch.load().flag() && latch.try_upgrade_shared() {
                clean.push(page);
            } else {
                latch.unlock_shared();
            }
        }

        // Cached extents' heads release all their frames, each on its own.
        let mut extent_frames = 0;
        let mut extent_error = None;
        clean.retain(|&page| {
            let Some(pages) = self.cached_extent_pages(page) else { return true };
            match self.evict_extent_held(page, pages) {
                Ok(()) => extent_frames += pages as usize,
                Err(e) => {
                    if let Some(latch) = self.states.get(page) {
                        latch.unlock_exclusive(Flag::Keep);
                    }
                    extent_error.get_or_insert(e);
                }
            }
            false
        });
        if let Some(e) = extent_error.filter(|_| extent_frames == 0 && clean.is_empty()) {
            return Err(e);
        }
        let evicted = clean.len();
        if evicted > 0 {
            // Sorted, consecutive pages are released in one call.
            clean.sort_unstable();
            if let Err(e) = self.release_memory(&clean) {
                for &page in &clean {
                    if let Some(latch) = self.states.get(page) {
                        latch.unlock_exclusive(Flag::Keep);
                    }
                }
                return Err(e);
            }
            for &page in &clean {
                self.resident.remove(page);
                if let Some(latch) = self.states.get(page) {
                    latch.unlock_evicted();
                }
            }
            self.unreserve_frames(evicted as u64);
            self.count(Counter::Eviction, evicted as u64);
        }
        // Frames were freed: whoever needed one goes on. A page that could
        // not be written stays dirty; a checkpoint reports it.
        match write_error {
            Some(e) if evicted + extent_frames == 0 => Err(e),
            _ => Ok(evicted + extent_frames),
        }
    }

    /// Writes back `pages`, which the caller latched shared: the hook
    /// first, then one sealed copy per page. Clears the dirty flag of every
    /// page written. Returns how many were written and the first error.
    pub(crate) fn write_back(&self, pages: &[PageId]) -> (usize, Option<Error>) {
        if pages.is_empty() {
            return (0, None);
        }
        let mut buffers = self.take_write_buffers(pages.len());
        for (buffer, &page) in buffers.iter_mut().zip(pages) {
            // SAFETY: latched shared by the caller (module safety paragraph).
            let source = unsafe { &*self.page_ptr(page) };
            buffer.clone_from(source);
            buffer.seal();
        }
        let result = self.write_sealed(pages, &buffers, |page| {
            if let Some(latch) = self.states.get(page) {
                self.note_written(page);
                latch.clear_flag_shared();
            }
        });
        self.give_back_write_buffers(buffers);
        result
    }

    /// Writes back the dirty pages among `pages` without holding their
    /// latches during the I/O (a checkpoint's flush: writers of those pages
    /// do not wait for the disk). Each page is copied under a shared latch
    /// and marked in flight (eviction leaves it alone, so no other write of
    /// it can race this one), then released; after the write, its dirty flag
    /// is cleared only if no writer came since the copy. Returns how many
    /// were written and the first error.
    pub(crate) fn write_back_unlatched(&self, pages: &[PageId]) -> (usize, Option<Error>) {
        let mut buffers = self.take_write_buffers(pages.len());
        // Changes a copy below does not hold come after it, so they begin
        // at this log position or later.
        let position = self.hook.log_position();
        let mut taken: Vec<(PageId, Word, u64)> = Vec::with_capacity(pages.len());
        for &page in pages {
            let (Some(latch), Some(flight)) = (self.states.get(page), self.in_flight.get(page)) else { continue };
            let w = latch.load();
            if !w.flag() || flight.load(Ordering::Acquire) != 0 {
                continue;
            }
            // No other latch is held here: waiting cannot deadlock.
            if !latch.try_lock_shared_if(w) && latch.lock_shared().is_err() {
                continue;
            }
            let w = latch.load();
            if w.flag() && flight.load(Ordering::Acquire) == 0 {
                let Some(buffer) = buffers.get_mut(taken.len()) else { break };
                // SAFETY: latched shared just above (module safety paragraph).
                let source = unsafe { &*self.page_ptr(page) };
                buffer.clone_from(source);
                buffer.seal();
                flight.store(1, Ordering::Release);
                let first = self.first_change.get(page).map_or(0, |f| f.load(Ordering::Acquire));
                taken.push((page, w, first));
            }
            latch.unlock_shared();
        }
        let ids: Vec<PageId> = taken.iter().map(|&(p, _, _)| p).collect();
        // Looked up by page below, once per page written.
        let mut by_page = taken.clone();
        by_page.sort_unstable_by_key(|&(p, _, _)| p);
        let result = self.write_sealed(&ids, buffers.get(..taken.len()).unwrap_or_default(), |page| {
            let Ok(i) = by_page.binary_search_by_key(&page, |&(p, _, _)| p) else { return };
            let Some(&(_, w, first)) = by_page.get(i) else { return };
            let Some(latch) = self.states.get(page) else { return };
            if latch.try_share(w) {
                self.note_written(page);
                latch.clear_flag_shared();
                latch.unlock_shared();
            } else {
                // A writer came since the copy: the page stays dirty, but
                // its changes before the copy are written.
                self.note_written_before(page, first, position);
            }
        });
        for &(page, _, _) in &taken {
            if let Some(flight) = self.in_flight.get(page) {
                flight.store(0, Ordering::Release);
            }
        }
        self.give_back_write_buffers(buffers);
        result
    }

    /// Writes the sealed `copies` of `pages` (same order): the hook first,
    /// then the device in page order, runs of consecutive pages in one
    /// request; `written(page)` for each page that reached the device.
    /// Returns how many were written and the first error.
    fn write_sealed(
        &self,
        pages: &[PageId],
        copies: &[Page],
        mut written: impl FnMut(PageId),
    ) -> (usize, Option<Error>) {
        if pages.is_empty() {
            return (0, None);
        }
        let token = match self.hook.before_write_back(self, copies) {
            Ok(token) => token,
            Err(source) => {
                let lsn = copies.iter().map(Page::lsn).max().unwrap_or(0);
                return (0, Some(Error::LogFlush { lsn, source }));
            }
        };
        let mut order: Vec<(PageId, &[u8; PAGE_SIZE])> =
            pages.iter().copied().zip(copies.iter().map(Page::bytes)).collect();
        order.sort_unstable_by_key(|&(page, _)| page);
        let mut count = 0;
        let mut failed = 0;
        let mut first_error = None;
        let mut clean = |run: &[(PageId, &[u8; PAGE_SIZE])]| {
            for &(page, _) in run {
                written(page);
            }
            count += run.len();
        };
        let mut rest = order.as_slice();
        while let Some(&(first, _)) = rest.first() {
            let len = rest.iter().enumerate().take_while(|&(i, &(page, _))| page.0 == first.0 + i as u64).count();
            let (run, after) = rest.split_at(len);
            rest = after;
            let bufs: Vec<&[u8; PAGE_SIZE]> = run.iter().map(|&(_, buf)| buf).collect();
            let mut at = 0;
            while at < run.len() {
                match self.device.write_pages(PageId(first.0 + at as u64), bufs.get(at..).unwrap_or_default()) {
                    Ok(()) => {
                        clean(run.get(at..).unwrap_or_default());
                        at = run.len();
                    }
                    Err((n, source)) => {
                        clean(run.get(at..at + n).unwrap_or_default());
                        let page = PageId(first.0 + (at + n) as u64);
                        first_error.get_or_insert(Error::WriteBack { page, source });
                        failed += 1;
                        at += n + 1;
                    }
                }
            }
        }
        if let Some(e) = &first_error {
            // One record per batch, not per page: a full disk fails every
            // page of every batch.
            log::warn!(
                "write-back to {}: {failed} of {} pages failed, the first: {e}",
                self.device.describe(),
                pages.len()
            );
        }
        self.hook.after_write_back(token);
        self.count(Counter::WriteBack, count as u64);
        (count, first_error)
    }

    fn take_write_buffers(&self, n: usize) -> Vec<Page> {
        let spare = self.write_buffers.lock().pop();
        let mut buffers = spare.unwrap_or_default();
        buffers.resize(n.max(buffers.len()), Page::zeroed());
        buffers.truncate(n);
        buffers
    }

    fn give_back_write_buffers(&self, buffers: Vec<Page>) {
        let mut spare = self.write_buffers.lock();
        if spare.len() < SPARE_WRITE_BUFFERS {
            spare.push(buffers);
        }
    }
}
