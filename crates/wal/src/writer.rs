//! Appending and flushing: the log's tail in memory, group commit, the ring.
//!
//! Appenders copy a record into the tail buffer under a short mutex and get
//! its LSNs back; no I/O happens while that mutex is held. A flush takes
//! the whole tail at once (later appends go to the blocks after it), seals
//! it into blocks, writes them and syncs the device, then publishes the new
//! durable LSN. Flushes are serialized by a second mutex, and a thread that
//! needs its record durable flushes whatever has accumulated, so one
//! `fdatasync` covers every record appended meanwhile (group commit).
//!
//! A failed write or sync fails the log for good: the kernel may have
//! dropped dirty data and reports that only once, so retrying and trusting
//! a later success could lose acknowledged records. Only a reopen, which
//! reads back what is really on disk, continues.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use once_cell::race::OnceBox;
use rustix::io::Errno;
use snowfall_buffer::{Device, DeviceError, IoOp, Page, PageId, WriteBackHook};
use snowfall_latch::Mutex;

use crate::error::LogError;
use crate::format::{
    BLOCK, BLOCK_HEADER, BlockHeader, LogHeader, MAX_FLUSH_BYTES, MAX_RECORD, PAYLOAD, lsn, position, seal, slot,
    stream_lsn,
};
use crate::record;

/// A block buffer, page-aligned for `O_DIRECT`.
#[repr(C, align(4096))]
pub(crate) struct Block(pub(crate) [u8; BLOCK]);

impl Block {
    pub(crate) fn boxed() -> Box<Block> {
        Box::new(Block([0; BLOCK]))
    }
}

/// Where a log continues: after recovery, or for a new log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resume {
    /// The next block to write.
    pub next_block: u64,
    /// The checksum of the block before it (0 if none).
    pub prev: u64,
    /// The LSN up to which the log is durable.
    pub durable: u64,
}

impl Resume {
    /// A log with nothing in it yet: writing starts at block 1.
    pub const FRESH: Resume = Resume { next_block: 1, prev: 0, durable: lsn(1, 0) };
}

/// Where a record being appended goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place {
    /// The LSN of the record's first byte (not [`Log::appended`], which
    /// may lie in an earlier block: every flush starts a fresh one).
    pub start: u64,
}

/// Where an appended record went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// Its first byte.
    pub start: u64,
    /// One past its last byte: the LSN a changed page records, and the one
    /// to wait for to have it durable.
    pub end: u64,
}

struct Tail {
    /// Payload bytes not yet taken by a flush.
    bytes: Vec<u8>,
    /// The block where `bytes[0]` goes.
    first_block: u64,
}

struct Flusher {
    /// Checksum of the last block written.
    prev: u64,
    /// A spare tail buffer, swapped in when a flush takes the tail.
    spare: Vec<u8>,
    /// The blocks of one flush, sealed before they are written (grown to
    /// the largest flush so far: at most a megabyte).
    blocks: Vec<Box<Block>>,
}

/// Counters for benchmarks and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Flushes that wrote something.
    pub flushes: u64,
    /// Blocks written.
    pub blocks: u64,
    /// Records appended.
    pub records: u64,
}

/// The write-ahead log.
pub struct Log {
    device: Box<dyn Device>,
    ring: u64,
    epoch: u32,
    tail: Mutex<Tail>,
    flusher: Mutex<Flusher>,
    /// End LSN of the last record appended.
    appended: AtomicU64,
    /// LSN up to which the log is on disk.
    durable: AtomicU64,
    /// First block still needed (records before it were checkpointed).
    head_block: AtomicU64,
    failed: AtomicBool,
    failure: Mutex<Option<DeviceError>>,
    flushes: AtomicU64,
    /// Bumped (and waited on, as a futex) whenever a flush ends: threads
    /// waiting for durability wait for this, not for the flusher's lock,
    /// so that they learn at once that a flush covered them.
    flush_ends: AtomicU32,
    blocks: AtomicU64,
    records: AtomicU64,
    /// What must be durable before any block is written (set once).
    write_first: OnceBox<Box<dyn WriteFirst>>,
}

/// Something that must be durable before the log's blocks are: a flush
/// calls it after taking the records it writes, before writing them. The
/// database syncs there the large values written straight to its data file
/// whose references those records may hold.
pub trait WriteFirst: Send + Sync {
    /// Makes durable what records appended so far depend on.
    fn before_log_write(&self) -> Result<(), DeviceError>;
}

impl<T: WriteFirst + ?Sized> WriteFirst for alloc::sync::Arc<T> {
    fn before_log_write(&self) -> Result<(), DeviceError> {
        (**self).before_log_write()
    }
}

impl core::fmt::Debug for Log {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Log")
            .field("device", &self.device.describe())
            .field("ring", &self.ring)
            .field("epoch", &self.epoch)
            .field("durable", &self.durable())
            .finish()
    }
}

impl Log {
    /// Writes a new log's header to `device` (overwriting whatever it held),
    /// makes the device as long as the whole ring and the double-write area
    /// with its space reserved ([`Device::allocate`]) and syncs it. The ring
    /// holds the device's pages after the header, the area those after the
    /// ring.
    ///
    /// The full length is what lets recovery tell a log that was cut short
    /// (a bad copy, a file-system repair) from one that simply ends: a log
    /// shorter than [`LogHeader::device_pages`] has lost blocks. Reserving the
    /// space up front means a full disk never stops the log (file systems
    /// that cannot reserve get the length alone).
    pub fn format(device: &dyn Device, header: &LogHeader) -> Result<(), LogError> {
        let block = Block(header.encode());
        device.write_page(PageId(0), &block.0).map_err(|source| LogError::Io { source })?;
        device.allocate(header.device_pages()).map_err(|source| LogError::Io { source })?;
        device.sync().map_err(|source| LogError::Io { source })
    }

    /// Reads the header of an existing log.
    pub fn read_header(device: &dyn Device) -> Result<LogHeader, LogError> {
        let mut block = Block::boxed();
        device.read_page(PageId(0), &mut block.0).map_err(|source| LogError::Read { source })?;
        LogHeader::decode(&block.0).map_err(LogError::Header)
    }

    /// Whether the log on `device` (with `header`) ever had a block
    /// written: its first block is valid.
    pub fn has_records(device: &dyn Device, header: &LogHeader) -> bool {
        let mut block = Block::boxed();
        device.read_page(PageId(slot(1, header.ring)), &mut block.0).is_ok()
            && crate::format::open(&block.0).is_some_and(|h| h.number == 1)
    }

    /// A log that continues at `resume`, writing blocks stamped `epoch`,
    /// whose records before `head` are no longer needed.
    pub fn open(device: Box<dyn Device>, ring: u64, epoch: u32, resume: Resume, head: u64) -> Result<Log, LogError> {
        if ring < 2 * crate::format::MAX_FLUSH_BLOCKS {
            return Err(LogError::Full { blocks: 2 * crate::format::MAX_FLUSH_BLOCKS, ring });
        }
        Ok(Log {
            device,
            ring,
            epoch,
            tail: Mutex::new(Tail { bytes: Vec::new(), first_block: resume.next_block }),
            flusher: Mutex::new(Flusher { prev: resume.prev, spare: Vec::new(), blocks: Vec::new() }),
            appended: AtomicU64::new(resume.durable),
            durable: AtomicU64::new(resume.durable),
            head_block: AtomicU64::new(position(head).0.min(resume.next_block)),
            failed: AtomicBool::new(false),
            failure: Mutex::new(None),
            flushes: AtomicU64::new(0),
            flush_ends: AtomicU32::new(0),
            blocks: AtomicU64::new(0),
            records: AtomicU64::new(0),
            write_first: OnceBox::new(),
        })
    }

    /// Sets what every flush makes durable before writing its blocks (see
    /// [`WriteFirst`]); only the first call has an effect.
    pub fn set_write_first(&self, first: Box<dyn WriteFirst>) {
        let _ = self.write_first.set(Box::new(first));
    }

    /// The epoch stamped on blocks this log writes.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// Blocks in the ring.
    pub fn ring(&self) -> u64 {
        self.ring
    }

    /// The device.
    pub fn device(&self) -> &dyn Device {
        &*self.device
    }

    /// LSN up to which the log is durable.
    pub fn durable(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// End LSN of the last record appended.
    pub fn appended(&self) -> u64 {
        self.appended.load(Ordering::Acquire)
    }

    /// Records appended since open (one relaxed load: cheap enough to read
    /// on every write).
    pub fn records(&self) -> u64 {
        self.records.load(Ordering::Relaxed)
    }

    /// Counters.
    pub fn stats(&self) -> LogStats {
        LogStats {
            flushes: self.flushes.load(Ordering::Relaxed),
            blocks: self.blocks.load(Ordering::Relaxed),
            records: self.records.load(Ordering::Relaxed),
        }
    }

    /// The failure that stopped the log, if one did.
    pub fn failure(&self) -> Option<DeviceError> {
        if self.failed.load(Ordering::Acquire) { *self.failure.lock() } else { None }
    }

    fn check_failed(&self) -> Result<(), LogError> {
        match self.failure() {
            Some(source) => Err(LogError::Failed { source }),
            None => Ok(()),
        }
    }

    fn fail(&self, source: DeviceError) -> LogError {
        let mut f = self.failure.lock();
        if f.is_none() {
            log::error!(
                "write-ahead log on {} failed: {source}; refusing writes until reopened",
                self.device.describe()
            );
            *f = Some(source);
        }
        self.failed.store(true, Ordering::Release);
        LogError::Io { source }
    }

    /// Blocks in use: from the first still needed to the tail's end.
    pub fn used_blocks(&self) -> u64 {
        let t = self.tail.lock();
        let end = t.first_block + t.bytes.len().div_ceil(PAYLOAD) as u64;
        end.saturating_sub(self.head_block.load(Ordering::Acquire))
    }

    /// Records before `lsn` are no longer needed (a checkpoint made their
    /// effects durable): their blocks may be overwritten.
    pub fn release_before(&self, lsn: u64) {
        self.head_block.fetch_max(position(lsn).0, Ordering::AcqRel);
    }

    /// Appends one record of `kind` whose body `encode` writes at the end
    /// of the vector it gets, told where the record goes (see [`Place`]).
    /// `encode` may run more than once (when the tail must be flushed
    /// first).
    pub fn append(&self, kind: u8, mut encode: impl FnMut(&mut Vec<u8>, Place)) -> Result<Appended, LogError> {
        loop {
            let mut t = self.tail.lock();
            self.check_failed()?;
            // Keep a flush within MAX_FLUSH_BYTES: flush first if this
            // record might not fit.
            if t.bytes.len() + MAX_RECORD > MAX_FLUSH_BYTES {
                drop(t);
                self.flush()?;
                continue;
            }
            let at = record::begin(&mut t.bytes, kind);
            let place = Place { start: stream_lsn(t.first_block, at) };
            encode(&mut t.bytes, place);
            let len = t.bytes.len() - at;
            if len > MAX_RECORD {
                t.bytes.truncate(at);
                return Err(LogError::TooLarge { bytes: len, max: MAX_RECORD });
            }
            let last_block = t.first_block + ((t.bytes.len() - 1) / PAYLOAD) as u64;
            let blocks = last_block + 1 - self.head_block.load(Ordering::Acquire);
            if blocks > self.ring {
                t.bytes.truncate(at);
                return Err(LogError::Full { blocks, ring: self.ring });
            }
            record::finish(&mut t.bytes, at);
            let appended =
                Appended { start: stream_lsn(t.first_block, at), end: stream_lsn(t.first_block, t.bytes.len()) };
            self.appended.store(appended.end, Ordering::Release);
            self.records.fetch_add(1, Ordering::Relaxed);
            return Ok(appended);
        }
    }

    /// Makes every record appended so far durable; returns the durable LSN.
    pub fn flush(&self) -> Result<u64, LogError> {
        self.flush_inner(u64::MAX, None)
    }

    /// Makes the log durable at least up to `lsn` (flushing everything
    /// appended by then, other threads' records included).
    pub fn sync_to(&self, lsn: u64) -> Result<(), LogError> {
        if self.durable() >= lsn {
            return Ok(());
        }
        self.flush_inner(lsn, None).map(|_| ())
    }

    /// Flushes like [`flush`](Self::flush) and, at the moment the tail is
    /// taken (no append in between), starts the next record on a fresh
    /// block, makes that block's first LSN the new redo point and calls
    /// `mark` with it (a checkpoint snapshots its state there). Returns the
    /// durable LSN and what `mark` returned.
    pub fn flush_marked<R>(&self, mark: impl FnOnce(u64) -> R) -> Result<(u64, R), LogError> {
        let mut mark = Some(mark);
        let mut out = None;
        let durable = self.flush_inner(
            u64::MAX,
            Some(&mut |redo| {
                if let Some(m) = mark.take() {
                    out = Some(m(redo));
                }
            }),
        )?;
        match out {
            Some(r) => Ok((durable, r)),
            None => Err(LogError::Corrupt { lsn: durable, what: "flush did not mark" }),
        }
    }

    /// The flush. `target`: return early if already durable that far
    /// (`u64::MAX`: flush what there is). `mark`: see
    /// [`flush_marked`](Self::flush_marked).
    fn flush_inner(&self, target: u64, mark: Option<&mut dyn FnMut(u64)>) -> Result<u64, LogError> {
        let mut f = loop {
            let ends = self.flush_ends.load(Ordering::Acquire);
            if self.durable() >= target && mark.is_none() {
                return Ok(self.durable());
            }
            if let Some(f) = self.flusher.try_lock() {
                break f;
            }
            // Another thread is flushing, and that flush may well cover
            // `target`: wait for it to end (not for its lock: the thread
            // that flushed may take the lock again at once, for its next
            // record, and keep the covered waiters for a whole sync).
            let _ = snowfall_sys::futex::wait(&self.flush_ends, ends, None);
        };
        let result = self.flush_locked(&mut f, target, mark);
        // The lock first, then the news: a waiter woken must find it free.
        drop(f);
        self.flush_ends.fetch_add(1, Ordering::Release);
        snowfall_sys::futex::wake_all(&self.flush_ends);
        result
    }

    /// The flush itself, under the flusher's lock.
    fn flush_locked(
        &self,
        f: &mut Flusher,
        target: u64,
        mut mark: Option<&mut dyn FnMut(u64)>,
    ) -> Result<u64, LogError> {
        if self.durable() >= target && mark.is_none() {
            return Ok(self.durable());
        }
        // Writers whose records the last flush made durable were released
        // just now, together with this one: let them append their next
        // records before the tail is taken, so that this flush carries them
        // too (one yield costs a microsecond, a flush a sync).
        rustix::thread::sched_yield();
        let (bytes, first_block, end) = {
            let mut t = self.tail.lock();
            self.check_failed()?;
            let mut taken = core::mem::take(&mut f.spare);
            taken.clear();
            core::mem::swap(&mut taken, &mut t.bytes);
            let first = t.first_block;
            t.first_block += taken.len().div_ceil(PAYLOAD) as u64;
            let end = if taken.is_empty() { self.durable() } else { stream_lsn(first, taken.len()) };
            if let Some(mark) = mark.as_mut() {
                mark(lsn(t.first_block, 0));
            }
            (taken, first, end)
        };
        if bytes.is_empty() {
            f.spare = bytes;
            return Ok(self.durable());
        }
        // Taken after the records were: whatever they depend on was noted
        // before they were appended.
        if let Some(first) = self.write_first.get()
            && let Err(e) = first.before_log_write()
        {
            f.spare = bytes;
            return Err(self.fail(e));
        }
        let result = self.write_blocks(f, &bytes, first_block);
        f.spare = bytes;
        result?;
        self.durable.fetch_max(end, Ordering::AcqRel);
        self.flushes.fetch_add(1, Ordering::Relaxed);
        Ok(self.durable())
    }

    /// Seals `bytes` into blocks from `first_block` on, writes them (each
    /// run of consecutive slots in one request: a flush of many blocks is
    /// one or two writes, not one per block) and syncs them.
    fn write_blocks(&self, f: &mut Flusher, bytes: &[u8], first_block: u64) -> Result<(), LogError> {
        let n = bytes.len().div_ceil(PAYLOAD);
        while f.blocks.len() < n {
            f.blocks.push(Block::boxed());
        }
        for ((i, payload), block) in bytes.chunks(PAYLOAD).enumerate().zip(f.blocks.iter_mut()) {
            let block = &mut block.0;
            block.fill(0);
            if let Some(dst) = block.get_mut(BLOCK_HEADER..BLOCK_HEADER + payload.len()) {
                dst.copy_from_slice(payload);
            }
            let header = BlockHeader {
                checksum: 0,
                number: first_block + i as u64,
                prev: f.prev,
                flush: first_block,
                epoch: self.epoch,
                used: payload.len() as u16,
            };
            f.prev = seal(block, &header);
        }
        let sealed: Vec<&[u8; BLOCK]> = f.blocks.iter().take(n).map(|b| &b.0).collect();
        let mut done = 0;
        while done < n {
            // Up to the end of the ring, where the slots wrap around.
            let first = slot(first_block + done as u64, self.ring);
            let run = (n - done).min((self.ring + 1 - first) as usize);
            let bufs = sealed.get(done..done + run).unwrap_or_default();
            self.device.write_pages(PageId(first), bufs).map_err(|(_, e)| self.fail(e))?;
            done += run;
            self.blocks.fetch_add(run as u64, Ordering::Relaxed);
        }
        self.device.sync().map_err(|e| self.fail(e))
    }
}

/// "Log before data" as a buffer manager's whole write-back hook: a page
/// may be written only once the log holding its last change is durable
/// ([`Log::durable_to`]; the database's own hook calls that first, then
/// protects against torn writes).
pub struct LogHook(pub alloc::sync::Arc<Log>);

impl LogHook {
    /// Makes the log durable up to `max_lsn`, the highest LSN of the pages
    /// about to be written ([`Log::durable_to`]).
    pub fn durable_to(&self, max_lsn: u64) -> Result<(), DeviceError> {
        self.0.durable_to(max_lsn)
    }
}

impl Log {
    /// Log before data: makes the log durable up to `max_lsn`, the highest
    /// LSN of pages about to be written back. A page whose LSN is beyond
    /// everything appended holds a change the log never got (an append
    /// failed): an error, so that it is never written.
    pub fn durable_to(&self, max_lsn: u64) -> Result<(), DeviceError> {
        if max_lsn <= self.durable() {
            return Ok(());
        }
        if max_lsn > self.appended() {
            // Only a failed append leaves a page like that.
            return Err(self.failure().unwrap_or(DeviceError::Os {
                op: IoOp::Write,
                offset: max_lsn,
                errno: Errno::IO,
            }));
        }
        self.sync_to(max_lsn).map_err(|e| {
            e.device_error().unwrap_or(DeviceError::Os { op: IoOp::Sync, offset: max_lsn, errno: Errno::IO })
        })
    }
}

impl WriteBackHook for LogHook {
    fn before_write_back(&self, _bm: &snowfall_buffer::BufferManager, pages: &[Page]) -> Result<u64, DeviceError> {
        self.durable_to(pages.iter().map(Page::lsn).max().unwrap_or(0)).map(|()| 0)
    }
}
