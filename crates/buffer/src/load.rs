//! Loading a page: the explicit page fault. The caller holds the page's
//! latch exclusively (taken from `EVICTED`); we reserve a pool frame
//! (evicting if the pool is full), make the memory available, `pread` the
//! page into place and verify it. On any failure the page goes back to
//! `EVICTED` and the frame is returned: a failed load leaves nothing behind.
//!
//! # Safety
//!
//! The page's memory is written through a `&mut` created while the caller
//! holds the latch exclusively, after the backend prepared it.
#![allow(unsafe_code)]

use snowfall_latch::LatchWord;

use crate::error::Error;
use crate::manager::BufferManager;
use crate::page::PageId;
use crate::stats::Counter;

impl BufferManager {
    /// Loads `page`, whose latch the caller took from `EVICTED`. On success
    /// the page is resident and still latched exclusively; on failure it is
    /// `EVICTED` again and unlatched.
    pub(crate) fn load(&self, page: PageId, latch: &LatchWord) -> Result<(), Error> {
        // Before anything touches its memory (see `extent_cache.rs`).
        let loaded = self.check_not_member(page).and_then(|()| self.reserve_frame()).and_then(|()| {
            let read = self.fill(page).and_then(|()| {
                // SAFETY: held exclusively and filled (module safety paragraph).
                unsafe { &*self.page_ptr(page) }.verify(page)
            });
            if read.is_err() {
                // Give back whatever the failed read left in memory.
                let _ = self.release_memory(&[page]);
                self.unreserve_frames(1);
            }
            read
        });
        match loaded {
            Ok(()) => {
                self.resident.insert(page);
                self.count(Counter::Fault, 1);
                Ok(())
            }
            Err(e) => {
                latch.unlock_evicted();
                Err(e)
            }
        }
    }

    /// Puts `page`'s stored image into its memory: the backend's own read
    /// if it has one (exmap on a block device), else prepare and `pread`.
    fn fill(&self, page: PageId) -> Result<(), Error> {
        if let Some(read) = self.memory().load_from_backing(page) {
            // The device did not see this read: tell it, so it is counted.
            read.map_err(Error::Memory)?;
            self.device.note_direct_read(1);
            return Ok(());
        }
        self.prepare_memory(&[page])?;
        // SAFETY: held exclusively and prepared (module safety paragraph).
        let target = unsafe { &mut *self.page_ptr(page) };
        self.device.read_page(page, target.bytes_mut()).map_err(|source| Error::Read { page, source })
    }
}
