//! [`Versions`]: snapshots, reads at a snapshot, commits in order.
//!
//! Locks, always taken in this order: the commit lock (commits take their
//! timestamps, check conflicts and claim keys one at a time; they may
//! write concurrently after), the registry (open snapshots), the store.
//! Readers take only the store's, and only while it holds entries.

use alloc::vec::Vec;
use core::ops::Bound;

use snowfall_latch::{Backoff, Mutex, MutexGuard};

use crate::gate::Gate;
use crate::registry::Registry;
use crate::store::{Store, TreeId, Weigh};
use crate::sync::{AtomicU64, Ordering};

/// Old values for open snapshots; see the crate docs.
pub struct Versions<V> {
    gate: Gate,
    commit: Mutex<()>,
    registry: Mutex<Registry>,
    store: Mutex<Store<V>>,
    /// Entries in the store: at 0 a reader skips its lock.
    entries: AtomicU64,
    /// The newest timestamp given to a commit.
    assigned: AtomicU64,
    /// The newest published commit: a new snapshot reads at it. Commits
    /// publish in timestamp order, so every commit up to it is whole.
    visible: AtomicU64,
    /// Snapshots below this timestamp are expired.
    expired_below: AtomicU64,
    /// The store's limit in bytes.
    limit: usize,
}

/// A key that changed after a snapshot, with its value then (`None`: absent).
pub type Changed<V> = (Vec<u8>, Option<V>);

/// A consistent view: every commit up to its timestamp, none after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    ts: u64,
}

impl Snapshot {
    /// The newest commit it sees.
    pub fn ts(self) -> u64 {
        self.ts
    }
}

/// A snapshot's versions were reclaimed to keep the store within its
/// limit (the oldest snapshots go first): it can no longer be read. A
/// new snapshot can.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expired {
    /// The expired snapshot's timestamp.
    pub ts: u64,
}

impl core::fmt::Display for Expired {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "the snapshot at commit {} is too old: the versions it needs were reclaimed to keep the \
             version store within its limit (start a new one)",
            self.ts
        )
    }
}

impl core::error::Error for Expired {}

/// How a write that is not part of a [`Commit`] goes.
pub enum Mode<'v> {
    /// No snapshot is open: write as if there were no versions; drop this
    /// when the write is done (a snapshot starting waits for it).
    Plain(Plain<'v>),
    /// Snapshots are open: the write must go through [`Versions::commit`].
    Versioned,
}

/// A write in flight that keeps no versions (see [`Mode::Plain`]).
pub struct Plain<'v> {
    shard: &'v AtomicU64,
}

impl Drop for Plain<'_> {
    fn drop(&mut self) {
        Gate::leave(self.shard);
    }
}

impl<V: Weigh + Clone> Versions<V> {
    /// An empty store that keeps at most about `limit` bytes of versions.
    pub fn new(limit: usize) -> Versions<V> {
        Versions {
            gate: Gate::new(),
            commit: Mutex::new(()),
            registry: Mutex::new(Registry::default()),
            store: Mutex::new(Store::new()),
            entries: AtomicU64::new(0),
            assigned: AtomicU64::new(0),
            visible: AtomicU64::new(0),
            expired_below: AtomicU64::new(0),
            limit,
        }
    }

    /// Starts a write outside a commit (see [`Mode`]).
    pub fn enter(&self) -> Mode<'_> {
        match self.gate.enter() {
            Some(shard) => Mode::Plain(Plain { shard }),
            None => Mode::Versioned,
        }
    }

    /// Opens a snapshot of every commit published so far. The first one
    /// waits for plain writes in flight (microseconds) so that none lands
    /// after it, and for the commits in flight: they may have started
    /// before the last snapshot ended, so plain writes may have come
    /// between what one of them kept and its change of the tree. Give it
    /// back with [`end`](Self::end).
    pub fn begin(&self) -> Snapshot {
        let mut registry = self.registry.lock();
        while registry.is_empty() {
            self.gate.close();
            let assigned = self.assigned.load(Ordering::Acquire);
            if self.visible.load(Ordering::Acquire) >= assigned {
                break;
            }
            // Not under the registry lock: a commit's publication takes it.
            // Meanwhile another snapshot may begin and end (opening the
            // gate): checked again under the lock.
            drop(registry);
            self.wait_for(assigned);
            registry = self.registry.lock();
        }
        let ts = self.visible.load(Ordering::Acquire);
        registry.start(ts);
        Snapshot { ts }
    }

    /// Closes a snapshot; the versions only it needed go.
    pub fn end(&self, snapshot: Snapshot) {
        let mut registry = self.registry.lock();
        registry.end(snapshot.ts);
        if registry.is_empty() {
            self.gate.open();
        }
        self.reclaim(&registry);
    }

    /// What `key` held at `snapshot`, given that the caller read the tree
    /// first: `Some(value at the snapshot)` if a commit after it changed the
    /// key (`Some(None)`: absent then), `None` if what the tree held is it.
    pub fn read(&self, snapshot: Snapshot, tree: TreeId, key: &[u8]) -> Result<Option<Option<V>>, Expired> {
        let got =
            if self.entries.load(Ordering::Acquire) == 0 { None } else { self.store.lock().at(snapshot.ts, tree, key) };
        self.check(snapshot)?;
        Ok(got)
    }

    /// As [`read`](Self::read) for every key between `low` and `high` in
    /// `tree` that changed after `snapshot`, in key order (the caller read
    /// that part of the tree first).
    pub fn read_range(
        &self,
        snapshot: Snapshot,
        tree: TreeId,
        low: Bound<&[u8]>,
        high: Bound<&[u8]>,
    ) -> Result<Vec<Changed<V>>, Expired> {
        let got = if self.entries.load(Ordering::Acquire) == 0 {
            Vec::new()
        } else {
            self.store.lock().at_in(snapshot.ts, tree, low, high)
        };
        self.check(snapshot)?;
        Ok(got)
    }

    /// `Err` if `snapshot` expired.
    pub fn check(&self, snapshot: Snapshot) -> Result<(), Expired> {
        if snapshot.ts < self.expired_below.load(Ordering::Acquire) {
            return Err(Expired { ts: snapshot.ts });
        }
        Ok(())
    }

    /// Starts a commit that runs alone: takes the commit lock and the next
    /// timestamp, and waits until every commit before it is published. It
    /// is published when dropped.
    pub fn commit(&self) -> Commit<'_, V> {
        let commit = self.commit_concurrent();
        commit.in_turn();
        commit
    }

    /// Starts a commit that may change the tree while later ones do: takes
    /// the commit lock and the next timestamp without waiting for the
    /// commits before it. Check conflicts, [`intend`](Commit::intend) every
    /// key it will write, then [`unlock`](Commit::unlock) and write; it is
    /// published when dropped, after every commit before it.
    pub fn commit_concurrent(&self) -> Commit<'_, V> {
        let guard = self.commit.lock_patiently();
        let ts = self.assigned.load(Ordering::Relaxed) + 1;
        self.assigned.store(ts, Ordering::Release);
        Commit { versions: self, guard: Some(guard), ts }
    }

    /// Waits until every commit up to `ts` is published (each publishes
    /// after the one before it, so a wait is for commits already applying).
    fn wait_for(&self, ts: u64) {
        let mut backoff = Backoff::patient();
        while self.visible.load(Ordering::Acquire) < ts {
            backoff.pause();
        }
    }

    /// The newest published commit.
    pub fn visible(&self) -> u64 {
        self.visible.load(Ordering::Acquire)
    }

    /// Bytes the store holds now.
    pub fn bytes(&self) -> usize {
        self.store.lock().bytes()
    }

    /// Versions the store holds now.
    pub fn entries(&self) -> u64 {
        self.entries.load(Ordering::Acquire)
    }

    /// Drops the versions no live snapshot needs; past the limit, expires
    /// the oldest snapshots until it is met.
    fn reclaim(&self, registry: &Registry) {
        // Nothing to drop or to expire for (entries change under the store
        // lock; one recorded meanwhile is of a commit not yet published).
        if self.entries.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut store = self.store.lock();
        loop {
            let expired_below = self.expired_below.load(Ordering::Relaxed);
            let oldest = registry.oldest_live(expired_below);
            // With no live snapshot, everything published may go.
            store.reclaim(oldest.unwrap_or_else(|| self.visible.load(Ordering::Acquire)));
            let Some(oldest) = oldest.filter(|_| store.bytes() > self.limit) else { break };
            // Expired before its versions go: a reader checks expiry after
            // it looks in the store, so it cannot use a reclaimed chain.
            self.expired_below.store(oldest + 1, Ordering::Release);
        }
        self.entries.store(store.entries() as u64, Ordering::Release);
    }
}

/// A commit ([`Versions::commit`], [`Versions::commit_concurrent`]):
/// check for conflicts, record what each write replaces before making the
/// write, then drop it to publish.
pub struct Commit<'v, V: Weigh + Clone> {
    versions: &'v Versions<V>,
    /// The commit lock, until [`unlock`](Self::unlock).
    guard: Option<MutexGuard<'v, ()>>,
    ts: u64,
}

impl<V: Weigh + Clone> Commit<'_, V> {
    /// This commit's timestamp.
    pub fn ts(&self) -> u64 {
        self.ts
    }

    /// Whether a commit after `since` changed `key` (a write-write
    /// conflict, or a read that no longer holds).
    pub fn changed(&self, since: Snapshot, tree: TreeId, key: &[u8]) -> bool {
        self.versions.store.lock().changed(since.ts, tree, key)
    }

    /// Whether a commit after `since` changed a key between `low` and `high`.
    pub fn changed_in(&self, since: Snapshot, tree: TreeId, low: Bound<&[u8]>, high: Bound<&[u8]>) -> bool {
        self.versions.store.lock().changed_in(since.ts, tree, low, high)
    }

    /// Marks `key` as about to be changed by this commit (under the commit
    /// lock): later commits see the conflict, and readers meanwhile the
    /// tree's value, until [`record`](Self::record) says what it replaced.
    pub fn intend(&self, tree: TreeId, key: &[u8]) {
        debug_assert!(self.guard.is_some(), "intents are taken under the commit lock");
        let mut store = self.versions.store.lock();
        store.push(self.ts, tree, key, None);
        self.versions.entries.store(store.entries() as u64, Ordering::SeqCst);
    }

    /// Releases the commit lock: later commits may start while this one
    /// writes the keys it [`intend`](Self::intend)ed (no others).
    pub fn unlock(&mut self) {
        self.guard = None;
    }

    /// Records that this commit replaces `before` as `key`'s value; call it
    /// before the tree's change is visible. Fills in the key's intent; a
    /// key without one may be recorded only under the commit lock.
    pub fn record(&self, tree: TreeId, key: &[u8], before: Option<V>) {
        let mut store = self.versions.store.lock();
        if let Err(before) = store.fill(self.ts, tree, key, before) {
            debug_assert!(self.guard.is_some(), "a key recorded after unlock was not intended");
            store.push(self.ts, tree, key, Some(before));
        }
        self.versions.entries.store(store.entries() as u64, Ordering::SeqCst);
    }

    /// Waits until every commit before this one is published (for what
    /// must follow theirs, as a commit record in the log).
    pub fn in_turn(&self) {
        self.versions.wait_for(self.ts - 1);
    }
}

impl<V: Weigh + Clone> Drop for Commit<'_, V> {
    fn drop(&mut self) {
        let versions = self.versions;
        self.in_turn();
        versions.visible.store(self.ts, Ordering::Release);
        versions.reclaim(&versions.registry.lock());
    }
}
