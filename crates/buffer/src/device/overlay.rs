//! A device that never writes to the device under it: writes are kept in
//! memory, and reads see them over the base device's pages.
//!
//! This is how a database is opened read-only (on request, or because its
//! disk is full or its files are write-protected): recovery still redoes
//! the log and undoes cut batches, and the pages it changes must live
//! somewhere when the pool evicts them. Here they live in memory, never on
//! disk. The memory it holds is the pages written through it: for a
//! read-only database, those recovery changed (at most the pages the log
//! since the last checkpoint names).
//!
//! `sync` does nothing and succeeds: nothing written here is meant to last.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;

use snowfall_latch::Mutex;

use super::Device;
use crate::error::DeviceError;
use crate::page::{PAGE_SIZE, PageId};

/// A read-only device with writes kept in memory over it.
pub struct Overlay {
    base: Box<dyn Device>,
    written: Mutex<BTreeMap<u64, Box<[u8; PAGE_SIZE]>>>,
}

impl core::fmt::Debug for Overlay {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Overlay").field("base", &self.base.describe()).field("pages", &self.pages_held()).finish()
    }
}

impl Overlay {
    /// An overlay over `base`, holding nothing yet.
    pub fn new(base: Box<dyn Device>) -> Overlay {
        Overlay { base, written: Mutex::new(BTreeMap::new()) }
    }

    /// Pages written through the overlay (each held in memory).
    pub fn pages_held(&self) -> usize {
        self.written.lock().len()
    }
}

impl Device for Overlay {
    fn read_page(&self, page: PageId, buf: &mut [u8; PAGE_SIZE]) -> Result<(), DeviceError> {
        if let Some(held) = self.written.lock().get(&page.0) {
            buf.copy_from_slice(&held[..]);
            return Ok(());
        }
        self.base.read_page(page, buf)
    }

    fn read_pages(&self, first: PageId, bufs: &mut [&mut [u8; PAGE_SIZE]]) -> Result<usize, DeviceError> {
        // The base reads the run in one request; held pages then replace
        // what it read. A held page past the base's end ends the run there
        // only if the base ended before it.
        let mut read = self.base.read_pages(first, bufs)?;
        let written = self.written.lock();
        for (i, buf) in bufs.iter_mut().enumerate() {
            match written.get(&(first.0 + i as u64)) {
                Some(held) if i <= read => {
                    buf.copy_from_slice(&held[..]);
                    read = read.max(i + 1);
                }
                _ => {}
            }
        }
        Ok(read)
    }

    fn write_page(&self, page: PageId, buf: &[u8; PAGE_SIZE]) -> Result<(), DeviceError> {
        self.written.lock().insert(page.0, Box::new(*buf));
        Ok(())
    }

    fn sync(&self) -> Result<(), DeviceError> {
        Ok(())
    }

    // `allocate`: the default (a zero page written at the end, here in
    // memory) is right; there is nothing to reserve.

    fn page_count(&self) -> Result<u64, DeviceError> {
        let held = self.written.lock().last_key_value().map_or(0, |(&p, _)| p + 1);
        Ok(self.base.page_count()?.max(held))
    }

    fn describe(&self) -> &str {
        self.base.describe()
    }

    // No `block_device`: a backend reading the block device directly would
    // bypass the pages held here.
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::MemoryDevice;

    fn page(byte: u8) -> Box<[u8; PAGE_SIZE]> {
        Box::new([byte; PAGE_SIZE])
    }

    #[test]
    fn writes_stay_in_memory_and_reads_see_them_over_the_base() {
        let base = MemoryDevice::new(8);
        base.write_page(PageId(0), &page(1)).unwrap();
        base.write_page(PageId(1), &page(2)).unwrap();
        let base = alloc::sync::Arc::new(base);
        let o = Overlay::new(Box::new(base.clone()));
        o.write_page(PageId(1), &page(9)).unwrap();
        o.write_page(PageId(3), &page(7)).unwrap();
        o.sync().unwrap();
        let mut buf = page(0);
        o.read_page(PageId(1), &mut buf).unwrap();
        assert_eq!(buf[0], 9);
        base.read_page(PageId(1), &mut buf).unwrap();
        assert_eq!(buf[0], 2, "the base is untouched");
        assert_eq!(base.page_count().unwrap(), 2);
        assert_eq!(o.page_count().unwrap(), 4);

        let mut bufs = [page(0), page(0), page(0), page(0), page(0)];
        let mut refs: alloc::vec::Vec<&mut [u8; PAGE_SIZE]> = bufs.iter_mut().map(|b| &mut **b).collect();
        // Pages 0 and 1 from the base (1 replaced), page 2 ends the run (a
        // hole past the base's end), so 3 is not reached.
        assert_eq!(o.read_pages(PageId(0), &mut refs).unwrap(), 2);
        assert_eq!((refs[0][0], refs[1][0]), (1, 9));
        let mut refs: alloc::vec::Vec<&mut [u8; PAGE_SIZE]> = bufs.iter_mut().map(|b| &mut **b).collect();
        assert_eq!(o.read_pages(PageId(3), &mut refs).unwrap(), 1);
        assert_eq!(refs[0][0], 7);
        assert_eq!(o.pages_held(), 2);
    }
}
