//! The page-state array: one latch word per page of the virtual
//! reservation, in an anonymous `MAP_NORESERVE` mapping. An untouched page
//! of the mapping reads as zero, which is `EVICTED` at version 0, so the
//! array costs memory (8 bytes a page, in 4 KiB steps) only where pages were
//! ever used.
//!
//! # Safety
//!
//! The mapping is created here, never moved, and unmapped in `Drop`, after
//! every reference handed out (tied to `&self`) is gone. `LatchWord` is a
//! transparent `AtomicU64`, for which all-zero bytes are a valid value.
#![allow(unsafe_code)]

#[cfg(not(shuttle))]
use rustix::mm::{MapFlags, ProtFlags, mmap_anonymous, munmap};
use snowfall_latch::LatchWord;

use crate::error::MemoryError;
use crate::page::PageId;

/// One latch word per page.
#[cfg(not(shuttle))]
pub(crate) struct PageStates {
    words: *const LatchWord,
    pages: u64,
}

// SAFETY: the words are atomics shared by design.
#[cfg(not(shuttle))]
unsafe impl Send for PageStates {}
// SAFETY: as above.
#[cfg(not(shuttle))]
unsafe impl Sync for PageStates {}

#[cfg(not(shuttle))]
const WORD_BYTES: u64 = core::mem::size_of::<LatchWord>() as u64;
#[cfg(not(shuttle))]
static_assertions::const_assert_eq!(WORD_BYTES, 8);

#[cfg(not(shuttle))]
impl PageStates {
    /// States for `pages` pages, all evicted.
    pub(crate) fn new(pages: u64) -> Result<PageStates, MemoryError> {
        let bytes = pages.saturating_mul(WORD_BYTES);
        let len =
            usize::try_from(bytes).map_err(|_| MemoryError::Reserve { bytes, errno: rustix::io::Errno::NOMEM })?;
        // SAFETY: a fresh anonymous mapping aliases nothing; zero-filled.
        let ptr = unsafe {
            mmap_anonymous(
                core::ptr::null_mut(),
                len.max(1),
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE | MapFlags::NORESERVE,
            )
        }
        .map_err(|errno| MemoryError::Reserve { bytes, errno })?;
        Ok(PageStates { words: ptr.cast(), pages })
    }

    /// The latch of `page`; `None` outside the reservation.
    #[inline]
    pub(crate) fn get(&self, page: PageId) -> Option<&LatchWord> {
        // SAFETY: in bounds, inside our zero-initialised mapping, which lives
        // as long as `&self` (see the module's safety paragraph).
        (page.0 < self.pages).then(|| unsafe { &*self.words.add(page.0 as usize) })
    }
}

#[cfg(not(shuttle))]
impl Drop for PageStates {
    fn drop(&mut self) {
        let len = (self.pages * WORD_BYTES) as usize;
        // SAFETY: our mapping; no reference into it outlives `&self`.
        let _ = unsafe { munmap(self.words.cast_mut().cast(), len.max(1)) };
    }
}

/// Under shuttle, latch words are the model checker's objects, not bare
/// `u64`s, so the array is allocated and initialised instead of mapped.
#[cfg(shuttle)]
pub(crate) struct PageStates {
    words: alloc::boxed::Box<[LatchWord]>,
}

#[cfg(shuttle)]
impl PageStates {
    pub(crate) fn new(pages: u64) -> Result<PageStates, MemoryError> {
        Ok(PageStates { words: (0..pages).map(|_| LatchWord::evicted()).collect() })
    }

    #[inline]
    pub(crate) fn get(&self, page: PageId) -> Option<&LatchWord> {
        usize::try_from(page.0).ok().and_then(|i| self.words.get(i))
    }
}
