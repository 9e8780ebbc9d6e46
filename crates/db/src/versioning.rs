//! The write side of snapshots (docs/plan-transactions.md): every write
//! outside a transaction asks the version store how to go. While no
//! snapshot is open it goes as it always did ([`Stage::Plain`]); while
//! one is, it is a one-operation commit ([`Stage::Commit`]): one at a time,
//! each key's value recorded in the store before the tree changes it.

use alloc::sync::Arc;
use alloc::vec::Vec;

use snowfall_btree::journal::{Journal, Unit, Write};
use snowfall_btree::{BTree, Stored};
use snowfall_buffer::{ExtentHold, PAGE_SIZE};
use snowfall_version::{Commit, Mode, Plain, Weigh};
use snowfall_wal::LogError;

use crate::db::Inner;
use crate::error::Error;
use crate::values::extents_of;

/// A value as a leaf stores it: the bytes of a small value, or a large
/// value's reference. Kept for snapshots in the version store, a
/// reference holds its extents out of reuse while any copy of it lives
/// (`snowfall_buffer::ExtentHold`).
#[derive(Clone, Debug)]
pub(crate) struct Kept {
    pub(crate) bytes: Vec<u8>,
    pub(crate) reference: bool,
    hold: Option<Arc<ExtentHold>>,
}

impl Kept {
    /// A value read from a leaf, for a reader that holds a pin while it
    /// uses it (nothing held).
    pub(crate) fn of(stored: Stored<'_>) -> Kept {
        Kept { bytes: stored.bytes.to_vec(), reference: stored.reference, hold: None }
    }
}

impl Weigh for Kept {
    /// Its memory, and the pages a large value's extents hold on disk: the
    /// store's limit bounds both (a snapshot that keeps more expires).
    fn weight(&self) -> usize {
        let held = self.hold.as_ref().map_or(0, |h| h.pages() as usize * PAGE_SIZE);
        self.bytes.len() + core::mem::size_of::<Kept>() + held
    }
}

impl Inner {
    /// A value a commit replaces, for the version store: a large one's
    /// extents held until the last copy of it goes. Take it before the
    /// write's log record releases them.
    pub(crate) fn kept(&self, stored: Stored<'_>) -> Kept {
        let hold = stored.reference.then(|| Arc::new(self.bm.hold_extents(extents_of(stored.bytes))));
        Kept { bytes: stored.bytes.to_vec(), reference: stored.reference, hold }
    }
}

/// How a write outside a transaction goes (see the module docs); hold it
/// until the write is in the tree.
pub(crate) enum Stage<'db> {
    Plain(#[allow(dead_code, reason = "held: a snapshot starting waits for it")] Plain<'db>),
    Commit(Commit<'db, Kept>),
}

impl Inner {
    /// Starts a write outside a transaction.
    pub(crate) fn stage(&self) -> Stage<'_> {
        match self.versions.enter() {
            Mode::Plain(plain) => Stage::Plain(plain),
            Mode::Versioned => Stage::Commit(self.versions.commit()),
        }
    }

    /// Call before changing `key` in `tree` outside a batch (`batch` 0):
    /// in a commit, keeps the value the change replaces for the snapshots
    /// that may read it. A batch's changes are kept by [`Recording`].
    pub(crate) fn before_change(
        &self,
        stage: &Stage<'_>,
        tree: &BTree<'_>,
        key: &[u8],
        batch: u64,
    ) -> Result<(), Error> {
        if let (Stage::Commit(commit), 0) = (stage, batch) {
            let before = tree.get_with(key, |stored| self.kept(stored))?;
            commit.record(tree.root().0, key, before);
        }
        Ok(())
    }
}

/// The journal of the trees a batch changes inside a commit. A batch's log
/// record already carries the value each write replaces (recovery's undo
/// needs it), read under the leaf's exclusive latch: it is kept from there,
/// rather than by a lookup of its own before each write (which was a
/// quarter of a transaction's time).
/// Kept before the latch is released, so a reader that sees the new value
/// in the tree finds the old one in the store (the order the store needs:
/// docs/design.md).
pub(crate) struct Recording<'a> {
    pub(crate) db: &'a Inner,
    pub(crate) commit: &'a Commit<'a, Kept>,
}

impl Journal for Recording<'_> {
    fn log(&self, unit: &Unit<'_>) -> Result<u64, LogError> {
        if let Some(Write { tree, key, before: Some(before), .. }) = unit.write {
            self.commit.record(tree.0, key, before.map(|stored| self.db.kept(stored)));
        }
        self.db.log(unit)
    }
}
