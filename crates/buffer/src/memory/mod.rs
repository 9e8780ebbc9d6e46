//! Memory backends: who provides the physical pages behind the virtual
//! reservation, and how they are given back.
//!
//! The buffer manager decides *which* pages are resident; a backend only
//! makes pages available before they are filled and releases them after
//! eviction, in batches. Implemented here: [`Madvise`] (an anonymous mapping,
//! pages released with `MADV_DONTNEED`). The exmap kernel module is the
//! other backend this seam is designed for: explicit batched ALLOC/FREE, and
//! a released page faults instead of reading zeros.

mod madvise;

pub use madvise::Madvise;

use crate::error::MemoryError;
use crate::page::PageId;

/// Provides the physical memory behind the virtual reservation.
pub trait MemoryBackend: Send + Sync {
    /// A short name for logs ("madvise", "exmap").
    fn name(&self) -> &'static str;

    /// The first byte of the reservation: page `id` lives at
    /// `base + id * PAGE_SIZE`.
    fn base(&self) -> *mut u8;

    /// Pages in the reservation.
    fn pages(&self) -> u64;

    /// Makes `pages` writable before they are filled. Their contents are
    /// unspecified afterwards (a recycled page may keep old bytes).
    fn prepare(&self, pages: &[PageId]) -> Result<(), MemoryError>;

    /// Gives the physical memory of `pages` back, in one batch. The pages
    /// are not in use (the buffer manager holds them exclusively).
    fn release(&self, pages: &[PageId]) -> Result<(), MemoryError>;

    /// Whether touching a released page faults (so optimistic readers need
    /// fault recovery) rather than reading zeros.
    fn released_pages_fault(&self) -> bool;
}
