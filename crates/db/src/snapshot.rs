//! Read transactions: [`ReadTx`], a snapshot of every tree as of one
//! commit, however long it lives (docs/plan-transactions.md).
//!
//! A read reads the tree as it is, then asks the version store whether the
//! key changed since the snapshot (in that order: see the plan). A read
//! that finds a large value in the tree pins extents while it reads it, as
//! a plain read does; one a commit replaced is held out of reuse by the
//! version store's copy of its reference (`versioning.rs`), which the read
//! keeps while it reads the value. So a snapshot holds back only what its
//! versions hold, within [`Options::version_bytes`](crate::Options::version_bytes),
//! not every extent released while it lives (as a long read transaction
//! does in LMDB).

use alloc::vec::Vec;

use snowfall_btree::{Found, MAX_ENTRY};
use snowfall_version::Snapshot;

use crate::db::{Database, Inner, Tree};
use crate::error::Error;
use crate::range::Range;
use crate::versioning::Kept;

/// A snapshot of the database: see the module docs. Ends when dropped.
/// Reads through it never wait for writers, nor writers for it; the first
/// of several open at once waits for writes in flight to finish
/// (microseconds). A snapshot kept open while others write costs memory
/// for the values they replace, up to
/// [`Options::version_bytes`](crate::Options::version_bytes); past that
/// the oldest snapshots expire (their reads fail with
/// [`Error::SnapshotTooOld`]).
pub struct ReadTx<'db> {
    db: &'db Database,
    snapshot: Snapshot,
}

impl core::fmt::Debug for ReadTx<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ReadTx").field("ts", &self.snapshot.ts()).finish()
    }
}

impl Database {
    /// A snapshot of every tree as of now ([`ReadTx`]).
    pub fn begin_read(&self) -> Result<ReadTx<'_>, Error> {
        Ok(ReadTx { db: self, snapshot: self.inner.versions.begin() })
    }
}

impl Drop for ReadTx<'_> {
    fn drop(&mut self) {
        self.db.inner.versions.end(self.snapshot);
    }
}

impl<'db> ReadTx<'db> {
    /// The tree `name` as of the snapshot ([`Error::NoSuchTree`] if it
    /// does not exist now).
    pub fn tree(&self, name: &str) -> Result<ReadTree<'_>, Error> {
        Ok(ReadTree { tree: self.db.existing_tree(name)?, at: self.snapshot })
    }

    /// The newest commit the snapshot sees (commits are numbered while
    /// snapshots are open; 0 before any).
    pub fn ts(&self) -> u64 {
        self.snapshot.ts()
    }
}

/// A tree as of a [`ReadTx`]'s snapshot.
#[derive(Clone, Copy)]
pub struct ReadTree<'tx> {
    tree: Tree<'tx>,
    at: Snapshot,
}

impl core::fmt::Debug for ReadTree<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ReadTree").field("tree", &self.tree).field("ts", &self.at.ts()).finish()
    }
}

impl<'tx> ReadTree<'tx> {
    pub(crate) fn new(tree: Tree<'tx>, at: Snapshot) -> ReadTree<'tx> {
        ReadTree { tree, at }
    }

    /// `key`'s value as the leaf stores it at the snapshot, into `buf`;
    /// with the version store's copy if it came from there (a large value's
    /// copy holds its extents while it lives).
    fn stored(&self, key: &[u8], buf: &mut [u8; MAX_ENTRY]) -> Result<(Option<Found>, Option<Kept>), Error> {
        let db = self.tree.db;
        let found = self.tree.btree().get_into(key, buf)?;
        let kept = db.versions.read(self.at, self.tree.btree().root().0, key).map_err(too_old)?;
        Ok(match kept {
            None => (found, None),
            Some(None) => (None, None),
            Some(Some(kept)) => {
                let len = kept.bytes.len();
                buf.get_mut(..len).ok_or_else(|| db.malformed_reference())?.copy_from_slice(&kept.bytes);
                (Some(Found { len, reference: kept.reference }), Some(kept))
            }
        })
    }

    /// The value of `key` at the snapshot, if present.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        self.get_with(key, <[u8]>::to_vec)
    }

    /// Copies the value of `key` at the snapshot into `out`; its length, if
    /// present.
    pub fn get_into(&self, key: &[u8], out: &mut Vec<u8>) -> Result<Option<usize>, Error> {
        self.get_with(key, |v| {
            out.clear();
            out.extend_from_slice(v);
            v.len()
        })
    }

    /// Runs `f` on the value of `key` at the snapshot; `None` if absent. A
    /// small value is copied once (it may come from the version store); a
    /// large one is read in place when it is cached.
    pub fn get_with<R>(&self, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>, Error> {
        let mut buf = [0u8; MAX_ENTRY];
        let mut pin = None;
        loop {
            let (found, kept) = self.stored(key, &mut buf)?;
            let Some(found) = found else { return Ok(None) };
            let stored = buf.get(..found.len).unwrap_or_default();
            if !found.reference {
                return Ok(Some(f(stored)));
            }
            // A reference from the store: its copy holds the extents. One
            // from the tree: only a pin taken before it was read keeps its
            // extents while the value is read (module docs), so read again
            // under one (small values, nearly all, never pin).
            if kept.is_some() || pin.is_some() {
                return self.tree.db.with_large(stored, f).map(Some);
            }
            pin = Some(self.tree.db.bm.pin_extents());
        }
    }

    /// The entries with keys in `range` at the snapshot, in order, from
    /// either end.
    pub fn range<K: AsRef<[u8]> + ?Sized>(&self, range: impl core::ops::RangeBounds<K>) -> Range<'tx> {
        self.tree.range(range).at(self.at)
    }
}

fn too_old(e: snowfall_version::Expired) -> Error {
    Error::SnapshotTooOld { ts: e.ts }
}

impl Inner {
    /// The value a kept version stands for (a large one read from its
    /// extents, which the caller's pin keeps).
    pub(crate) fn kept_value(&self, kept: &Kept) -> Result<Vec<u8>, Error> {
        if !kept.reference {
            return Ok(kept.bytes.clone());
        }
        self.with_large(&kept.bytes, <[u8]>::to_vec)
    }
}
