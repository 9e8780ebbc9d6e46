//! One regular file's content: durable bytes in a backing inode, unsynced
//! changes in memory over them.
//!
//! The backing inode (a file in the backing directory, or an unnamed
//! `O_TMPFILE` while the file's name is not durable yet) holds exactly what
//! the last `fsync`/`fdatasync` made durable. Writes and size changes since
//! then live here, as whole dirty pages plus the current size; reads combine
//! the two. `sync` writes them to the backing inode; a power loss forgets them
//! (`PowerLoss::Drop`) or writes a random subset of their 512-byte sectors
//! (`tear`), as a disk that lost power in the middle of writing back would.
//!
//! Invariants: `backing_valid <= durable_size`, `backing_valid <= size`;
//! every dirty page starts below `size` and holds zeros at and past `size`.
//! The content of byte `x < size` is the dirty page's byte if its page is
//! dirty, else the backing byte if `x < backing_valid`, else zero.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use crate::SplitMix64;

/// Bytes per page of unsynced data kept in memory.
pub(crate) const PAGE_BYTES: u64 = 4096;
/// The unit a torn write-back keeps or loses (a disk sector).
pub(crate) const SECTOR_BYTES: u64 = 512;
const _: () = assert!(PAGE_BYTES.is_multiple_of(SECTOR_BYTES));

type Page = Box<[u8; PAGE_BYTES as usize]>;

/// A regular file's content (see the module comment).
#[derive(Debug)]
pub(crate) struct Content {
    backing: File,
    /// The backing inode's size: the durable size.
    durable_size: u64,
    /// The size programs see now.
    size: u64,
    /// Backing bytes at or past this offset are no longer part of the file
    /// (a truncation cut them, or the file grew over a gap past them) and
    /// read as zeros until a sync cuts them from the backing inode too.
    backing_valid: u64,
    /// Pages written since the last sync, by page number.
    dirty: BTreeMap<u64, Page>,
}

/// What a torn power loss did to one file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Torn {
    /// Unsynced sectors that reached the backing inode.
    pub sectors_kept: u64,
    /// Unsynced sectors that were lost.
    pub sectors_lost: u64,
    /// Whether an unsynced size change reached the backing inode.
    pub size_kept: bool,
}

fn range_end(offset: u64, len: usize) -> io::Result<u64> {
    offset.checked_add(len as u64).ok_or_else(|| nix::errno::Errno::EFBIG.into())
}

/// `bytes[start..end]`, or an error instead of a panic if the arithmetic
/// that produced the bounds was wrong.
fn slice_mut(bytes: &mut [u8], start: u64, end: u64) -> io::Result<&mut [u8]> {
    let len = bytes.len();
    bytes.get_mut(start as usize..end as usize).ok_or_else(|| bounds(start, end, len))
}

fn slice(bytes: &[u8], start: u64, end: u64) -> io::Result<&[u8]> {
    bytes.get(start as usize..end as usize).ok_or_else(|| bounds(start, end, bytes.len()))
}

fn bounds(start: u64, end: u64, len: usize) -> io::Error {
    io::Error::other(format!("internal error: range {start}..{end} of a {len}-byte buffer"))
}

impl Content {
    /// The content of `backing`, all of it durable.
    pub(crate) fn new(backing: File) -> io::Result<Content> {
        let durable_size = backing.metadata()?.len();
        Ok(Content { backing, durable_size, size: durable_size, backing_valid: durable_size, dirty: BTreeMap::new() })
    }

    /// The backing inode (holding the durable content).
    pub(crate) fn backing(&self) -> &File {
        &self.backing
    }

    /// The size programs see now.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Whether anything changed since the last sync.
    pub(crate) fn is_synced(&self) -> bool {
        self.dirty.is_empty() && self.size == self.durable_size && self.backing_valid == self.durable_size
    }

    /// Up to `len` bytes at `offset` (fewer at the end of the file).
    pub(crate) fn read(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let end = range_end(offset, len)?.min(self.size);
        if offset >= end {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; (end - offset) as usize];
        let from_backing = end.min(self.backing_valid);
        if offset < from_backing {
            self.backing.read_exact_at(slice_mut(&mut buf, 0, from_backing - offset)?, offset)?;
        }
        for (&number, page) in self.dirty.range(offset / PAGE_BYTES..=(end - 1) / PAGE_BYTES) {
            let page_start = number * PAGE_BYTES;
            let (start, stop) = (offset.max(page_start), end.min(page_start + PAGE_BYTES));
            slice_mut(&mut buf, start - offset, stop - offset)?.copy_from_slice(slice(
                &page[..],
                start - page_start,
                stop - page_start,
            )?);
        }
        Ok(buf)
    }

    /// Writes `data` at `offset`, in memory only.
    pub(crate) fn write(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let end = range_end(offset, data.len())?;
        if data.is_empty() {
            return Ok(());
        }
        if offset > self.size {
            // The gap between the old end and `offset` reads as zeros, whatever
            // the backing inode still holds there.
            self.backing_valid = self.backing_valid.min(self.size);
        }
        for number in offset / PAGE_BYTES..=(end - 1) / PAGE_BYTES {
            let page_start = number * PAGE_BYTES;
            let (start, stop) = (offset.max(page_start), end.min(page_start + PAGE_BYTES));
            let page = self.dirty_page(number)?;
            slice_mut(&mut page[..], start - page_start, stop - page_start)?.copy_from_slice(slice(
                data,
                start - offset,
                stop - offset,
            )?);
        }
        self.size = self.size.max(end);
        Ok(())
    }

    /// Page `number`, made dirty: a copy of its current content first.
    fn dirty_page(&mut self, number: u64) -> io::Result<&mut Page> {
        if !self.dirty.contains_key(&number) {
            let current = self.read(number * PAGE_BYTES, PAGE_BYTES as usize)?;
            let mut page: Page = Box::new([0; PAGE_BYTES as usize]);
            slice_mut(&mut page[..], 0, current.len() as u64)?.copy_from_slice(&current);
            self.dirty.insert(number, page);
        }
        self.dirty.get_mut(&number).ok_or_else(|| io::Error::other("internal error: dirty page vanished"))
    }

    /// Truncates or extends (with zeros) to `size`, in memory only.
    pub(crate) fn set_size(&mut self, size: u64) -> io::Result<()> {
        if size < self.size {
            let first_gone = size.div_ceil(PAGE_BYTES);
            let _gone = self.dirty.split_off(&first_gone);
            if let Some(page) = self.dirty.get_mut(&(size / PAGE_BYTES)) {
                slice_mut(&mut page[..], size % PAGE_BYTES, PAGE_BYTES)?.fill(0);
            }
        }
        self.backing_valid = self.backing_valid.min(size).min(self.size);
        self.size = size;
        Ok(())
    }

    /// Makes the current content durable (`fsync`): the backing inode gets
    /// it. A real sync of the backing file is not needed: the emulated power
    /// loss happens in this process, which the backing file system survives.
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        if self.is_synced() {
            return Ok(());
        }
        if self.backing_valid < self.durable_size {
            // Cut the stale bytes, so that growing over them gives zeros.
            self.backing.set_len(self.backing_valid)?;
        }
        for (&number, page) in &self.dirty {
            let start = number * PAGE_BYTES;
            let len = PAGE_BYTES.min(self.size - start);
            self.backing.write_all_at(slice(&page[..], 0, len)?, start)?;
        }
        self.backing.set_len(self.size)?;
        self.dirty.clear();
        self.durable_size = self.size;
        self.backing_valid = self.size;
        Ok(())
    }

    /// Bytes of unsynced data in memory (whole dirty pages).
    pub(crate) fn unsynced_bytes(&self) -> u64 {
        self.dirty.len() as u64 * PAGE_BYTES
    }

    /// A power loss in the middle of writing back: each unsynced sector
    /// independently reaches the backing inode or not (its newest content),
    /// and so does an unsynced size change (a grown file whose data did not
    /// arrive reads as zeros there; a truncation that did not arrive leaves
    /// the old bytes).
    pub(crate) fn tear(&mut self, rng: &mut SplitMix64) -> io::Result<Torn> {
        let mut torn = Torn::default();
        if self.is_synced() {
            return Ok(torn);
        }
        let mut size = self.durable_size;
        if self.size != self.durable_size && rng.below(2) == 1 {
            torn.size_kept = true;
            size = self.size;
            if self.backing_valid < self.durable_size {
                self.backing.set_len(self.backing_valid)?;
            }
            self.backing.set_len(size)?;
        }
        for (&number, page) in &self.dirty {
            for sector in 0..PAGE_BYTES / SECTOR_BYTES {
                let start = number * PAGE_BYTES + sector * SECTOR_BYTES;
                // Sectors past the size that survived stay lost, as do those
                // past the newest size (their content is zeros anyway).
                if start >= size.min(self.size) {
                    torn.sectors_lost += 1;
                    continue;
                }
                if rng.below(2) == 0 {
                    torn.sectors_lost += 1;
                    continue;
                }
                let in_page = sector * SECTOR_BYTES;
                let len = SECTOR_BYTES.min(size - start);
                self.backing.write_all_at(slice(&page[..], in_page, in_page + len)?, start)?;
                torn.sectors_kept += 1;
            }
        }
        Ok(torn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(initial: &[u8]) -> Content {
        let path = std::env::temp_dir().join(format!("power-loss-fs-content-{}-{}", std::process::id(), rand_name()));
        let file = File::options().read(true).write(true).create_new(true).open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        file.write_all_at(initial, 0).unwrap();
        Content::new(file).unwrap()
    }

    fn rand_name() -> u64 {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        N.fetch_add(1, Ordering::Relaxed)
    }

    fn backing(c: &Content) -> Vec<u8> {
        let len = c.backing.metadata().unwrap().len();
        let mut buf = vec![0; len as usize];
        c.backing.read_exact_at(&mut buf, 0).unwrap();
        buf
    }

    #[test]
    fn writes_read_back_before_sync_and_reach_the_backing_only_on_sync() {
        let mut c = content(b"hello world");
        c.write(6, b"there").unwrap();
        c.write(10_000, b"far").unwrap();
        let mut want = b"hello there".to_vec();
        want.resize(10_000, 0);
        want.extend_from_slice(b"far");
        assert_eq!(c.read(0, 20_000).unwrap(), want);
        assert_eq!(backing(&c), b"hello world");
        assert!(!c.is_synced());
        c.sync().unwrap();
        assert!(c.is_synced());
        assert_eq!(backing(&c), want);
    }

    #[test]
    fn truncation_then_growth_reads_zeros_where_the_old_bytes_were() {
        let mut c = content(&[7u8; 9000]);
        c.set_size(100).unwrap();
        c.set_size(9000).unwrap();
        let mut want = vec![7u8; 100];
        want.resize(9000, 0);
        assert_eq!(c.read(0, 9000).unwrap(), want);
        // A write past the end leaves a gap of zeros too.
        c.set_size(50).unwrap();
        c.write(8000, b"x").unwrap();
        let mut want = vec![7u8; 50];
        want.resize(8000, 0);
        want.push(b'x');
        assert_eq!(c.read(0, 9000).unwrap(), want);
        c.sync().unwrap();
        assert_eq!(backing(&c), want);
    }

    #[test]
    fn a_torn_power_loss_keeps_some_sectors_whole_and_loses_the_others() {
        let old = vec![1u8; 8 * 4096];
        let mut c = content(&old);
        c.write(0, &[2u8; 8 * 4096]).unwrap();
        let torn = c.tear(&mut SplitMix64(3)).unwrap();
        assert_eq!(torn.sectors_kept + torn.sectors_lost, 64);
        assert!(torn.sectors_kept > 0 && torn.sectors_lost > 0, "{torn:?}");
        let after = backing(&c);
        assert_eq!(after.len(), old.len());
        let kept = after.chunks(512).filter(|s| s.iter().all(|&b| b == 2)).count();
        let lost = after.chunks(512).filter(|s| s.iter().all(|&b| b == 1)).count();
        assert_eq!((kept as u64, lost as u64), (torn.sectors_kept, torn.sectors_lost));
    }
}
