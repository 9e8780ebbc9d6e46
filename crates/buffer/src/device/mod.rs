//! Storage devices: where pages live when they are not in memory.
//!
//! - [`FileDevice`]: a file (or block device), `pread`/`pwrite`/`fdatasync`,
//!   `O_DIRECT` by default so the kernel's page cache holds no second copy.
//! - [`MemoryDevice`]: pages in memory, with a crash simulation that drops
//!   writes not yet made durable by `sync`.
//! - [`FaultyDevice`]: wraps another device and injects failures (EIO, short
//!   reads and writes, a full disk) for tests.
//! - [`Overlay`]: another device read-only underneath, with writes kept in
//!   memory: how a database is opened read-only (recovery still replays the
//!   log, into memory).
//! - [`Counted`]: wraps another device and counts the bytes it reads and
//!   writes (a database's I/O statistics).

mod counted;
mod faulty;
mod file;
mod memory;
mod overlay;

use alloc::sync::Arc;

use rustix::fd::BorrowedFd;

pub use counted::{Counted, IoCounters, IoCounts};
pub use faulty::{FaultyDevice, Injected, Rule};
pub use file::{FileDevice, FileOptions};
pub use memory::MemoryDevice;
pub use overlay::Overlay;

use crate::error::DeviceError;
use crate::page::{PAGE_SIZE, PageId};

/// A page-addressed storage device. Reads and writes move whole pages at
/// page-aligned offsets from page-aligned buffers.
pub trait Device: Send + Sync {
    /// Reads page `page` into `buf`.
    fn read_page(&self, page: PageId, buf: &mut [u8; PAGE_SIZE]) -> Result<(), DeviceError>;

    /// Reads the consecutive pages from `first` into `bufs`, up to the
    /// first one past the end of the device; returns how many were read
    /// (0: `first` is past the end). For sequential scans: a device may do
    /// it in one request. The default reads page by page.
    fn read_pages(&self, first: PageId, bufs: &mut [&mut [u8; PAGE_SIZE]]) -> Result<usize, DeviceError> {
        for (i, buf) in bufs.iter_mut().enumerate() {
            match self.read_page(PageId(first.0 + i as u64), buf) {
                Ok(()) => {}
                Err(DeviceError::PastEnd { .. }) => return Ok(i),
                Err(e) => return Err(e),
            }
        }
        Ok(bufs.len())
    }

    /// Writes `buf` as page `page`. Visible to later reads at once; durable
    /// only after [`sync`](Device::sync).
    fn write_page(&self, page: PageId, buf: &[u8; PAGE_SIZE]) -> Result<(), DeviceError>;

    /// Writes `bufs` as the consecutive pages from `first`, as
    /// [`write_page`](Device::write_page) would one by one. On a failure:
    /// how many leading pages were written, and the error of the next one
    /// (the pages after it are not written). A device may do it in one
    /// request (write-back of a bulk load is mostly runs of pages). The
    /// default writes page by page.
    fn write_pages(&self, first: PageId, bufs: &[&[u8; PAGE_SIZE]]) -> Result<(), (usize, DeviceError)> {
        for (i, buf) in bufs.iter().enumerate() {
            self.write_page(PageId(first.0 + i as u64), buf).map_err(|e| (i, e))?;
        }
        Ok(())
    }

    /// Makes every completed write durable.
    fn sync(&self) -> Result<(), DeviceError>;

    /// Makes the device at least `pages` pages long, with the storage for
    /// them reserved where the device can (a file: `fallocate`), so that
    /// later writes below that length do not run out of space. Pages added
    /// read as zeros. Durable after [`sync`](Device::sync). The default
    /// writes a zero page at `pages - 1` if the device is shorter: the
    /// length is right, the space is not reserved.
    fn allocate(&self, pages: u64) -> Result<(), DeviceError> {
        if pages == 0 || self.page_count()? >= pages {
            return Ok(());
        }
        self.write_page(PageId(pages - 1), &[0; PAGE_SIZE])
    }

    /// How many pages the device holds (its size divided by the page size).
    fn page_count(&self) -> Result<u64, DeviceError>;

    /// What the device is, for messages (a path, "memory").
    fn describe(&self) -> &str;

    /// The descriptor, if the device is a block device opened `O_DIRECT`
    /// (a memory backend such as exmap can then read from it directly).
    fn block_device(&self) -> Option<BorrowedFd<'_>> {
        None
    }

    /// A memory backend read `pages` pages from
    /// [`block_device`](Device::block_device) itself (exmap's READ), past
    /// this trait: a device that counts its I/O ([`Counted`]) adds them.
    /// The default does nothing.
    fn note_direct_read(&self, _pages: u64) {}
}

impl<D: Device + ?Sized> Device for Arc<D> {
    fn read_page(&self, page: PageId, buf: &mut [u8; PAGE_SIZE]) -> Result<(), DeviceError> {
        (**self).read_page(page, buf)
    }

    fn read_pages(&self, first: PageId, bufs: &mut [&mut [u8; PAGE_SIZE]]) -> Result<usize, DeviceError> {
        (**self).read_pages(first, bufs)
    }

    fn write_page(&self, page: PageId, buf: &[u8; PAGE_SIZE]) -> Result<(), DeviceError> {
        (**self).write_page(page, buf)
    }

    fn write_pages(&self, first: PageId, bufs: &[&[u8; PAGE_SIZE]]) -> Result<(), (usize, DeviceError)> {
        (**self).write_pages(first, bufs)
    }

    fn sync(&self) -> Result<(), DeviceError> {
        (**self).sync()
    }

    fn allocate(&self, pages: u64) -> Result<(), DeviceError> {
        (**self).allocate(pages)
    }

    fn page_count(&self) -> Result<u64, DeviceError> {
        (**self).page_count()
    }

    fn describe(&self) -> &str {
        (**self).describe()
    }

    fn block_device(&self) -> Option<BorrowedFd<'_>> {
        (**self).block_device()
    }

    fn note_direct_read(&self, pages: u64) {
        (**self).note_direct_read(pages)
    }
}
