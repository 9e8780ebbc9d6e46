//! Extents: runs of consecutive page ids that hold one large value's bytes,
//! written once straight to the device by the layer above (never written
//! back: a cached copy, `extent_cache.rs`, is never dirty).
//!
//! Their allocation follows pages' with two extra rules, both because an
//! extent's bytes are not in the log:
//!
//! - **Released extents wait for their release to be durable.** Were they
//!   reused before the log record releasing them is on disk, a crash could
//!   bring the old value back over another value's bytes. A release is
//!   quarantined with the position of its record (or, inside a batch, until
//!   the batch's commit record) and returns to the free runs once the log is
//!   durable past it.
//! - **And for their readers to be gone.** A reader pins the extents
//!   ([`BufferManager::pin_extents`]) before it reads a reference from a
//!   leaf, and keeps the pin while it reads the value. Pins count in one of
//!   two counters by the parity of an epoch; a release notes the epoch it
//!   happened in. The epoch moves on only when the counter of the epoch
//!   before it is zero, so once it has moved twice past a release, every
//!   reader that could have read the released reference has unpinned (one
//!   that pinned later read the leaf after the release). A reader that
//!   keeps its pin holds back the reuse of everything released meanwhile,
//!   as a long read transaction does in LMDB.
//! - **Freed pages become extents only once old.** A page freed from a tree
//!   may still have copies in the double-write area, which recovery puts
//!   back over any stored page that fails its checksum, as an extent's raw
//!   bytes do. Such copies serve only redo from a checkpoint older than the
//!   free, so freed pages stay *young* (reused for pages, not extents) until
//!   a checkpoint whose redo point is past the free is installed
//!   ([`BufferManager::release_young`]).
//!
//! Checkpoints count extents handed out but not yet referenced, and released
//! ones, as free (as for pages): a crash before a reference is logged leaks
//! nothing.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::error::Error;
use crate::manager::BufferManager;

/// An extent: (first page id, pages).
pub type Extent = (u64, u64);

/// An extent whose release is logged, waiting to be reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Quarantined {
    pub(crate) start: u64,
    pub(crate) pages: u64,
    /// Reusable once the log is durable past this position.
    after: u64,
    /// The batch whose commit it waits for (0: none; `after` is then set).
    batch: u64,
    /// The pins' epoch when it was released.
    epoch: u64,
}

/// Readers of extents: an epoch and the pins taken in each parity of it.
#[derive(Debug, Default)]
pub(crate) struct Pins {
    epoch: AtomicU64,
    readers: [AtomicU64; 2],
}

/// A pin on extents: while it lives, no extent whose reference the holder
/// may have read is reused. See the module docs.
#[derive(Debug)]
pub struct ExtentPin<'a> {
    pins: &'a Pins,
    parity: usize,
}

impl Drop for ExtentPin<'_> {
    fn drop(&mut self) {
        if let Some(r) = self.pins.readers.get(self.parity) {
            r.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Pins {
    fn pin(&self) -> ExtentPin<'_> {
        loop {
            let epoch = self.epoch.load(Ordering::SeqCst);
            let parity = (epoch % 2) as usize;
            let readers = self.readers.get(parity);
            if let Some(r) = readers {
                r.fetch_add(1, Ordering::SeqCst);
            }
            // Counted in the epoch it read (else the epoch may have moved
            // past it without seeing this pin): try again.
            if self.epoch.load(Ordering::SeqCst) == epoch {
                return ExtentPin { pins: self, parity };
            }
            if let Some(r) = readers {
                r.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// Moves the epoch on if no pin of the epoch before it is left; the
    /// epoch now.
    fn advance(&self) -> u64 {
        let epoch = self.epoch.load(Ordering::SeqCst);
        let before = self.readers.get(((epoch + 1) % 2) as usize).map_or(0, |r| r.load(Ordering::SeqCst));
        if before == 0 {
            let _ = self.epoch.compare_exchange(epoch, epoch + 1, Ordering::SeqCst, Ordering::SeqCst);
        }
        self.epoch.load(Ordering::SeqCst)
    }
}

impl BufferManager {
    /// Hands out `pages` consecutive ids for an extent: the shortest free
    /// run that holds them, else new ids past the allocation mark. `durable`
    /// is where the log is durable (releases before it become reusable
    /// first). With tracking, the extent counts as free until
    /// [`logged_extents`](Self::logged_extents) says a reference to it is
    /// in the log; give it back with
    /// [`abandon_extent`](Self::abandon_extent) if it never will be.
    pub fn allocate_extent(&self, pages: u64, durable: u64) -> Result<u64, Error> {
        let mut a = self.allocator.lock();
        let mut epoch = self.pins.epoch.load(Ordering::SeqCst);
        if !a.quarantine.is_empty() {
            self.pins.advance();
            epoch = self.pins.advance();
        }
        // Extents whose last hold went wait two epochs from now, as if
        // released now (`extent_holds.rs`); held ones wait.
        let mut holds = self.holds.state();
        for start in holds.take_let_go() {
            for q in a.quarantine.iter_mut().filter(|q| q.start == start) {
                q.epoch = epoch;
            }
        }
        let mut i = 0;
        while let Some(q) = a.quarantine.get(i).copied() {
            // Its cached copy goes first: its pages may become anything.
            if q.batch == 0
                && durable > q.after
                && epoch >= q.epoch + 2
                && !holds.is_held(q.start)
                && self.uncache_extent(q.start, false)
            {
                a.quarantine.swap_remove(i);
                a.free.insert_run(q.start, q.pages);
            } else {
                i += 1;
            }
        }
        let start = match a.free.take_run(pages) {
            Some(start) => start,
            None => {
                let next = self.allocated.load(Ordering::Acquire);
                let end = next.checked_add(pages).filter(|&end| end <= self.states_pages());
                if end.is_none() {
                    return Err(Error::OutOfSpace { virtual_pages: self.states_pages() });
                }
                self.allocated.store(next + pages, Ordering::Release);
                next
            }
        };
        a.allocating_extents.push((start, pages));
        Ok(start)
    }

    /// Gives back an extent from [`allocate_extent`](Self::allocate_extent)
    /// that no log record references (its write failed, or its writer gave
    /// up).
    ///
    /// A cached copy ([`new_extent`](Self::new_extent)) is evicted first; if
    /// its memory cannot be released, the extent stays counted as free by
    /// checkpoints but is never handed out again by this process.
    pub fn abandon_extent(&self, start: u64, pages: u64) {
        if !self.uncache_extent(start, true) {
            return;
        }
        let mut a = self.allocator.lock();
        if let Some(i) = a.allocating_extents.iter().position(|&e| e == (start, pages)) {
            a.allocating_extents.swap_remove(i);
        }
        a.free.insert_run(start, pages);
    }

    /// Keeps the first `keep` pages of an extent from
    /// [`allocate_extent`](Self::allocate_extent) not yet referenced and gives
    /// the rest back (a streaming writer's last extent, once it knows the
    /// value's length; never cached: it writes without the pool).
    pub fn trim_extent(&self, start: u64, pages: u64, keep: u64) {
        if keep >= pages {
            return;
        }
        let mut a = self.allocator.lock();
        if let Some(e) = a.allocating_extents.iter_mut().find(|e| **e == (start, pages)) {
            *e = (start, keep);
        }
        a.allocating_extents.retain(|e| e.1 != 0);
        a.free.insert_run(start + keep, pages - keep);
    }

    /// A record starting at `at` that references the extents `referenced`
    /// and releases `released` is in the log (call it atomically with the
    /// append, under the log's lock). A referenced extent not handed out by
    /// [`allocate_extent`](Self::allocate_extent) (an undo putting an old
    /// reference back) is taken from the free runs. Released extents are
    /// reused once the log is durable past `at`, or inside `batch` (not 0)
    /// once [`batch_committed`](Self::batch_committed) says so.
    pub fn logged_extents(&self, referenced: &[Extent], released: &[Extent], at: u64, batch: u64) {
        if referenced.is_empty() && released.is_empty() {
            return;
        }
        let mut a = self.allocator.lock();
        for &(start, pages) in referenced {
            if let Some(i) = a.allocating_extents.iter().position(|&e| e == (start, pages)) {
                a.allocating_extents.swap_remove(i);
            } else {
                a.free.remove_run(start, pages);
                let end = start.saturating_add(pages);
                if self.allocated.load(Ordering::Acquire) < end {
                    self.allocated.store(end, Ordering::Release);
                }
            }
        }
        let epoch = self.pins.epoch.load(Ordering::SeqCst);
        for &(start, pages) in released {
            let after = if batch == 0 { at } else { u64::MAX };
            a.quarantine.push(Quarantined { start, pages, after, batch, epoch });
        }
    }

    /// Pins extents for reading: take it before reading a reference from a
    /// leaf, keep it while reading the value.
    pub fn pin_extents(&self) -> ExtentPin<'_> {
        self.pins.pin()
    }

    /// Takes `extents` out of the free runs (recovery: the old values a
    /// batch's undo is about to reference again).
    pub fn claim_extents(&self, extents: &[Extent]) {
        let mut a = self.allocator.lock();
        for &(start, pages) in extents {
            a.free.remove_run(start, pages);
        }
    }

    /// Batch `batch` committed in a record starting at `at`: its released
    /// extents are reused once the log is durable past it.
    pub fn batch_committed(&self, batch: u64, at: u64) {
        let mut a = self.allocator.lock();
        for q in a.quarantine.iter_mut().filter(|q| q.batch == batch) {
            q.batch = 0;
            q.after = at;
        }
    }

    /// A checkpoint whose redo point is `redo` is installed: pages freed
    /// before it may become extents from now on.
    pub fn release_young(&self, redo: u64) {
        let mut a = self.allocator.lock();
        let young = core::mem::take(&mut a.young);
        let (old, still): (Vec<_>, Vec<_>) = young.into_iter().partition(|&(at, _)| at < redo);
        for (_, page) in old {
            a.free.insert(page);
        }
        a.young = still;
    }
}
