//! The write side of snapshots (docs/plan-transactions.md): every write
//! outside a transaction asks the version store how to go. While no
//! snapshot is open it goes as it always did ([`Stage::Plain`]); while
//! one is, it is a one-operation commit ([`Stage::Commit`]): one at a time,
//! each key's value recorded in the store before the tree changes it.

use alloc::vec::Vec;

use snowfall_btree::{BTree, Stored};
use snowfall_version::{Commit, Mode, Plain, Weigh};

use crate::db::Inner;
use crate::error::Error;

/// A value as a leaf stores it, kept for snapshots: the bytes of a small
/// value, or a large value's reference (its extents are kept from reuse
/// by the snapshots' pins, `snapshot.rs`).
#[derive(Clone, Debug)]
pub(crate) struct Kept {
    pub(crate) bytes: Vec<u8>,
    pub(crate) reference: bool,
}

impl Kept {
    pub(crate) fn of(stored: Stored<'_>) -> Kept {
        Kept { bytes: stored.bytes.to_vec(), reference: stored.reference }
    }
}

impl Weigh for Kept {
    fn weight(&self) -> usize {
        self.bytes.len() + core::mem::size_of::<Kept>()
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

    /// Call before changing `key` in `tree`: in a commit, keeps the value
    /// the change replaces for the snapshots that may read it.
    pub(crate) fn before_change(&self, stage: &Stage<'_>, tree: &BTree<'_>, key: &[u8]) -> Result<(), Error> {
        if let Stage::Commit(commit) = stage {
            let before = tree.get_with(key, Kept::of)?;
            commit.record(tree.root().0, key, before);
        }
        Ok(())
    }
}
