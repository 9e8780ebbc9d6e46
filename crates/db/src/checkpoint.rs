//! Checkpoints: bound recovery and free the log, continuously.
//!
//! A checkpoint installs a *cut*: a point of the log, the *redo point*,
//! and the state there (the allocation mark, the free pages the log knows
//! of, the catalog, the oldest batch still open: the *scan point*). Once
//! every change logged before the redo point is in the data file, the cut
//! can be installed: the double-write floor is raised to the redo point,
//! the free list goes into trunk pages set aside when the cut was taken
//! (synced, which makes every page written so far durable), and the
//! superblock names the cut (synced). Only then may the log before the
//! scan point be overwritten. A crash before the superblock is synced
//! leaves the previous checkpoint in effect, whose log is still whole.
//!
//! Incremental (the default, [`Inner::checkpoint_step`]): every
//! `checkpoint_bytes / 16` of log, a new cut is taken and kept pending,
//! the pages whose oldest unwritten change is older than about
//! `checkpoint_bytes` of log are written back (in page order, no latch
//! held during the I/O), and the newest pending cut older than every
//! unwritten change left is installed. So pages are written steadily, each
//! once per `checkpoint_bytes` of log at most however often it changes, no
//! writer waits for a whole checkpoint, and recovery replays about
//! `checkpoint_bytes` of log at most. A page changed often is written as
//! rarely as one changed once.
//!
//! Full ([`Inner::checkpoint`]: on open and close, on request, when a
//! minute passes with writes but no install, or when the log ring is
//! nearly full): a cut now, every page with a change before it written,
//! installed at once.
//!
//! Each cut sets trunk pages aside from the free pages for its free list;
//! they stay withheld from allocation while it is pending or installed,
//! and each cut's free list counts the trunks of the installed and pending
//! cuts before it as free (they are, once it is installed).

use core::sync::atomic::Ordering;

use alloc::string::String;
use alloc::vec::Vec;
use snowfall_buffer::{FreeSpace, PageId, WrittenBack};

use crate::db::Inner;
use crate::error::Error;
use crate::freelist::{self, trunks_for};
use crate::superblock::Superblock;

/// A cut of the log and the state there, waiting to be installed.
pub(crate) struct Cut {
    redo: u64,
    scan: u64,
    next: u64,
    free: FreeSpace,
    trunks: Vec<PageId>,
    catalog: Vec<(String, PageId)>,
}

impl Cut {
    /// The pages set aside to store its free list.
    pub(crate) fn trunks(&self) -> impl Iterator<Item = PageId> + '_ {
        self.trunks.iter().copied()
    }
}

/// Cuts per `checkpoint_bytes` of log (the granularity of the redo point).
const STEPS: u64 = 16;

impl Inner {
    /// Takes a full checkpoint, waiting for one in progress to finish first.
    pub(crate) fn checkpoint(&self) -> Result<(), Error> {
        let mut pending = self.checkpointing.lock();
        self.running(|| self.checkpoint_all(&mut pending))
    }

    /// Takes a full checkpoint unless one is in progress.
    pub(crate) fn try_checkpoint(&self) -> Result<(), Error> {
        match self.checkpointing.try_lock() {
            Some(mut pending) => self.running(|| self.checkpoint_all(&mut pending)),
            None => Ok(()),
        }
    }

    /// The incremental checkpoint's steps, as long as the log has grown a
    /// step since the last cut (and no checkpoint is running).
    pub(crate) fn checkpoint_step(&self) -> Result<(), Error> {
        // Writers call this before every write: no lock unless a step is due.
        if self.log.appended() < self.last_cut.load(Ordering::Acquire).saturating_add(self.step_bytes()) {
            return Ok(());
        }
        let Some(mut pending) = self.checkpointing.try_lock() else { return Ok(()) };
        // Writers may have run ahead: catch up, a bounded number of steps.
        for _ in 0..STEPS {
            let head = self.log.appended();
            if head < self.last_cut.load(Ordering::Acquire).saturating_add(self.step_bytes()) {
                break;
            }
            self.check_writable()?;
            self.running(|| self.step_locked(&mut pending, head))?;
        }
        Ok(())
    }

    /// Whether writers are so far ahead of a background checkpointer that
    /// they should take steps themselves: the log to replay has grown half
    /// a window past the window.
    pub(crate) fn checkpoint_behind(&self) -> bool {
        let w = self.window();
        self.log.appended().saturating_sub(self.last_checkpoint.load(Ordering::Acquire)) >= w.saturating_add(w / 2)
    }

    /// The log a crash may replay: `checkpoint_bytes`, but at most half
    /// the ring (the rest is for writes while pages are written back).
    pub(crate) fn window(&self) -> u64 {
        self.options.checkpoint_bytes.min(self.log.ring() * 4096 / 2)
    }

    /// Log between two cuts of the incremental checkpoint.
    fn step_bytes(&self) -> u64 {
        (self.window() / STEPS).max(64 << 10)
    }

    fn running(&self, f: impl FnOnce() -> Result<(), Error>) -> Result<(), Error> {
        self.checkpoint_running.store(true, Ordering::Relaxed);
        let result = f();
        self.checkpoint_running.store(false, Ordering::Relaxed);
        result
    }

    fn step_locked(&self, pending: &mut Vec<Cut>, head: u64) -> Result<(), Error> {
        let cut = self.cut(pending)?;
        pending.push(cut);
        let step = self.step_bytes();
        // Pages with changes this old are written now: the oldest change
        // left is then at most `checkpoint_bytes - 3 steps` old, the newest
        // cut before it a step older, and an install (below) waits for the
        // redo point to move two steps: the log a crash replays stays
        // within `checkpoint_bytes`.
        let before = head.saturating_sub(self.window().saturating_sub(3 * step));
        let oldest = self.write_older(before)?.oldest_left.unwrap_or(u64::MAX);
        let installed = self.last_checkpoint.load(Ordering::Acquire);
        // Each install raises the double-write floor (pages written after
        // it are copied again): not more often than every two steps.
        if let Some(i) = pending.iter().rposition(|c| c.redo <= oldest)
            && pending.get(i).is_some_and(|c| c.redo >= installed.saturating_add(2 * step))
        {
            let cuts: Vec<Cut> = pending.drain(..=i).collect();
            self.install(cuts)?;
        }
        Ok(())
    }

    fn checkpoint_all(&self, pending: &mut Vec<Cut>) -> Result<(), Error> {
        self.check_writable()?;
        let cut = self.cut(pending)?;
        let redo = cut.redo;
        pending.push(cut);
        // A page whose first change is being made right now is written once
        // its writer lets go of it.
        loop {
            let done = self.write_older(redo)?;
            if done.oldest_left.is_none_or(|at| at >= redo) {
                break;
            }
            if done.pages == 0 {
                snowfall_sys::clock::sleep(core::time::Duration::from_micros(100));
            }
        }
        let cuts = core::mem::take(pending);
        self.install(cuts)?;
        // Everything is written: a full disk, if there was one, has room.
        let mut no_space = self.no_space.lock();
        *no_space = None;
        self.full.store(false, Ordering::Release);
        Ok(())
    }

    /// Writes back the pages with a change logged before `before`, in
    /// batches as large as the double-write area allows (each batch that
    /// needs copies costs a sync of the log file): up to 512 pages, an
    /// eighth of the area.
    fn write_older(&self, before: u64) -> Result<WrittenBack, Error> {
        let batch = (self.hook.copies.capacity() / 8).clamp(1, 512) as usize;
        self.bm.write_back_older(before, batch).map_err(|e| self.failed(Error::Buffer(e)))
    }

    /// Cuts the log at a fresh block and takes the state there (under the
    /// catalog lock and the log's lock at once); everything before the cut
    /// is made durable in the log.
    fn cut(&self, pending: &[Cut]) -> Result<Cut, Error> {
        let state = self.state.lock();
        // Free once this cut is installed: the trunks of the cuts before it.
        let mut withheld = state.quarantine.clone();
        for c in pending {
            withheld.extend_from_slice(&c.trunks);
        }
        let (_, snap) = self
            .log
            .flush_marked(|redo| {
                let allocation = self.bm.checkpoint_allocation(&withheld, trunks_for);
                let scan = self.batches.lock().iter().map(|&(_, lsn)| lsn).min().unwrap_or(redo).min(redo);
                (redo, scan, allocation, state.catalog.clone())
            })
            .map_err(|e| self.failed(Error::Log(e)))?;
        let (redo, scan, allocation, catalog) = snap;
        self.last_cut.fetch_max(redo, Ordering::AcqRel);
        let a = allocation.map_err(Error::Buffer)?;
        Ok(Cut { redo, scan, next: a.next, free: a.free, trunks: a.storage, catalog })
    }

    /// Installs the last of `cuts` (every change logged before its redo
    /// point is in the data file, not necessarily synced); the trunks of
    /// the others, older, are free again once it is.
    fn install(&self, mut cuts: Vec<Cut>) -> Result<(), Error> {
        let Some(cut) = cuts.pop() else { return Ok(()) };
        let older: Vec<PageId> = cuts.iter().flat_map(|c| c.trunks.iter().copied()).collect();
        // Any page written from here on may be in flight when this cut
        // takes effect: it needs protection from the new redo point. (The
        // free list's sync below makes durable the pages written so far,
        // under the old floor.)
        self.hook.copies.raise(cut.redo);
        let device = self.bm.device();
        let file = || self.file.clone();
        let written = freelist::write(device, &cut.trunks, &cut.free, cut.redo)
            .and_then(|h| device.sync().map(|()| h))
            .map_err(|source| self.failed(Error::Io { file: file(), source }));
        let free_head = match written {
            Ok(head) => head,
            Err(e) => {
                // Not in effect: the pages set aside for free lists are free
                // again (a full disk lets a later checkpoint retry).
                self.bm.return_free(&cut.trunks);
                self.bm.return_free(&older);
                return Err(e);
            }
        };
        let mut state = self.state.lock();
        let sb = Superblock {
            generation: state.sb.generation + 1,
            epoch: self.log.epoch(),
            checkpoint_epoch: self.log.epoch(),
            redo: cut.redo,
            scan: cut.scan,
            page_count: cut.next,
            free_head,
            free_pages: cut.free.len(),
            catalog: cut.catalog,
            lifetime: self.lifetime(),
            ..state.sb.clone()
        };
        let page = crate::open::aligned(sb.encode());
        device
            .write_page(sb.slot(), &page.0)
            .and_then(|()| device.sync())
            .map_err(|source| self.failed(Error::Io { file: file(), source }))?;
        state.sb = sb;
        self.log.release_before(cut.scan);
        self.last_checkpoint.store(cut.redo, Ordering::Release);
        self.last_checkpoint_at.store(snowfall_sys::clock::Instant::now().as_nanos(), Ordering::Relaxed);
        self.checkpoints.fetch_add(1, Ordering::Relaxed);
        let released: Vec<PageId> = core::mem::replace(&mut state.quarantine, cut.trunks);
        self.bm.return_free(&released);
        self.bm.return_free(&older);
        // Copies of pages freed before the redo point can no longer be put
        // back by a recovery: such pages may now hold large values.
        self.bm.release_young(cut.redo);
        log::debug!(
            "{}: checkpoint at LSN {} (scan from {}), {} free pages",
            self.file,
            cut.redo,
            cut.scan,
            cut.free.len()
        );
        Ok(())
    }
}
