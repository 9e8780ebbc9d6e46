//! Large values: stored out of line in an extent (consecutive pages of the
//! data file, raw bytes, the last page zero-padded), written once straight
//! to the file, never through the log and never cached in the pool. The
//! leaf keeps a *reference* (docs/design.md, "Large values"):
//!
//! ```text
//!  0      1          9          17         25                           25 + 12 x n
//!  +------+----------+----------+----------+----------------------------+
//!  | n u8 | len u64  | xxh3 u64 | zero u64 | (start u64, pages u32) x n |
//!  +------+----------+----------+----------+----------------------------+
//! ```
//!
//! A value is out of line when key plus value would not fit a leaf entry
//! ([`MAX_ENTRY`] bytes), so everything stored inline before stays inline.
//!
//! **Written once, durable first.** A writer allocates the extent, writes
//! the bytes, notes that the data file has unsynced extent bytes, and only
//! then logs the write with the reference. Every log flush syncs the data
//! file first if such bytes are pending ([`DataFirst`]), so no log block
//! holding a reference reaches the disk before the bytes it refers to. A
//! crash before the record leaves the extent referenced by nothing: free.
//!
//! **Reads check the checksum** of the whole value. A reader copies the
//! reference from the leaf and reads the extent without a latch; if a
//! writer replaced the value meanwhile and the extent was released and
//! reused, the checksum fails and the reader looks the key up again: a
//! changed reference means "try again", the same one means the stored
//! bytes are damaged ([`Error::CorruptValue`]). So a read returns the old
//! value whole or the new one whole, never a mix, and never wrong bytes.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use snowfall_btree::{Found, MAX_ENTRY, MAX_REFERENCE};
use snowfall_buffer::{Device, DeviceError, Extent, PAGE_SIZE, Page, PageId};
use snowfall_wal::WriteFirst;
use snowfall_wal::format::{put, u32_at, u64_at};
use xxhash_rust::xxh3::{Xxh3, xxh3_64};

use crate::db::{Inner, Tree};
use crate::error::Error;

/// The largest value: 4 GiB - 1 bytes.
pub const MAX_VALUE: usize = u32::MAX as usize;

/// Most extents one value may take.
const MAX_EXTENTS: usize = 16;

/// Pages written or read per device request (1 MiB): the bounce buffer a
/// large value goes through, whatever its size.
const CHUNK_PAGES: usize = 256;

/// How often a read retries a value replaced under it before giving up.
const READ_TRIES: u32 = 1000;

const HEADER: usize = 25;

/// Whether `key -> value` is stored out of line.
pub(crate) fn is_large(key: &[u8], value_len: usize) -> bool {
    key.len() + value_len > MAX_ENTRY
}

/// A decoded reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Reference {
    /// The value's length.
    pub(crate) len: u64,
    /// XXH3-64 of the value.
    pub(crate) xxh3: u64,
    /// Its extents, in value order.
    pub(crate) extents: Vec<Extent>,
}

/// A reference's bytes, as the leaf stores them.
pub(crate) struct Encoded {
    bytes: [u8; MAX_REFERENCE],
    len: usize,
}

impl Encoded {
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

impl Reference {
    pub(crate) fn encode(&self) -> Encoded {
        let mut bytes = [0u8; MAX_REFERENCE];
        let mut at = HEADER;
        for &(start, pages) in self.extents.iter().take(MAX_EXTENTS) {
            put(&mut bytes, at, &start.to_le_bytes());
            put(&mut bytes, at + 8, &(pages as u32).to_le_bytes());
            at += 12;
        }
        put(&mut bytes, 0, &[self.extents.len().min(MAX_EXTENTS) as u8]);
        put(&mut bytes, 1, &self.len.to_le_bytes());
        put(&mut bytes, 9, &self.xxh3.to_le_bytes());
        Encoded { bytes, len: at }
    }

    /// Decodes a reference; `None` if it is not one (wrong length, no
    /// extent, too many, reserved bytes set, pages that cannot hold the
    /// length).
    pub(crate) fn decode(b: &[u8]) -> Option<Reference> {
        let n = usize::from(*b.first()?);
        if n == 0 || n > MAX_EXTENTS || b.len() != HEADER + 12 * n {
            return None;
        }
        // The length is checked: every field below lies inside `b`.
        let (len, xxh3, zero) = (u64_at(b, 1), u64_at(b, 9), u64_at(b, 17));
        if zero != 0 || len > MAX_VALUE as u64 {
            return None;
        }
        let mut extents = Vec::with_capacity(n);
        let mut pages_total = 0u64;
        for i in 0..n {
            let at = HEADER + 12 * i;
            let start = u64_at(b, at);
            let pages = u64::from(u32_at(b, at + 8));
            if pages == 0 {
                return None;
            }
            start.checked_add(pages)?;
            pages_total += pages;
            extents.push((start, pages));
        }
        (pages_total == len.div_ceil(PAGE_SIZE as u64)).then_some(Reference { len, xxh3, extents })
    }

    /// The first page, for errors.
    pub(crate) fn first_page(&self) -> PageId {
        PageId(self.extents.first().map_or(0, |e| e.0))
    }
}

/// The extents a unit references and releases, decoded from its references
/// (one that does not decode counts as none: the tree logged what it was
/// given, and the integrity check reports it).
pub(crate) fn extents_of(b: &[u8]) -> Vec<Extent> {
    Reference::decode(b).map(|r| r.extents).unwrap_or_default()
}

/// The data file's side of "values before the log": large values written
/// since the last data sync, made durable before the log writes a block.
pub(crate) struct DataFirst {
    pub(crate) data: Arc<dyn Device>,
    /// Extent writes since the last sync.
    pub(crate) unsynced: AtomicU64,
}

impl WriteFirst for DataFirst {
    fn before_log_write(&self) -> Result<(), DeviceError> {
        let n = self.unsynced.load(Ordering::Acquire);
        if n != 0 {
            self.data.sync()?;
            self.unsynced.fetch_sub(n, Ordering::AcqRel);
        }
        Ok(())
    }
}

/// A bounce buffer of aligned pages (the data file is `O_DIRECT`).
fn bounce(pages: usize) -> Vec<Page> {
    (0..pages).map(|_| Page::zeroed()).collect()
}

impl Inner {
    /// Writes `value` to a new extent and returns its reference; nothing
    /// refers to the extent until the caller logs the reference.
    pub(crate) fn write_value(&self, value: &[u8]) -> Result<Reference, Error> {
        let pages = value.len().div_ceil(PAGE_SIZE) as u64;
        let start = self.bm.allocate_extent(pages, self.log.durable())?;
        let written = self.write_extent(start, value);
        if let Err(e) = written {
            self.bm.abandon_extent(start, pages);
            return Err(e);
        }
        self.data_first.unsynced.fetch_add(1, Ordering::AcqRel);
        Ok(Reference { len: value.len() as u64, xxh3: xxh3_64(value), extents: alloc::vec![(start, pages)] })
    }

    fn write_extent(&self, start: u64, value: &[u8]) -> Result<(), Error> {
        let mut buf = bounce(CHUNK_PAGES.min(value.len().div_ceil(PAGE_SIZE)));
        for (i, chunk) in value.chunks(CHUNK_PAGES * PAGE_SIZE).enumerate() {
            let n = chunk.len().div_ceil(PAGE_SIZE);
            for (page, bytes) in buf.iter_mut().zip(chunk.chunks(PAGE_SIZE)) {
                let dst = page.bytes_mut();
                dst.get_mut(..bytes.len()).unwrap_or_default().copy_from_slice(bytes);
                dst.get_mut(bytes.len()..).unwrap_or_default().fill(0);
            }
            let bufs: Vec<&[u8; PAGE_SIZE]> = buf.iter().take(n).map(Page::bytes).collect();
            let first = PageId(start + (i * CHUNK_PAGES) as u64);
            self.bm
                .device()
                .write_pages(first, &bufs)
                .map_err(|(_, source)| Error::Io { file: self.file.clone(), source })?;
        }
        Ok(())
    }

    /// Reads the value `reference` stands for into `out` (replacing its
    /// contents), checking its checksum: `Ok(false)` if it does not match
    /// (a replaced value's reused extent, or damage: the caller tells).
    pub(crate) fn read_value(&self, reference: &Reference, out: &mut Vec<u8>) -> Result<bool, Error> {
        out.clear();
        let len = usize::try_from(reference.len).map_err(|_| Error::Config { what: "a value larger than memory" })?;
        out.try_reserve_exact(len).map_err(|_| Error::Config { what: "no memory for the value" })?;
        let mut buf = bounce(CHUNK_PAGES.min(len.div_ceil(PAGE_SIZE)));
        let mut hasher = Xxh3::new();
        for &(start, pages) in &reference.extents {
            let mut done = 0;
            while done < pages {
                let n = (pages - done).min(CHUNK_PAGES as u64) as usize;
                let mut bufs: Vec<&mut [u8; PAGE_SIZE]> = buf.iter_mut().take(n).map(Page::bytes_mut).collect();
                let first = PageId(start + done);
                let got = self
                    .bm
                    .device()
                    .read_pages(first, &mut bufs)
                    .map_err(|source| Error::Io { file: self.file.clone(), source })?;
                if got < n {
                    return Ok(false);
                }
                for page in buf.iter().take(n) {
                    let want = (len - out.len()).min(PAGE_SIZE);
                    let bytes = page.bytes().get(..want).unwrap_or_default();
                    hasher.update(bytes);
                    out.extend_from_slice(bytes);
                }
                done += n as u64;
            }
        }
        Ok(out.len() == len && hasher.digest() == reference.xxh3)
    }
}

impl Tree<'_> {
    /// The value `found` in `buf` stands for, into `out`: copied if inline,
    /// read from its extent if a reference (looking `key` up again if the
    /// value changed under the read). `None` if the key went away meanwhile.
    pub(crate) fn resolve(
        &self,
        key: &[u8],
        mut found: Found,
        buf: &mut [u8; MAX_ENTRY],
        out: &mut Vec<u8>,
    ) -> Result<Option<usize>, Error> {
        for _ in 0..READ_TRIES {
            let stored = buf.get(..found.len).unwrap_or_default();
            if !found.reference {
                out.clear();
                out.extend_from_slice(stored);
                return Ok(Some(found.len));
            }
            let reference = Reference::decode(stored).ok_or_else(|| self.corrupt_reference(key))?;
            if self.db.read_value(&reference, out)? {
                return Ok(Some(out.len()));
            }
            let mut again = [0u8; MAX_ENTRY];
            match self.btree().get_into(key, &mut again)? {
                None => return Ok(None),
                Some(f) if f.reference && again.get(..f.len) == Some(stored) => {
                    return Err(Error::CorruptValue {
                        file: self.db.file.clone(),
                        page: reference.first_page(),
                        what: "its checksum does not match",
                    });
                }
                Some(f) => {
                    found = f;
                    *buf = again;
                }
            }
        }
        Err(Error::Config { what: "a value kept changing under a read" })
    }

    /// The error for a reference that does not decode.
    pub(crate) fn corrupt_reference(&self, key: &[u8]) -> Error {
        let _ = key;
        Error::CorruptValue {
            file: self.db.file.clone(),
            page: PageId(0),
            what: "its reference in the leaf is malformed",
        }
    }
}
