//! Pages in memory, with a crash simulation.
//!
//! Each page slot has its own mutex, so threads writing different pages do
//! not contend. A write made since the last `sync` keeps the page's durable
//! image aside; [`MemoryDevice::crash`] restores those images, as a power
//! loss would drop writes the disk never made durable. Only pages written
//! since the last sync hold a second copy.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use snowfall_latch::Mutex;

use super::Device;
use crate::error::DeviceError;
use crate::page::{PAGE_SIZE, Page, PageId};

#[derive(Default)]
struct Slot {
    /// What reads return (`None`: never written).
    current: Option<Box<Page>>,
    /// The durable image, kept while the page has writes not yet synced
    /// (`Some(None)`: durably never written).
    durable: Option<Option<Box<Page>>>,
}

/// What a crash does to one page written since the last sync.
enum Fate {
    /// The write never reached the disk.
    Lost,
    /// It did.
    Kept,
    /// Some sectors did (bit `i` of the seed set: sector `i` is old).
    Torn(u64),
}

/// A device in memory.
pub struct MemoryDevice {
    slots: Box<[Mutex<Slot>]>,
    /// Pages written since the last sync, in no particular order.
    unsynced: Mutex<Vec<PageId>>,
    /// One past the highest page written (and not lost in a crash).
    len: AtomicU64,
}

impl core::fmt::Debug for MemoryDevice {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MemoryDevice").field("capacity_pages", &self.slots.len()).finish()
    }
}

impl MemoryDevice {
    /// A device with room for `capacity_pages` pages; writes beyond fail
    /// with [`DeviceError::NoSpace`].
    pub fn new(capacity_pages: u64) -> MemoryDevice {
        let slots = (0..capacity_pages).map(|_| Mutex::new(Slot::default())).collect();
        MemoryDevice { slots, unsynced: Mutex::new(Vec::new()), len: AtomicU64::new(0) }
    }

    fn slot(&self, page: PageId) -> Option<&Mutex<Slot>> {
        usize::try_from(page.0).ok().and_then(|i| self.slots.get(i))
    }

    /// Drops every write not made durable by `sync`, as a crash would.
    pub fn crash(&self) {
        self.crash_with(|_| Fate::Lost);
    }

    /// A harsher crash, as real disks give: each page written since the
    /// last sync independently keeps its old image, its new one, or a torn
    /// mix of the two by 512-byte sector (a sector never written reads as
    /// zeros), chosen by `seed`.
    pub fn crash_torn(&self, seed: u64) {
        let mut rng = crate::scenario::SplitMix64(seed);
        self.crash_with(|_| match rng.below(4) {
            0 | 1 => Fate::Lost,
            2 => Fate::Kept,
            _ => Fate::Torn(rng.next_u64()),
        });
    }

    fn crash_with(&self, mut fate: impl FnMut(PageId) -> Fate) {
        const SECTOR: usize = 512;
        let mut pages = core::mem::take(&mut *self.unsynced.lock());
        pages.sort_unstable();
        for page in pages {
            let Some(slot) = self.slot(page) else { continue };
            let mut s = slot.lock();
            let Some(durable) = s.durable.take() else { continue };
            match fate(page) {
                Fate::Lost => s.current = durable,
                Fate::Kept => {}
                Fate::Torn(bits) => {
                    let mut torn = s.current.take().unwrap_or_else(|| Box::new(Page::zeroed()));
                    let old = durable.unwrap_or_else(|| Box::new(Page::zeroed()));
                    for (i, (dst, src)) in
                        torn.bytes_mut().chunks_mut(SECTOR).zip(old.bytes().chunks(SECTOR)).enumerate()
                    {
                        if bits >> (i % 64) & 1 == 1 {
                            dst.copy_from_slice(src);
                        }
                    }
                    s.current = Some(torn);
                }
            }
        }
        let len = self.slots.iter().rposition(|slot| slot.lock().current.is_some()).map_or(0, |i| i as u64 + 1);
        self.len.store(len, Ordering::Release);
    }

    /// Flips bits of the stored page (a test's disk corruption). Returns
    /// false if the page was never written.
    pub fn corrupt(&self, page: PageId, byte: usize, xor: u8) -> bool {
        let Some(slot) = self.slot(page) else { return false };
        let mut s = slot.lock();
        let target = s.current.as_mut().and_then(|p| p.bytes_mut().get_mut(byte));
        target.map(|b| *b ^= xor).is_some()
    }
}

impl Device for MemoryDevice {
    fn read_page(&self, page: PageId, buf: &mut [u8; PAGE_SIZE]) -> Result<(), DeviceError> {
        let offset = page.offset();
        let slot = self.slot(page).ok_or(DeviceError::PastEnd { offset })?;
        let s = slot.lock();
        let stored = s.current.as_ref().ok_or(DeviceError::PastEnd { offset })?;
        buf.copy_from_slice(stored.bytes());
        Ok(())
    }

    fn write_page(&self, page: PageId, buf: &[u8; PAGE_SIZE]) -> Result<(), DeviceError> {
        let slot = self.slot(page).ok_or(DeviceError::NoSpace { offset: page.offset() })?;
        let mut s = slot.lock();
        let mut new = Box::new(Page::zeroed());
        new.bytes_mut().copy_from_slice(buf);
        let old = s.current.replace(new);
        if s.durable.is_none() {
            s.durable = Some(old);
            self.unsynced.lock().push(page);
        }
        drop(s);
        self.len.fetch_max(page.0 + 1, Ordering::AcqRel);
        Ok(())
    }

    fn sync(&self) -> Result<(), DeviceError> {
        let pages = core::mem::take(&mut *self.unsynced.lock());
        for page in pages {
            if let Some(slot) = self.slot(page) {
                slot.lock().durable = None;
            }
        }
        Ok(())
    }

    fn page_count(&self) -> Result<u64, DeviceError> {
        Ok(self.len.load(Ordering::Acquire))
    }

    fn describe(&self) -> &str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page_with(byte: u8) -> Box<[u8; PAGE_SIZE]> {
        Box::new([byte; PAGE_SIZE])
    }

    #[test]
    fn a_crash_drops_exactly_the_unsynced_writes() {
        let d = MemoryDevice::new(4);
        d.write_page(PageId(0), &page_with(1)).unwrap();
        d.sync().unwrap();
        d.write_page(PageId(0), &page_with(2)).unwrap();
        d.write_page(PageId(0), &page_with(3)).unwrap();
        d.write_page(PageId(1), &page_with(4)).unwrap();
        let mut buf = page_with(0);
        d.read_page(PageId(0), &mut buf).unwrap();
        assert_eq!(buf[0], 3, "unsynced writes are visible before a crash");
        d.crash();
        d.read_page(PageId(0), &mut buf).unwrap();
        assert_eq!(buf[0], 1, "back to the synced image");
        assert_eq!(d.read_page(PageId(1), &mut buf), Err(DeviceError::PastEnd { offset: 4096 }));
        assert_eq!(d.write_page(PageId(4), &buf), Err(DeviceError::NoSpace { offset: 4 * 4096 }));
    }
}
