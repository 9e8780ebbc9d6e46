//! Memory backends: who provides the physical pages behind the virtual
//! reservation, and how they are given back.
//!
//! The buffer manager decides *which* pages are resident; a backend only
//! makes pages available before they are filled and releases them after
//! eviction, in batches.
//!
//! - [`Madvise`]: an anonymous mapping, pages released with `MADV_DONTNEED`;
//!   a released page reads as zeros.
//! - [`Exmap`]: the exmap kernel module, explicit batched ALLOC/FREE; a
//!   released page faults (SIGSEGV), so optimistic readers go through the
//!   fault guard.
//! - [`EmulatedExmap`]: exmap's semantics emulated in user space (named so:
//!   it is a test stand-in), so the fault path runs on every CI machine.
//!
//! [`MemoryKind`] chooses one by configuration; `Auto` takes exmap when
//! `/dev/exmap` opens and its setup succeeds, otherwise madvise, and logs
//! which.

mod emulated;
mod exmap;
mod madvise;
mod reserve;

pub use emulated::{EmulatedExmap, POISON};
pub use exmap::Exmap;
pub use madvise::Madvise;
pub use reserve::reservable_bytes;

use alloc::boxed::Box;

use rustix::fd::BorrowedFd;

use crate::config::Config;
use crate::error::MemoryError;
use crate::page::PageId;

/// Which memory backend to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MemoryKind {
    /// exmap if `/dev/exmap` opens and its setup succeeds, else madvise.
    #[default]
    Auto,
    /// Anonymous memory and `MADV_DONTNEED`.
    Madvise,
    /// The exmap kernel module (an error if unavailable).
    Exmap,
    /// exmap's semantics emulated in user space, for tests.
    EmulatedExmap,
}

/// Creates the backend `config.memory` asks for, for an area of
/// `area_pages`; `block_device` is the database if it is a block device
/// opened `O_DIRECT` (exmap then reads through its own READ if
/// `config.exmap_read`).
pub fn open_backend(
    config: &Config,
    area_pages: u64,
    block_device: Option<BorrowedFd<'_>>,
) -> Result<Box<dyn MemoryBackend>, MemoryError> {
    let interfaces = config.exmap_interfaces();
    // exmap's READ only where it is asked for (and possible).
    let block_device = block_device.filter(|_| config.exmap_read);
    let chosen: Box<dyn MemoryBackend> = match config.memory {
        MemoryKind::Madvise => Box::new(Madvise::reserve(area_pages)?),
        MemoryKind::EmulatedExmap => Box::new(EmulatedExmap::reserve(area_pages, config.pool_pages())?),
        MemoryKind::Exmap => Box::new(Exmap::open(area_pages, config.pool_pages(), interfaces, block_device)?),
        MemoryKind::Auto => match Exmap::open(area_pages, config.pool_pages(), interfaces, block_device) {
            Ok(exmap) => Box::new(exmap),
            Err(e) => {
                log::info!("memory backend: exmap unavailable ({e}); using madvise");
                Box::new(Madvise::reserve(area_pages)?)
            }
        },
    };
    if chosen.name() == "exmap" {
        log::info!("memory backend: exmap, {interfaces} interfaces");
    } else {
        log::info!("memory backend: {}", chosen.name());
    }
    Ok(chosen)
}

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

    /// Loads `page` from the backing device itself, if this backend can
    /// (exmap's READ on a block device): `None` means "prepare, then read
    /// through the device".
    fn load_from_backing(&self, _page: PageId) -> Option<Result<(), MemoryError>> {
        None
    }
}
