//! Torn-write protection: the double-write area.
//!
//! A page write that a crash interrupts can leave the page torn (some
//! sectors new, some old), and its checksum then fails. Redo needs every
//! page it reads to be whole, so before a page is overwritten in place,
//! something durable must be able to rebuild it: either an image of the
//! page in the log at or after the redo point (a page a split or merge
//! created or rewrote whole since then; redo applies those without reading
//! the page), or a copy of the page in the *double-write area*, a region of
//! the log file after its ring. The cost is paid per page written back, and
//! only by pages without such an image: a page changed a thousand times
//! between two write-backs is copied at most once per write-back.
//!
//! **Which pages need a copy.** Each page has a *protection mark* (a
//! buffer-manager page tag): the earliest redo point from which recovery
//! can rebuild the page from something whole. A write-back copies the
//! pages whose mark is below the *floor*: the redo point a crash could make
//! recovery start from while the write is in flight or not yet synced. An
//! image record sets the mark to the record's start (redo applies records
//! that start at or after the redo point). A copy sets it to the floor it
//! was taken under, and carries that floor: it is a valid base for redo
//! from any redo point up to it, since the page was latched while it was
//! copied, so each later change of the page lies past the floor.
//!
//! **The floor moves** in two ways, both through [`DoubleWrite::raise`]:
//! a checkpoint raises it to its new redo point once its own page writes
//! are synced (they never need protection under the new redo point), and a
//! full area is emptied by raising it to the log's current end, then
//! syncing the data file, after which no copy in the area is needed. Either
//! way, write-backs that read the old floor must be over first:
//! write-backs register in one of two counters by the parity of a
//! generation that `raise` bumps, and `raise` waits for the old
//! generation's to drain. A checkpoint's superblock is written after a
//! sync that follows the raise, so every write under the old floor is
//! durable by then.
//!
//! **The area** is a chain of batches from its first page, each one device
//! request: a directory page then the copies (sealed pages with their own
//! checksums). Batches are written one at a time (under the area's lock),
//! so the chain is always whole batches and then at most one torn one. A
//! *round* (a random id) starts at the first page whenever the area starts
//! over (each open, each time it is emptied); batches are numbered from 0
//! within it, so leftovers of an older round never extend the chain.
//!
//! ```text
//! directory: | magic "SNOWDWB\0" | checksum u64 | floor u64 | round u64 | sequence u64 | count u32 | zero u32 |
//!            | ids: count x u64 | zero ... |
//! ```
//!
//! checksum: XXH3-64 of bytes 16..4096. **Recovery** ([`restore`]), before
//! redo, follows the chain (reading only the directories of batches whose
//! floor is below the redo point) and puts back every page of the file that
//! does not load (torn, or past the file's end), from its newest copy
//! (highest page LSN) among batches whose floor is at or after the redo
//! point; then the file is synced. A clean close zeroes the first page, so
//! the next open reads one page of the area. A copy whose own write was torn fails
//! its checksum and is ignored: the page's write in place had not begun. A
//! page that loads needs nothing: a write that never happened left the
//! page as the last checkpoint made it durable. After a clean close no
//! copy qualifies (the last checkpoint's copies were taken under the floor
//! before it), so the area never masks damage a crash did not cause. The
//! area then starts empty.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use snowfall_buffer::{BufferManager, Device, DeviceError, PAGE_SIZE, Page, PageId};
use snowfall_latch::Mutex;
use snowfall_wal::format::{put, u64_at};
use xxhash_rust::xxh3::xxh3_64;

const MAGIC: [u8; 8] = *b"SNOWDWB\0";
const CHECKSUM_AT: usize = 8;
const FLOOR_AT: usize = 16;
const ROUND_AT: usize = 24;
const SEQUENCE_AT: usize = 32;
const COUNT_AT: usize = 40;
const IDS_AT: usize = 48;
/// Copies one directory page lists.
pub(crate) const MAX_BATCH: usize = (PAGE_SIZE - IDS_AT) / 8;
static_assertions::const_assert_eq!(MAX_BATCH, 506);

/// The double-write area and the floor.
pub(crate) struct DoubleWrite {
    device: Arc<dyn Device>,
    /// The area's first page in `device`, and its length in pages.
    start: u64,
    pages: u64,
    area: Mutex<Area>,
    floor: AtomicU64,
    generation: AtomicU64,
    writing: [AtomicU64; 2],
    /// One raise at a time.
    raising: Mutex<()>,
    /// Copies written, for the statistics.
    copies: AtomicU64,
}

struct Area {
    /// The next free page of the area.
    next: u64,
    /// A write-back is emptying the area: others wait.
    emptying: bool,
    /// This round's id (a new one each time the area starts over) and the
    /// next batch's number in it.
    round: u64,
    sequence: u64,
}

/// What a write-back registered under: returned to [`DoubleWrite::done`].
pub(crate) type Token = u64;

impl DoubleWrite {
    /// The area of `pages` pages from page `start` of `device`, empty,
    /// with the floor at `floor`.
    pub(crate) fn new(device: Arc<dyn Device>, start: u64, pages: u64, floor: u64) -> DoubleWrite {
        DoubleWrite {
            device,
            start,
            pages,
            area: Mutex::new(Area { next: 0, emptying: false, round: new_round(), sequence: 0 }),
            floor: AtomicU64::new(floor),
            generation: AtomicU64::new(0),
            writing: [AtomicU64::new(0), AtomicU64::new(0)],
            raising: Mutex::new(()),
            copies: AtomicU64::new(0),
        }
    }

    /// Copies written to the area since open.
    pub(crate) fn copies(&self) -> u64 {
        self.copies.load(Ordering::Relaxed)
    }

    /// Marks `page` as rebuildable from the log from `position` on (an
    /// image record starting there).
    pub(crate) fn mark(bm: &BufferManager, page: PageId, position: u64) {
        if let Some(tag) = bm.page_tag(page) {
            tag.fetch_max(position, Ordering::AcqRel);
        }
    }

    fn enter(&self) -> (Token, u64) {
        loop {
            let g = self.generation.load(Ordering::SeqCst);
            self.counter(g).fetch_add(1, Ordering::SeqCst);
            if self.generation.load(Ordering::SeqCst) == g {
                return (g, self.floor.load(Ordering::SeqCst));
            }
            self.counter(g).fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn counter(&self, generation: u64) -> &AtomicU64 {
        let [even, odd] = &self.writing;
        if generation.is_multiple_of(2) { even } else { odd }
    }

    /// Pages the area holds (directories included).
    pub(crate) fn capacity(&self) -> u64 {
        self.pages
    }

    /// The write-back registered as `token` is over.
    pub(crate) fn done(&self, token: Token) {
        self.counter(token).fetch_sub(1, Ordering::SeqCst);
    }

    /// Raises the floor to `floor` (if higher) and waits until no
    /// write-back that read an older floor is in progress.
    pub(crate) fn raise(&self, floor: u64) {
        let _one = self.raising.lock();
        self.floor.fetch_max(floor, Ordering::SeqCst);
        let old = self.generation.fetch_add(1, Ordering::SeqCst);
        wait_until(|| self.counter(old).load(Ordering::SeqCst) == 0);
    }

    /// Before `pages` (sealed copies) are written in place: copies
    /// those whose protection mark is below the floor into the area, synced.
    /// `position` is the log's end now (where a full area raises the floor
    /// to). Returns the token for
    /// [`DoubleWrite::done`], to be called once the writes are over.
    pub(crate) fn protect(&self, bm: &BufferManager, pages: &[Page], position: u64) -> Result<Token, DeviceError> {
        loop {
            let (token, floor) = self.enter();
            let mark = |p: &Page| bm.page_tag(p.id()).map_or(0, |t| t.load(Ordering::Acquire));
            let need: Vec<&Page> = pages.iter().filter(|p| mark(p) < floor).collect();
            if need.is_empty() {
                return Ok(token);
            }
            let mut area = self.area.lock();
            if area.emptying {
                drop(area);
                self.done(token);
                self.wait_emptied();
                continue;
            }
            let len = (need.len() + need.len().div_ceil(MAX_BATCH)) as u64;
            if area.next + len <= self.pages {
                // Batches are written one after another, under the lock:
                // the area is always a chain of whole batches from its
                // start, then at most one torn one (what `restore` reads).
                let written = self.write(&mut area, &need, floor);
                drop(area);
                if let Err(e) = written {
                    self.done(token);
                    return Err(e);
                }
                for p in need {
                    DoubleWrite::mark(bm, p.id(), floor);
                }
                return Ok(token);
            }
            // Full: empty it. No copy is needed once every write that
            // relied on one is synced and the floor is past them all.
            area.emptying = true;
            drop(area);
            self.done(token);
            self.raise(position);
            let synced = bm.device().sync();
            let mut area = self.area.lock();
            area.emptying = false;
            if synced.is_ok() {
                area.start_over();
            }
            drop(area);
            synced?;
        }
    }

    fn wait_emptied(&self) {
        wait_until(|| !self.area.lock().emptying);
    }

    /// Writes `copies` as the area's next batches (a directory page and up
    /// to [`MAX_BATCH`] copies each), synced.
    fn write(&self, area: &mut Area, copies: &[&Page], floor: u64) -> Result<(), DeviceError> {
        for chunk in copies.chunks(MAX_BATCH) {
            let dir = directory(chunk, floor, area.round, area.sequence);
            let mut bufs: Vec<&[u8; PAGE_SIZE]> = Vec::with_capacity(chunk.len() + 1);
            bufs.push(&dir.0);
            bufs.extend(chunk.iter().map(|p| p.bytes()));
            self.device.write_pages(PageId(self.start + area.next), &bufs).map_err(|(_, e)| e)?;
            area.next += bufs.len() as u64;
            area.sequence += 1;
        }
        self.copies.fetch_add(copies.len() as u64, Ordering::Relaxed);
        self.device.sync()
    }

    /// After a clean close: the area's first page zeroed (and synced), so
    /// the next open reads one page of it, not the chain this open left.
    pub(crate) fn clear(&self) -> Result<(), DeviceError> {
        let zero = Block([0; PAGE_SIZE]);
        self.device.write_page(PageId(self.start), &zero.0)?;
        self.device.sync()
    }
}

impl Area {
    /// Empty again: a new round from the first page.
    fn start_over(&mut self) {
        self.next = 0;
        self.round = new_round();
        self.sequence = 0;
    }
}

/// A round id: random, so that batches a round left in the area can never
/// pass for another round's.
fn new_round() -> u64 {
    let mut id = [0u8; 8];
    // Retried on EINTR only; a failure leaves the clock's nanoseconds,
    // which differ between rounds as well.
    while matches!(
        rustix::rand::getrandom(&mut id, rustix::rand::GetRandomFlags::empty()),
        Err(rustix::io::Errno::INTR)
    ) {}
    u64::from_le_bytes(id) ^ snowfall_sys::clock::Instant::now().as_nanos()
}

/// Waits for `done` (other threads' writes or a sync: spinning briefly,
/// then sleeping in short steps).
fn wait_until(done: impl Fn() -> bool) {
    let mut backoff = snowfall_latch::Backoff::new();
    while !done() {
        if !backoff.snooze() {
            snowfall_sys::clock::sleep(core::time::Duration::from_micros(50));
        }
    }
}

/// A page-aligned page buffer.
#[repr(C, align(4096))]
struct Block([u8; PAGE_SIZE]);

fn directory(copies: &[&Page], floor: u64, round: u64, sequence: u64) -> alloc::boxed::Box<Block> {
    let mut b = alloc::boxed::Box::new(Block([0; PAGE_SIZE]));
    put(&mut b.0, 0, &MAGIC);
    put(&mut b.0, FLOOR_AT, &floor.to_le_bytes());
    put(&mut b.0, ROUND_AT, &round.to_le_bytes());
    put(&mut b.0, SEQUENCE_AT, &sequence.to_le_bytes());
    put(&mut b.0, COUNT_AT, &(copies.len() as u32).to_le_bytes());
    for (i, p) in copies.iter().enumerate() {
        put(&mut b.0, IDS_AT + 8 * i, &p.id().0.to_le_bytes());
    }
    let sum = xxh3_64(b.0.get(FLOOR_AT..).unwrap_or_default());
    put(&mut b.0, CHECKSUM_AT, &sum.to_le_bytes());
    b
}

/// A directory page as read.
struct Directory {
    floor: u64,
    round: u64,
    sequence: u64,
    ids: Vec<PageId>,
}

/// The directory in `b`, if it is one.
fn read_directory(b: &[u8; PAGE_SIZE]) -> Option<Directory> {
    if b.get(..8) != Some(&MAGIC[..]) || u64_at(b, CHECKSUM_AT) != xxh3_64(b.get(FLOOR_AT..)?) {
        return None;
    }
    let count = usize::try_from(u64_at(b, COUNT_AT) & 0xFFFF_FFFF).ok()?;
    if count > MAX_BATCH {
        return None;
    }
    Some(Directory {
        floor: u64_at(b, FLOOR_AT),
        round: u64_at(b, ROUND_AT),
        sequence: u64_at(b, SEQUENCE_AT),
        ids: (0..count).map(|i| PageId(u64_at(b, IDS_AT + 8 * i))).collect(),
    })
}

/// Before redo: puts back, from the area of `pages` pages at `start` of the
/// log device, every page of the file that does not load and has a copy
/// taken under a floor at or after `redo` (the newest), then syncs the
/// file. Returns the pages it put back; an error names its file.
pub(crate) fn restore(
    log: &dyn Device,
    start: u64,
    pages: u64,
    data: &dyn Device,
    redo: u64,
) -> Result<Vec<PageId>, (String, DeviceError)> {
    let log_name = || String::from(log.describe());
    let data_name = || String::from(data.describe());
    let mut block = Block([0; PAGE_SIZE]);
    let mut newest: alloc::collections::BTreeMap<PageId, (u64, u64)> = alloc::collections::BTreeMap::new();
    // The chain of whole batches from the first page: one round, numbered
    // from 0. The first page that is not its next batch ends it (a torn
    // batch, another round's leftovers, zeros).
    let mut at = 0;
    let mut round = None;
    let mut sequence = 0;
    while at < pages {
        match log.read_page(PageId(start + at), &mut block.0) {
            Ok(()) => {}
            // Never written (a device without `allocate`'s length).
            Err(DeviceError::PastEnd { .. }) => break,
            Err(e) => return Err((log_name(), e)),
        }
        let Some(dir) = read_directory(&block.0) else { break };
        if dir.sequence != sequence || round.is_some_and(|r| r != dir.round) || at + 1 + dir.ids.len() as u64 > pages {
            break;
        }
        round = Some(dir.round);
        // Copies taken under a floor below the redo point are not needed
        // (their writes were synced before that checkpoint took effect).
        if dir.floor >= redo {
            for (k, id) in dir.ids.iter().enumerate() {
                let place = start + at + 1 + k as u64;
                let mut copy = Page::zeroed();
                if log.read_page(PageId(place), copy.bytes_mut()).is_ok()
                    && copy.verify(*id).is_ok()
                    && newest.get(id).is_none_or(|&(lsn, _)| copy.lsn() > lsn)
                {
                    newest.insert(*id, (copy.lsn(), place));
                }
            }
        }
        at += 1 + dir.ids.len() as u64;
        sequence += 1;
    }
    let mut restored = Vec::new();
    let mut page = Page::zeroed();
    for (&id, &(_, at)) in &newest {
        if data.read_page(id, page.bytes_mut()).is_ok() && page.verify(id).is_ok() {
            continue;
        }
        log.read_page(PageId(at), page.bytes_mut()).map_err(|e| (log_name(), e))?;
        data.write_page(id, page.bytes()).map_err(|e| (data_name(), e))?;
        restored.push(id);
    }
    if !restored.is_empty() {
        data.sync().map_err(|e| (data_name(), e))?;
    }
    Ok(restored)
}
