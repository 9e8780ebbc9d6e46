//! Checkpoints: bound recovery and free the log.
//!
//! 1. Under the catalog lock and the log's lock at once, the log is cut at
//!    a fresh block, whose first LSN becomes the *redo point*, and the state
//!    there is snapshotted: the allocation mark, the free pages (those the
//!    log knows of: see `BufferManager::track_allocation`), the catalog,
//!    and the oldest batch still open (the *scan point*). Everything before
//!    the redo point is made durable in the log.
//! 2. Every dirty page is written back (log first, and protected against
//!    a torn write as the last checkpoint requires: `double_write.rs`) and
//!    the file synced. Neither readers nor writers wait for it: each page
//!    is copied under its latch and written without it (a writer that
//!    changes it meanwhile leaves it dirty). Then the double-write floor is raised to the new
//!    redo point: a page written back from now on is copied first unless
//!    the log holds an image of it from that point on.
//! 3. The free list goes into trunk pages taken from the free pages, which
//!    stay withheld from allocation until the next checkpoint replaces
//!    them; synced.
//! 4. The superblock goes into the slot the last one is not in; synced.
//!    Only now is the checkpoint in effect: the log before the scan point
//!    may be overwritten, and the previous trunk pages are free again.
//!
//! A crash anywhere before step 4 completes leaves the previous checkpoint
//! in effect, whose log is still whole.

use core::sync::atomic::Ordering;

use alloc::vec::Vec;
use snowfall_buffer::PageId;

use crate::db::Inner;
use crate::error::Error;
use crate::freelist::{self, trunks_for};
use crate::superblock::Superblock;

impl Inner {
    /// Takes a checkpoint, waiting for one in progress to finish first.
    pub(crate) fn checkpoint(&self) -> Result<(), Error> {
        let _one = self.checkpointing.lock();
        self.checkpoint_now()
    }

    /// Takes a checkpoint unless one is in progress.
    pub(crate) fn try_checkpoint(&self) -> Result<(), Error> {
        match self.checkpointing.try_lock() {
            Some(_one) => self.checkpoint_now(),
            None => Ok(()),
        }
    }

    /// Steps 2 and 3: every dirty page, then the free list into `trunks`;
    /// returns the free list's head.
    fn write_out(&self, redo: u64, trunks: &[PageId], free: &[PageId]) -> Result<u64, Error> {
        self.bm.flush().map_err(|e| self.failed(Error::Buffer(e)))?;
        // The pages just written are synced, so they need no protection
        // once this checkpoint is in effect; any page written from here on
        // may be in flight when it takes effect: it needs protection from
        // the new redo point. (The free list's sync below makes durable the
        // evictions that finished under the old floor.)
        self.hook.copies.raise(redo);
        let device = self.bm.device();
        freelist::write(device, trunks, free, redo)
            .and_then(|h| device.sync().map(|()| h))
            .map_err(|source| self.failed(Error::Io { file: self.file.clone(), source }))
    }

    fn checkpoint_now(&self) -> Result<(), Error> {
        self.check_writable()?;
        self.checkpoint_running.store(true, Ordering::Relaxed);
        let result = self.checkpoint_steps();
        self.checkpoint_running.store(false, Ordering::Relaxed);
        result
    }

    fn checkpoint_steps(&self) -> Result<(), Error> {
        let (redo, scan, next, free, trunks, catalog) = {
            let state = self.state.lock();
            let (_, snap) = self
                .log
                .flush_marked(|redo| {
                    // The last checkpoint's trunks are free once this one
                    // is in effect; this one's trunks come from free pages
                    // (or past the mark if there are too few).
                    let allocation = self.bm.checkpoint_allocation(&state.quarantine, trunks_for);
                    let scan = self.batches.lock().iter().map(|&(_, lsn)| lsn).min().unwrap_or(redo).min(redo);
                    (redo, scan, allocation, state.catalog.clone())
                })
                .map_err(|e| self.failed(Error::Log(e)))?;
            let (redo, scan, allocation, catalog) = snap;
            let a = allocation.map_err(Error::Buffer)?;
            (redo, scan, a.next, a.free, a.storage, catalog)
        };
        let written = self.write_out(redo, &trunks, &free);
        let free_head = match written {
            Ok(head) => head,
            Err(e) => {
                // Not in effect: the pages set aside for the free list are
                // free again (a full disk lets a later checkpoint retry).
                self.bm.return_free(&trunks);
                return Err(e);
            }
        };
        // 4. The superblock.
        let file = || self.file.clone();
        let device = self.bm.device();
        let mut state = self.state.lock();
        let sb = Superblock {
            generation: state.sb.generation + 1,
            epoch: self.log.epoch(),
            checkpoint_epoch: self.log.epoch(),
            redo,
            scan,
            page_count: next,
            free_head,
            free_pages: free.len() as u64,
            catalog,
            ..state.sb.clone()
        };
        let page = crate::open::aligned(sb.encode());
        device
            .write_page(sb.slot(), &page.0)
            .and_then(|()| device.sync())
            .map_err(|source| self.failed(Error::Io { file: file(), source }))?;
        state.sb = sb;
        self.log.release_before(scan);
        self.last_checkpoint.store(redo, Ordering::Release);
        self.last_checkpoint_at.store(snowfall_sys::clock::Instant::now().as_nanos(), Ordering::Relaxed);
        let released: Vec<PageId> = core::mem::replace(&mut state.quarantine, trunks);
        self.bm.return_free(&released);
        // Everything is written: a full disk, if there was one, has room.
        *self.no_space.lock() = None;
        log::debug!("{}: checkpoint at LSN {redo} (scan from {scan}), {} free pages", self.file, free.len());
        Ok(())
    }
}
