//! Read-write transactions: [`WriteTx`] (docs/plan-transactions.md).
//!
//! A transaction reads at its snapshot, as a [`ReadTx`](crate::ReadTx)
//! does, and buffers its writes (a large value is written to its extent at
//! once; only its reference waits). Nothing reaches the trees before
//! [`WriteTx::commit`], which takes the commit lock to check for conflicts
//! and claim its keys, then applies the writes as one batch while later
//! commits do theirs, and publishes in commit order: snapshot isolation,
//! first committer wins; serializable on request.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::ops::Bound;
use core::sync::atomic::Ordering;

use snowfall_buffer::PageId;
use snowfall_version::Snapshot;

use crate::batch::Change;
use crate::db::{Database, Inner, Tree, check_entry};
use crate::error::Error;
use crate::options::Durability;
use crate::range::{Entry, Range, as_ref};
use crate::snapshot::ReadTree;
use crate::values::{Reference, is_large};
use crate::versioning::Stage;

/// A write a transaction buffered.
#[derive(Clone, Debug)]
enum Pending {
    Removed,
    Inline(Vec<u8>),
    /// Written to its extents already.
    Large(Reference),
}

#[derive(Default)]
struct Buffered {
    /// Per tree (its root), per key.
    writes: BTreeMap<PageId, BTreeMap<Vec<u8>, Pending>>,
    /// Tree names by root, for conflict errors.
    names: BTreeMap<PageId, String>,
    /// Serializable only: keys read, and ranges scanned.
    reads: Vec<(PageId, Vec<u8>)>,
    ranges: Vec<Scanned>,
}

/// A range a serializable transaction scanned: (tree, low, high).
type Scanned = (PageId, Bound<Vec<u8>>, Bound<Vec<u8>>);

/// A read-write transaction: see the module docs. Aborted when dropped
/// without [`commit`](Self::commit).
///
/// **Isolation.** Snapshot isolation by default: its reads see the
/// database as of [`Database::begin_write`] plus its own writes; at commit,
/// if another commit since then wrote a key it writes, it fails with
/// [`Error::Conflict`] (the first committer wins) and nothing of it is
/// applied. [`Database::begin_serializable`] also fails it if a key it read,
/// or a key in a range it scanned, was written since (no write skew, no
/// phantoms). A conflict is retryable: run the transaction again.
pub struct WriteTx<'db> {
    db: &'db Database,
    snapshot: Snapshot,
    serializable: bool,
    buffered: RefCell<Buffered>,
}

impl core::fmt::Debug for WriteTx<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WriteTx").field("ts", &self.snapshot.ts()).field("serializable", &self.serializable).finish()
    }
}

impl Database {
    /// A read-write transaction with snapshot isolation ([`WriteTx`]).
    pub fn begin_write(&self) -> Result<WriteTx<'_>, Error> {
        self.begin_tx(false)
    }

    /// A read-write transaction that is serializable ([`WriteTx`]).
    pub fn begin_serializable(&self) -> Result<WriteTx<'_>, Error> {
        self.begin_tx(true)
    }

    fn begin_tx(&self, serializable: bool) -> Result<WriteTx<'_>, Error> {
        let db = &*self.inner;
        db.check_writable()?;
        let snapshot = db.versions.begin();
        Ok(WriteTx { db: self, snapshot, serializable, buffered: RefCell::default() })
    }
}

impl<'db> WriteTx<'db> {
    /// The tree `name` in this transaction ([`Error::NoSuchTree`] if it
    /// does not exist; create trees with [`Database::tree`]).
    pub fn tree(&self, name: &str) -> Result<WriteTree<'_, 'db>, Error> {
        let tree = self.db.existing_tree(name)?;
        self.buffered.borrow_mut().names.insert(tree.btree().root(), name.into());
        Ok(WriteTree { tx: self, tree })
    }

    /// The newest commit its snapshot sees.
    pub fn ts(&self) -> u64 {
        self.snapshot.ts()
    }

    /// Applies the transaction's writes as one, acknowledged as
    /// `durability` says; [`Error::Conflict`] (nothing applied) if another
    /// commit got in its way (see [`WriteTx`]). A transaction that wrote
    /// nothing commits at once.
    pub fn commit(self, durability: Durability) -> Result<(), Error> {
        let db = &*self.db.inner;
        let buffered = self.buffered.take();
        match self.check_commit(db, &buffered) {
            Ok(Some((id, stage))) => {
                let applied = db.apply(&stage, id, changes(&buffered));
                drop(stage);
                // A failure halfway stops the database; its extents are
                // freed by recovery (or are referenced by then).
                db.finish_batch(id, applied, durability)
            }
            Ok(None) => Ok(()),
            Err(e) => {
                // Nothing applied: the extents of its large values go back.
                abandon(db, &buffered);
                Err(e)
            }
        }
    }

    /// Everything before the changes: the size, admission, the commit
    /// lock, conflicts. `None`: nothing to write.
    fn check_commit<'a>(&self, db: &'a Inner, buffered: &Buffered) -> Result<Option<(u64, Stage<'a>)>, Error> {
        let ops = buffered.writes.values().map(BTreeMap::len).sum();
        if ops == 0 {
            return Ok(None);
        }
        db.check_batch_size(changes(buffered).map(|(_, k, c)| (k, c)), ops)?;
        db.admit()?;
        let mut commit = db.versions.commit_concurrent();
        let conflict = |root: PageId, key: &[u8]| Error::Conflict {
            tree: buffered.names.get(&root).cloned().unwrap_or_default(),
            key: key.to_vec(),
        };
        if db.versions.check(self.snapshot).is_err() {
            return Err(Error::SnapshotTooOld { ts: self.snapshot.ts() });
        }
        for (root, key, _) in changes(buffered) {
            if commit.changed(self.snapshot, root.0, key) {
                return Err(conflict(root, key));
            }
        }
        if self.serializable {
            for (root, key) in &buffered.reads {
                if commit.changed(self.snapshot, root.0, key) {
                    return Err(conflict(*root, key));
                }
            }
            for (root, low, high) in &buffered.ranges {
                if commit.changed_in(self.snapshot, root.0, as_ref(low), as_ref(high)) {
                    return Err(conflict(*root, &[]));
                }
            }
        }
        // Its keys claimed, it applies while later commits check theirs;
        // their conflicts with it show on its intents.
        for (root, key, _) in changes(buffered) {
            commit.intend(root.0, key);
        }
        commit.unlock();
        Ok(Some((db.next_batch.fetch_add(1, Ordering::Relaxed), Stage::Commit(commit))))
    }

    /// Drops the transaction's writes (as dropping it does).
    pub fn abort(self) {}
}

impl Drop for WriteTx<'_> {
    fn drop(&mut self) {
        let db = &*self.db.inner;
        abandon(db, &self.buffered.take());
        db.versions.end(self.snapshot);
    }
}

/// A transaction's writes as batch changes, tree by tree in key order.
fn changes(buffered: &Buffered) -> impl Iterator<Item = (PageId, &[u8], Change<'_>)> {
    buffered.writes.iter().flat_map(|(&root, keys)| {
        keys.iter().map(move |(k, p)| {
            let change = match p {
                Pending::Removed => Change::Remove,
                Pending::Inline(v) => Change::Put(v),
                Pending::Large(r) => Change::Written(r),
            };
            (root, k.as_slice(), change)
        })
    })
}

/// Gives back the extents of the large values a transaction wrote and
/// never applied.
fn abandon(db: &Inner, buffered: &Buffered) {
    for p in buffered.writes.values().flat_map(BTreeMap::values) {
        if let Pending::Large(r) = p {
            for &(start, pages) in &r.extents {
                db.bm.abandon_extent(start, pages);
            }
        }
    }
}

/// A tree in a [`WriteTx`]: reads see the transaction's writes over its
/// snapshot.
pub struct WriteTree<'tx, 'db> {
    tx: &'tx WriteTx<'db>,
    tree: Tree<'tx>,
}

impl core::fmt::Debug for WriteTree<'_, '_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WriteTree").field("tree", &self.tree).field("tx", self.tx).finish()
    }
}

impl<'tx> WriteTree<'tx, '_> {
    fn root(&self) -> PageId {
        self.tree.btree().root()
    }

    fn db(&self) -> &'tx Inner {
        self.tree.db
    }

    /// Runs `f` on the value of `key` as the transaction sees it; `None` if
    /// absent.
    pub fn get_with<R>(&self, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>, Error> {
        let pending = self.tx.buffered.borrow().writes.get(&self.root()).and_then(|w| w.get(key)).cloned();
        match pending {
            Some(Pending::Removed) => Ok(None),
            Some(Pending::Inline(v)) => Ok(Some(f(&v))),
            Some(Pending::Large(r)) => self.db().with_large(r.encode().as_bytes(), f).map(Some),
            None => {
                if self.tx.serializable {
                    self.tx.buffered.borrow_mut().reads.push((self.root(), key.to_vec()));
                }
                ReadTree::new(self.tree, self.tx.snapshot).get_with(key, f)
            }
        }
    }

    /// The value of `key` as the transaction sees it.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        self.get_with(key, <[u8]>::to_vec)
    }

    /// Sets `key` to `value` when the transaction commits (a large value is
    /// written to the file now, referenced at the commit).
    pub fn insert(&self, key: &[u8], value: &[u8]) -> Result<(), Error> {
        check_entry(key, Some(value))?;
        let pending = if is_large(key, value.len()) {
            self.db().check_writable()?;
            Pending::Large(self.db().write_value(value)?)
        } else {
            Pending::Inline(value.to_vec())
        };
        self.buffer(key, pending);
        Ok(())
    }

    /// Removes `key` when the transaction commits.
    pub fn remove(&self, key: &[u8]) -> Result<(), Error> {
        check_entry(key, None)?;
        self.buffer(key, Pending::Removed);
        Ok(())
    }

    fn buffer(&self, key: &[u8], pending: Pending) {
        let replaced =
            self.tx.buffered.borrow_mut().writes.entry(self.root()).or_default().insert(key.to_vec(), pending);
        if let Some(Pending::Large(r)) = replaced {
            for &(start, pages) in &r.extents {
                self.db().bm.abandon_extent(start, pages);
            }
        }
    }

    /// The entries with keys in `range` as the transaction sees them, in
    /// order, from either end (its writes as of this call).
    pub fn range<K: AsRef<[u8]> + ?Sized>(&self, range: impl core::ops::RangeBounds<K>) -> TxRange<'tx> {
        let (low, high) = crate::range::owned(&range);
        let mut buffered = self.tx.buffered.borrow_mut();
        if self.tx.serializable {
            buffered.ranges.push((self.root(), low.clone(), high.clone()));
        }
        let local: VecDeque<(Vec<u8>, Pending)> = match buffered.writes.get(&self.root()) {
            Some(w) if !crate::range::empty(&low, &high) => {
                w.range::<[u8], _>((as_ref(&low), as_ref(&high))).map(|(k, p)| (k.clone(), p.clone())).collect()
            }
            _ => VecDeque::new(),
        };
        let snapshot = ReadTree::new(self.tree, self.tx.snapshot).range::<[u8]>((as_ref(&low), as_ref(&high)));
        TxRange { db: self.db(), snapshot, local, front: None, back: None, failed: false }
    }
}

/// An iterator over a [`WriteTree`]'s range: the snapshot's entries merged
/// with the transaction's writes.
pub struct TxRange<'tx> {
    db: &'tx Inner,
    snapshot: Range<'tx>,
    local: VecDeque<(Vec<u8>, Pending)>,
    /// An entry taken from the snapshot's front (or back), not yet returned.
    front: Option<Entry>,
    back: Option<Entry>,
    failed: bool,
}

impl TxRange<'_> {
    fn pending_value(&self, p: Pending) -> Result<Option<Vec<u8>>, Error> {
        match p {
            Pending::Removed => Ok(None),
            Pending::Inline(v) => Ok(Some(v)),
            Pending::Large(r) => self.db.with_large(r.encode().as_bytes(), <[u8]>::to_vec).map(Some),
        }
    }

    fn step(&mut self, forward: bool) -> Option<Result<Entry, Error>> {
        if self.failed {
            return None;
        }
        loop {
            // The snapshot's next entry this way: peeked, or the other
            // end's peeked one once the snapshot has nothing else.
            let (mine, other) =
                if forward { (&mut self.front, &mut self.back) } else { (&mut self.back, &mut self.front) };
            if mine.is_none() {
                let next = if forward { self.snapshot.next() } else { self.snapshot.next_back() };
                *mine = match next {
                    Some(Ok(e)) => Some(e),
                    Some(Err(e)) => {
                        self.failed = true;
                        return Some(Err(e));
                    }
                    None => other.take(),
                };
            }
            let local = if forward { self.local.front() } else { self.local.back() };
            let take_local = match (&*mine, local) {
                (None, None) => return None,
                (Some(_), None) => false,
                (None, Some(_)) => true,
                (Some((sk, _)), Some((lk, _))) => {
                    let order = sk.as_slice().cmp(lk.as_slice());
                    if order.is_eq() {
                        // Overwritten (or removed) by the transaction.
                        *mine = None;
                    }
                    if forward { order.is_ge() } else { order.is_le() }
                }
            };
            if !take_local {
                return mine.take().map(Ok);
            }
            let (k, p) = (if forward { self.local.pop_front() } else { self.local.pop_back() })?;
            match self.pending_value(p) {
                Ok(Some(v)) => return Some(Ok((k, v))),
                Ok(None) => {}
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

impl Iterator for TxRange<'_> {
    type Item = Result<Entry, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.step(true)
    }
}

impl DoubleEndedIterator for TxRange<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.step(false)
    }
}
