//! The buffer manager: the virtual reservation, page states, the resident
//! set, the device, and the operations that tie them together (allocation,
//! fixing pages under guards, write-back). Loading is in `load.rs`,
//! eviction in `evict.rs`, guards in `guard.rs`.
//!
//! # Safety
//!
//! Page memory is reached only through raw pointers computed here
//! ([`BufferManager::page_ptr`]); references to it are created only by
//! guards while the page's latch is held (shared: `&Page`; exclusive:
//! `&mut Page`) and by load/eviction code that holds the latch exclusively
//! or shared as stated at each site. Optimistic readers never create
//! references: they copy with assembly (`snowfall_sys::fault`) and validate.
#![allow(unsafe_code)]

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use snowfall_latch::{Backoff, LatchWord, Mutex};
use snowfall_sys::fault::Registration;

use crate::config::Config;
use crate::device::Device;
use crate::error::{ConfigError, DeviceError, Error};
use crate::free_space::FreeSpace;
use crate::guard::{ExclusiveGuard, SharedGuard};
use crate::memory::MemoryBackend;
use crate::page::{PAGE_SIZE, Page, PageId};
use crate::resident::ResidentSet;
use crate::stats::{Counter, Counters, Stats};

/// Pages [`BufferManager::free_pages`] latches and releases at a time.
const FREE_CHUNK: usize = 256;

/// Called around every batch of dirty pages written back: before, the
/// write-ahead log makes itself durable up to the batch's highest page LSN
/// ("log before data"), and makes sure a torn write of any page in the
/// batch could be repaired; after, it learns that the batch's writes are
/// over.
pub trait WriteBackHook: Send + Sync {
    /// Called with the sealed copies of the pages about to be written, in
    /// the order given to write-back, and the buffer manager writing them.
    /// Each copy was taken under the page's shared latch; eviction holds the
    /// latches until [`WriteBackHook::after_write_back`], a checkpoint's
    /// flush releases them at once (the pages may change meanwhile; no
    /// other write of them runs). Returns a token for `after_write_back`;
    /// an error writes nothing.
    fn before_write_back(&self, bm: &BufferManager, pages: &[Page]) -> Result<u64, DeviceError>;

    /// The writes of the batch `before_write_back` returned `token` for
    /// have returned (each written or failed). Called exactly once for every
    /// successful `before_write_back`.
    fn after_write_back(&self, token: u64) {
        let _ = token;
    }

    /// Where the log ends now: a change about to be made to a page is
    /// logged at this position or after it. A page records it when its
    /// first change since it was last written begins
    /// ([`BufferManager::oldest_change`]). Zero (the default) where there is
    /// no log, or while recovery redoes it: such pages count as the oldest.
    fn log_position(&self) -> u64 {
        0
    }
}

/// The hook used until a write-ahead log exists: nothing to flush.
#[derive(Debug, Default)]
pub struct NoLog;

impl WriteBackHook for NoLog {
    fn before_write_back(&self, _bm: &BufferManager, _pages: &[Page]) -> Result<u64, DeviceError> {
        Ok(0)
    }
}

pub(crate) struct Allocator {
    /// Freed ids, reused first (as runs: see `free_space.rs`).
    pub(crate) free: FreeSpace,
    /// Whether a write-ahead log tracks allocation (see
    /// [`BufferManager::track_allocation`]).
    tracking: bool,
    /// Tracking: ids handed out whose allocation is not logged yet.
    allocating: Vec<PageId>,
    /// Tracking: ids whose freeing is logged but not done yet.
    freeing: Vec<PageId>,
    /// Pages freed recently, with where the log stood then: reused for
    /// pages first, for extents only once a checkpoint made them old
    /// (`extents.rs`).
    pub(crate) young: Vec<(u64, PageId)>,
    /// Extents handed out whose reference is not logged yet.
    pub(crate) allocating_extents: Vec<crate::extents::Extent>,
    /// Extents whose release is logged, waiting until it is durable.
    pub(crate) quarantine: Vec<crate::extents::Quarantined>,
}

/// What [`BufferManager::checkpoint_allocation`] returns.
#[derive(Debug)]
pub struct CheckpointAllocation {
    /// The allocation mark: no id at or past it is in use.
    pub next: u64,
    /// The ids below `next` not in use as the log knows.
    pub free: FreeSpace,
    /// Ids to store `free` in, withheld from allocation.
    pub storage: Vec<PageId>,
}

/// A page's state as [`BufferManager::page_state`] saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageState {
    /// In memory.
    pub resident: bool,
    /// Changed since it was last written back.
    pub dirty: bool,
    /// Its latch version (bumped by every exclusive unlatch and eviction).
    pub version: u64,
}

/// A vmcache-style buffer manager.
pub struct BufferManager {
    config: Config,
    // Held for its `Drop` (unregistering), which must run before `memory`
    // unmaps the range: fields drop in declaration order.
    _fault_range: Option<Registration>,
    memory: Box<dyn MemoryBackend>,
    pub(crate) states: crate::states::PageStates,
    /// One tag per page for the layer above ([`BufferManager::page_tag`]).
    tags: crate::states::PageTags,
    /// Per page, 1 while a checkpoint's flush writes it without its latch
    /// (eviction leaves it alone meanwhile).
    pub(crate) in_flight: crate::states::PageTags,
    /// Per page, one plus the log position its oldest unwritten change
    /// starts at or after; 0 while it has none (`changes.rs`).
    pub(crate) first_change: crate::states::PageTags,
    /// Per page, what it is in a cached extent (`extent_cache.rs`).
    pub(crate) extent_tags: crate::states::PageTags,
    /// Extents that missed recently while the pool was full (`admission.rs`).
    pub(crate) ghosts: crate::admission::Ghosts,
    pub(crate) resident: ResidentSet,
    /// Resident pages, including frames reserved for loads in progress.
    /// Never exceeds `config.pool_pages()`.
    pub(crate) resident_count: AtomicU64,
    /// Of those, frames of cached extents.
    pub(crate) extent_count: AtomicU64,
    pub(crate) device: Box<dyn Device>,
    pub(crate) hook: Box<dyn WriteBackHook>,
    pub(crate) allocator: Mutex<Allocator>,
    /// One past the highest page id ever handed out; read on every fix (to
    /// reject unallocated ids), so it is an atomic beside the mutex, raised
    /// only under it.
    pub(crate) allocated: AtomicU64,
    /// Ids handed out and not yet logged (with tracking): the length of
    /// the allocator's list, readable without its mutex.
    allocating: AtomicU64,
    /// Spare page-sized buffers for write-back (sealed copies of pages).
    pub(crate) write_buffers: Mutex<Vec<Vec<Page>>>,
    pub(crate) counters: Counters,
    /// Readers of extents, by epoch (`extents.rs`).
    pub(crate) pins: crate::extents::Pins,
    /// Extents held out of reuse for versions (`extent_holds.rs`).
    pub(crate) holds: alloc::sync::Arc<crate::extent_holds::Holds>,
    /// Whether optimistic readers need fault recovery (exmap-like backends).
    pub(crate) guarded_reads: bool,
}

impl core::fmt::Debug for BufferManager {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BufferManager")
            .field("config", &self.config)
            .field("memory", &self.memory.name())
            .field("device", &self.device.describe())
            .finish()
    }
}

impl BufferManager {
    /// A buffer manager over `device`, with the memory backend
    /// `config.memory` chooses and no write-ahead log.
    pub fn open(config: Config, device: Box<dyn Device>) -> Result<BufferManager, Error> {
        config.validate()?;
        let memory = crate::memory::open_backend(&config, config.virtual_pages(), device.block_device())?;
        BufferManager::with_parts(config, device, memory, Box::new(NoLog))
    }

    /// A buffer manager from its parts: any memory backend covering
    /// `config.virtual_pages()` pages, and a write-back hook.
    pub fn with_parts(
        config: Config,
        device: Box<dyn Device>,
        memory: Box<dyn MemoryBackend>,
        hook: Box<dyn WriteBackHook>,
    ) -> Result<BufferManager, Error> {
        config.validate()?;
        let virtual_pages = memory.pages().min(config.virtual_pages());
        let device_pages = device.page_count().map_err(|source| Error::Read { page: PageId(0), source })?;
        if device_pages > virtual_pages {
            return Err(ConfigError::DeviceLargerThanReservation { device_pages, virtual_pages }.into());
        }
        let guarded_reads = memory.released_pages_fault();
        let fault_range = if guarded_reads {
            snowfall_sys::fault::install().map_err(|errno| crate::error::MemoryError::Reserve { bytes: 0, errno })?;
            // SAFETY: the backend's reservation stays mapped while the
            // backend lives, and the registration is dropped first (field order).
            let reg = unsafe { Registration::new(memory.base(), virtual_pages as usize * PAGE_SIZE) };
            Some(reg.map_err(|_| crate::error::MemoryError::Reserve { bytes: 0, errno: rustix::io::Errno::NOSPC })?)
        } else {
            None
        };
        log::info!(
            "buffer manager: pool {} MiB, reservation {} MiB, {} memory, device {} ({device_pages} pages)",
            config.pool_bytes >> 20,
            config.virtual_bytes >> 20,
            memory.name(),
            device.describe()
        );
        Ok(BufferManager {
            states: crate::states::PageStates::new(virtual_pages)?,
            tags: crate::states::PageTags::new(virtual_pages)?,
            in_flight: crate::states::PageTags::new(virtual_pages)?,
            first_change: crate::states::PageTags::new(virtual_pages)?,
            extent_tags: crate::states::PageTags::new(virtual_pages)?,
            ghosts: crate::admission::Ghosts::new(config.pool_pages()),
            resident: ResidentSet::new(config.pool_pages())?,
            resident_count: AtomicU64::new(0),
            extent_count: AtomicU64::new(0),
            allocator: Mutex::new(Allocator {
                free: FreeSpace::default(),
                tracking: false,
                allocating: Vec::new(),
                freeing: Vec::new(),
                young: Vec::new(),
                allocating_extents: Vec::new(),
                quarantine: Vec::new(),
            }),
            allocated: AtomicU64::new(device_pages),
            allocating: AtomicU64::new(0),
            write_buffers: Mutex::new(Vec::new()),
            counters: Counters::default(),
            pins: crate::extents::Pins::default(),
            holds: alloc::sync::Arc::default(),
            config,
            _fault_range: fault_range,
            memory,
            device,
            hook,
            guarded_reads,
        })
    }

    /// A word the layer above keeps for `page` (zero until it sets it; kept
    /// while the page is evicted and reloaded, never read or written by the
    /// buffer manager). `None` outside the reservation.
    pub fn page_tag(&self, page: PageId) -> Option<&AtomicU64> {
        self.tags.get(page)
    }

    /// The storage device (for writes the caller manages itself, such as a
    /// database's superblock, never to pages the buffer manager holds).
    pub fn device(&self) -> &dyn Device {
        &*self.device
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The memory backend.
    pub fn memory(&self) -> &dyn MemoryBackend {
        &*self.memory
    }

    /// Counts an optimistic restart of a layer above (a B-tree operation
    /// whose validation failed), in the same statistic as the buffer
    /// manager's own optimistic restarts.
    pub fn note_restart(&self) {
        self.count(Counter::Restart, 1);
    }

    /// Statistics so far.
    pub fn stats(&self) -> Stats {
        let resident = self.resident_count.load(Ordering::Relaxed);
        self.counters.snapshot(resident, self.extent_count.load(Ordering::Relaxed))
    }

    /// The most memory this buffer manager can hold resident, with
    /// `evicting_threads` threads evicting at once (docs/ARCHITECTURE.md,
    /// "The memory bound"):
    ///
    /// pool, plus 8 bytes per allocated page (the page states, in 4 KiB
    /// steps), plus the resident-set table, plus the write-back buffers
    /// (`eviction_batch` pages per evicting thread, and the spares kept).
    pub fn memory_bound_bytes(&self, evicting_threads: u64) -> u64 {
        let page = PAGE_SIZE as u64;
        let states = (self.allocated_pages() * 8).div_ceil(page) * page;
        let batch_bytes = self.config.eviction_batch as u64 * page;
        let write_buffers = (crate::evict::SPARE_WRITE_BUFFERS as u64 + evicting_threads) * batch_bytes;
        self.config.pool_bytes + states + self.resident.bytes() as u64 + write_buffers
    }

    /// Pages allocated so far (valid ids are below this).
    #[inline]
    pub fn allocated_pages(&self) -> u64 {
        self.allocated.load(Ordering::Acquire)
    }

    #[inline]
    pub(crate) fn page_ptr(&self, page: PageId) -> *mut Page {
        // In bounds: every caller checked `page` against the states array,
        // which has one word per page of the reservation.
        self.memory.base().wrapping_add(page.0 as usize * PAGE_SIZE).cast()
    }

    /// The latch of an allocated page.
    #[inline]
    pub(crate) fn latch(&self, page: PageId) -> Result<&LatchWord, Error> {
        let allocated = self.allocated_pages();
        if page.0 >= allocated {
            return Err(Error::PageNotAllocated { page, allocated });
        }
        self.states.get(page).ok_or(Error::PageNotAllocated { page, allocated })
    }

    /// Releases the memory of `pages` (held exclusively by the caller).
    pub(crate) fn release_memory(&self, pages: &[PageId]) -> Result<(), Error> {
        self.memory.release(pages)?;
        Ok(())
    }

    /// Makes `pages` available. A backend whose own pool ran dry (exmap:
    /// `ENOMEM`, pages stranded in other interfaces' free lists) gets a
    /// batch evicted and another try, a bounded number of times.
    pub(crate) fn prepare_memory(&self, pages: &[PageId]) -> Result<(), Error> {
        const ATTEMPTS: u32 = 8;
        let mut attempt = 0;
        loop {
            match self.memory.prepare(pages) {
                Err(crate::error::MemoryError::Prepare { errno: rustix::io::Errno::NOMEM, .. })
                    if attempt < ATTEMPTS =>
                {
                    attempt += 1;
                    self.evict_batch()?;
                }
                other => return other.map_err(Error::Memory),
            }
        }
    }

    #[inline]
    pub(crate) fn count(&self, counter: Counter, n: u64) {
        self.counters.add(counter, n);
    }

    // ---------------------------------------------------------------- frames

    /// Reserves one frame of the pool for a page about to become resident,
    /// evicting if the pool is full.
    pub(crate) fn reserve_frame(&self) -> Result<(), Error> {
        self.reserve_frames(1)
    }

    /// Reserves `n` frames of the pool at once (a page, or a cached
    /// extent), evicting until they fit. The pool bound is exact: the count
    /// is raised only while it stays within the limit.
    pub(crate) fn reserve_frames(&self, n: u64) -> Result<(), Error> {
        const ATTEMPTS: u32 = 1000;
        let pool = self.config.pool_pages();
        let mut backoff = Backoff::new();
        let mut fruitless = 0;
        // A batch whose dirty victims could not be written (a full disk)
        // frees nothing, but the clock hand moves on to other victims: try
        // on, and report the write error if nothing ever frees.
        let mut write_error = None;
        loop {
            let used = self.resident_count.load(Ordering::Relaxed);
            if used + n <= pool {
                if self
                    .resident_count
                    .compare_exchange_weak(used, used + n, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                {
                    return Ok(());
                }
                continue;
            }
            let freed = match self.evict_batch() {
                Ok(n) => n,
                Err(e @ (Error::WriteBack { .. } | Error::LogFlush { .. })) => {
                    write_error = Some(e);
                    0
                }
                Err(e) => return Err(e),
            };
            if freed == 0 {
                fruitless += 1;
                if fruitless >= ATTEMPTS {
                    return Err(write_error.unwrap_or(Error::PoolExhausted { pool_pages: pool }));
                }
                backoff.pause();
            }
        }
    }

    /// Gives back a frame reserved by [`reserve_frame`](Self::reserve_frame).
    pub(crate) fn unreserve_frames(&self, n: u64) {
        self.resident_count.fetch_sub(n, Ordering::AcqRel);
    }

    // ---------------------------------------------------------------- allocation

    /// Allocates a page: a freed id if there is one, else a new one. The
    /// page comes back zeroed (header filled in), dirty and latched
    /// exclusively.
    pub fn allocate(&self) -> Result<ExclusiveGuard<'_>, Error> {
        let page = {
            let mut a = self.allocator.lock();
            let page = match a.young.pop().map(|(_, p)| p).or_else(|| a.free.take_one()) {
                Some(p) => p,
                None => {
                    // Raised only under the allocator mutex: no lost updates.
                    let next = self.allocated.load(Ordering::Acquire);
                    if next >= self.states_pages() {
                        return Err(Error::OutOfSpace { virtual_pages: self.states_pages() });
                    }
                    self.allocated.store(next + 1, Ordering::Release);
                    PageId(next)
                }
            };
            if a.tracking {
                a.allocating.push(page);
                self.allocating.store(a.allocating.len() as u64, Ordering::Release);
            }
            page
        };
        self.latch_blank(page).inspect_err(|_| {
            self.allocator.lock().free.insert(page);
        })
    }

    /// Latches `page` exclusively for new contents: its memory is zeroed
    /// (header filled in) and it is dirty. The stored copy is not read.
    fn latch_blank(&self, page: PageId) -> Result<ExclusiveGuard<'_>, Error> {
        let latch = self.states.get(page).ok_or(Error::OutOfSpace { virtual_pages: self.states_pages() })?;
        // A new or freed page is normally evicted. An optimistic reader that
        // followed a stale pointer may have loaded a freed page again: then
        // it is resident, and its frame is reused as it is.
        let mut backoff = Backoff::new();
        let resident = loop {
            if latch.try_lock_evicted() {
                break false;
            }
            if latch.try_lock_exclusive() == Ok(true) {
                break true;
            }
            backoff.pause();
        };
        if !resident {
            let ready = self
                .reserve_frame()
                .and_then(|()| self.prepare_memory(&[page]).inspect_err(|_| self.unreserve_frames(1)));
            if let Err(e) = ready {
                latch.unlock_evicted();
                return Err(e);
            }
        }
        // SAFETY: we hold the page exclusively and its memory is prepared.
        unsafe { (*self.page_ptr(page)).init(page) };
        if !resident {
            self.resident.insert(page);
        }
        self.note_change(page);
        Ok(ExclusiveGuard::new(self, page, true))
    }

    /// Latches `page` exclusively without reading its stored copy, for
    /// contents that replace it whole (recovery writing a logged page
    /// image, which must work even if the stored copy is torn). The page
    /// comes back zeroed (header filled in) and dirty; its id is counted as
    /// allocated from now on.
    pub fn fix_overwrite(&self, page: PageId) -> Result<ExclusiveGuard<'_>, Error> {
        self.ensure_allocated(page.0 + 1)?;
        self.latch_blank(page)
    }

    /// Raises the allocation mark so that ids below `pages` are valid
    /// (recovery replaying pages allocated after the last checkpoint).
    pub fn ensure_allocated(&self, pages: u64) -> Result<(), Error> {
        if pages > self.states_pages() {
            return Err(Error::OutOfSpace { virtual_pages: self.states_pages() });
        }
        let _a = self.allocator.lock();
        if self.allocated.load(Ordering::Acquire) < pages {
            self.allocated.store(pages, Ordering::Release);
        }
        Ok(())
    }

    /// Sets where allocation stands: ids below `next` have been handed out,
    /// and `free` lists those among them that were freed (handed out again
    /// first). For opening a database whose allocation state was saved;
    /// call it before any page is in use.
    pub fn restore_allocation(&self, next: u64, free: FreeSpace) -> Result<(), Error> {
        if next > self.states_pages() {
            return Err(Error::OutOfSpace { virtual_pages: self.states_pages() });
        }
        let mut a = self.allocator.lock();
        self.allocated.store(next, Ordering::Release);
        a.free = free;
        a.allocating.clear();
        self.allocating.store(0, Ordering::Release);
        a.freeing.clear();
        a.young.clear();
        a.allocating_extents.clear();
        a.quarantine.clear();
        Ok(())
    }

    /// Starts tracking allocation for a write-ahead log. A page is handed
    /// out before the change that uses it is logged, and freed after the
    /// change that frees it is logged; a checkpoint taken in between must
    /// still count such pages as free, or a crash before the log reaches
    /// that change would leak them. So: [`allocate`](Self::allocate) notes
    /// the id until [`logged`](Self::logged) says its change is in the log,
    /// and `logged` notes freed ids until [`free`](Self::free) runs;
    /// [`allocation`](Self::allocation) counts both as free.
    pub fn track_allocation(&self) {
        self.allocator.lock().tracking = true;
    }

    /// A change that wrote `changed` and freed `freed` is in the log (call
    /// it atomically with the append, under the log's lock).
    pub fn logged(&self, changed: impl Iterator<Item = PageId>, freed: &[PageId]) {
        // Most changes neither allocate nor free: no lock then.
        if freed.is_empty() && self.allocating.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut a = self.allocator.lock();
        if !a.tracking {
            return;
        }
        for page in changed {
            if let Some(i) = a.allocating.iter().position(|&p| p == page) {
                a.allocating.swap_remove(i);
            }
        }
        self.allocating.store(a.allocating.len() as u64, Ordering::Release);
        a.freeing.extend_from_slice(freed);
    }

    /// Where allocation stands as far as the log knows: the allocation mark
    /// and the free ids (with tracking, also those handed out but not yet
    /// logged and those logged as freed but not yet freed).
    pub fn allocation(&self) -> (u64, FreeSpace) {
        let a = self.allocator.lock();
        (self.allocated.load(Ordering::Acquire), Self::not_in_use(&a, &[]))
    }

    fn not_in_use(a: &Allocator, also: &[PageId]) -> FreeSpace {
        let mut free = a.free.clone();
        let young = a.young.iter().map(|&(_, p)| p);
        for page in a.allocating.iter().chain(&a.freeing).chain(also).copied().chain(young) {
            free.insert(page);
        }
        // Extents not referenced yet, and released ones (durably so by the
        // time a checkpoint of this counts: it syncs the log first).
        let quarantined = a.quarantine.iter().map(|q| (q.start, q.pages));
        for (start, pages) in a.allocating_extents.iter().copied().chain(quarantined) {
            free.insert_run(start, pages);
        }
        free
    }

    /// What a checkpoint saves, taken under one lock so that every id below
    /// the returned mark is either in use as the log knows, in the returned
    /// free list, or one of the returned storage ids: the free ids (those of
    /// [`allocation`](Self::allocation) plus `also_free`), and as many ids
    /// as `storage(free ids)` says to store that list in, taken from the free
    /// list, which no allocation hands out until
    /// [`return_free`](Self::return_free), and, if it has too few, past the
    /// allocation mark.
    pub fn checkpoint_allocation(
        &self,
        also_free: &[PageId],
        storage: impl FnOnce(&FreeSpace) -> usize,
    ) -> Result<CheckpointAllocation, Error> {
        let mut a = self.allocator.lock();
        let free = Self::not_in_use(&a, also_free);
        let n = storage(&free);
        // Young pages too: a trunk is a sealed page, which a recovery never
        // mistakes for a torn one (given back, they are young again).
        let mut store: Vec<PageId> =
            core::iter::from_fn(|| a.young.pop().map(|(_, p)| p).or_else(|| a.free.take_one())).take(n).collect();
        let next = self.allocated.load(Ordering::Acquire);
        let short = (n - store.len()) as u64;
        if next + short > self.states_pages() {
            let at = self.hook.log_position();
            a.young.extend(store.iter().map(|&page| (at, page)));
            return Err(Error::OutOfSpace { virtual_pages: self.states_pages() });
        }
        self.allocated.store(next + short, Ordering::Release);
        store.extend((next..next + short).map(PageId));
        Ok(CheckpointAllocation { next: next + short, free, storage: store })
    }

    /// Gives storage ids from [`checkpoint_allocation`](Self::checkpoint_allocation) back
    /// (young: they may have been pages not long ago).
    pub fn return_free(&self, pages: &[PageId]) {
        let at = self.hook.log_position();
        let mut a = self.allocator.lock();
        a.young.extend(pages.iter().map(|&page| (at, page)));
    }

    /// Frees a page: its memory is released and its id reused by a later
    /// [`allocate`](Self::allocate). Its stored copy is not touched.
    pub fn free(&self, guard: ExclusiveGuard<'_>) -> Result<(), Error> {
        let page = guard.into_held();
        self.free_held(&[page], &[])
    }

    /// Frees pages nobody else uses, loading none of them: the memory of
    /// the resident ones is released (one call per chunk), the evicted
    /// ones only change hands. For dropping a whole tree, most of whose
    /// pages may be on disk only.
    pub fn free_pages(&self, pages: &[PageId]) -> Result<(), Error> {
        for chunk in pages.chunks(FREE_CHUNK) {
            let (mut resident, mut evicted) = (Vec::new(), Vec::new());
            for &page in chunk {
                let latch = match self.latch(page) {
                    Ok(latch) => latch,
                    Err(e) => {
                        self.unlock_held(&resident);
                        return Err(e);
                    }
                };
                // An eviction in progress finishes (and writes back) first.
                loop {
                    if latch.lock_exclusive().is_ok() {
                        resident.push(page);
                        break;
                    }
                    if latch.try_lock_evicted() {
                        latch.unlock_evicted();
                        evicted.push(page);
                        break;
                    }
                }
            }
            self.free_held(&resident, &evicted)?;
        }
        Ok(())
    }

    /// Frees `resident` pages the caller latched exclusively and `evicted`
    /// pages nobody uses.
    fn free_held(&self, resident: &[PageId], evicted: &[PageId]) -> Result<(), Error> {
        if let Err(e) = self.release_memory(resident) {
            self.unlock_held(resident);
            return Err(e);
        }
        for &page in resident {
            self.resident.remove(page);
            // Its changes are dropped with it: none is waiting to be written.
            self.note_written(page);
            if let Some(latch) = self.states.get(page) {
                latch.unlock_evicted();
            }
        }
        self.unreserve_frames(resident.len() as u64);
        let mut gone: Vec<PageId> = resident.iter().chain(evicted).copied().collect();
        gone.sort_unstable();
        // Young until a checkpoint is past this point (see `extents.rs`).
        let at = self.hook.log_position();
        let mut a = self.allocator.lock();
        a.young.extend(gone.iter().map(|&page| (at, page)));
        // Sorted, so that a drop of many pages stays linear in their number.
        a.freeing.retain(|p| gone.binary_search(p).is_err());
        Ok(())
    }

    /// Unlatches pages held exclusively, unchanged.
    fn unlock_held(&self, pages: &[PageId]) {
        for &page in pages {
            if let Some(latch) = self.states.get(page) {
                latch.unlock_exclusive(snowfall_latch::Flag::Keep);
            }
        }
    }

    pub(crate) fn states_pages(&self) -> u64 {
        self.memory.pages().min(self.config.virtual_pages())
    }

    // ---------------------------------------------------------------- fixing

    /// Latches `page` exclusively, loading it if it is not resident.
    pub fn fix_exclusive(&self, page: PageId) -> Result<ExclusiveGuard<'_>, Error> {
        let latch = self.latch(page)?;
        loop {
            match latch.lock_exclusive() {
                Ok(()) => {
                    self.count(Counter::Hit, 1);
                    return Ok(ExclusiveGuard::new(self, page, false));
                }
                Err(_evicted) => {
                    if latch.try_lock_evicted() {
                        self.load(page, latch)?;
                        return Ok(ExclusiveGuard::new(self, page, false));
                    }
                }
            }
        }
    }

    /// Latches `page` shared, loading it if it is not resident.
    pub fn fix_shared(&self, page: PageId) -> Result<SharedGuard<'_>, Error> {
        let latch = self.latch(page)?;
        loop {
            match latch.lock_shared() {
                Ok(()) => {
                    self.count(Counter::Hit, 1);
                    return Ok(SharedGuard::new(self, page));
                }
                Err(_evicted) => self.load_unlatched(page, latch)?,
            }
        }
    }

    /// Loads `page` if it is evicted and leaves it unlatched (readers then
    /// latch it their own way). Returns at once if another thread loads it.
    pub(crate) fn load_unlatched(&self, page: PageId, latch: &LatchWord) -> Result<(), Error> {
        if latch.try_lock_evicted() {
            self.load(page, latch)?;
            latch.unlock_exclusive(snowfall_latch::Flag::Keep);
        }
        Ok(())
    }

    /// Evicts until at most `resident_pages` pages are resident, or until
    /// nothing more can be evicted (pages latched by their users stay).
    /// Dirty pages are written back first; the first write-back error stops
    /// it (the page stays dirty and resident).
    pub fn evict_until(&self, resident_pages: u64) -> Result<(), Error> {
        // Two turns of the clock (mark, then evict) per batch, at most.
        let mut idle_rounds = 0;
        while self.resident_count.load(Ordering::Acquire) > resident_pages && idle_rounds < 2 {
            if self.evict_batch()? == 0 {
                idle_rounds += 1;
            } else {
                idle_rounds = 0;
            }
        }
        Ok(())
    }

    /// What the buffer manager knows about `page` right now (for tests,
    /// diagnostics and statistics; stale as soon as it returns).
    pub fn page_state(&self, page: PageId) -> Result<PageState, Error> {
        let w = self.latch(page)?.load();
        Ok(PageState { resident: w.state() != snowfall_latch::word::EVICTED, dirty: w.flag(), version: w.version() })
    }

    // ---------------------------------------------------------------- write-back

    /// Whether a checkpoint's flush is writing `page` now.
    pub(crate) fn in_flight(&self, page: PageId) -> bool {
        self.in_flight.get(page).is_some_and(|f| f.load(Ordering::Acquire) != 0)
    }

    /// Checks internal invariants (for tests after a run, with no thread
    /// using the buffer manager): the resident count matches the resident
    /// set, stays within the pool, and every resident page's state is not
    /// evicted. Returns a description of the first violation.
    pub fn check_invariants(&self) -> Result<(), alloc::string::String> {
        let count = self.resident_count.load(Ordering::Acquire);
        // A cached extent's head stands for all its frames.
        let mut in_set = 0;
        self.resident.clock_all(|page| in_set += self.cached_extent_pages(page).unwrap_or(1));
        if count != in_set {
            return Err(alloc::format!("resident count {count} but {in_set} frames in the resident set"));
        }
        if count > self.config.pool_pages() {
            return Err(alloc::format!("{count} resident pages exceed the pool of {}", self.config.pool_pages()));
        }
        let mut bad = None;
        self.resident.clock_all(|page| {
            let state = self.states.get(page).map(|l| l.load());
            if bad.is_none()
                && state.is_none_or(|w| {
                    w.state() != snowfall_latch::word::UNLOCKED && w.state() != snowfall_latch::word::MARKED
                })
            {
                bad = Some(alloc::format!("resident {page} has state {state:?}"));
            }
        });
        bad.map_or(Ok(()), Err)
    }
}
