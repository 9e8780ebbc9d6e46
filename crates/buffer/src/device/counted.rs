//! A device that counts the bytes read from and written to the device
//! under it: what write amplification is measured with.
//!
//! Counting sits here, around the device, rather than in the buffer
//! manager or the log, so that every request is seen once whoever makes it
//! (page loads, write-back, a checkpoint's superblock and free list,
//! recovery's reads, the log's flushes) and nothing that issues I/O needs to
//! know. One relaxed `fetch_add` per request, never per page or byte: next
//! to a system call it costs nothing measurable.
//!
//! What counts: bytes a request moved (a failed `write_pages` counts the
//! pages it wrote before the failure; a failed single-page request counts
//! nothing). Not counted: `allocate` (a file's `fallocate` reserves space
//! without writing data) and `sync` (it moves what was already counted).
//! A memory backend that reads from the block device itself (exmap) reports
//! those reads through [`Device::note_direct_read`].

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, Ordering};

use rustix::fd::BorrowedFd;

use super::Device;
use crate::error::DeviceError;
use crate::page::{PAGE_SIZE, PageId};

const PAGE_BYTES: u64 = PAGE_SIZE as u64;

/// The counters of a [`Counted`] device, shared with whoever reports them.
#[derive(Debug, Default)]
pub struct IoCounters {
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
}

/// A snapshot of [`IoCounters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoCounts {
    /// Bytes read from the device.
    pub bytes_read: u64,
    /// Bytes written to the device.
    pub bytes_written: u64,
}

impl IoCounters {
    /// The counts so far.
    pub fn snapshot(&self) -> IoCounts {
        IoCounts {
            bytes_read: self.bytes_read.load(Ordering::Relaxed),
            bytes_written: self.bytes_written.load(Ordering::Relaxed),
        }
    }

    fn read(&self, pages: usize) {
        self.bytes_read.fetch_add(pages as u64 * PAGE_BYTES, Ordering::Relaxed);
    }

    fn written(&self, pages: usize) {
        self.bytes_written.fetch_add(pages as u64 * PAGE_BYTES, Ordering::Relaxed);
    }
}

/// `inner`, with every byte it reads and writes counted.
pub struct Counted {
    inner: Box<dyn Device>,
    counters: Arc<IoCounters>,
}

impl core::fmt::Debug for Counted {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Counted")
            .field("inner", &self.inner.describe())
            .field("counts", &self.counters.snapshot())
            .finish()
    }
}

impl Counted {
    /// `inner` with counters starting at zero.
    pub fn new(inner: Box<dyn Device>) -> Counted {
        Counted { inner, counters: Arc::new(IoCounters::default()) }
    }

    /// The counters (they stay readable after the device is boxed away).
    pub fn counters(&self) -> Arc<IoCounters> {
        self.counters.clone()
    }
}

impl Device for Counted {
    fn read_page(&self, page: PageId, buf: &mut [u8; PAGE_SIZE]) -> Result<(), DeviceError> {
        self.inner.read_page(page, buf)?;
        self.counters.read(1);
        Ok(())
    }

    fn read_pages(&self, first: PageId, bufs: &mut [&mut [u8; PAGE_SIZE]]) -> Result<usize, DeviceError> {
        let n = self.inner.read_pages(first, bufs)?;
        self.counters.read(n);
        Ok(n)
    }

    fn write_page(&self, page: PageId, buf: &[u8; PAGE_SIZE]) -> Result<(), DeviceError> {
        self.inner.write_page(page, buf)?;
        self.counters.written(1);
        Ok(())
    }

    fn write_pages(&self, first: PageId, bufs: &[&[u8; PAGE_SIZE]]) -> Result<(), (usize, DeviceError)> {
        let result = self.inner.write_pages(first, bufs);
        self.counters.written(match &result {
            Ok(()) => bufs.len(),
            Err((done, _)) => *done,
        });
        result
    }

    fn sync(&self) -> Result<(), DeviceError> {
        self.inner.sync()
    }

    fn allocate(&self, pages: u64) -> Result<(), DeviceError> {
        self.inner.allocate(pages)
    }

    fn page_count(&self) -> Result<u64, DeviceError> {
        self.inner.page_count()
    }

    fn describe(&self) -> &str {
        self.inner.describe()
    }

    fn block_device(&self) -> Option<BorrowedFd<'_>> {
        self.inner.block_device()
    }

    fn note_direct_read(&self, pages: u64) {
        self.counters.bytes_read.fetch_add(pages * PAGE_BYTES, Ordering::Relaxed);
        self.inner.note_direct_read(pages);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{FaultyDevice, Injected, MemoryDevice, Rule};
    use alloc::vec::Vec;

    #[test]
    fn counts_the_pages_each_request_moved() {
        let d = Counted::new(Box::new(MemoryDevice::new(16)));
        let page = Box::new([7u8; PAGE_SIZE]);
        d.write_page(PageId(0), &page).unwrap();
        d.write_pages(PageId(1), &[&*page, &*page, &*page]).unwrap();
        d.sync().unwrap();
        let mut buf = Box::new([0u8; PAGE_SIZE]);
        d.read_page(PageId(2), &mut buf).unwrap();
        let mut bufs = [[0u8; PAGE_SIZE]; 8];
        let mut refs: Vec<&mut [u8; PAGE_SIZE]> = bufs.iter_mut().collect();
        // The device holds 4 pages: a run of 8 from page 2 reads 2.
        assert_eq!(d.read_pages(PageId(2), &mut refs).unwrap(), 2);
        d.note_direct_read(1);
        assert_eq!(d.counters().snapshot(), IoCounts { bytes_read: 4 * PAGE_BYTES, bytes_written: 4 * PAGE_BYTES });
    }

    #[test]
    fn a_failed_request_counts_only_what_it_wrote() {
        let faulty = FaultyDevice::new(MemoryDevice::new(16));
        faulty.inject(Rule {
            op: crate::error::IoOp::Write,
            page: Some(PageId(3)),
            fault: Injected::Errno(rustix::io::Errno::IO),
            times: 1,
        });
        let d = Counted::new(Box::new(faulty));
        let page = Box::new([1u8; PAGE_SIZE]);
        let (done, _) = d.write_pages(PageId(1), &[&*page, &*page, &*page, &*page]).unwrap_err();
        assert_eq!(done, 2);
        assert!(d.read_page(PageId(9), &mut Box::new([0u8; PAGE_SIZE])).is_err());
        assert_eq!(d.counters().snapshot(), IoCounts { bytes_read: 0, bytes_written: 2 * PAGE_BYTES });
    }
}
