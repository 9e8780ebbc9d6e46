//! Writes that commit as one: [`Batch`] ([`Database::write`]) and the
//! commit of a write transaction (`write_tx.rs`) both apply their changes
//! here, as one batch in the log (undone whole by recovery unless its
//! commit record made it) and one stage of the version store (snapshots see
//! all of it or none).

use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use snowfall_btree::journal::Journal;
use snowfall_buffer::PageId;

use crate::db::{Database, Inner, Tree, check_entry};
use crate::error::Error;
use crate::options::Durability;
use crate::values::Reference;
use crate::versioning::{Recording, Stage};

/// Operations that commit together: after a crash, either all of them are
/// in the database or none.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    ops: Vec<(PageId, Vec<u8>, Option<Vec<u8>>)>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Adds "set `key` to `value` in `tree`".
    pub fn insert(&mut self, tree: &Tree<'_>, key: &[u8], value: &[u8]) {
        self.ops.push((tree.tree.root(), key.to_vec(), Some(value.to_vec())));
    }

    /// Adds "remove `key` from `tree`".
    pub fn remove(&mut self, tree: &Tree<'_>, key: &[u8]) {
        self.ops.push((tree.tree.root(), key.to_vec(), None));
    }

    /// Operations in the batch.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// One change of a batch.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Change<'a> {
    /// Set the key to this value (a large one is written to an extent first).
    Put(&'a [u8]),
    /// Set the key to the large value this reference names (its extents
    /// written already; given back if the change fails).
    Written(&'a Reference),
    /// Remove the key.
    Remove,
}

impl Change<'_> {
    /// What the log holds of it (the value, or a large value's reference).
    fn logged(&self, key: &[u8]) -> usize {
        match self {
            Change::Put(v) if crate::values::is_large(key, v.len()) => snowfall_btree::MAX_REFERENCE,
            Change::Put(v) => v.len(),
            Change::Written(_) => snowfall_btree::MAX_REFERENCE,
            Change::Remove => 0,
        }
    }
}

impl Inner {
    /// Refuses a batch of these changes that the log could not hold at once
    /// (each logged twice, the value and, for undo, the one before).
    pub(crate) fn check_batch_size<'a>(
        &self,
        changes: impl Iterator<Item = (&'a [u8], Change<'a>)>,
        ops: usize,
    ) -> Result<(), Error> {
        let bytes: usize = changes.map(|(k, c)| 2 * (k.len() + c.logged(k)) + 64).sum();
        if bytes as u64 > self.log_limit() / 4 {
            return Err(Error::BatchTooLarge { ops });
        }
        Ok(())
    }

    /// Applies `changes` as batch `id` under `stage`, the commit record last;
    /// its end LSN. The caller was admitted for the first change. On an
    /// error part of the batch may be in the trees: see
    /// [`finish_batch`](Self::finish_batch).
    pub(crate) fn apply<'a>(
        &self,
        stage: &Stage<'_>,
        id: u64,
        changes: impl Iterator<Item = (PageId, &'a [u8], Change<'a>)>,
    ) -> Result<u64, Error> {
        // In a commit, the log records keep the replaced values (`Recording`).
        let recording = match stage {
            Stage::Commit(commit) => Some(Recording { db: self, commit }),
            Stage::Plain(_) => None,
        };
        let journal: &dyn Journal = match &recording {
            Some(recording) => recording,
            None => self,
        };
        for (i, (root, key, change)) in changes.enumerate() {
            if i > 0 {
                self.admit()?;
            }
            let tree = self.tree_logged_to(root, journal);
            match change {
                Change::Put(v) => self.put_value(stage, &tree, key, v, id)?,
                Change::Written(reference) => self.put_reference(&tree, key, reference, id)?,
                Change::Remove => {
                    let written = tree.delete(key, id)?;
                    // Nothing was logged, so nothing kept: the key stays
                    // absent, which later writers of it must still see.
                    if let (Stage::Commit(commit), false) = (stage, written.existed) {
                        commit.record(root.0, key, None);
                    }
                    written
                }
            };
        }
        // Commit records reach the log in commit order (recovery keeps a
        // prefix of it); the changes before them need not.
        if let Stage::Commit(commit) = stage {
            commit.in_turn();
        }
        self.commit(id)
    }

    /// After [`apply`](Self::apply) of batch `id`: acknowledges it as
    /// `durability` says, or, if it failed halfway, stops the database
    /// (only a reopen's undo takes half a batch out, so nothing may write
    /// after it).
    pub(crate) fn finish_batch(
        &self,
        id: u64,
        applied: Result<u64, Error>,
        durability: Durability,
    ) -> Result<(), Error> {
        self.batches.lock().retain(|&(b, _)| b != id);
        match applied {
            Ok(lsn) => self.settle(lsn, durability),
            Err(e) => {
                let e = self.failed(e);
                self.stop(&e);
                Err(e)
            }
        }
    }
}

impl Database {
    /// Applies `batch` so that after a crash either all of it or none is in
    /// the database; acknowledged as `durability` says. Snapshots
    /// ([`ReadTx`](crate::ReadTx)) see all of it or none; plain reads may
    /// see a batch in progress. A batch that fails halfway (an I/O error)
    /// stops the database: reopening undoes the part that was applied.
    pub fn write(&self, batch: &Batch, durability: Durability) -> Result<(), Error> {
        let db = &*self.inner;
        for (_, key, value) in &batch.ops {
            check_entry(key, value.as_deref())?;
        }
        let changes = || {
            batch.ops.iter().map(|(root, k, v)| (*root, k.as_slice(), v.as_deref().map_or(Change::Remove, Change::Put)))
        };
        db.check_batch_size(changes().map(|(_, k, c)| (k, c)), batch.ops.len())?;
        if batch.ops.is_empty() {
            return Ok(());
        }
        let id = db.next_batch.fetch_add(1, Ordering::Relaxed);
        // Refused before anything was written (read-only, a full disk):
        // nothing to undo.
        db.admit()?;
        let stage = db.stage();
        let applied = db.apply(&stage, id, changes());
        drop(stage);
        db.finish_batch(id, applied, durability)
    }
}
