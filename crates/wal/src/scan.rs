//! Reading the log back at recovery, and telling a torn tail from
//! corruption.
//!
//! The scan reads records from an LSN onwards, block by block. A block
//! continues the log only if its checksum matches, it carries the expected
//! number (not one from an earlier lap of the ring), it chains to the block
//! before (`prev`), and its epoch is not older than that block's. The
//! first block that fails this ends the log, and a record cut by it is
//! dropped; such a record was never acknowledged, since records are
//! acknowledged only once their flush is synced and a synced flush is
//! whole.
//!
//! A bad block is a torn tail only if nothing was made durable after it.
//! Flushes run one after another, each synced before the next begins, and
//! every block names the first block of its flush. So if any block within
//! reach after the bad one (`2 * MAX_FLUSH_BLOCKS`: the next flush starts
//! within one flush's length) is valid, at least as new, and belongs to a
//! *later* flush, the bad block had been synced: that is corruption, and the
//! scan stops with an error rather than guess.

use alloc::boxed::Box;
use alloc::vec::Vec;

use snowfall_buffer::{Device, PageId};

use crate::error::LogError;
use crate::format::{
    BLOCK, BLOCK_HEADER, BlockHeader, MAX_FLUSH_BLOCKS, MAX_RECORD, PAYLOAD, lsn, open, position, slot,
};
use crate::record::{self, RECORD_HEADER};
use crate::writer::{Block, Resume};

/// Blocks a scan reads ahead in one request (256 KiB): recovery reads the
/// log sequentially, and one 4 KiB read at a time would wait for the disk
/// once per block.
const WINDOW: usize = 64;

/// One record read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// LSN of its first byte.
    pub start: u64,
    /// LSN one past its last byte.
    pub end: u64,
    /// Its kind.
    pub kind: u8,
    /// Its body.
    pub body: Vec<u8>,
}

/// How reading the rest of a record went.
enum Taken {
    All,
    /// The log ends inside the record.
    End,
    /// The record was cut and the log goes on with a new flush: read on
    /// from its start.
    Restart,
}

/// A scan of the log from an LSN.
pub struct Scan<'d> {
    device: &'d dyn Device,
    ring: u64,
    /// Epoch of the open that wrote the scan's starting point: blocks of
    /// older opens are leftovers.
    epoch_floor: u32,
    block: Box<Block>,
    /// Blocks read ahead: `window[i]` is block `window_first + i`, for
    /// `i < window_len`.
    window: Vec<Block>,
    window_first: u64,
    window_len: usize,
    /// The current block's header (None before the first read).
    current: Option<BlockHeader>,
    number: u64,
    offset: usize,
    /// End LSN of the last complete record (or the start).
    end: u64,
    done: bool,
    /// Highest epoch seen in a valid block.
    max_epoch: u32,
}

impl<'d> Scan<'d> {
    /// A scan of the log on `device` (a ring of `ring` blocks) from `from`,
    /// which must be a record boundary; `epoch_floor` is the epoch of the
    /// open that wrote the checkpoint `from` comes from.
    pub fn new(device: &'d dyn Device, ring: u64, from: u64, epoch_floor: u32) -> Scan<'d> {
        let (number, offset) = position(from);
        Scan {
            device,
            ring,
            epoch_floor,
            block: Block::boxed(),
            window: (0..WINDOW).map(|_| Block([0; BLOCK])).collect(),
            window_first: 0,
            window_len: 0,
            current: None,
            number,
            offset,
            end: from,
            done: false,
            max_epoch: epoch_floor,
        }
    }

    /// Reads block `number`; `Some(header)` if it continues the log after
    /// `prev` (the block before, if it was read in this scan).
    fn read(&mut self, number: u64, prev: Option<BlockHeader>) -> Result<Option<BlockHeader>, LogError> {
        if self.ahead(number).is_none() {
            self.read_ahead(number);
        }
        if let Some(i) = self.ahead(number)
            && let Some(b) = self.window.get(i)
        {
            self.block.0.copy_from_slice(&b.0);
        } else {
            // Not read ahead (past the end, or an error): read it alone.
            match self.device.read_page(PageId(slot(number, self.ring)), &mut self.block.0) {
                Ok(()) => {}
                Err(snowfall_buffer::DeviceError::PastEnd { .. }) => return Ok(None),
                Err(source) => return Err(LogError::Read { source }),
            }
        }
        let Some(h) = open(&self.block.0) else { return Ok(None) };
        let continues = h.number == number
            && h.epoch >= self.epoch_floor
            && prev.is_none_or(|p| h.prev == p.checksum && h.epoch >= p.epoch);
        Ok(continues.then_some(h))
    }

    /// Where block `number` is in the window, if it was read ahead.
    fn ahead(&self, number: u64) -> Option<usize> {
        let i = number.checked_sub(self.window_first)?;
        (i < self.window_len as u64).then_some(i as usize)
    }

    /// Reads up to [`WINDOW`] blocks from `number` in one request (not
    /// across the ring's end). An error leaves the window empty: the block
    /// is then read alone, so only an error on a block the scan needs
    /// counts.
    fn read_ahead(&mut self, number: u64) {
        let count = (WINDOW as u64).min(self.ring - number % self.ring) as usize;
        let mut bufs: Vec<&mut [u8; BLOCK]> = self.window.iter_mut().take(count).map(|b| &mut b.0).collect();
        self.window_first = number;
        self.window_len = self.device.read_pages(PageId(slot(number, self.ring)), &mut bufs).unwrap_or(0);
    }

    /// Ends the scan at block `bad` (the first that does not continue the
    /// log), after checking that no later flush follows it.
    fn finish(&mut self, bad: u64) -> Result<(), LogError> {
        self.done = true;
        let floor = self.current.map_or(self.epoch_floor, |h| h.epoch);
        let mut probe = Block::boxed();
        for b in bad + 1..=bad + 2 * MAX_FLUSH_BLOCKS {
            match self.device.read_page(PageId(slot(b, self.ring)), &mut probe.0) {
                Ok(()) => {}
                Err(snowfall_buffer::DeviceError::PastEnd { .. }) => continue,
                Err(source) => return Err(LogError::Read { source }),
            }
            if let Some(h) = open(&probe.0)
                && h.number == b
                && h.epoch >= floor
                && h.flush > bad
            {
                return Err(LogError::Corrupt {
                    lsn: lsn(bad, 0),
                    what: "a block is unreadable but a later flush was written after it",
                });
            }
        }
        Ok(())
    }

    /// Moves to block `number`, the next one of the log. Returns false if
    /// the log ends there.
    fn advance(&mut self, number: u64) -> Result<bool, LogError> {
        let prev = self.current.filter(|c| c.number + 1 == number);
        match self.read(number, prev)? {
            Some(h) => {
                self.max_epoch = self.max_epoch.max(h.epoch);
                self.current = Some(h);
                self.number = number;
                Ok(true)
            }
            None => {
                self.finish(number)?;
                Ok(false)
            }
        }
    }

    /// The next record, or `None` at the end of the log.
    pub fn next_record(&mut self) -> Result<Option<Record>, LogError> {
        if self.done {
            return Ok(None);
        }
        if self.current.is_none() && !self.advance(self.number)? {
            return Ok(None);
        }
        'record: loop {
            loop {
                let used = self.current.map_or(0, |h| usize::from(h.used));
                if self.offset < used {
                    break;
                }
                // This block is used up: records go on in the next one.
                if !self.advance(self.number + 1)? {
                    return Ok(None);
                }
                self.offset = 0;
            }
            let start = lsn(self.number, self.offset);
            let mut bytes = Vec::with_capacity(RECORD_HEADER);
            match self.take(&mut bytes, RECORD_HEADER)? {
                Taken::All => {}
                Taken::End => return Ok(None),
                Taken::Restart => continue 'record,
            }
            let (_, body_len, kind) = record::header(&bytes);
            if body_len + RECORD_HEADER > MAX_RECORD {
                return Err(LogError::Corrupt { lsn: start, what: "a record longer than the largest allowed" });
            }
            match self.take(&mut bytes, body_len)? {
                Taken::All => {}
                Taken::End => return Ok(None),
                Taken::Restart => continue 'record,
            }
            if !record::verify(&bytes) {
                return Err(LogError::Corrupt { lsn: start, what: "a record's checksum does not match" });
            }
            // A record that ends exactly at a block's end: its end LSN is
            // the next block's first (as the writer counts).
            let end = if self.offset == PAYLOAD { lsn(self.number + 1, 0) } else { lsn(self.number, self.offset) };
            self.end = end;
            bytes.drain(..RECORD_HEADER);
            return Ok(Some(Record { start, end, kind, body: bytes }));
        }
    }

    /// Appends `n` more bytes of the current record to `out`, following it
    /// into the next blocks of the same flush.
    fn take(&mut self, out: &mut Vec<u8>, mut n: usize) -> Result<Taken, LogError> {
        while n > 0 {
            let used = self.current.map_or(0, |h| usize::from(h.used));
            if self.offset >= used {
                if used < PAYLOAD {
                    // The writer pads only the last block of a flush, and a
                    // flush holds whole records.
                    return Err(LogError::Corrupt {
                        lsn: lsn(self.number, self.offset),
                        what: "a record runs past the end of its flush",
                    });
                }
                let before = self.current;
                if !self.advance(self.number + 1)? {
                    // Cut by the end of the log: never acknowledged.
                    return Ok(Taken::End);
                }
                self.offset = 0;
                if let (Some(b), Some(h)) = (before, self.current)
                    && h.flush == h.number
                {
                    // A new flush while a record is open: the record was cut
                    // by a crash and a later open went on from here. In the
                    // same open that cannot happen.
                    if h.epoch <= b.epoch {
                        return Err(LogError::Corrupt {
                            lsn: lsn(self.number, 0),
                            what: "a record is cut by a later flush of the same open",
                        });
                    }
                    return Ok(Taken::Restart);
                }
                continue;
            }
            let k = n.min(used - self.offset);
            let at = BLOCK_HEADER + self.offset;
            out.extend_from_slice(self.block.0.get(at..at + k).unwrap_or_default());
            self.offset += k;
            n -= k;
        }
        Ok(Taken::All)
    }

    /// Where the log ends, and where writing continues.
    pub fn resume(&self) -> Resume {
        match self.current {
            Some(h) => Resume { next_block: h.number + 1, prev: h.checksum, durable: self.end },
            None => Resume { next_block: self.number, prev: 0, durable: self.end },
        }
    }

    /// Highest epoch seen in a valid block (at least the floor).
    pub fn max_epoch(&self) -> u32 {
        self.max_epoch
    }
}
