//! Cached extents: a large value's pages held in the pool as one unit.
//!
//! The reservation is indexed by page id, so an extent's frames are one
//! contiguous slice of memory: it is loaded with one read straight into
//! place and read in place. The extent's first page (its *head*) stands for
//! the whole: its latch latches the extent, only it is in the resident set
//! (the clock meets heads, never members), and evicting it releases every
//! frame. A per-page word says what each page is while its extent is cached:
//! `HEAD | pages` for the head, `head + 1` for the others (the *members*),
//! 0 otherwise.
//!
//! Extents are written once, straight to the device, and never change while
//! a reference names them, so a cached copy is never dirty: eviction only
//! releases it. It must be gone before any of its pages is reused, which
//! [`BufferManager::try_uncache_extent`] does when a released extent leaves
//! quarantine (`extents.rs`): no reader holds its reference by then.
//!
//! Members keep the `EVICTED` state, so nothing but the head can be latched.
//! The word is what keeps a *stale* reader out of them: an optimistic tree
//! descent that followed a child pointer its parent dropped meanwhile may
//! fix a page id that now lies in a cached extent. Loading it would read the
//! stored page into the extent's memory, and its failed checksum would then
//! release that memory under the extent. So a load checks the word first,
//! with the page's latch held, and refuses (the descent's validation of the
//! parent then fails, and it restarts). The word changes only while the
//! member's latch is held (taken from `EVICTED` by the extent's loader and
//! evictor), so that check cannot race a load or an eviction of the extent.
//! A stale reader that fixes a *head* reads the value's bytes as a node
//! optimistically, and its validation of the parent fails as for any page
//! freed under it.
//!
//! Extents of more than an eighth of the pool are not cached (they are read
//! from the device each time, as values larger than memory must be).
//!
//! # Safety
//!
//! The extent's memory is written only while its head is latched
//! exclusively and every member is latched from `EVICTED` (the load), and
//! read through [`ExtentGuard`], which holds the head shared: no writer can
//! exist, and the members cannot be loaded or evicted on their own.
#![allow(unsafe_code)]

use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use snowfall_latch::word::LOCKED;
use snowfall_latch::{Backoff, Flag, LatchWord};

use crate::error::Error;
use crate::manager::BufferManager;
use crate::page::{PAGE_SIZE, PageId};
use crate::stats::Counter;

/// Marks a head's word (the rest is the extent's length in pages).
const HEAD: u64 = 1 << 63;

/// A cached extent, latched shared: its bytes stay in memory and unchanged
/// while the guard lives.
pub struct ExtentGuard<'a> {
    bm: &'a BufferManager,
    head: PageId,
    pages: u64,
}

impl core::fmt::Debug for ExtentGuard<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ExtentGuard").field("head", &self.head).field("pages", &self.pages).finish()
    }
}

impl ExtentGuard<'_> {
    /// The extent's bytes (whole pages: the value and its zero padding).
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the head is latched shared for the guard's life, so the
        // extent stays resident and unwritten (module safety paragraph); its
        // frames are consecutive in the reservation.
        unsafe {
            core::slice::from_raw_parts(self.bm.page_ptr(self.head).cast::<u8>(), self.pages as usize * PAGE_SIZE)
        }
    }
}

impl Drop for ExtentGuard<'_> {
    fn drop(&mut self) {
        if let Some(latch) = self.bm.states.get(self.head) {
            latch.unlock_shared();
        }
    }
}

/// A new extent's frames, held exclusively: filled by the caller, written
/// through to the device, then cached ([`NewExtent::cache`]). Dropped
/// before that, its frames are released and nothing is cached.
pub struct NewExtent<'a> {
    bm: &'a BufferManager,
    head: PageId,
    pages: u64,
    cached: bool,
}

impl core::fmt::Debug for NewExtent<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NewExtent").field("head", &self.head).field("pages", &self.pages).finish()
    }
}

impl NewExtent<'_> {
    /// The extent's memory (whole pages; zero it past the value).
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: the head is latched exclusively and every member from
        // `EVICTED`, and the frames are prepared (module safety paragraph).
        unsafe {
            core::slice::from_raw_parts_mut(self.bm.page_ptr(self.head).cast::<u8>(), self.pages as usize * PAGE_SIZE)
        }
    }

    /// Writes the frames to the device, in requests of many pages.
    pub fn write_through(&self) -> Result<(), Error> {
        // SAFETY: as in `bytes_mut`; no `&mut` to the frames is alive here.
        let memory = unsafe {
            core::slice::from_raw_parts(self.bm.page_ptr(self.head).cast::<u8>(), self.pages as usize * PAGE_SIZE)
        };
        let bufs: Vec<&[u8; PAGE_SIZE]> =
            memory.chunks_exact(PAGE_SIZE).filter_map(|c| <&[u8; PAGE_SIZE]>::try_from(c).ok()).collect();
        self.bm
            .device
            .write_pages(self.head, &bufs)
            .map_err(|(n, source)| Error::WriteBack { page: PageId(self.head.0 + n as u64), source })
    }

    /// The extent, written, is cached (clean): readers of its reference
    /// find it in the pool.
    pub fn cache(mut self) {
        self.bm.install_extent(self.head, self.pages);
        if let Some(latch) = self.bm.states.get(self.head) {
            latch.unlock_exclusive(Flag::Keep);
        }
        self.cached = true;
    }
}

impl Drop for NewExtent<'_> {
    fn drop(&mut self) {
        if !self.cached
            && let Some(latch) = self.bm.states.get(self.head)
        {
            self.bm.unhold_extent(self.head, self.pages, latch);
        }
    }
}

impl BufferManager {
    /// The most pages an extent may have to be cached: an eighth of the pool.
    pub fn extent_cache_limit(&self) -> u64 {
        self.config().pool_pages() / 8
    }

    /// The word of `page` (see the module docs).
    fn extent_word(&self, page: PageId) -> u64 {
        self.extent_tags.get(page).map_or(0, |t| t.load(Ordering::Acquire))
    }

    fn set_extent_word(&self, page: PageId, word: u64) {
        if let Some(t) = self.extent_tags.get(page) {
            t.store(word, Ordering::Release);
        }
    }

    /// Pages of the extent cached with `page` as its head, if it is one.
    pub(crate) fn cached_extent_pages(&self, page: PageId) -> Option<u64> {
        let word = self.extent_word(page);
        (word & HEAD != 0).then_some(word & !HEAD)
    }

    /// Refuses a load of `page` (whose latch the caller holds from
    /// `EVICTED`) if it is a member of a cached extent.
    pub(crate) fn check_not_member(&self, page: PageId) -> Result<(), Error> {
        match self.extent_word(page) {
            word if word != 0 && word & HEAD == 0 => Err(Error::InExtent { page, head: PageId(word - 1) }),
            _ => Ok(()),
        }
    }

    /// The extent of `pages` pages from `start`, cached and latched shared:
    /// loaded with one read if it is not resident, and then checked whole by
    /// `verify` (false: [`Error::CorruptExtent`], and it stays evicted).
    /// `None` if it cannot be cached: too large (see
    /// [`extent_cache_limit`](Self::extent_cache_limit)), or a page of it is
    /// held as something else (a page a stale reader loaded). The caller
    /// must hold a pin taken before it read the reference naming the extent
    /// ([`pin_extents`](Self::pin_extents)).
    pub fn fix_extent(
        &self,
        start: PageId,
        pages: u64,
        verify: impl Fn(&[u8]) -> bool,
    ) -> Result<Option<ExtentGuard<'_>>, Error> {
        if pages == 0 || pages > self.extent_cache_limit() {
            return Ok(None);
        }
        let latch = self.latch(start)?;
        if start.0.saturating_add(pages) > self.allocated_pages() {
            return Err(Error::CorruptExtent { page: start, pages });
        }
        let mut backoff = Backoff::new();
        loop {
            match latch.lock_shared() {
                Ok(()) if self.cached_extent_pages(start) == Some(pages) => {
                    self.count(Counter::Hit, 1);
                    return Ok(Some(ExtentGuard { bm: self, head: start, pages }));
                }
                Ok(()) => {
                    latch.unlock_shared();
                    return Ok(None);
                }
                Err(_evicted) => {
                    if !latch.try_lock_evicted() {
                        backoff.pause();
                        continue;
                    }
                    if !self.load_extent(start, pages, latch, &verify)? {
                        return Ok(None);
                    }
                    // Shared next time round (evicted meanwhile: loaded again).
                    latch.unlock_exclusive(Flag::Keep);
                }
            }
        }
    }

    /// As [`fix_extent`](Self::fix_extent) for a reader that can read the
    /// extent past the pool: also `None` if it is not resident, the pool is
    /// full, and it is not admitted (`admission.rs`: it missed recently).
    pub fn fix_extent_admitted(
        &self,
        start: PageId,
        pages: u64,
        verify: impl Fn(&[u8]) -> bool,
    ) -> Result<Option<ExtentGuard<'_>>, Error> {
        let room = self.resident_count.load(Ordering::Relaxed).saturating_add(pages) <= self.config().pool_pages();
        if self.cached_extent_pages(start) != Some(pages) && !room && !self.ghosts.admit(start.0) {
            return Ok(None);
        }
        self.fix_extent(start, pages, verify)
    }

    /// Loads the extent whose head latch the caller took from `EVICTED`.
    /// `Ok(true)`: resident and still latched exclusively; otherwise it is
    /// `EVICTED` and unlatched again (`Ok(false)`: a member is held as
    /// something else, so it is not cached).
    fn load_extent(
        &self,
        start: PageId,
        pages: u64,
        head: &LatchWord,
        verify: &dyn Fn(&[u8]) -> bool,
    ) -> Result<bool, Error> {
        if !self.hold_extent(start, pages, head)? {
            return Ok(false);
        }
        if let Err(e) = self.read_extent(start, pages, verify) {
            self.unhold_extent(start, pages, head);
            return Err(e);
        }
        self.install_extent(start, pages);
        self.count(Counter::Fault, pages);
        Ok(true)
    }

    /// Makes room for the extent whose head latch the caller took from
    /// `EVICTED`: latches every member from `EVICTED` (a stale load of one
    /// is waited for: it fails, or leaves a page resident), reserves its
    /// frames and prepares their memory. `Ok(true)`: all held; otherwise all
    /// unlatched again (`Ok(false)`: a page of it is held as something else).
    fn hold_extent(&self, start: PageId, pages: u64, head: &LatchWord) -> Result<bool, Error> {
        let mut held = 0;
        let mut free = self.extent_word(start) == 0;
        let mut backoff = Backoff::new();
        while free && let Some(latch) = self.states.get(PageId(start.0 + 1 + held)).filter(|_| held + 1 < pages) {
            if latch.try_lock_evicted() {
                free = self.extent_word(PageId(start.0 + 1 + held)) == 0;
                held += 1;
            } else if latch.load().state() == LOCKED {
                backoff.pause();
            } else {
                free = false;
            }
        }
        // Every member held (the reservation ends nowhere inside it).
        free &= held + 1 == pages;
        let unlock = || {
            self.unlock_members(start, held + 1);
            head.unlock_evicted();
        };
        if !free {
            unlock();
            return Ok(false);
        }
        if let Err(e) = self.reserve_frames(pages) {
            unlock();
            return Err(e);
        }
        let ids: Vec<PageId> = (start.0..start.0 + pages).map(PageId).collect();
        if let Err(e) = self.prepare_memory(&ids) {
            let _ = self.release_memory(&ids);
            self.unreserve_frames(pages);
            unlock();
            return Err(e);
        }
        Ok(true)
    }

    /// Undoes [`hold_extent`](Self::hold_extent): releases the memory and
    /// the frames, and unlatches every page (all `EVICTED`).
    fn unhold_extent(&self, start: PageId, pages: u64, head: &LatchWord) {
        let ids: Vec<PageId> = (start.0..start.0 + pages).map(PageId).collect();
        let _ = self.release_memory(&ids);
        self.unreserve_frames(pages);
        self.unlock_members(start, pages);
        head.unlock_evicted();
    }

    /// Unlatches the members of the extent at `start` among its first
    /// `pages` pages, held from `EVICTED`.
    fn unlock_members(&self, start: PageId, pages: u64) {
        for m in start.0 + 1..start.0 + pages {
            if let Some(l) = self.states.get(PageId(m)) {
                l.unlock_evicted();
            }
        }
    }

    /// A held extent whose frames hold its contents becomes cached: the
    /// words are set before the members are unlatched, the head joins the
    /// clock (and stays latched for the caller).
    fn install_extent(&self, start: PageId, pages: u64) {
        for m in start.0 + 1..start.0 + pages {
            self.set_extent_word(PageId(m), start.0 + 1);
        }
        self.unlock_members(start, pages);
        self.set_extent_word(start, HEAD | pages);
        self.resident.insert(start);
        self.extent_count.fetch_add(pages, Ordering::Relaxed);
    }

    /// Frames for a new extent's contents, to be written through to the
    /// device and then cached ([`NewExtent`]): the extent was just handed
    /// out by [`allocate_extent`](Self::allocate_extent) and nothing
    /// references it. `None` if it cannot be cached (too large, or a page of
    /// it is held as something else): write it without the pool.
    pub fn new_extent(&self, start: PageId, pages: u64) -> Result<Option<NewExtent<'_>>, Error> {
        if pages == 0 || pages > self.extent_cache_limit() {
            return Ok(None);
        }
        let head = self.latch(start)?;
        if !head.try_lock_evicted() || !self.hold_extent(start, pages, head)? {
            return Ok(None);
        }
        Ok(Some(NewExtent { bm: self, head: start, pages, cached: false }))
    }

    /// Reads the extent into its prepared frames and verifies it.
    fn read_extent(&self, start: PageId, pages: u64, verify: &dyn Fn(&[u8]) -> bool) -> Result<(), Error> {
        let base = self.page_ptr(start).cast::<u8>();
        let len = pages as usize * PAGE_SIZE;
        // SAFETY: the head is latched exclusively and every member from
        // `EVICTED`, and the frames are prepared (module safety paragraph).
        let memory = unsafe { core::slice::from_raw_parts_mut(base, len) };
        let mut bufs: Vec<&mut [u8; PAGE_SIZE]> =
            memory.chunks_exact_mut(PAGE_SIZE).filter_map(|c| <&mut [u8; PAGE_SIZE]>::try_from(c).ok()).collect();
        let got = self.device.read_pages(start, &mut bufs).map_err(|source| Error::Read { page: start, source })?;
        drop(bufs);
        if got as u64 != pages || !verify(memory) {
            return Err(Error::CorruptExtent { page: start, pages });
        }
        Ok(())
    }

    /// Evicts the cached extent at `head` (latched exclusively by the
    /// caller, who also took it out of the clock's hands): every member is
    /// latched from `EVICTED` (a stale loader holds one only while it looks
    /// at the word), all frames are released in one call, and every page is
    /// `EVICTED` and unmarked again. On an error all stays as it was, and
    /// the head is still latched.
    pub(crate) fn evict_extent_held(&self, head: PageId, pages: u64) -> Result<(), Error> {
        let ids: Vec<PageId> = (head.0..head.0 + pages).map(PageId).collect();
        let members = ids.get(1..).unwrap_or_default();
        for &m in members {
            let Some(latch) = self.states.get(m) else { continue };
            let mut backoff = Backoff::new();
            while !latch.try_lock_evicted() {
                backoff.pause();
            }
        }
        let released = self.release_memory(&ids);
        if released.is_ok() {
            self.resident.remove(head);
            for &page in &ids {
                self.set_extent_word(page, 0);
            }
            self.extent_count.fetch_sub(pages, Ordering::Relaxed);
        }
        for &m in members {
            if let Some(latch) = self.states.get(m) {
                latch.unlock_evicted();
            }
        }
        released?;
        if let Some(latch) = self.states.get(head) {
            latch.unlock_evicted();
        }
        self.unreserve_frames(pages);
        self.count(Counter::Eviction, pages);
        Ok(())
    }

    /// Evicts the cached copy of the extent at `start`, if there is one,
    /// before its pages are reused (no reader may hold its reference by
    /// then). With `wait`, waits for its latch; without, gives up if it is
    /// busy (the clock evicting it, say). `true` if no cached copy is left
    /// (`false` with `wait` only if its memory could not be released).
    pub(crate) fn uncache_extent(&self, start: u64, wait: bool) -> bool {
        let head = PageId(start);
        if self.cached_extent_pages(head).is_none() {
            return true;
        }
        let Some(latch) = self.states.get(head) else { return true };
        let latched = match (wait, latch.try_lock_exclusive()) {
            (_, Ok(true)) => true,
            (true, Ok(false)) => latch.lock_exclusive().is_ok(),
            (false, Ok(false)) => return false,
            // Evicted meanwhile.
            (_, Err(_)) => false,
        };
        if !latched {
            return true;
        }
        match self.cached_extent_pages(head) {
            Some(pages) if self.evict_extent_held(head, pages).is_ok() => true,
            Some(_) => {
                latch.unlock_exclusive(Flag::Keep);
                false
            }
            None => {
                latch.unlock_exclusive(Flag::Keep);
                true
            }
        }
    }
}
