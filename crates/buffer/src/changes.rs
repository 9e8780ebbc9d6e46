//! Where each dirty page's oldest unwritten change lies in the log, and
//! write-back oldest first.
//!
//! A checkpoint may move its redo point to LSN `r` only once every change
//! logged before `r` is in the data file. Dirty flags alone cannot tell
//! which pages hold such changes, so each page keeps, from its first change
//! after it was last written until it is written again, the log position
//! that change was about to be logged at (a lower bound of its LSN, taken
//! from [`WriteBackHook::log_position`](crate::WriteBackHook::log_position)
//! before the change is made, so before it is logged: a checkpoint that cut
//! the log after that record was appended is sure to see it). Checkpoints
//! then write the pages whose oldest change is old, and learn how far the
//! redo point may move from the oldest change left.

use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use crate::error::Error;
use crate::manager::BufferManager;
use crate::page::PageId;

/// What [`BufferManager::write_back_older`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WrittenBack {
    /// Pages written.
    pub pages: usize,
    /// The oldest log position an unwritten change of a page starts at or
    /// after, once the writes are done (`None`: no page has one).
    pub oldest_left: Option<u64>,
}

fn min(oldest: Option<u64>, at: u64) -> Option<u64> {
    Some(oldest.map_or(at, |o| o.min(at)))
}

impl BufferManager {
    /// A change to `page`, latched exclusively, is about to be made: if it
    /// is the first since the page was last written, remember where the log
    /// stands.
    pub(crate) fn note_change(&self, page: PageId) {
        if let Some(first) = self.first_change.get(page)
            && first.load(Ordering::Relaxed) == 0
        {
            first.store(self.hook.log_position().saturating_add(1), Ordering::Release);
        }
    }

    /// `page` (latched, so unchanging) was written, or freed: no change of it
    /// waits to be written.
    pub(crate) fn note_written(&self, page: PageId) {
        if let Some(first) = self.first_change.get(page) {
            first.store(0, Ordering::Release);
        }
    }

    /// A copy of `page` taken when its oldest-change word read `first`, and
    /// when the log stood at `position` or later, is written, but the page
    /// changed since: its unwritten changes begin at `position` or later.
    /// (Unless the word moved on meanwhile: a page freed and cleared.)
    pub(crate) fn note_written_before(&self, page: PageId, first: u64, position: u64) {
        if let Some(f) = self.first_change.get(page)
            && first != 0
        {
            let _ =
                f.compare_exchange(first, position.saturating_add(1).max(first), Ordering::AcqRel, Ordering::Acquire);
        }
    }

    /// The log position the oldest unwritten change of `page` starts at or
    /// after, if it has one.
    fn first_change_of(&self, page: PageId) -> Option<u64> {
        self.first_change.get(page).map(|f| f.load(Ordering::Acquire)).filter(|&f| f != 0).map(|f| f - 1)
    }

    /// The oldest log position an unwritten change of any page starts at or
    /// after (`None`: no page has one). Every change logged before it is in
    /// the data file once the device is synced (changes noted after this
    /// call begins come later in the log than anything logged before).
    pub fn oldest_change(&self) -> Option<u64> {
        let mut oldest = None;
        self.resident.clock_all(|page| {
            if let Some(at) = self.first_change_of(page) {
                oldest = min(oldest, at);
            }
        });
        oldest
    }

    /// Writes back the resident pages whose oldest unwritten change starts
    /// before log position `before`, in page order, without holding their
    /// latches during the I/O (writers never wait for the disk); does not
    /// sync. A page being changed for the first time right now is left for
    /// a later call (its change may not be logged yet). `batch`: pages per
    /// write-back batch (one call of the hook each; 0: the eviction batch).
    /// Returns how many pages were written and, from the same pass over the
    /// resident pages, the oldest change left (as
    /// [`oldest_change`](Self::oldest_change) would tell right after).
    pub fn write_back_older(&self, before: u64, batch: usize) -> Result<WrittenBack, Error> {
        let mut pages = Vec::new();
        let mut oldest_left = None;
        self.resident.clock_all(|page| match self.first_change_of(page) {
            Some(at) if at >= before => oldest_left = min(oldest_left, at),
            Some(_) if !self.clean_after_all(page) => pages.push(page),
            _ => {}
        });
        // In page order: batches then hold runs of consecutive pages, which
        // write-back sends to the device in one request each.
        pages.sort_unstable();
        let mut first_error = None;
        let mut written = 0;
        let batch = if batch == 0 { self.config().eviction_batch } else { batch };
        for batch in pages.chunks(batch.max(1)) {
            let (n, error) = self.write_back_unlatched(batch);
            written += n;
            if first_error.is_none() {
                first_error = error;
            }
        }
        if let Some(error) = first_error {
            return Err(error);
        }
        // The pages chosen but not written (being changed, or written by an
        // eviction meanwhile), and those a writer changed during their write.
        // A page whose first change is noted after the pass began comes
        // later in the log than anything logged before it.
        for &page in &pages {
            if let Some(at) = self.first_change_of(page) {
                oldest_left = min(oldest_left, at);
            }
        }
        Ok(WrittenBack { pages: written, oldest_left })
    }

    /// Whether `page`, noted as changed, is clean after all (a guard that
    /// let go of it unchanged after asking for it writable, on an error
    /// path): then the note is dropped. Only a page no writer holds can
    /// tell; one held exclusively may be in its first change.
    fn clean_after_all(&self, page: PageId) -> bool {
        let Some(latch) = self.states.get(page) else { return false };
        let w = latch.load();
        if w.flag() || !latch.try_lock_shared_if(w) {
            return false;
        }
        // Latched shared: no writer, so the flag is the truth.
        let clean = !latch.load().flag();
        if clean {
            self.note_written(page);
        }
        latch.unlock_shared();
        clean
    }

    /// Writes every dirty resident page back and makes the device durable.
    /// Call it without holding guards (it latches pages shared, one at a
    /// time, only to copy them: writers never wait for the disk).
    pub fn flush(&self) -> Result<(), Error> {
        self.write_back_older(u64::MAX, 0)?;
        self.device.sync().map_err(|source| Error::Sync { source })
    }
}
