//! Large values: stored out of line in an extent (consecutive pages of the
//! data file, raw bytes, the last page zero-padded), written once straight
//! to the file, never through the log. The leaf keeps a *reference* (docs/design.md, "Large values"):
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
//! **Reads pin, then look up.** A reader pins the extents
//! ([`BufferManager::pin_extents`](snowfall_buffer::BufferManager::pin_extents)),
//! copies the reference from the leaf (a validated optimistic read) and
//! reads the extent: a writer may replace the value meanwhile, but its old
//! extent is not reused while the pin lives, so the read returns the old
//! value whole or the new one whole, never a mix. A value in one extent of
//! at most an eighth of the pool is read through the pool (the extent is
//! cached as a unit, loaded with one read and checked once, when loaded);
//! larger ones are read from the file each time, and checked each time. A
//! mismatch means the stored bytes are damaged ([`Error::CorruptValue`]),
//! never wrong bytes returned.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use snowfall_btree::{BTree, Found, MAX_ENTRY, MAX_REFERENCE, Stored, Written};
use snowfall_buffer::{Device, DeviceError, Extent, ExtentGuard, PAGE_SIZE, Page, PageId};
use snowfall_wal::WriteFirst;
use snowfall_wal::format::{put, u32_at, u64_at};
use xxhash_rust::xxh3::{Xxh3, xxh3_64};

use crate::db::{Inner, Tree};
use crate::error::Error;

/// The largest value: 4 GiB - 1 bytes.
pub const MAX_VALUE: usize = u32::MAX as usize;

/// Most extents one value may take (a reference lists them all).
pub(crate) const MAX_EXTENTS: usize = 16;

/// Pages written or read per device request (1 MiB): the bounce buffer a
/// large value goes through, whatever its size.
pub(crate) const CHUNK_PAGES: usize = 256;

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
        let (len, xxh3, n) = Self::check(b)?;
        Some(Reference { len, xxh3, extents: (0..n).map(|i| extent_at(b, i)).collect() })
    }

    /// Checks a reference's bytes without allocating: its length,
    /// checksum and number of extents.
    fn check(b: &[u8]) -> Option<(u64, u64, usize)> {
        let n = usize::from(*b.first()?);
        if n == 0 || n > MAX_EXTENTS || b.len() != HEADER + 12 * n {
            return None;
        }
        // The length is checked: every field below lies inside `b`.
        let (len, xxh3, zero) = (u64_at(b, 1), u64_at(b, 9), u64_at(b, 17));
        if zero != 0 || len > MAX_VALUE as u64 {
            return None;
        }
        let mut pages_total = 0u64;
        for (start, pages) in (0..n).map(|i| extent_at(b, i)) {
            if pages == 0 {
                return None;
            }
            start.checked_add(pages)?;
            pages_total += pages;
        }
        (pages_total == len.div_ceil(PAGE_SIZE as u64)).then_some((len, xxh3, n))
    }

    /// The first page, for errors.
    pub(crate) fn first_page(&self) -> PageId {
        PageId(self.extents.first().map_or(0, |e| e.0))
    }
}

/// Extent `i` of a reference whose length was checked.
fn extent_at(b: &[u8], i: usize) -> Extent {
    let at = HEADER + 12 * i;
    (u64_at(b, at), u64::from(u32_at(b, at + 8)))
}

/// A reference to a value in one extent (what every value but a streamed
/// one has), decoded without allocating: the read path's case.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OneExtent {
    pub(crate) len: u64,
    pub(crate) xxh3: u64,
    pub(crate) extent: Extent,
}

impl OneExtent {
    /// `None` if `b` is not a reference, or one to several extents.
    pub(crate) fn decode(b: &[u8]) -> Option<OneExtent> {
        match Reference::check(b)? {
            (len, xxh3, 1) => Some(OneExtent { len, xxh3, extent: extent_at(b, 0) }),
            _ => None,
        }
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

/// Copies `value` to the start of `frames` and zeroes the rest; the
/// value's XXH3-64, hashed as it is copied (while it is in the cache).
fn copy_hashing(frames: &mut [u8], value: &[u8]) -> u64 {
    const STEP: usize = 64 << 10;
    let (head, tail) = frames.split_at_mut(value.len().min(frames.len()));
    let mut hasher = Xxh3::new();
    for (dst, src) in head.chunks_mut(STEP).zip(value.chunks(STEP)) {
        dst.copy_from_slice(src);
        hasher.update(src);
    }
    tail.fill(0);
    hasher.digest()
}

/// A reference decoded for reading: one extent (no allocation), else the
/// whole list (`None`: malformed).
pub(crate) type Decoded = Result<OneExtent, Option<Reference>>;

pub(crate) fn decode_for_read(bytes: &[u8]) -> Decoded {
    OneExtent::decode(bytes).ok_or_else(|| Reference::decode(bytes))
}

/// A cached value's bytes (its extent without the padding).
pub(crate) fn value_bytes<'a>(extent: &'a ExtentGuard<'_>, len: u64) -> &'a [u8] {
    extent.bytes().get(..len as usize).unwrap_or_default()
}

/// A bounce buffer of aligned pages (the data file is `O_DIRECT`).
pub(crate) fn bounce(pages: usize) -> Vec<Page> {
    (0..pages).map(|_| Page::zeroed()).collect()
}

impl Inner {
    /// Writes `value` to a new extent and returns its reference; nothing
    /// refers to the extent until the caller logs the reference. An extent
    /// small enough to cache is written from its frames in the pool and
    /// stays cached (the value's next read finds it there); a larger one
    /// goes through a bounce buffer.
    pub(crate) fn write_value(&self, value: &[u8]) -> Result<Reference, Error> {
        let pages = value.len().div_ceil(PAGE_SIZE) as u64;
        let start = self.bm.allocate_extent(pages, self.log.durable())?;
        let written = match self.bm.new_extent(PageId(start), pages) {
            Ok(Some(mut frames)) => {
                let xxh3 = copy_hashing(frames.bytes_mut(), value);
                frames.write_through().map(|()| frames.cache()).map(|()| xxh3).map_err(|e| self.extent_write_error(e))
            }
            Ok(None) => self.write_extent(start, value).map(|()| xxh3_64(value)),
            Err(e) => Err(e.into()),
        };
        let xxh3 = match written {
            Ok(xxh3) => xxh3,
            Err(e) => {
                self.bm.abandon_extent(start, pages);
                return Err(e);
            }
        };
        self.data_first.unsynced.fetch_add(1, Ordering::AcqRel);
        Ok(Reference { len: value.len() as u64, xxh3, extents: alloc::vec![(start, pages)] })
    }

    /// Sets `key` to the value `reference` names, in `tree` as part of
    /// `batch` (0: none); its extents are written. If that fails, they are
    /// given back: a change is logged last, so nothing refers to them.
    pub(crate) fn put_reference(
        &self,
        tree: &BTree<'_>,
        key: &[u8],
        reference: &Reference,
        batch: u64,
    ) -> Result<Written, Error> {
        let encoded = reference.encode();
        let stored = Stored { bytes: encoded.as_bytes(), reference: true };
        tree.put_stored(key, stored, batch).map_err(|e| {
            for &(start, pages) in &reference.extents {
                self.bm.abandon_extent(start, pages);
            }
            e.into()
        })
    }

    /// The error for a failed write of an extent's frames.
    fn extent_write_error(&self, e: snowfall_buffer::Error) -> Error {
        match e {
            snowfall_buffer::Error::WriteBack { source, .. } => Error::Io { file: self.file.clone(), source },
            other => Error::Buffer(other),
        }
    }

    fn write_extent(&self, start: u64, value: &[u8]) -> Result<(), Error> {
        let mut buf = self.take_bounce(value.len().div_ceil(PAGE_SIZE));
        let result = (|| -> Result<(), Error> {
            for (i, chunk) in value.chunks(CHUNK_PAGES * PAGE_SIZE).enumerate() {
                let n = chunk.len().div_ceil(PAGE_SIZE);
                for (page, bytes) in buf.iter_mut().zip(chunk.chunks(PAGE_SIZE)) {
                    let dst = page.bytes_mut();
                    dst.get_mut(..bytes.len()).unwrap_or_default().copy_from_slice(bytes);
                    dst.get_mut(bytes.len()..).unwrap_or_default().fill(0);
                }
                self.write_pages(start + (i * CHUNK_PAGES) as u64, &buf, n)?;
            }
            Ok(())
        })();
        self.give_bounce(buf);
        result
    }

    /// A bounce buffer of up to [`CHUNK_PAGES`] pages, at least `pages`
    /// (reused: allocating and zeroing a megabyte per read would cost as
    /// much as copying it).
    fn take_bounce(&self, pages: usize) -> Vec<Page> {
        let pages = pages.clamp(1, CHUNK_PAGES);
        let mut spare = self.bounces.lock();
        match spare.iter().position(|b| b.len() >= pages) {
            Some(i) => spare.swap_remove(i),
            None => {
                drop(spare);
                bounce(pages)
            }
        }
    }

    /// Keeps a bounce buffer for the next large value (a few at most).
    fn give_bounce(&self, buf: Vec<Page>) {
        let mut spare = self.bounces.lock();
        if spare.len() < 4 {
            spare.push(buf);
        }
    }

    /// Reads the value `reference` stands for into `out` (replacing its
    /// contents), checking its checksum: `Ok(false)` if it does not match
    /// (a replaced value's reused extent, or damage: the caller tells).
    pub(crate) fn read_value(&self, reference: &Reference, out: &mut Vec<u8>) -> Result<bool, Error> {
        out.clear();
        let len = usize::try_from(reference.len).map_err(|_| Error::Config { what: "a value larger than memory" })?;
        out.try_reserve_exact(len).map_err(|_| Error::Config { what: "no memory for the value" })?;
        let mut buf = self.take_bounce(len.div_ceil(PAGE_SIZE));
        let mut hasher = Xxh3::new();
        let result = (|| -> Result<(), Error> {
            for &(start, pages) in &reference.extents {
                let mut done = 0;
                while done < pages {
                    let n = (pages - done).min(buf.len() as u64) as usize;
                    self.read_pages(start + done, buf.get_mut(..n).unwrap_or_default())?;
                    let before = out.len();
                    for page in buf.iter().take(n) {
                        let want = (len - out.len()).min(PAGE_SIZE);
                        out.extend_from_slice(page.bytes().get(..want).unwrap_or_default());
                    }
                    hasher.update(out.get(before..).unwrap_or_default());
                    done += n as u64;
                }
            }
            Ok(())
        })();
        self.give_bounce(buf);
        result?;
        Ok(out.len() == len && hasher.digest() == reference.xxh3)
    }
}

impl Tree<'_> {
    /// The value `found` in `buf` stands for, into `out`: copied if inline;
    /// if a reference, `key` is looked up again under a pin and its value
    /// read from its extent (the lookup that found the reference ran
    /// without one). `None` if the key went away meanwhile.
    pub(crate) fn resolve(
        &self,
        key: &[u8],
        found: Found,
        buf: &mut [u8; MAX_ENTRY],
        out: &mut Vec<u8>,
    ) -> Result<Option<usize>, Error> {
        if !found.reference {
            out.clear();
            out.extend_from_slice(buf.get(..found.len).unwrap_or_default());
            return Ok(Some(found.len));
        }
        let _pin = self.db.bm.pin_extents();
        let Some(found) = self.btree().get_into(key, buf)? else { return Ok(None) };
        let stored = buf.get(..found.len).unwrap_or_default();
        if !found.reference {
            out.clear();
            out.extend_from_slice(stored);
            return Ok(Some(found.len));
        }
        let reference = Reference::decode(stored).ok_or_else(|| self.db.malformed_reference())?;
        self.db.value_into(&reference, out)?;
        Ok(Some(out.len()))
    }
}

impl Inner {
    /// The value `reference` stands for, into `out`: from the pool (loaded
    /// there first if it can be cached), else from the device. The caller
    /// holds a pin taken before it read the reference.
    pub(crate) fn value_into(&self, reference: &Reference, out: &mut Vec<u8>) -> Result<(), Error> {
        if let [extent] = reference.extents[..] {
            let one = OneExtent { len: reference.len, xxh3: reference.xxh3, extent };
            if let Some(cached) = self.cached_value(one)? {
                out.clear();
                out.extend_from_slice(value_bytes(&cached, one.len));
                return Ok(());
            }
        }
        if !self.read_value(reference, out)? {
            return Err(self.corrupt_value(reference.first_page()));
        }
        Ok(())
    }

    /// Runs `f` on the large value whose reference is `bytes` (the caller
    /// holds a pin taken before it read the reference).
    pub(crate) fn with_large<R>(&self, bytes: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<R, Error> {
        self.with_decoded(decode_for_read(bytes), f)
    }

    /// As [`with_large`](Self::with_large), decoded: in place if it is
    /// cached (or can be), else read into memory first.
    pub(crate) fn with_decoded<R>(&self, decoded: Decoded, f: impl FnOnce(&[u8]) -> R) -> Result<R, Error> {
        let reference = match decoded {
            Ok(one) => match self.cached_value(one)? {
                Some(cached) => return Ok(f(value_bytes(&cached, one.len))),
                None => Reference { len: one.len, xxh3: one.xxh3, extents: alloc::vec![one.extent] },
            },
            Err(several) => several.ok_or_else(|| self.malformed_reference())?,
        };
        let mut out = Vec::new();
        self.value_into(&reference, &mut out)?;
        Ok(f(&out))
    }

    /// The cached extent of a value held in one extent small enough to cache
    /// (`snowfall_buffer`'s `extent_cache.rs`), latched shared; checked
    /// against the reference's checksum once, when it is loaded. The caller
    /// holds a pin taken before it read the reference.
    pub(crate) fn cached_value(&self, value: OneExtent) -> Result<Option<ExtentGuard<'_>>, Error> {
        let (start, pages) = value.extent;
        let Ok(len) = usize::try_from(value.len) else { return Ok(None) };
        let verify = |bytes: &[u8]| bytes.get(..len).is_some_and(|v| xxh3_64(v) == value.xxh3);
        self.bm.fix_extent_admitted(PageId(start), pages, verify).map_err(|e| match e {
            snowfall_buffer::Error::CorruptExtent { .. } => self.corrupt_value(PageId(start)),
            snowfall_buffer::Error::Read { source, .. } => Error::Io { file: self.file.clone(), source },
            other => Error::Buffer(other),
        })
    }

    /// The error for a value whose stored bytes do not match its checksum.
    pub(crate) fn corrupt_value(&self, page: PageId) -> Error {
        Error::CorruptValue { file: self.file.clone(), page, what: "its checksum does not match" }
    }

    /// The error for a reference in a leaf that does not decode.
    pub(crate) fn malformed_reference(&self) -> Error {
        Error::CorruptValue { file: self.file.clone(), page: PageId(0), what: "its reference in the leaf is malformed" }
    }

    /// Writes the first `pages` of `buf` at `first`.
    pub(crate) fn write_pages(&self, first: u64, buf: &[Page], pages: usize) -> Result<(), Error> {
        let bufs: Vec<&[u8; PAGE_SIZE]> = buf.iter().take(pages).map(Page::bytes).collect();
        self.bm
            .device()
            .write_pages(PageId(first), &bufs)
            .map_err(|(_, source)| Error::Io { file: self.file.clone(), source })
    }

    /// Reads `buf.len()` pages from `first` into `buf`.
    pub(crate) fn read_pages(&self, first: u64, buf: &mut [Page]) -> Result<(), Error> {
        let n = buf.len();
        let mut bufs: Vec<&mut [u8; PAGE_SIZE]> = buf.iter_mut().map(Page::bytes_mut).collect();
        let got = self
            .bm
            .device()
            .read_pages(PageId(first), &mut bufs)
            .map_err(|source| Error::Io { file: self.file.clone(), source })?;
        if got < n {
            return Err(Error::CorruptValue {
                file: self.file.clone(),
                page: PageId(first + got as u64),
                what: "it lies past the end of the file",
            });
        }
        Ok(())
    }
}
