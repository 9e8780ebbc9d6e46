//! The tree handle, its configuration, and the descents every operation
//! starts with: optimistic (no latch, versions validated hand over hand) or
//! latched (shared or exclusive coupling, the fallback after too many
//! restarts and the path structure changes take).

use snowfall_buffer::{BufferManager, ExclusiveGuard, OptimisticGuard, PageId, SharedGuard};
use snowfall_node::{LEAF, Node, NodeMut};

use crate::error::{Error, Step};
use crate::journal::{Journal, NoJournal};
use crate::view::View;

/// How a tree behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Most entries a node holds (nodes also fill up by bytes). Small
    /// values make splits and merges happen with few keys, for tests.
    pub max_entries: usize,
    /// Optimistic attempts before an operation falls back to latches.
    pub restarts: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config { max_entries: usize::MAX, restarts: 16 }
    }
}

/// A B+tree in a buffer manager. The root's page id never changes (a root
/// split moves the root's contents into two new children), so it is the
/// tree's name. Changes go to its [`Journal`] (none by default).
#[derive(Clone, Copy)]
pub struct BTree<'a> {
    pub(crate) bm: &'a BufferManager,
    pub(crate) root: PageId,
    pub(crate) config: Config,
    pub(crate) journal: &'a dyn Journal,
}

impl core::fmt::Debug for BTree<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BTree")
            .field("root", &self.root)
            .field("config", &self.config)
            .field("logged", &self.journal.enabled())
            .finish()
    }
}

/// What a write did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Written {
    /// Whether the key was there before.
    pub existed: bool,
    /// The LSN of its log record (0 if nothing was logged): durable once
    /// the log is durable that far.
    pub lsn: u64,
}

/// How a descent picks children.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Toward {
    /// The child holding `key` (separators `>= key`).
    Key,
    /// The child holding the keys just greater than `key`.
    After,
    /// The rightmost child (the key is ignored).
    Last,
}

impl<'a> BTree<'a> {
    /// Creates an empty tree (one leaf, the root), without a log.
    pub fn create(bm: &'a BufferManager, config: Config) -> Result<BTree<'a>, Error> {
        let mut root = bm.allocate()?;
        Self::init_root(root.page_mut().body_mut());
        Ok(BTree { bm, root: root.id(), config, journal: &NoJournal })
    }

    /// Makes `body` the root of an empty tree (an empty leaf).
    pub fn init_root(body: &mut [u8]) {
        NodeMut::new(body).init(LEAF, None, None, 0);
    }

    /// The tree whose root is `root`, without a log.
    pub fn open(bm: &'a BufferManager, root: PageId, config: Config) -> BTree<'a> {
        BTree { bm, root, config, journal: &NoJournal }
    }

    /// The same tree, logging its changes to `journal`.
    pub fn with_journal(self, journal: &'a dyn Journal) -> BTree<'a> {
        BTree { journal, ..self }
    }

    /// Stamps `pages`, changed by a unit just logged with `result`, with
    /// its LSN. If the log refused, they get an LSN beyond any record, so
    /// the write-back hook never lets their unlogged change reach disk.
    pub(crate) fn stamp(
        &self,
        result: Result<u64, snowfall_wal::LogError>,
        pages: &mut [&mut snowfall_buffer::Page],
    ) -> Result<u64, Error> {
        let lsn = *result.as_ref().unwrap_or(&u64::MAX);
        for p in pages {
            p.set_lsn(lsn);
        }
        result.map_err(Error::Log)
    }

    /// The root's page id.
    pub fn root(&self) -> PageId {
        self.root
    }

    /// The buffer manager.
    pub fn buffer(&self) -> &'a BufferManager {
        self.bm
    }

    /// Descends without latches to the leaf for `key`, validating each
    /// parent after taking its child (optimistic lock coupling). The leaf's
    /// guard is returned unvalidated: the caller validates its own reads.
    pub(crate) fn leaf_optimistic(&self, key: &[u8], toward: Toward) -> Result<OptimisticGuard<'a>, Step> {
        let mut guard = self.bm.optimistic(self.root)?;
        loop {
            let child = {
                let view = View(guard.view());
                let node = Node::open(&view)?;
                if node.is_leaf() {
                    return Ok(guard);
                }
                match toward {
                    Toward::Key => node.child_for(key)?.1,
                    Toward::After => node.child_after(key)?.1,
                    Toward::Last => node.right_child()?,
                }
            };
            if !guard.validate() {
                return Err(Step::Restart);
            }
            // If the parent changed meanwhile, the child may have been freed
            // (and a load of it fail): that is a restart, not an error.
            let next = self.bm.optimistic(PageId(child));
            // The parent still points there: the child is the right one.
            if !guard.validate() {
                return Err(Step::Restart);
            }
            guard = next?;
        }
    }

    /// Descends with shared latch coupling to the leaf for `key`.
    pub(crate) fn leaf_shared(&self, key: &[u8], toward: Toward) -> Result<SharedGuard<'a>, Error> {
        let mut guard = self.bm.fix_shared(self.root)?;
        loop {
            let page = guard.id();
            let node = Node::open(guard.page().body()).map_err(|_| Error::Corrupt { page })?;
            if node.is_leaf() {
                return Ok(guard);
            }
            let child = match toward {
                Toward::Key => node.child_for(key).map(|c| c.1),
                Toward::After => node.child_after(key).map(|c| c.1),
                Toward::Last => node.right_child(),
            }
            .map_err(|_| Error::Corrupt { page })?;
            let next = self.bm.fix_shared(PageId(child))?;
            guard = next;
        }
    }

    /// Latches a page exclusively.
    pub(crate) fn exclusive(&self, page: PageId) -> Result<ExclusiveGuard<'a>, Error> {
        Ok(self.bm.fix_exclusive(page)?)
    }

    /// Runs `attempt` optimistically up to `config.restarts` times, then
    /// `fallback` (latched, cannot restart); both get `state` (an output
    /// buffer, say).
    pub(crate) fn with_restarts<S: ?Sized, T>(
        &self,
        state: &mut S,
        mut attempt: impl FnMut(&mut S) -> Result<T, Step>,
        fallback: impl FnOnce(&mut S) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut backoff = snowfall_latch::Backoff::new();
        for _ in 0..self.config.restarts {
            match attempt(state) {
                Ok(value) => return Ok(value),
                Err(Step::Fail(e)) => return Err(e),
                Err(Step::Restart) => {
                    self.bm.note_restart();
                    backoff.pause();
                }
            }
        }
        fallback(state)
    }
}
