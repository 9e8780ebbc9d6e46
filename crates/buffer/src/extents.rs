//! Extents: runs of consecutive page ids that hold one large value's bytes,
//! written once straight to the device by the layer above and never cached
//! in the pool (so eviction, write-back and checksums never see them).
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
use core::sync::atomic::Ordering;

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
        let mut i = 0;
        while let Some(q) = a.quarantine.get(i).copied() {
            if q.batch == 0 && durable > q.after {
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
    pub fn abandon_extent(&self, start: u64, pages: u64) {
        let mut a = self.allocator.lock();
        if let Some(i) = a.allocating_extents.iter().position(|&e| e == (start, pages)) {
            a.allocating_extents.swap_remove(i);
        }
        a.free.insert_run(start, pages);
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
        for &(start, pages) in released {
            a.quarantine.push(Quarantined { start, pages, after: if batch == 0 { at } else { u64::MAX }, batch });
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
