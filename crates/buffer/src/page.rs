//! Pages: the 4 KiB unit of memory and storage, and the header the buffer
//! manager owns at the start of every page.
//!
//! ```text
//!  0          8          16         24     26     28       32
//!  +----------+----------+----------+------+------+--------+---------- ... ----+
//!  | checksum | page id  |   lsn    | fmt  | kind | zero   |      body         |
//!  +----------+----------+----------+------+------+--------+---------- ... ----+
//!    u64 LE     u64 LE     u64 LE    u16 LE u16 LE  u32       4064 bytes
//! ```
//!
//! - checksum: XXH3-64 of bytes 8..4096, written on every write-back and
//!   verified on every load (only the stored copy carries a valid checksum;
//!   in memory the field is stale while the page changes);
//! - page id: where the page belongs, so a misdirected write is caught;
//! - lsn: log sequence number of the last change (set by the owner; the
//!   write-ahead log's "log before data" hook sees it);
//! - fmt: [`FORMAT_VERSION`]; kind: for the owner (for example leaf/inner).

use core::fmt;

use static_assertions::const_assert_eq;
use xxhash_rust::xxh3::xxh3_64;

/// Bytes in a page: the unit of caching, I/O and virtual-memory mapping.
pub const PAGE_SIZE: usize = 4096;
/// Bytes of the buffer manager's header at the start of every page.
pub const HEADER_SIZE: usize = 32;
/// Bytes of a page left for its owner.
pub const BODY_SIZE: usize = PAGE_SIZE - HEADER_SIZE;
/// The page format this build reads and writes.
pub const FORMAT_VERSION: u16 = 1;

const CHECKSUM_AT: usize = 0;
const PAGE_ID_AT: usize = 8;
const LSN_AT: usize = 16;
const FORMAT_AT: usize = 24;
const KIND_AT: usize = 26;
const_assert_eq!(KIND_AT + 2 + 4, HEADER_SIZE);
const_assert_eq!(PAGE_SIZE, snowfall_sys::PAGE_SIZE);

/// A page number: byte offset `id * PAGE_SIZE` in the device and in the
/// virtual reservation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PageId(pub u64);

impl fmt::Display for PageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "page {}", self.0)
    }
}

impl PageId {
    /// The page's byte offset in the device.
    pub const fn offset(self) -> u64 {
        self.0 * PAGE_SIZE as u64
    }
}

/// One page of memory, page-aligned (as `O_DIRECT` I/O and the virtual
/// reservation require).
#[repr(C, align(4096))]
#[derive(Clone)]
pub struct Page {
    bytes: [u8; PAGE_SIZE],
}
const_assert_eq!(core::mem::size_of::<Page>(), PAGE_SIZE);
const_assert_eq!(core::mem::align_of::<Page>(), PAGE_SIZE);

impl fmt::Debug for Page {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Page").field("id", &self.id()).field("lsn", &self.lsn()).field("kind", &self.kind()).finish()
    }
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    let mut b = [0u8; 2];
    b.copy_from_slice(bytes.get(at..at + 2).unwrap_or(&[0; 2]));
    u16::from_le_bytes(b)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(bytes.get(at..at + 8).unwrap_or(&[0; 8]));
    u64::from_le_bytes(b)
}

fn put(bytes: &mut [u8], at: usize, value: &[u8]) {
    if let Some(dst) = bytes.get_mut(at..at + value.len()) {
        dst.copy_from_slice(value);
    }
}

impl Page {
    /// An all-zero page.
    pub const fn zeroed() -> Page {
        Page { bytes: [0; PAGE_SIZE] }
    }

    /// A fresh page for `id`: zero body, header filled in.
    pub fn init(&mut self, id: PageId) {
        self.bytes = [0; PAGE_SIZE];
        put(&mut self.bytes, PAGE_ID_AT, &id.0.to_le_bytes());
        put(&mut self.bytes, FORMAT_AT, &FORMAT_VERSION.to_le_bytes());
    }

    /// All bytes, header included.
    pub fn bytes(&self) -> &[u8; PAGE_SIZE] {
        &self.bytes
    }

    /// All bytes, for I/O (which fills whole pages).
    pub fn bytes_mut(&mut self) -> &mut [u8; PAGE_SIZE] {
        &mut self.bytes
    }

    /// The owner's part of the page.
    pub fn body(&self) -> &[u8] {
        self.bytes.get(HEADER_SIZE..).unwrap_or_default()
    }

    /// The owner's part of the page, writable.
    pub fn body_mut(&mut self) -> &mut [u8] {
        self.bytes.get_mut(HEADER_SIZE..).unwrap_or_default()
    }

    /// The page id in the header.
    pub fn id(&self) -> PageId {
        PageId(u64_at(&self.bytes, PAGE_ID_AT))
    }

    /// The log sequence number of the last change.
    pub fn lsn(&self) -> u64 {
        u64_at(&self.bytes, LSN_AT)
    }

    /// Records the log sequence number of a change.
    pub fn set_lsn(&mut self, lsn: u64) {
        put(&mut self.bytes, LSN_AT, &lsn.to_le_bytes());
    }

    /// The owner's page kind.
    pub fn kind(&self) -> u16 {
        u16_at(&self.bytes, KIND_AT)
    }

    /// Sets the owner's page kind.
    pub fn set_kind(&mut self, kind: u16) {
        put(&mut self.bytes, KIND_AT, &kind.to_le_bytes());
    }

    /// The format version in the header.
    pub fn format(&self) -> u16 {
        u16_at(&self.bytes, FORMAT_AT)
    }

    /// The checksum field as stored.
    pub fn stored_checksum(&self) -> u64 {
        u64_at(&self.bytes, CHECKSUM_AT)
    }

    /// The checksum of the current contents.
    pub fn compute_checksum(&self) -> u64 {
        xxh3_64(self.bytes.get(PAGE_ID_AT..).unwrap_or_default())
    }

    /// Stores the checksum of the current contents (just before a write).
    pub fn seal(&mut self) {
        let sum = self.compute_checksum();
        put(&mut self.bytes, CHECKSUM_AT, &sum.to_le_bytes());
    }

    /// Checks a page just read from storage for `expected`.
    pub fn verify(&self, expected: PageId) -> Result<(), crate::Error> {
        let (stored, computed) = (self.stored_checksum(), self.compute_checksum());
        if stored != computed {
            return Err(crate::Error::Checksum { page: expected, stored, computed });
        }
        if self.id() != expected {
            return Err(crate::Error::Misdirected { page: expected, found: self.id() });
        }
        if self.format() != FORMAT_VERSION {
            return Err(crate::Error::UnknownFormat { page: expected, version: self.format() });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    #[test]
    fn a_sealed_page_verifies_and_any_flipped_bit_is_caught() {
        let mut p = Page::zeroed();
        p.init(PageId(7));
        p.set_lsn(99);
        p.set_kind(3);
        p.body_mut()[100] = 42;
        p.seal();
        assert_eq!(p.verify(PageId(7)), Ok(()));
        assert_eq!((p.id(), p.lsn(), p.kind(), p.format()), (PageId(7), 99, 3, FORMAT_VERSION));
        for byte in [0, 8, 16, 31, 32, 2000, PAGE_SIZE - 1] {
            let mut bad = p.clone();
            bad.bytes_mut()[byte] ^= 0x10;
            assert!(matches!(bad.verify(PageId(7)), Err(Error::Checksum { page: PageId(7), .. })), "byte {byte}");
        }
        assert_eq!(p.verify(PageId(8)), Err(Error::Misdirected { page: PageId(8), found: PageId(7) }));
    }

    #[test]
    fn a_zero_page_is_not_a_valid_page() {
        assert!(matches!(Page::zeroed().verify(PageId(0)), Err(Error::Checksum { .. })));
    }

    #[test]
    fn header_fields_are_little_endian_at_their_offsets() {
        let mut p = Page::zeroed();
        p.init(PageId(0x0102_0304_0506_0708));
        p.set_lsn(0x1112_1314_1516_1718);
        assert_eq!(&p.bytes()[8..16], &[8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(&p.bytes()[16..24], &[0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11]);
        assert_eq!(&p.bytes()[24..26], &[1, 0]);
    }
}
