//! The database: named trees over one buffer manager and one log, writes
//! with a durability each, batches that commit as one.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ops::Bound;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use snowfall_btree::journal::Journal;
use snowfall_btree::{BTree, Direction, MAX_ENTRY, MAX_KEY, Written};
use snowfall_buffer::{BufferManager, PageId};
use snowfall_latch::Mutex;
use snowfall_wal::Log;

use crate::error::{Error, ReadOnly};
use crate::maintenance::Maintenance;
use crate::options::{Durability, Options};
use crate::range::Range;
use crate::superblock::{MAX_NAME, MAX_TREES, Superblock};
use crate::values::MAX_VALUE;
use crate::versioning::Stage;

/// What the catalog lock guards.
pub(crate) struct State {
    /// The superblock last written.
    pub(crate) sb: Superblock,
    /// Named trees now (the superblock has them as of the last checkpoint).
    pub(crate) catalog: Vec<(String, PageId)>,
    /// The last checkpoint's free-list trunk pages: withheld from
    /// allocation until the next checkpoint replaces them.
    pub(crate) quarantine: Vec<PageId>,
}

/// Everything a database is; shared with the background thread.
pub(crate) struct Inner {
    pub(crate) bm: BufferManager,
    pub(crate) log: Arc<Log>,
    pub(crate) file: String,
    pub(crate) options: Options,
    pub(crate) tree_config: snowfall_btree::Config,
    pub(crate) state: Mutex<State>,
    /// One checkpoint at a time; the incremental checkpoint's cuts not yet
    /// installed, oldest first.
    pub(crate) checkpointing: Mutex<Vec<crate::checkpoint::Cut>>,
    /// A checkpoint is running (set under `checkpointing`).
    pub(crate) checkpoint_running: AtomicBool,
    /// Batches in progress: (id, the start LSN of their first record).
    pub(crate) batches: Mutex<Vec<(u64, u64)>>,
    pub(crate) next_batch: AtomicU64,
    /// Set by the first failure that stops writes.
    pub(crate) stopped: AtomicBool,
    pub(crate) stop_cause: Mutex<Option<Error>>,
    /// The last write that found the disk full, and when (monotonic
    /// nanoseconds): writes are refused with it until a checkpoint, tried
    /// again at most every [`NO_SPACE_RETRY_NANOS`], writes everything out.
    pub(crate) no_space: Mutex<Option<(u64, Error)>>,
    /// Whether `no_space` is set (writers look here first, without a lock).
    pub(crate) full: AtomicBool,
    /// Why the database is read-only, if it is.
    pub(crate) read_only: Option<ReadOnly>,
    /// The redo LSN of the last checkpoint.
    pub(crate) last_checkpoint: AtomicU64,
    /// The redo LSN of the newest cut taken (pending or installed): the
    /// next step is due a step of log after it.
    pub(crate) last_cut: AtomicU64,
    /// When the last checkpoint was taken (monotonic clock, nanoseconds).
    pub(crate) last_checkpoint_at: AtomicU64,
    /// Checkpoints installed since open.
    pub(crate) checkpoints: AtomicU64,
    pub(crate) closed: AtomicBool,
    /// The write-back hook (log before data, torn-write protection).
    pub(crate) hook: Arc<crate::open::Hook>,
    /// What recovery did when this database was opened.
    pub(crate) recovery: Recovery,
    /// Bytes read from and written to the two files since they were opened.
    pub(crate) io: crate::stats::Io,
    /// What the database had written before this open (as of the
    /// checkpoint it opened from).
    pub(crate) lifetime_base: crate::superblock::Lifetime,
    /// Large values written and not yet synced (`values.rs`).
    pub(crate) data_first: Arc<crate::values::DataFirst>,
    /// Spare bounce buffers for large values (`values.rs`).
    pub(crate) bounces: Mutex<Vec<Vec<snowfall_buffer::Page>>>,
    /// Old values for open snapshots (`versioning.rs`, `snapshot.rs`).
    pub(crate) versions: snowfall_version::Versions<crate::versioning::Kept>,
}

/// What recovery did when a database was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Log records redone (those after the last checkpoint's redo point).
    pub records_redone: u64,
    /// Batches cut by a crash and undone.
    pub batches_undone: usize,
    /// Pages a crash tore (or lost past the file's end) put back from the
    /// double-write area before redo.
    pub pages_restored: usize,
}

/// An open database.
pub struct Database {
    pub(crate) inner: Arc<Inner>,
    pub(crate) maintenance: Option<Arc<Maintenance>>,
}

impl core::fmt::Debug for Database {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Database").field("file", &self.inner.file).field("log", &self.inner.log).finish()
    }
}

/// A named tree of a database: an ordered map from byte keys to byte values.
#[derive(Clone, Copy)]
pub struct Tree<'db> {
    pub(crate) db: &'db Inner,
    pub(crate) tree: BTree<'db>,
}

impl core::fmt::Debug for Tree<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Tree").field("root", &self.tree.root()).finish()
    }
}

/// What a lookup that found a reference hands [`Tree::resolve`] (which
/// looks the key up again under a pin).
const LARGE: snowfall_btree::Found = snowfall_btree::Found { len: 0, reference: true };

/// Who owns a page, as [`Database::accounting`] found: a large value.
pub(crate) const OWNER_VALUE: u8 = 5;

/// What [`Database::accounting`] found.
pub(crate) struct Accounting {
    pub(crate) entries: u64,
    /// Per page: 1 superblock, 2 free, 3 a checkpoint's free list, 4 a tree,
    /// [`OWNER_VALUE`].
    pub(crate) owner: Vec<u8>,
    pub(crate) references: Vec<crate::values::Reference>,
}

/// Log bytes a checkpoint leaves free at least, for writes in flight while
/// the ring is nearly full (each write logs a few pages at most).
const SLACK_BYTES: u64 = 8 << 20;

/// How often writes refused for a full disk try a checkpoint to see if
/// space came back (each try attempts to write every dirty page).
pub(crate) const NO_SPACE_RETRY_NANOS: u64 = 1_000_000_000;

/// A write of pages (not a sync, not the log) that the disk had no room
/// for: the kernel took none of it, so trying again later is safe and
/// nothing needs to stop.
fn is_page_write_without_space(e: &Error) -> bool {
    use snowfall_buffer::DeviceError::NoSpace;
    matches!(e, Error::Io { source: NoSpace { .. }, .. })
        || matches!(e, Error::Buffer(snowfall_buffer::Error::WriteBack { source: NoSpace { .. }, .. }))
}

impl Inner {
    /// Stops all writes for good (until reopened), remembering why.
    pub(crate) fn stop(&self, cause: &Error) {
        let mut c = self.stop_cause.lock();
        if c.is_none() {
            log::error!("{}: stopping writes: {cause}", self.file);
            *c = Some(cause.clone());
        }
        self.stopped.store(true, Ordering::Release);
    }

    pub(crate) fn check_stopped(&self) -> Result<(), Error> {
        if self.stopped.load(Ordering::Acquire) {
            let cause = self.stop_cause.lock().clone().unwrap_or(Error::Config { what: "stopped" });
            return Err(Error::Stopped { cause: alloc::boxed::Box::new(cause) });
        }
        Ok(())
    }

    /// Refuses writes to a read-only database, or one that was stopped.
    pub(crate) fn check_writable(&self) -> Result<(), Error> {
        if let Some(why) = &self.read_only {
            return Err(Error::ReadOnly { file: self.file.clone(), why: why.clone() });
        }
        self.check_stopped()
    }

    /// The error that a full disk left, while it is too soon to try again.
    pub(crate) fn no_space_wait(&self) -> Option<Error> {
        let now = snowfall_sys::clock::Instant::now().as_nanos();
        match &*self.no_space.lock() {
            Some((at, e)) if now.saturating_sub(*at) < NO_SPACE_RETRY_NANOS => Some(e.clone()),
            _ => None,
        }
    }

    /// An error from a write: I/O and log failures stop the database; a
    /// page write that found the disk full refuses writes until a
    /// checkpoint gets everything out (see [`Inner::admit`]).
    pub(crate) fn failed(&self, e: Error) -> Error {
        match &e {
            e if is_page_write_without_space(e) => {
                let now = snowfall_sys::clock::Instant::now().as_nanos();
                let mut no_space = self.no_space.lock();
                if no_space.is_none() {
                    log::warn!("{}: the disk is full; refusing writes until space is freed: {e}", self.file);
                }
                *no_space = Some((now, e.clone()));
                self.full.store(true, Ordering::Release);
            }
            Error::Log(_) | Error::Io { .. } => self.stop(&e),
            Error::Buffer(snowfall_buffer::Error::Sync { .. } | snowfall_buffer::Error::LogFlush { .. }) => {
                self.stop(&e)
            }
            _ => {}
        }
        e
    }

    /// Log bytes written since the last checkpoint's redo point.
    fn log_since_checkpoint(&self) -> u64 {
        self.log.appended().saturating_sub(self.last_checkpoint.load(Ordering::Acquire))
    }

    /// Log bytes the ring can hold before writers must wait.
    pub(crate) fn log_limit(&self) -> u64 {
        (self.log.ring() * 4096).saturating_sub(SLACK_BYTES.max(self.log.ring() * 4096 / 8))
    }

    /// Whether a full checkpoint is due: `checkpoint_interval` has passed
    /// since the last install, with something written.
    pub(crate) fn checkpoint_due(&self) -> bool {
        let at = self.last_checkpoint_at.load(Ordering::Relaxed);
        let elapsed = snowfall_sys::clock::Instant::now().as_nanos().saturating_sub(at);
        self.log_since_checkpoint() > 0 && elapsed >= self.options.checkpoint_interval.as_nanos() as u64
    }

    /// The checkpointer's work, from the background thread or (without
    /// one) from writers: a full checkpoint if one is due, else a step of
    /// the incremental one if the log has grown enough. A writer looks at
    /// the clock only every 64th record (the interval is a minute).
    pub(crate) fn checkpoint_work(&self, writer: bool) -> Result<(), Error> {
        if (!writer || self.log.records().is_multiple_of(64)) && self.checkpoint_due() {
            self.try_checkpoint()
        } else {
            self.checkpoint_step()
        }
    }

    /// Before a write (holding no latch): refuses if read-only or stopped,
    /// or while the disk is full (trying a checkpoint, at most once a
    /// second, to see whether space came back), and does the checkpointer's
    /// work inline when no background thread does it or it fell behind
    /// (or a full checkpoint when the ring is nearly full).
    pub(crate) fn admit(&self) -> Result<(), Error> {
        self.check_writable()?;
        if self.full.load(Ordering::Acquire) && self.no_space.lock().is_some() {
            if let Some(e) = self.no_space_wait() {
                return Err(e);
            }
            self.checkpoint()?;
        }
        if self.log_since_checkpoint() >= self.log_limit() {
            self.checkpoint()?;
        } else if self.options.spawn.is_none() || self.checkpoint_behind() {
            self.checkpoint_work(true)?;
        }
        Ok(())
    }

    /// After a write logged at `lsn` (0: it changed nothing, so logged
    /// nothing): waits as `durability` says. A write that changed nothing
    /// still comes after every write before it, so a `Sync` one waits for
    /// all of those.
    pub(crate) fn settle(&self, lsn: u64, durability: Durability) -> Result<(), Error> {
        let sync = match durability {
            Durability::Sync => true,
            Durability::Group => self.options.spawn.is_none(),
            Durability::None => false,
        };
        if sync {
            let lsn = if lsn == 0 { self.log.appended() } else { lsn };
            self.log.sync_to(lsn).map_err(|e| self.failed(Error::Log(e)))?;
        }
        Ok(())
    }

    /// Sets `key` to `value` in `tree` as part of `batch` (0: none): a
    /// large value is written to an extent first, and the tree gets its
    /// reference (`values.rs`).
    /// Keeps the value it replaces first if `stage` is a commit.
    pub(crate) fn put_value(
        &self,
        stage: &Stage<'_>,
        tree: &BTree<'_>,
        key: &[u8],
        value: &[u8],
        batch: u64,
    ) -> Result<Written, Error> {
        if !crate::values::is_large(key, value.len()) {
            self.before_change(stage, tree, key, batch)?;
            return Ok(tree.put(key, value, batch)?);
        }
        let reference = self.write_value(value)?;
        if let Err(e) = self.before_change(stage, tree, key, batch) {
            for &(start, pages) in &reference.extents {
                self.bm.abandon_extent(start, pages);
            }
            return Err(e);
        }
        self.put_reference(tree, key, &reference, batch)
    }

    pub(crate) fn tree_at(&self, root: PageId) -> BTree<'_> {
        self.tree_logged_to(root, self)
    }

    /// The tree at `root`, its changes logged through `journal`.
    pub(crate) fn tree_logged_to<'a>(&'a self, root: PageId, journal: &'a dyn Journal) -> BTree<'a> {
        BTree::open(&self.bm, root, self.tree_config).with_journal(journal)
    }

    /// One write outside a transaction: admitted, staged (`versioning.rs`),
    /// done, then acknowledged as `durability` says (after the stage ends:
    /// a sync never holds the commit lock).
    fn write(
        &self,
        durability: Durability,
        op: impl FnOnce(&Stage<'_>) -> Result<Written, Error>,
    ) -> Result<bool, Error> {
        self.admit()?;
        let stage = self.stage();
        let written = op(&stage).map_err(|e| self.failed(e));
        drop(stage);
        let written = written?;
        self.settle(written.lsn, durability)?;
        Ok(written.existed)
    }
}

pub(crate) fn check_entry(key: &[u8], value: Option<&[u8]>) -> Result<(), Error> {
    if key.len() > MAX_KEY {
        return Err(Error::Tree(snowfall_btree::Error::KeyTooLarge { len: key.len(), max: MAX_KEY }));
    }
    if let Some(v) = value
        && v.len() > MAX_VALUE
    {
        return Err(Error::Tree(snowfall_btree::Error::ValueTooLarge { len: v.len(), max: MAX_VALUE }));
    }
    Ok(())
}

impl Database {
    /// The tree named `name`, created (durably) if it does not exist.
    pub fn tree(&self, name: &str) -> Result<Tree<'_>, Error> {
        let db = &*self.inner;
        if let Some(root) = db.state.lock().catalog.iter().find(|(n, _)| n == name).map(|(_, r)| *r) {
            return Ok(Tree { db, tree: db.tree_at(root) });
        }
        if name.len() > MAX_NAME {
            return Err(Error::Catalog { what: "a tree name is longer than 64 bytes" });
        }
        db.admit()?;
        let root = db.create_tree(name)?;
        Ok(Tree { db, tree: db.tree_at(root) })
    }

    /// The tree named `name`, if it exists.
    pub fn existing_tree(&self, name: &str) -> Result<Tree<'_>, Error> {
        let db = &*self.inner;
        let root = db.state.lock().catalog.iter().find(|(n, _)| n == name).map(|(_, r)| *r);
        root.map(|root| Tree { db, tree: db.tree_at(root) }).ok_or_else(|| Error::NoSuchTree { name: name.into() })
    }

    /// Names of the trees.
    pub fn tree_names(&self) -> Vec<String> {
        self.inner.state.lock().catalog.iter().map(|(n, _)| n.clone()).collect()
    }

    /// Takes a checkpoint now: every change so far is written to the
    /// database file, and the log before it can be reused.
    pub fn checkpoint(&self) -> Result<(), Error> {
        self.inner.checkpoint()
    }

    /// Whether a checkpoint is running now (for monitoring: a benchmark
    /// tells the latency of writes during checkpoints from the rest).
    pub fn checkpoint_in_progress(&self) -> bool {
        self.inner.checkpoint_running.load(Ordering::Relaxed)
    }

    /// Makes every write so far durable (flushes the log). A read-only
    /// database has nothing to sync.
    pub fn sync(&self) -> Result<(), Error> {
        if self.inner.read_only.is_some() {
            return Ok(());
        }
        self.inner.check_stopped()?;
        self.inner.log.flush().map(|_| ()).map_err(|e| self.inner.failed(Error::Log(e)))
    }

    /// Checks every tree's structure and that every page is accounted for
    /// exactly once (in one tree, free, or holding the free list); returns
    /// the number of entries. Not for use while other threads write.
    pub fn check(&self) -> Result<u64, String> {
        self.accounting().map(|a| a.entries)
    }

    /// [`check`](Self::check)'s walk: entries, who owns each page, and
    /// every large value's reference.
    pub(crate) fn accounting(&self) -> Result<Accounting, String> {
        let db = &*self.inner;
        let (next, free) = db.bm.allocation();
        let mut owner: Vec<u8> = alloc::vec![0; next as usize];
        let mut mark = |p: PageId, what: u8| -> Result<(), String> {
            match owner.get_mut(p.0 as usize) {
                Some(o) if *o == 0 => {
                    *o = what;
                    Ok(())
                }
                Some(o) => Err(alloc::format!("{p} is used twice ({} and {what})", *o)),
                None => Err(alloc::format!("{p} is beyond the {next} allocated pages")),
            }
        };
        mark(PageId(0), 1)?;
        mark(PageId(1), 1)?;
        for p in free.ids() {
            mark(p, 2)?;
        }
        let state = db.state.lock();
        for &p in &state.quarantine {
            mark(p, 3)?;
        }
        let catalog = state.catalog.clone();
        drop(state);
        // And the trunk pages of the continuous checkpoint's pending cuts.
        for p in db.checkpointing.lock().iter().flat_map(crate::checkpoint::Cut::trunks) {
            mark(p, 3)?;
        }
        let mut entries = 0;
        let mut references = Vec::new();
        for (name, root) in catalog {
            let mut err = None;
            let mut leaves_refs = Vec::new();
            let shape = db.tree_at(root).check_all(
                &mut |p| {
                    if err.is_none() {
                        err = mark(p, 4).err();
                    }
                },
                &mut |leaf, bytes| leaves_refs.push((leaf, bytes.to_vec())),
            );
            let shape = shape.map_err(|e| alloc::format!("tree {name:?}: {e}"))?;
            if let Some(e) = err {
                return Err(alloc::format!("tree {name:?}: {e}"));
            }
            for (leaf, bytes) in leaves_refs {
                let r = crate::values::Reference::decode(&bytes)
                    .ok_or_else(|| alloc::format!("tree {name:?}: {leaf} holds a malformed reference"))?;
                for &(start, pages) in &r.extents {
                    for p in start..start.saturating_add(pages) {
                        mark(PageId(p), OWNER_VALUE)
                            .map_err(|e| alloc::format!("tree {name:?}: a large value in {leaf}: {e}"))?;
                    }
                }
                references.push(r);
            }
            entries += shape.entries;
        }
        match owner.iter().position(|&o| o == 0) {
            Some(p) => Err(alloc::format!("page {p} is neither used nor free (leaked)")),
            None => Ok(Accounting { entries, owner, references }),
        }
    }

    /// What recovery did when the database was opened.
    pub fn recovery(&self) -> Recovery {
        self.inner.recovery
    }

    /// Why the database is open read-only (`None`: it takes writes).
    pub fn read_only(&self) -> Option<&ReadOnly> {
        self.inner.read_only.as_ref()
    }

    /// The buffer manager (statistics, tests).
    pub fn buffer(&self) -> &BufferManager {
        &self.inner.bm
    }

    /// The log (statistics, tests).
    pub fn log(&self) -> &Log {
        &self.inner.log
    }

    /// Closes the database: stops the background thread, takes a final
    /// checkpoint. Dropping does the same but cannot report errors.
    pub fn close(mut self) -> Result<(), Error> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), Error> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        if let Some(m) = self.maintenance.take() {
            m.stop();
        }
        if self.inner.read_only.is_some() {
            return Ok(());
        }
        if self.inner.stopped.load(Ordering::Acquire) {
            return self.inner.check_stopped();
        }
        self.inner.checkpoint()?;
        // Every page is written and synced: no copy will be needed, and the
        // next open need not read the area's chain.
        let log_file = || alloc::format!("{}.wal", self.inner.file);
        self.inner.hook.copies.clear().map_err(|source| Error::Io { file: log_file(), source })
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            log::error!("{}: closing failed: {e}", self.inner.file);
        }
    }
}

impl<'db> Tree<'db> {
    /// The value of `key`, if present.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let mut buf = [0u8; MAX_ENTRY];
        match self.tree.get_into(key, &mut buf)? {
            None => Ok(None),
            Some(found) if !found.reference => Ok(Some(buf.get(..found.len).unwrap_or_default().to_vec())),
            Some(found) => {
                let mut out = Vec::new();
                Ok(self.resolve(key, found, &mut buf, &mut out)?.map(|_| out))
            }
        }
    }

    /// Runs `f` on the value of `key`; `None` if the key is absent. The
    /// value is read in place, without copying it: a value stored inline
    /// under a shared latch on its leaf (writers to that leaf wait until `f`
    /// returns, so `f` must be short and must not write to the database: it
    /// would wait for itself; `f` never runs inside a fault guard: the leaf
    /// is latched, so it cannot be evicted), a large value in the pool, its
    /// extent latched (only its eviction waits). A large value too large to
    /// cache is read into memory first.
    pub fn get_with<R>(&self, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>, Error> {
        let mut f = Some(f);
        let found = self.tree.get_with(key, |stored| {
            if stored.reference {
                // Pinned while the leaf is latched: the reference cannot be
                // released before the pin is taken.
                let pin = self.db.bm.pin_extents();
                Err((pin, crate::values::decode_for_read(stored.bytes)))
            } else {
                Ok(f.take().map(|f| f(stored.bytes)))
            }
        })?;
        let (_pin, decoded) = match found {
            None => return Ok(None),
            Some(Ok(r)) => return Ok(r),
            Some(Err(large)) => large,
        };
        let Some(f) = f.take() else { return Ok(None) };
        self.db.with_decoded(decoded, f).map(Some)
    }

    /// The entries with keys in `range`, in order, from either end (see
    /// [`Range`] for what it sees while others write).
    pub fn range<K: AsRef<[u8]> + ?Sized>(&self, range: impl core::ops::RangeBounds<K>) -> Range<'db> {
        let (low, high) = crate::range::owned(&range);
        Range::new(*self, low, high)
    }

    /// Copies the value of `key` into `out` (replacing what it held, and
    /// reusing its allocation); the value's length, if present.
    pub fn get_into(&self, key: &[u8], out: &mut Vec<u8>) -> Result<Option<usize>, Error> {
        let mut buf = [0u8; MAX_ENTRY];
        match self.tree.get_into(key, &mut buf)? {
            None => Ok(None),
            Some(found) => self.resolve(key, found, &mut buf, out),
        }
    }

    /// Sets `key` to `value` with the database's default durability;
    /// returns whether the key existed.
    pub fn insert(&self, key: &[u8], value: &[u8]) -> Result<bool, Error> {
        self.insert_with(key, value, self.db.options.durability)
    }

    /// Sets `key` to `value`, acknowledged as `durability` says.
    pub fn insert_with(&self, key: &[u8], value: &[u8], durability: Durability) -> Result<bool, Error> {
        check_entry(key, Some(value))?;
        self.db.write(durability, |stage| self.db.put_value(stage, &self.tree, key, value, 0))
    }

    /// Removes `key` with the default durability; returns whether it was there.
    pub fn remove(&self, key: &[u8]) -> Result<bool, Error> {
        self.remove_with(key, self.db.options.durability)
    }

    /// Removes `key`, acknowledged as `durability` says.
    pub fn remove_with(&self, key: &[u8], durability: Durability) -> Result<bool, Error> {
        check_entry(key, None)?;
        self.db.write(durability, |stage| {
            self.db.before_change(stage, &self.tree, key, 0)?;
            Ok(self.tree.delete(key, 0)?)
        })
    }

    /// Visits entries in key order from `from` in `direction` until `visit`
    /// returns false. Correct while other threads write (each key once).
    pub fn scan(
        &self,
        from: Bound<&[u8]>,
        direction: Direction,
        mut visit: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), Error> {
        let mut failed = None;
        let mut large = Vec::new();
        self.tree.scan(from, direction, |key, stored| {
            if !stored.reference {
                return visit(key, stored.bytes);
            }
            let mut buf = [0u8; MAX_ENTRY];
            match self.resolve(key, LARGE, &mut buf, &mut large) {
                Ok(Some(_)) => visit(key, &large),
                // Removed since the leaf was read: as if the scan came later.
                Ok(None) => true,
                Err(e) => {
                    failed = Some(e);
                    false
                }
            }
        })?;
        failed.map_or(Ok(()), Err)
    }

    /// The underlying B-tree.
    pub fn btree(&self) -> &BTree<'db> {
        &self.tree
    }
}

impl Inner {
    /// Creates the tree `name` (durably), unless it exists by now.
    fn create_tree(&self, name: &str) -> Result<PageId, Error> {
        let mut state = self.state.lock();
        if let Some(root) = state.catalog.iter().find(|(n, _)| n == name).map(|(_, r)| *r) {
            return Ok(root);
        }
        if state.catalog.len() >= MAX_TREES {
            return Err(Error::Catalog { what: "the catalog is full (32 trees)" });
        }
        let mut root = self.bm.allocate()?;
        BTree::init_root(root.page_mut().body_mut());
        let result = self.log_create(name, &root);
        let lsn = *result.as_ref().unwrap_or(&u64::MAX);
        root.page_mut().set_lsn(lsn);
        let lsn = result.map_err(|e| self.failed(Error::Log(e)))?;
        let id = root.id();
        drop(root);
        state.catalog.push((name.into(), id));
        drop(state);
        self.log.sync_to(lsn).map_err(|e| self.failed(Error::Log(e)))?;
        Ok(id)
    }
}
