//! The log's bytes on the device: a header block, then a ring of blocks.
//!
//! ```text
//! device page 0: the log header
//!  0        8        16       20       24       32       40
//!  +--------+--------+--------+--------+--------+--------+----- ... zero
//!  | magic  |checksum|version | block  |  db id | ring   |
//!  +--------+--------+--------+--------+--------+--------+
//!   8 bytes  u64      u32      u32      u64      u64 (blocks)
//!
//! device page 1 + (n mod ring): log block n (n >= 1)
//!  0        8        16       24       32      36     38     40
//!  +--------+--------+--------+--------+-------+------+------+------------ ... ----+
//!  |checksum| number |  prev  | flush  | epoch | used | zero | payload (4056 bytes) |
//!  +--------+--------+--------+--------+-------+------+------+------------ ... ----+
//!   u64      u64      u64      u64      u32     u16    u16
//! ```
//!
//! - checksum: XXH3-64 of bytes 8..4096 (header fields and the whole payload);
//! - number: the block's position in the endless log (the ring slot alone
//!   cannot tell this lap from the last one);
//! - prev: the checksum of block `number - 1` as written, chaining blocks so
//!   that a block left over from an earlier run never continues the log;
//! - flush: the number of the first block of the flush that wrote it (see
//!   `scan.rs`: a torn tail lies within the last flush);
//! - epoch: which open of the database wrote it (strictly increasing, kept
//!   in the database's superblock);
//! - used: payload bytes holding records; the rest is zero padding. Only the
//!   last block of a flush is padded; records continue from one block's
//!   payload into the next within a flush, never across flushes.
//!
//! An LSN (log sequence number) is a byte position: byte `i` of block `n`'s
//! payload is LSN `n * 4096 + 40 + i`. LSN 0 means "never logged".

use snowfall_buffer::PAGE_SIZE;
use static_assertions::const_assert;
use xxhash_rust::xxh3::xxh3_64;

/// Bytes in a log block (one device page).
pub const BLOCK: usize = PAGE_SIZE;
/// Bytes of a block's header.
pub const BLOCK_HEADER: usize = 40;
/// Bytes of a block's payload.
pub const PAYLOAD: usize = BLOCK - BLOCK_HEADER;
/// The log header's magic bytes.
pub const MAGIC: [u8; 8] = *b"SNOWWAL\0";
/// The log format this build writes and reads, record bodies included
/// (their meaning belongs to the database, but they live only in this
/// file). Version 2: the file is as long as the whole ring from the start
/// (version 1 grew as it was written). Version 3: tree units encode their
/// numbers as LEB128 (a small write's record, header included, shrank from 62 to 36 bytes),
/// and the file ends with a double-write area (the header's `area` pages).
pub const LOG_VERSION: u32 = 3;
/// Most payload bytes one flush writes (a flush is the unit a crash can
/// tear; the recovery scan looks this far past a bad block for proof that
/// the bad block had been made durable).
pub const MAX_FLUSH_BYTES: usize = 1 << 20;
/// Most blocks one flush writes.
pub const MAX_FLUSH_BLOCKS: u64 = MAX_FLUSH_BYTES.div_ceil(PAYLOAD) as u64;
/// Most bytes one record holds (header included).
pub const MAX_RECORD: usize = 256 << 10;
const_assert!(MAX_RECORD * 2 <= MAX_FLUSH_BYTES);

const NUMBER_AT: usize = 8;
const PREV_AT: usize = 16;
const FLUSH_AT: usize = 24;
const EPOCH_AT: usize = 32;
const USED_AT: usize = 36;
const_assert!(USED_AT + 4 == BLOCK_HEADER);

/// The LSN of payload byte `offset` of block `block`.
pub const fn lsn(block: u64, offset: usize) -> u64 {
    block * BLOCK as u64 + BLOCK_HEADER as u64 + offset as u64
}

/// The LSN of byte `pos` of a stream of payload that starts at the first
/// payload byte of block `first_block` and fills whole payloads.
pub const fn stream_lsn(first_block: u64, pos: usize) -> u64 {
    lsn(first_block + (pos / PAYLOAD) as u64, pos % PAYLOAD)
}

/// The block an LSN that starts a record lies in, and the payload offset.
pub const fn position(lsn: u64) -> (u64, usize) {
    let block = lsn / BLOCK as u64;
    let offset = (lsn % BLOCK as u64) as usize;
    (block, offset.saturating_sub(BLOCK_HEADER))
}

/// The little-endian `u16` at `at` of `b` (0 past the end).
pub fn u16_at(b: &[u8], at: usize) -> u16 {
    let mut x = [0u8; 2];
    x.copy_from_slice(b.get(at..at + 2).unwrap_or(&[0; 2]));
    u16::from_le_bytes(x)
}

/// The little-endian `u32` at `at` of `b` (0 past the end).
pub fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(b.get(at..at + 4).unwrap_or(&[0; 4]));
    u32::from_le_bytes(x)
}

/// The little-endian `u64` at `at` of `b` (0 past the end).
pub fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(b.get(at..at + 8).unwrap_or(&[0; 8]));
    u64::from_le_bytes(x)
}

/// Writes `value` at `at` of `b` (nothing if it does not fit): the
/// on-disk formats' field helpers, shared with the database's own pages.
pub fn put(b: &mut [u8], at: usize, value: &[u8]) {
    if let Some(dst) = b.get_mut(at..at + value.len()) {
        dst.copy_from_slice(value);
    }
}

/// A block's header fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockHeader {
    /// XXH3-64 of bytes 8..4096 (as stored, or as computed when sealing).
    pub checksum: u64,
    /// Position in the endless log.
    pub number: u64,
    /// Checksum of the block before.
    pub prev: u64,
    /// First block of the flush that wrote this one.
    pub flush: u64,
    /// The database open that wrote it.
    pub epoch: u32,
    /// Payload bytes holding records.
    pub used: u16,
}

/// Fills `block`'s header (payload already in place, padding zeroed) and
/// returns its checksum.
pub(crate) fn seal(block: &mut [u8; BLOCK], h: &BlockHeader) -> u64 {
    put(block, NUMBER_AT, &h.number.to_le_bytes());
    put(block, PREV_AT, &h.prev.to_le_bytes());
    put(block, FLUSH_AT, &h.flush.to_le_bytes());
    put(block, EPOCH_AT, &h.epoch.to_le_bytes());
    put(block, USED_AT, &h.used.to_le_bytes());
    put(block, USED_AT + 2, &[0, 0]);
    let sum = xxh3_64(block.get(8..).unwrap_or_default());
    put(block, 0, &sum.to_le_bytes());
    sum
}

/// Reads a block's header; `None` if the checksum does not match (a torn,
/// never written or corrupt block) or a field is out of range.
pub(crate) fn open(block: &[u8; BLOCK]) -> Option<BlockHeader> {
    let stored = u64_at(block, 0);
    if stored != xxh3_64(block.get(8..).unwrap_or_default()) {
        return None;
    }
    let h = BlockHeader {
        checksum: stored,
        number: u64_at(block, NUMBER_AT),
        prev: u64_at(block, PREV_AT),
        flush: u64_at(block, FLUSH_AT),
        epoch: u32_at(block, EPOCH_AT),
        used: u16_at(block, USED_AT),
    };
    (usize::from(h.used) <= PAYLOAD && h.flush <= h.number && h.number > 0).then_some(h)
}

/// The log header (device page 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogHeader {
    /// The database this log belongs to.
    pub db_id: u64,
    /// Blocks in the ring.
    pub ring: u64,
    /// Pages of the double-write area after the ring (for the database's
    /// page copies; the log itself never reads or writes them).
    pub area: u64,
}

impl LogHeader {
    /// The pages the log occupies: the header, the ring, the area.
    pub const fn device_pages(&self) -> u64 {
        1 + self.ring + self.area
    }

    /// The device page where the double-write area starts.
    pub const fn area_start(&self) -> u64 {
        1 + self.ring
    }
}

/// Why a log header was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// No log magic: not a SnowfallDB log.
    NotALog,
    /// A log format version this build does not read.
    Version(u32),
    /// The magic is there but the checksum does not match.
    Corrupt,
    /// A block size other than 4096.
    BlockSize(u32),
}

impl LogHeader {
    /// The header as a device page.
    pub fn encode(&self) -> [u8; BLOCK] {
        let mut b = [0u8; BLOCK];
        put(&mut b, 0, &MAGIC);
        put(&mut b, 16, &LOG_VERSION.to_le_bytes());
        put(&mut b, 20, &(BLOCK as u32).to_le_bytes());
        put(&mut b, 24, &self.db_id.to_le_bytes());
        put(&mut b, 32, &self.ring.to_le_bytes());
        put(&mut b, 40, &self.area.to_le_bytes());
        let sum = xxh3_64(b.get(16..).unwrap_or_default());
        put(&mut b, 8, &sum.to_le_bytes());
        b
    }

    /// Reads a header page.
    pub fn decode(b: &[u8; BLOCK]) -> Result<LogHeader, HeaderError> {
        if b.get(..8) != Some(&MAGIC[..]) {
            return Err(HeaderError::NotALog);
        }
        if u64_at(b, 8) != xxh3_64(b.get(16..).unwrap_or_default()) {
            return Err(HeaderError::Corrupt);
        }
        let version = u32_at(b, 16);
        if version != LOG_VERSION {
            return Err(HeaderError::Version(version));
        }
        let block = u32_at(b, 20);
        if block as usize != BLOCK {
            return Err(HeaderError::BlockSize(block));
        }
        Ok(LogHeader { db_id: u64_at(b, 24), ring: u64_at(b, 32), area: u64_at(b, 40) })
    }
}

/// The device page that holds block `number` in a ring of `ring` blocks.
pub const fn slot(number: u64, ring: u64) -> u64 {
    1 + number % ring
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsns_count_payload_bytes_and_skip_headers() {
        assert_eq!(lsn(1, 0), 4096 + 40);
        assert_eq!(stream_lsn(1, PAYLOAD - 1), lsn(1, PAYLOAD - 1));
        assert_eq!(stream_lsn(1, PAYLOAD), lsn(2, 0));
        assert_eq!(position(lsn(7, 123)), (7, 123));
        assert_eq!(position(lsn(7, 0)), (7, 0));
    }

    #[test]
    fn a_sealed_block_opens_and_a_flipped_bit_does_not() {
        let mut b = [0u8; BLOCK];
        b[BLOCK_HEADER + 5] = 9;
        let h = BlockHeader { checksum: 0, number: 12, prev: 77, flush: 10, epoch: 3, used: 6 };
        let sum = seal(&mut b, &h);
        assert_eq!(open(&b), Some(BlockHeader { checksum: sum, ..h }));
        for at in [0, 8, 17, 39, 40, 4095] {
            let mut bad = b;
            bad[at] ^= 1;
            assert_eq!(open(&bad), None, "byte {at}");
        }
        assert_eq!(open(&[0u8; BLOCK]), None);
    }

    #[test]
    fn the_header_round_trips_and_refuses_foreign_pages() {
        let h = LogHeader { db_id: 0xABCD, ring: 1000, area: 64 };
        let b = h.encode();
        assert_eq!(LogHeader::decode(&b), Ok(h));
        assert_eq!(LogHeader::decode(&[0u8; BLOCK]), Err(HeaderError::NotALog));
        let mut bad = b;
        bad[30] ^= 1;
        assert_eq!(LogHeader::decode(&bad), Err(HeaderError::Corrupt));
    }
}
