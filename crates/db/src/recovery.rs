//! Recovery: redo from the last checkpoint, then undo batches that never
//! committed.
//!
//! **Redo.** The log is read from the checkpoint's scan point to its end
//! (a torn tail ends it cleanly; damage anywhere else is an error). Page
//! changes before the redo point are already in the file and are skipped.
//! From the redo point on, each unit is redone page by page: an image
//! replaces the page without reading it; any other operation is applied
//! only if the page's LSN is below the unit's (its stored copy predates
//! the change). Pages a crash tore were put back from the double-write area
//! before redo (`double_write.rs`), except those whose write-back relied on
//! an image in the log instead: such a page cannot be read, so its changes
//! are skipped until its image comes, which rebuilds it; one that never
//! comes is an error. Freed and
//! allocated pages update the free list the checkpoint stored; tree
//! creations update its catalog.
//!
//! **Undo.** A batch with records but no commit record was cut by the
//! crash. Its writes carry the values they replaced, so each is undone,
//! newest first, through the tree (the undo is logged like any write) —
//! unless a committed write to the same key follows it in the log, whose
//! value must stay. Undoing again after another crash is harmless: the
//! first undo's writes are committed writes that follow.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec::Vec;

use snowfall_btree::Stored;
use snowfall_btree::journal::{Decoded, Op};
use snowfall_buffer::{BufferManager, Device, FreeSpace, PageId};
use snowfall_wal::format::{lsn, position};
use snowfall_wal::{LogError, Record, Resume, Scan};

use crate::db::Inner;
use crate::double_write::DoubleWrite;
use crate::drop_tree::DropRecord;
use crate::error::Error;
use crate::journal::{COMMIT, CREATE_TREE, DROP_TREE, UNIT};
use crate::open::Hook;
use crate::superblock::Superblock;
use crate::values::extents_of;

/// One write of a batch, as recovery needs it for undo.
#[derive(Clone, Debug)]
pub(crate) struct BatchWrite {
    lsn: u64,
    tree: PageId,
    key: Vec<u8>,
    /// The value before (absent: `None`), and whether it is a reference.
    before: Option<(Vec<u8>, bool)>,
}

/// What redo may accept, and names.
pub(crate) struct Salvage<'a> {
    /// Accept lost log records (end the log before the damage).
    pub(crate) accept: bool,
    /// The log file is shorter than its ring (accepted, or redo would not
    /// run).
    pub(crate) log_short: bool,
    /// The log's name, for errors.
    pub(crate) log_name: &'a str,
}

impl Salvage<'_> {
    /// Damage to the log, `e`: an error, or (salvaging) the loss to accept.
    fn accept(&self, e: Error, lost: &mut Option<Error>) -> Result<(), Error> {
        let e = named(e, self.log_name);
        if self.accept && matches!(e, Error::LogCorrupt { .. }) {
            *lost = Some(e);
            Ok(())
        } else {
            Err(e)
        }
    }
}

/// What redo found.
pub(crate) struct Recovered {
    pub(crate) resume: Resume,
    /// Where the records redo used end (the log's end, or where damage
    /// that was accepted begins).
    pub(crate) end: u64,
    /// The loss accepted, if any.
    pub(crate) lost: Option<Error>,
    pub(crate) max_epoch: u32,
    pub(crate) catalog: Vec<(String, PageId)>,
    pub(crate) free: FreeSpace,
    pub(crate) next: u64,
    pub(crate) incomplete: BTreeMap<u64, Vec<BatchWrite>>,
    pub(crate) redone: u64,
    pub(crate) undone_batches: usize,
}

fn malformed(lsn: u64) -> Error {
    Error::Log(LogError::Corrupt { lsn, what: "a record does not parse" })
}

/// The log's own corruption errors, named for the file.
fn named(e: Error, file: &str) -> Error {
    match e {
        Error::Log(LogError::Corrupt { lsn, what }) => Error::LogCorrupt { file: file.into(), lsn, what },
        other => other,
    }
}

/// Splits a create-tree record: (name, unit bytes).
fn create_parts(body: &[u8], lsn: u64) -> Result<(&str, &[u8]), Error> {
    let len = usize::from(*body.first().ok_or_else(|| malformed(lsn))?);
    let name = body.get(1..1 + len).ok_or_else(|| malformed(lsn))?;
    let name = core::str::from_utf8(name).map_err(|_| malformed(lsn))?;
    Ok((name, body.get(1 + len..).unwrap_or_default()))
}

struct Redoer<'a> {
    bm: &'a BufferManager,
    free: FreeSpace,
    next: u64,
    /// Pages past the checkpoint's page count that the log changes.
    touched: BTreeSet<PageId>,
    page_count: u64,
    /// Pages that could not be read whole (a crash tore their write-back),
    /// with the error: their changes wait for an image of them in the log,
    /// which their write-back relied on instead of a copy.
    torn: BTreeMap<PageId, snowfall_buffer::Error>,
}

/// Whether a page failed to load the way a torn write leaves it.
fn torn(e: &snowfall_buffer::Error) -> bool {
    use snowfall_buffer::Error as B;
    matches!(e, B::Checksum { .. } | B::Misdirected { .. } | B::UnknownFormat { .. })
}

impl Redoer<'_> {
    /// Redoes one unit from `start` to `lsn`.
    fn unit(&mut self, unit: &Decoded<'_>, start: u64, lsn: u64) -> Result<(), Error> {
        // Whether each page gets this unit's changes: decided at its first
        // change (a page may appear several times).
        let mut apply: Vec<(PageId, bool)> = Vec::new();
        for (page, op) in &unit.changes {
            self.free.remove(*page);
            self.next = self.next.max(page.0 + 1);
            if page.0 >= self.page_count {
                self.touched.insert(*page);
            }
            let decided = apply.iter().find(|(p, _)| p == page).map(|&(_, a)| a);
            let mut guard = match decided {
                Some(false) => continue,
                Some(true) => self.bm.fix_exclusive(*page)?,
                None if op.is_image() => {
                    self.torn.remove(page);
                    DoubleWrite::mark(self.bm, *page, start);
                    self.bm.fix_overwrite(*page)?
                }
                None if self.torn.contains_key(page) => {
                    apply.push((*page, false));
                    continue;
                }
                None => {
                    self.bm.ensure_allocated(self.next)?;
                    let g = match self.bm.fix_exclusive(*page) {
                        Ok(g) => g,
                        Err(e) if torn(&e) => {
                            self.torn.insert(*page, e);
                            apply.push((*page, false));
                            continue;
                        }
                        Err(e) => return Err(e.into()),
                    };
                    let newer = g.page().lsn() >= lsn;
                    apply.push((*page, !newer));
                    if newer {
                        continue;
                    }
                    g
                }
            };
            if decided.is_none() && op.is_image() {
                apply.push((*page, true));
            }
            op.apply(guard.page_mut().body_mut()).map_err(|_| Error::Redo { lsn, page: *page })?;
            guard.page_mut().set_lsn(lsn);
        }
        for page in &unit.freed {
            self.free.insert(*page);
        }
        // Large values: the extents of inserted references are in use, those
        // of a released one free (the release was durable before any reuse,
        // so nothing later in the log can need its bytes).
        for (_, op) in &unit.changes {
            if let Op::Insert { value, reference: true, .. } = op {
                for (start, pages) in extents_of(value) {
                    self.free.remove_run(start, pages);
                    self.next = self.next.max(start + pages);
                    for p in start.max(self.page_count)..start + pages {
                        self.touched.insert(PageId(p));
                    }
                }
            }
        }
        if let Some(released) = unit.write.and_then(|w| w.released) {
            for (start, pages) in extents_of(released) {
                // Free whatever part of it was not free already.
                self.free.remove_run(start, pages);
                self.free.insert_run(start, pages);
            }
        }
        Ok(())
    }
}

/// Reads the log from the checkpoint in `sb` and redoes it into `bm`,
/// whose allocation starts from the checkpoint's `free` list.
///
/// Besides corruption the scan reports itself, the log must reach the
/// checkpoint's redo point: the blocks before it were synced before the
/// checkpoint's superblock was written, so a log that ends earlier lost
/// them. With `salvage.accept`, either kind of loss ends the log there
/// instead; the log then resumes a whole ring ahead of the checkpoint, past
/// any LSN the lost records could have stamped on a page that reached the
/// file, so that LSNs keep growing.
pub(crate) fn redo(
    bm: &BufferManager,
    log: &dyn Device,
    sb: &Superblock,
    free: FreeSpace,
    hook: &Hook,
    salvage: &Salvage<'_>,
) -> Result<Recovered, Error> {
    let mut lost = None;
    let mut scan = Scan::new(log, sb.ring, sb.scan, sb.checkpoint_epoch);
    let mut redoer = Redoer {
        bm,
        free,
        next: sb.page_count,
        touched: BTreeSet::new(),
        page_count: sb.page_count,
        torn: BTreeMap::new(),
    };
    let mut catalog = sb.catalog.clone();
    let mut batches: BTreeMap<u64, Vec<BatchWrite>> = BTreeMap::new();
    // Drops in progress: root -> pages listed so far.
    let mut dropping: BTreeMap<PageId, Vec<PageId>> = BTreeMap::new();
    let mut redone = 0;
    let mut end = sb.scan;
    loop {
        let record = match scan.next_record() {
            Ok(Some(record)) => record,
            Ok(None) => break,
            Err(e) => {
                salvage.accept(Error::Log(e), &mut lost)?;
                break;
            }
        };
        let record_end = record.end;
        match redo_record(&mut redoer, record, sb, &mut catalog, &mut batches, &mut dropping, hook) {
            Ok(did) => redone += did,
            Err(e) => {
                salvage.accept(e, &mut lost)?;
                break;
            }
        }
        end = record_end;
    }
    // A page still unreadable had nothing to rebuild it from: damaged, not
    // torn by a crash (or the log that held its image was lost), unless it
    // is free now (a checkpoint cut short wrote its free list there).
    let free = &redoer.free;
    if let Some((_, e)) = redoer.torn.into_iter().find(|&(p, _)| !free.contains(p)) {
        return Err(e.into());
    }
    // Ids handed out after the checkpoint whose change never reached the
    // log (other threads' later ones did) hold nothing: free.
    for p in sb.page_count..redoer.next {
        if !redoer.touched.contains(&PageId(p)) {
            redoer.free.insert(PageId(p));
        }
    }
    // The blocks before the checkpoint's redo point were synced before its
    // superblock was written: a log that ends before them lost them.
    let mut resume = scan.resume();
    let redo_block = position(sb.redo).0;
    if lost.is_none() && resume.next_block < redo_block {
        salvage.accept(
            Error::LogCorrupt {
                file: salvage.log_name.into(),
                lsn: lsn(resume.next_block, 0),
                what: "the log ends before the last checkpoint: blocks it had synced are missing",
            },
            &mut lost,
        )?;
    }
    if lost.is_some() || salvage.log_short {
        // Every block ever written lies below the checkpoint's first block
        // plus the ring (appends stop a ring ahead of it): start past them.
        let next_block = resume.next_block.max(position(sb.scan).0 + sb.ring + 1);
        resume = Resume { next_block, prev: 0, durable: lsn(next_block, 0) };
    }
    Ok(Recovered {
        resume,
        end,
        lost,
        max_epoch: scan.max_epoch(),
        catalog,
        free: redoer.free,
        next: redoer.next,
        undone_batches: batches.len(),
        incomplete: batches,
        redone,
    })
}

/// Redoes one record; returns how many units it redid (0 or 1).
#[allow(clippy::too_many_arguments, reason = "the redo state, passed apart so each piece's use is visible")]
fn redo_record(
    redoer: &mut Redoer<'_>,
    record: Record,
    sb: &Superblock,
    catalog: &mut Vec<(String, PageId)>,
    batches: &mut BTreeMap<u64, Vec<BatchWrite>>,
    dropping: &mut BTreeMap<PageId, Vec<PageId>>,
    hook: &Hook,
) -> Result<u64, Error> {
    let mut redone = 0;
    // Everything read so far is on disk: pages redone up to here may be
    // written back by evictions.
    hook.recovered_to(record.end);
    let lsn = record.end;
    let live = record.start >= sb.redo;
    match record.kind {
        UNIT => {
            let unit = Decoded::decode(&record.body).map_err(|_| malformed(record.start))?;
            if let Some(w) = unit.write
                && w.batch != 0
            {
                batches.entry(w.batch).or_default().push(BatchWrite {
                    lsn,
                    tree: w.tree,
                    key: w.key.to_vec(),
                    before: w.before.ok_or_else(|| malformed(record.start))?.map(|v| (v.bytes.to_vec(), v.reference)),
                });
            }
            if live {
                redoer.unit(&unit, record.start, lsn)?;
                redone += 1;
            }
        }
        COMMIT => {
            let mut id = [0u8; 8];
            id.copy_from_slice(record.body.get(..8).ok_or_else(|| malformed(record.start))?);
            batches.remove(&u64::from_le_bytes(id));
        }
        CREATE_TREE => {
            let (name, unit) = create_parts(&record.body, record.start)?;
            let unit = Decoded::decode(unit).map_err(|_| malformed(record.start))?;
            let root = unit.changes.first().map(|(p, _)| *p).ok_or_else(|| malformed(record.start))?;
            if live {
                redoer.unit(&unit, record.start, lsn)?;
                redone += 1;
                if !catalog.iter().any(|(n, _)| n == name) {
                    catalog.push((name.into(), root));
                }
            }
        }
        DROP_TREE => {
            let d = DropRecord::decode(&record.body).ok_or_else(|| malformed(record.start))?;
            dropping.entry(d.root).or_default().extend(d.pages);
            // A drop takes effect at its last record; one cut short never happened.
            if d.last {
                let pages = dropping.remove(&d.root).unwrap_or_default();
                if live {
                    catalog.retain(|(n, r)| !(n == d.name && *r == d.root));
                    for page in pages {
                        redoer.free.insert(page);
                    }
                    redone += 1;
                }
            }
        }
        _ => return Err(Error::Log(LogError::Corrupt { lsn: record.start, what: "a record of unknown kind" })),
    }
    Ok(redone)
}

impl Inner {
    /// Undoes the writes of batches that never committed (see the module
    /// docs); the log was read from `from` to `end`.
    pub(crate) fn undo(&self, incomplete: BTreeMap<u64, Vec<BatchWrite>>, from: u64, end: u64) -> Result<(), Error> {
        if incomplete.is_empty() {
            return Ok(());
        }
        let keys: BTreeSet<(PageId, &[u8])> =
            incomplete.values().flatten().map(|w| (w.tree, w.key.as_slice())).collect();
        // The last committed write to each of those keys, up to `end` (what
        // lies past it was not redone: damage accepted by salvage).
        let mut last: BTreeMap<(PageId, Vec<u8>), u64> = BTreeMap::new();
        let mut scan = Scan::new(self.log.device(), self.log.ring(), from, 0);
        let log_name = alloc::format!("{}.wal", self.file);
        // Nothing to read if redo used no record (the first read could
        // meet the damage salvage accepted).
        let mut more = from < end;
        while more {
            let Some(record) = scan.next_record().map_err(|e| named(Error::Log(e), &log_name))? else { break };
            if record.kind == UNIT {
                let unit = Decoded::decode(&record.body).map_err(|_| named(malformed(record.start), &log_name))?;
                if let Some(w) = unit.write
                    && !incomplete.contains_key(&w.batch)
                    && keys.contains(&(w.tree, w.key))
                {
                    last.insert((w.tree, w.key.to_vec()), record.end);
                }
            }
            more = record.end < end;
        }
        let mut writes: Vec<&BatchWrite> = incomplete.values().flatten().collect();
        writes.sort_by_key(|w| core::cmp::Reverse(w.lsn));
        // Those a committed write to the same key does not supersede.
        writes.retain(|w| last.get(&(w.tree, w.key.clone())).is_none_or(|&l| l <= w.lsn));
        // An old reference goes back as it was: its extent was released only
        // with the batch's commit, so it is whole (`values.rs`). Redo freed
        // it with the batch's record: take it back before any undo can
        // allocate (a split) from the free runs.
        for w in &writes {
            if let Some((v, true)) = &w.before {
                self.bm.claim_extents(&crate::values::extents_of(v));
            }
        }
        for w in writes {
            let tree = self.tree_at(w.tree);
            match &w.before {
                Some((v, reference)) => tree.put_stored(&w.key, Stored { bytes: v, reference: *reference }, 0)?,
                None => tree.delete(&w.key, 0)?,
            };
        }
        self.log.flush()?;
        log::warn!("{}: undid {} batches cut by a crash", self.file, incomplete.len());
        Ok(())
    }
}
