//! Arrays of one word per page of the virtual reservation, in anonymous
//! `MAP_NORESERVE` mappings: the page states (one latch word a page) and
//! the owner's page tags (one `AtomicU64` a page, for the layer above, such
//! as the write-ahead log's torn-write protection). An untouched page of a
//! mapping reads as zero (for a latch word: `EVICTED` at version 0), so an
//! array costs memory (8 bytes a page, in 4 KiB steps) only where pages
//! were ever used.
//!
//! # Safety
//!
//! A mapping is created here, never moved, and unmapped in `Drop`, after
//! every reference handed out (tied to `&self`) is gone. The element types
//! ([`Word`]) are 8-byte atomics for which all-zero bytes are a valid value.
#![allow(unsafe_code)]

use core::sync::atomic::AtomicU64;

#[cfg(not(shuttle))]
use rustix::mm::{MapFlags, ProtFlags, mmap_anonymous, munmap};
use snowfall_latch::LatchWord;

use crate::error::MemoryError;
use crate::page::PageId;

/// An element of a page array.
///
/// # Safety
///
/// Implementors are 8 bytes, shared by design (`Sync`), and valid when all
/// their bytes are zero (a fresh mapping's contents); `zero` is that value.
pub(crate) unsafe trait Word: Sync + Sized {
    /// The all-zero value (for arrays that are allocated, not mapped).
    #[cfg(shuttle)]
    fn zero() -> Self;
}

// SAFETY: a transparent `AtomicU64`; zero is `EVICTED` at version 0.
unsafe impl Word for LatchWord {
    #[cfg(shuttle)]
    fn zero() -> Self {
        LatchWord::evicted()
    }
}

// SAFETY: any bit pattern is a valid `AtomicU64`.
unsafe impl Word for AtomicU64 {
    #[cfg(shuttle)]
    fn zero() -> Self {
        AtomicU64::new(0)
    }
}

/// One latch word per page.
pub(crate) type PageStates = PageArray<LatchWord>;
/// One tag per page, for the layer above.
pub(crate) type PageTags = PageArray<AtomicU64>;

/// One `T` per page.
#[cfg(not(shuttle))]
pub(crate) struct PageArray<T: Word> {
    words: *const T,
    pages: u64,
}

// SAFETY: the words are atomics shared by design (`Word: Sync`).
#[cfg(not(shuttle))]
unsafe impl<T: Word> Send for PageArray<T> {}
// SAFETY: as above.
#[cfg(not(shuttle))]
unsafe impl<T: Word> Sync for PageArray<T> {}

#[cfg(not(shuttle))]
const WORD_BYTES: u64 = 8;
static_assertions::const_assert_eq!(core::mem::size_of::<LatchWord>(), 8);
static_assertions::const_assert_eq!(core::mem::size_of::<AtomicU64>(), 8);

#[cfg(not(shuttle))]
impl<T: Word> PageArray<T> {
    /// Words for `pages` pages, all zero.
    pub(crate) fn new(pages: u64) -> Result<PageArray<T>, MemoryError> {
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
        Ok(PageArray { words: ptr.cast(), pages })
    }

    /// The word of `page`; `None` outside the reservation.
    #[inline]
    pub(crate) fn get(&self, page: PageId) -> Option<&T> {
        // SAFETY: in bounds, inside our zero-initialised mapping, which lives
        // as long as `&self`; all-zero is a valid `T` (`Word`).
        (page.0 < self.pages).then(|| unsafe { &*self.words.add(page.0 as usize) })
    }
}

#[cfg(not(shuttle))]
impl<T: Word> Drop for PageArray<T> {
    fn drop(&mut self) {
        let len = (self.pages * WORD_BYTES) as usize;
        // SAFETY: our mapping; no reference into it outlives `&self`.
        let _ = unsafe { munmap(self.words.cast_mut().cast(), len.max(1)) };
    }
}

/// Under shuttle, latch words are the model checker's objects, not bare
/// `u64`s, so the array is allocated and initialised instead of mapped.
#[cfg(shuttle)]
pub(crate) struct PageArray<T: Word> {
    words: alloc::boxed::Box<[T]>,
}

#[cfg(shuttle)]
impl<T: Word> PageArray<T> {
    pub(crate) fn new(pages: u64) -> Result<PageArray<T>, MemoryError> {
        Ok(PageArray { words: (0..pages).map(|_| T::zero()).collect() })
    }

    #[inline]
    pub(crate) fn get(&self, page: PageId) -> Option<&T> {
        usize::try_from(page.0).ok().and_then(|i| self.words.get(i))
    }
}
