//! Values larger than memory: a writer fed in chunks and a reader that reads
//! at any offset, each through one bounce buffer of [`CHUNK_PAGES`] pages
//! (1 MiB), whatever the value's size. So writing or reading a value of any
//! size through a small pool takes the pool plus one bounce buffer.
//!
//! The writer allocates extents as the value grows (1 MiB first, then each
//! as large as all before it: at most 16 for 4 GiB), writes each chunk
//! straight to the file, and at [`ValueWriter::commit`] gives back the
//! unused tail of the last extent and logs the key with the reference (a
//! value that turned out small is stored inline instead). Until then
//! nothing refers to its extents; dropped uncommitted, or cut by a crash,
//! they are free.
//!
//! The reader pins the extents (`values.rs`) for its whole life, so the
//! value it opened stays readable while writers replace or remove it. Read
//! sequentially from the start, it checks the value's checksum when it
//! reaches the end: a damaged value is an error there (a reader that must
//! not act on bytes before they are verified reads to the end first, or
//! calls [`ValueReader::verify`]).

use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use snowfall_btree::MAX_ENTRY;
use snowfall_buffer::{Extent, ExtentPin, PAGE_SIZE, Page};
use xxhash_rust::xxh3::Xxh3;

use crate::db::{Inner, Tree};
use crate::error::Error;
use crate::options::Durability;
use crate::values::{CHUNK_PAGES, MAX_EXTENTS, MAX_VALUE, Reference, bounce, is_large};

/// Writes a value in chunks: see the module docs.
pub struct ValueWriter<'db> {
    tree: Tree<'db>,
    key: Vec<u8>,
    /// Extents allocated, in value order (the last possibly partly used).
    extents: Vec<Extent>,
    /// Bytes written so far (in the file, plus those in `buf`).
    len: u64,
    hasher: Xxh3,
    buf: Vec<Page>,
    /// Bytes in `buf` (a chunk not yet written, starting at `len - filled`).
    filled: usize,
    /// The writer failed: commit refuses.
    failed: bool,
}

impl core::fmt::Debug for ValueWriter<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ValueWriter").field("len", &self.len).field("extents", &self.extents).finish()
    }
}

impl<'db> ValueWriter<'db> {
    pub(crate) fn new(tree: Tree<'db>, key: &[u8]) -> Result<ValueWriter<'db>, Error> {
        crate::db::check_entry(key, None)?;
        Ok(ValueWriter {
            tree,
            key: key.to_vec(),
            extents: Vec::new(),
            len: 0,
            hasher: Xxh3::new(),
            buf: bounce(CHUNK_PAGES),
            filled: 0,
            failed: false,
        })
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `bytes` to the value. A value growing past
    /// [`MAX_VALUE`] is an error (and the writer can only be dropped).
    pub fn write(&mut self, mut bytes: &[u8]) -> Result<(), Error> {
        if self.failed {
            return Err(Error::Config { what: "the value writer failed earlier" });
        }
        let total = self.len.saturating_add(bytes.len() as u64);
        if total > MAX_VALUE as u64 {
            self.failed = true;
            let len = usize::try_from(total).unwrap_or(usize::MAX);
            return Err(Error::Tree(snowfall_btree::Error::ValueTooLarge { len, max: MAX_VALUE }));
        }
        self.hasher.update(bytes);
        while !bytes.is_empty() {
            let room = CHUNK_PAGES * PAGE_SIZE - self.filled;
            let n = room.min(bytes.len());
            let (now, rest) = bytes.split_at(n);
            copy_into(&mut self.buf, self.filled, now);
            self.filled += n;
            self.len += n as u64;
            bytes = rest;
            if self.filled == CHUNK_PAGES * PAGE_SIZE {
                self.flush_chunk().inspect_err(|_| self.failed = true)?;
            }
        }
        Ok(())
    }

    /// Writes the chunk in `buf` (zero-padded to whole pages) where it
    /// belongs in the value, allocating an extent if needed.
    fn flush_chunk(&mut self) -> Result<(), Error> {
        let pages = self.filled.div_ceil(PAGE_SIZE);
        if pages == 0 {
            return Ok(());
        }
        zero_from(&mut self.buf, self.filled, pages);
        let chunk_start = (self.len - self.filled as u64) / PAGE_SIZE as u64;
        let capacity: u64 = self.extents.iter().map(|e| e.1).sum();
        if chunk_start >= capacity {
            if self.extents.len() >= MAX_EXTENTS {
                return Err(Error::Config { what: "a value needs more than 16 extents" });
            }
            // 1 MiB, then as large as all before it (chunk multiples).
            let size = capacity.max(CHUNK_PAGES as u64);
            let db = self.tree.db;
            let start = db.bm.allocate_extent(size, db.log.durable())?;
            self.extents.push((start, size));
        }
        // The page of the value `chunk_start` is in: extents are whole
        // chunks, so a chunk never straddles two.
        let mut offset = chunk_start;
        let mut at = None;
        for &(start, size) in &self.extents {
            if offset < size {
                at = Some(start + offset);
                break;
            }
            offset -= size;
        }
        let first = at.ok_or(Error::Config { what: "a value writer lost its place" })?;
        self.tree.db.write_pages(first, &self.buf, pages)?;
        self.filled = 0;
        Ok(())
    }

    /// Stores the value under the key, acknowledged as `durability` says;
    /// returns whether the key existed.
    pub fn commit(mut self, durability: Durability) -> Result<bool, Error> {
        if self.failed {
            return Err(Error::Config { what: "the value writer failed earlier" });
        }
        let db = self.tree.db;
        db.admit()?;
        if !is_large(&self.key, self.len as usize) {
            // Small after all: inline, from the buffer (never flushed).
            let mut value = alloc::vec![0u8; self.filled];
            copy_from(&self.buf, 0, &mut value);
            let stage = db.stage();
            let written = db
                .before_change(&stage, &self.tree.tree, &self.key, 0)
                .and_then(|()| Ok(self.tree.tree.put(&self.key, &value, 0)?))
                .map_err(|e| db.failed(e));
            drop(stage);
            let written = written?;
            db.settle(written.lsn, durability)?;
            return Ok(written.existed);
        }
        self.flush_chunk().map_err(|e| db.failed(e))?;
        // Give back what the value did not use.
        let mut need = self.len.div_ceil(PAGE_SIZE as u64);
        let mut used = Vec::with_capacity(self.extents.len());
        for &(start, size) in &self.extents {
            let keep = need.min(size);
            db.bm.trim_extent(start, size, keep);
            if keep > 0 {
                used.push((start, keep));
            }
            need -= keep;
        }
        db.data_first.unsynced.fetch_add(1, Ordering::AcqRel);
        // From here `put_reference` owns the extents: drop has none to give back.
        self.extents.clear();
        let reference = Reference { len: self.len, xxh3: self.hasher.digest(), extents: used };
        let stage = db.stage();
        let written = match db.before_change(&stage, &self.tree.tree, &self.key, 0) {
            Ok(()) => db.put_reference(&self.tree.tree, &self.key, &reference, 0),
            Err(e) => {
                for &(start, pages) in &reference.extents {
                    db.bm.abandon_extent(start, pages);
                }
                Err(e)
            }
        }
        .map_err(|e| db.failed(e));
        drop(stage);
        let written = written?;
        db.settle(written.lsn, durability)?;
        Ok(written.existed)
    }
}

impl Drop for ValueWriter<'_> {
    fn drop(&mut self) {
        for &(start, pages) in &self.extents {
            self.tree.db.bm.abandon_extent(start, pages);
        }
    }
}

/// The pieces of bytes `at .. at + len` of a run of pages, page by page:
/// (page index, offset in the page, offset in the bytes, length).
fn pieces(at: usize, len: usize) -> impl Iterator<Item = (usize, usize, usize, usize)> {
    let mut done = 0;
    core::iter::from_fn(move || {
        if done >= len {
            return None;
        }
        let pos = at + done;
        let within = pos % PAGE_SIZE;
        let n = (PAGE_SIZE - within).min(len - done);
        let piece = (pos / PAGE_SIZE, within, done, n);
        done += n;
        Some(piece)
    })
}

/// Copies `bytes` into the pages of `buf` from byte `at` on.
fn copy_into(buf: &mut [Page], at: usize, bytes: &[u8]) {
    for (page, within, done, n) in pieces(at, bytes.len()) {
        let Some(page) = buf.get_mut(page) else { return };
        let src = bytes.get(done..done + n).unwrap_or_default();
        page.bytes_mut().get_mut(within..within + n).unwrap_or_default().copy_from_slice(src);
    }
}

/// Fills `out` with the bytes of the pages of `buf` from byte `at` on.
fn copy_from(buf: &[Page], at: usize, out: &mut [u8]) {
    for (page, within, done, n) in pieces(at, out.len()) {
        let Some(page) = buf.get(page) else { return };
        let src = page.bytes().get(within..within + n).unwrap_or_default();
        out.get_mut(done..done + n).unwrap_or_default().copy_from_slice(src);
    }
}

/// Zeroes the pages of `buf` from byte `at` to the end of page `pages - 1`.
fn zero_from(buf: &mut [Page], at: usize, pages: usize) {
    for (i, page) in buf.iter_mut().enumerate().take(pages).skip(at / PAGE_SIZE) {
        let from = if i == at / PAGE_SIZE { at % PAGE_SIZE } else { 0 };
        page.bytes_mut().get_mut(from..).unwrap_or_default().fill(0);
    }
}

/// Reads a value at any offset: see the module docs.
pub struct ValueReader<'db> {
    db: &'db Inner,
    _pin: ExtentPin<'db>,
    source: Source,
    /// Where [`read`](Self::read) goes on.
    pos: u64,
    /// The checksum of bytes `0..verified_to`, while reads go in order.
    hasher: Option<(Xxh3, u64)>,
    buf: Vec<Page>,
    /// The value's page the bounce buffer starts at, and pages in it.
    cached: Option<(u64, usize)>,
}

enum Source {
    Inline(Vec<u8>),
    Extents(Reference),
}

impl core::fmt::Debug for ValueReader<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ValueReader").field("len", &self.len()).field("pos", &self.pos).finish()
    }
}

impl<'db> ValueReader<'db> {
    /// A reader of `key`'s value in `tree`, or `None` if it is absent.
    pub(crate) fn open(tree: Tree<'db>, key: &[u8]) -> Result<Option<ValueReader<'db>>, Error> {
        // Pinned before the reference is read (`values.rs`).
        let pin = tree.db.bm.pin_extents();
        let mut buf = [0u8; MAX_ENTRY];
        let Some(found) = tree.btree().get_into(key, &mut buf)? else { return Ok(None) };
        let stored = buf.get(..found.len).unwrap_or_default();
        let source = if found.reference {
            Source::Extents(Reference::decode(stored).ok_or_else(|| tree.db.malformed_reference())?)
        } else {
            Source::Inline(stored.to_vec())
        };
        Ok(Some(ValueReader {
            db: tree.db,
            _pin: pin,
            source,
            pos: 0,
            hasher: Some((Xxh3::new(), 0)),
            buf: Vec::new(),
            cached: None,
        }))
    }

    /// The value's length.
    pub fn len(&self) -> u64 {
        match &self.source {
            Source::Inline(v) => v.len() as u64,
            Source::Extents(r) => r.len,
        }
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Where [`read`](Self::read) goes on.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Moves where [`read`](Self::read) goes on (past the end: reads return 0).
    pub fn seek(&mut self, pos: u64) {
        self.pos = pos;
    }

    /// Reads from the current position, moving it; 0 at the end. Reads that
    /// go in order from the start check the value's checksum at the end.
    pub fn read(&mut self, out: &mut [u8]) -> Result<usize, Error> {
        let n = self.read_at(self.pos, out)?;
        self.pos += n as u64;
        Ok(n)
    }

    /// Reads bytes from `offset` into `out`; how many (0 at or past the
    /// end).
    pub fn read_at(&mut self, offset: u64, out: &mut [u8]) -> Result<usize, Error> {
        let len = self.len();
        if offset >= len || out.is_empty() {
            return Ok(0);
        }
        let n = (len - offset).min(out.len() as u64) as usize;
        let out = out.get_mut(..n).unwrap_or_default();
        match &self.source {
            Source::Inline(v) => {
                out.copy_from_slice(v.get(offset as usize..offset as usize + n).unwrap_or_default());
            }
            Source::Extents(_) => self.copy_extents(offset, out)?,
        }
        self.note_read(offset, out)?;
        Ok(n)
    }

    /// Reads the whole value, checking its checksum.
    pub fn verify(&mut self) -> Result<(), Error> {
        let pos = self.pos;
        self.hasher = Some((Xxh3::new(), 0));
        let mut chunk = alloc::vec![0u8; CHUNK_PAGES * PAGE_SIZE];
        let mut at = 0;
        loop {
            let n = self.read_at(at, &mut chunk)?;
            if n == 0 {
                break;
            }
            at += n as u64;
        }
        self.pos = pos;
        Ok(())
    }

    /// Feeds the checksum with reads in order; at the end, checks it.
    fn note_read(&mut self, offset: u64, bytes: &[u8]) -> Result<(), Error> {
        let Source::Extents(r) = &self.source else { return Ok(()) };
        let (len, want, first) = (r.len, r.xxh3, r.first_page());
        match &mut self.hasher {
            Some((h, to)) if *to == offset => {
                h.update(bytes);
                *to += bytes.len() as u64;
                if *to == len {
                    let ok = h.digest() == want;
                    self.hasher = None;
                    if !ok {
                        return Err(Error::CorruptValue {
                            file: self.db.file.clone(),
                            page: first,
                            what: "its checksum does not match",
                        });
                    }
                }
            }
            // Out of order: no checksum for this pass.
            _ => self.hasher = None,
        }
        Ok(())
    }

    /// Copies the value's bytes from `offset` into `out`, through the bounce
    /// buffer (a chunk of the value's pages at a time).
    fn copy_extents(&mut self, offset: u64, out: &mut [u8]) -> Result<(), Error> {
        let mut done = 0;
        while done < out.len() {
            let at = offset + done as u64;
            let page = at / PAGE_SIZE as u64;
            let chunk = page - page % CHUNK_PAGES as u64;
            if self.cached.is_none_or(|(c, _)| c != chunk) {
                self.load(chunk)?;
            }
            let (c, pages) = self.cached.unwrap_or((chunk, 0));
            let within = (at - c * PAGE_SIZE as u64) as usize;
            let avail = (pages * PAGE_SIZE).saturating_sub(within);
            if avail == 0 {
                return Err(Error::Config { what: "a value reader read past its extents" });
            }
            let n = avail.min(out.len() - done);
            copy_from(&self.buf, within, out.get_mut(done..done + n).unwrap_or_default());
            done += n;
        }
        Ok(())
    }

    /// Loads the value's pages from `chunk` (a multiple of the chunk) into
    /// the bounce buffer.
    fn load(&mut self, chunk: u64) -> Result<(), Error> {
        let Source::Extents(r) = &self.source else { return Ok(()) };
        let total = r.len.div_ceil(PAGE_SIZE as u64);
        let pages = (total - chunk).min(CHUNK_PAGES as u64) as usize;
        if self.buf.len() < pages {
            self.buf = bounce(pages);
        }
        // The chunk's pages, extent by extent.
        let mut loaded = 0;
        let mut skip = chunk;
        for &(start, size) in &r.extents {
            if skip >= size {
                skip -= size;
                continue;
            }
            let n = ((size - skip) as usize).min(pages - loaded);
            let bufs = self.buf.get_mut(loaded..loaded + n).unwrap_or_default();
            self.db.read_pages(start + skip, bufs)?;
            loaded += n;
            skip = 0;
            if loaded == pages {
                break;
            }
        }
        self.cached = Some((chunk, loaded));
        Ok(())
    }
}

impl<'db> Tree<'db> {
    /// A writer of `key`'s value, fed in chunks and stored by
    /// [`ValueWriter::commit`] (see the module docs): for values of any size,
    /// larger than memory too.
    pub fn writer(&self, key: &[u8]) -> Result<ValueWriter<'db>, Error> {
        ValueWriter::new(*self, key)
    }

    /// A reader of `key`'s value (`None` if absent), at any offset, for
    /// values of any size; the value it opened stays readable while it
    /// lives, whatever writers do meanwhile.
    pub fn reader(&self, key: &[u8]) -> Result<Option<ValueReader<'db>>, Error> {
        ValueReader::open(*self, key)
    }
}
