//! The transactional engines TPC-C runs on, behind one trait: SnowfallDB's
//! `begin_write` (snapshot isolation, first committer wins), RocksDB's
//! `OptimisticTransactionDB` with a snapshot per transaction (the same
//! write-write validation), and LMDB (one writer at a time: never a
//! conflict). TPC-C's transactions are serializable under snapshot
//! isolation (Fekete et al., "Making Snapshot Isolation Serializable",
//! 2005), so all three run it correctly. Commits are not synced (no
//! engine waits for the disk; SnowfallDB `Durability::None`, RocksDB's
//! default WAL without sync, LMDB `NO_SYNC`), and read-only transactions
//! (Order-Status, Stock-Level) run on a read snapshot.

use std::ops::Bound;

use super::schema::Table;

/// Why a transaction did not commit.
#[derive(Debug)]
pub enum Abort {
    /// A write-write conflict: retried.
    Conflict,
    /// The transaction rolled itself back (New-Order's unused item).
    Rollback,
}

/// A transaction in progress.
pub trait Tx {
    /// The row of `key`, into `out`; whether it exists.
    fn get(&mut self, t: Table, key: &[u8], out: &mut Vec<u8>) -> Result<bool, Abort>;
    fn put(&mut self, t: Table, key: &[u8], value: &[u8]) -> Result<(), Abort>;
    fn delete(&mut self, t: Table, key: &[u8]) -> Result<(), Abort>;
    /// Visits the rows with keys in `low..high` in key order (or reverse)
    /// until `visit` returns false.
    fn scan(
        &mut self,
        t: Table,
        low: &[u8],
        high: &[u8],
        reverse: bool,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), Abort>;
}

/// An engine that runs transactions.
pub trait TxEngine: Sync {
    /// Runs `body` once in a transaction (read-only: on a snapshot, and
    /// `body` must not write) and commits it unless it returned an error.
    fn once(&self, read_only: bool, body: &mut dyn FnMut(&mut dyn Tx) -> Result<(), Abort>) -> Result<(), Abort>;
    /// Bytes its files take.
    fn disk_bytes(&self) -> u64;
}

/// Runs `body` until it commits or rolls back; the conflicts retried.
pub fn transact(
    e: &dyn TxEngine,
    read_only: bool,
    mut body: impl FnMut(&mut dyn Tx) -> Result<(), Abort>,
) -> (Result<(), Abort>, u64) {
    let mut conflicts = 0;
    loop {
        match e.once(read_only, &mut body) {
            Err(Abort::Conflict) => conflicts += 1,
            r => return (r, conflicts),
        }
    }
}

pub fn open(engine: &str, dir: &std::path::Path, cache: u64) -> Box<dyn TxEngine> {
    match engine {
        "snowfall" => Box::new(Snowfall::open(dir, cache)),
        "lmdb" => Box::new(Lmdb::open(dir)),
        #[cfg(feature = "rocksdb")]
        "rocksdb" => Box::new(rocks::Rocks::open(dir, cache)),
        other => panic!("TPC-C runs on snowfall, lmdb and rocksdb (with the feature), not {other}"),
    }
}

pub fn engines() -> Vec<&'static str> {
    let mut v = vec!["snowfall", "lmdb"];
    if cfg!(feature = "rocksdb") {
        v.push("rocksdb");
    }
    v
}

fn bounds<'a>(low: &'a [u8], high: &'a [u8]) -> (Bound<&'a [u8]>, Bound<&'a [u8]>) {
    (Bound::Included(low), Bound::Excluded(high))
}

struct Snowfall {
    db: snowfalldb::Database,
    dir: std::path::PathBuf,
}

impl Snowfall {
    fn open(dir: &std::path::Path, cache: u64) -> Snowfall {
        let db = snowfalldb::Database::builder(dir.join("db")).pool_bytes(cache).create().unwrap();
        for t in Table::ALL {
            db.tree(t.name()).unwrap();
        }
        Snowfall { db, dir: dir.to_path_buf() }
    }
}

fn snowfall_error(e: snowfall_db::Error) -> Abort {
    match e {
        snowfall_db::Error::Conflict { .. } => Abort::Conflict,
        e => panic!("{e}"),
    }
}

struct SnowWrite<'tx, 'db> {
    trees: Vec<snowfall_db::WriteTree<'tx, 'db>>,
}

impl Tx for SnowWrite<'_, '_> {
    fn get(&mut self, t: Table, key: &[u8], out: &mut Vec<u8>) -> Result<bool, Abort> {
        let found = self.trees[t as usize]
            .get_with(key, |v| {
                out.clear();
                out.extend_from_slice(v);
            })
            .map_err(snowfall_error)?;
        Ok(found.is_some())
    }
    fn put(&mut self, t: Table, key: &[u8], value: &[u8]) -> Result<(), Abort> {
        self.trees[t as usize].insert(key, value).map_err(snowfall_error)
    }
    fn delete(&mut self, t: Table, key: &[u8]) -> Result<(), Abort> {
        self.trees[t as usize].remove(key).map_err(snowfall_error)
    }
    fn scan(
        &mut self,
        t: Table,
        low: &[u8],
        high: &[u8],
        reverse: bool,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), Abort> {
        drain(self.trees[t as usize].range::<[u8]>(bounds(low, high)), reverse, visit)
    }
}

/// Visits a SnowfallDB range from either end until `visit` says stop.
fn drain(
    mut range: impl DoubleEndedIterator<Item = Result<snowfall_db::Entry, snowfall_db::Error>>,
    reverse: bool,
    visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
) -> Result<(), Abort> {
    loop {
        let next = if reverse { range.next_back() } else { range.next() };
        match next {
            None => return Ok(()),
            Some(Err(e)) => return Err(snowfall_error(e)),
            Some(Ok((k, v))) if !visit(&k, &v) => return Ok(()),
            Some(Ok(_)) => {}
        }
    }
}

struct SnowRead<'tx> {
    trees: Vec<snowfall_db::ReadTree<'tx>>,
}

impl Tx for SnowRead<'_> {
    fn get(&mut self, t: Table, key: &[u8], out: &mut Vec<u8>) -> Result<bool, Abort> {
        Ok(self.trees[t as usize].get_into(key, out).map_err(snowfall_error)?.is_some())
    }
    fn put(&mut self, _: Table, _: &[u8], _: &[u8]) -> Result<(), Abort> {
        unreachable!("a write in a read-only transaction")
    }
    fn delete(&mut self, _: Table, _: &[u8]) -> Result<(), Abort> {
        unreachable!("a write in a read-only transaction")
    }
    fn scan(
        &mut self,
        t: Table,
        low: &[u8],
        high: &[u8],
        reverse: bool,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), Abort> {
        drain(self.trees[t as usize].range::<[u8]>(bounds(low, high)), reverse, visit)
    }
}

impl TxEngine for Snowfall {
    fn once(&self, read_only: bool, body: &mut dyn FnMut(&mut dyn Tx) -> Result<(), Abort>) -> Result<(), Abort> {
        if read_only {
            let tx = self.db.begin_read().map_err(snowfall_error)?;
            let trees = Table::ALL.iter().map(|t| tx.tree(t.name()).unwrap()).collect();
            return body(&mut SnowRead { trees });
        }
        let tx = self.db.begin_write().map_err(snowfall_error)?;
        {
            let trees = Table::ALL.iter().map(|t| tx.tree(t.name()).unwrap()).collect();
            body(&mut SnowWrite { trees })?;
        }
        tx.commit(snowfall_db::Durability::None).map_err(snowfall_error)
    }
    fn disk_bytes(&self) -> u64 {
        crate::suite::allocated_bytes(&self.dir)
    }
}

/// One key space: a table's rows under its one-byte tag.
fn tagged(t: Table, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(t.tag());
    k.extend_from_slice(key);
    k
}

struct Lmdb {
    env: heed::Env,
    db: heed::Database<heed::types::Bytes, heed::types::Bytes>,
    dir: std::path::PathBuf,
}

impl Lmdb {
    fn open(dir: &std::path::Path) -> Lmdb {
        let flags = heed::EnvFlags::NO_SYNC | heed::EnvFlags::NO_META_SYNC | heed::EnvFlags::NO_READ_AHEAD;
        // SAFETY: a fresh directory only this process opens.
        let env = unsafe { heed::EnvOpenOptions::new().map_size(64 << 30).flags(flags).open(dir).unwrap() };
        let mut txn = env.write_txn().unwrap();
        let db = env.create_database(&mut txn, None).unwrap();
        txn.commit().unwrap();
        Lmdb { env, db, dir: dir.to_path_buf() }
    }
}

/// An LMDB transaction: a write transaction, or a read one.
enum LmdbTxn<'e> {
    Write(heed::RwTxn<'e>),
    Read(heed::RoTxn<'e, heed::WithTls>),
}

struct LmdbTx<'e> {
    db: heed::Database<heed::types::Bytes, heed::types::Bytes>,
    txn: LmdbTxn<'e>,
}

/// Runs `$body` with `$txn` bound to the transaction as a read one.
macro_rules! reading {
    ($tx:expr, |$txn:ident| $body:expr) => {
        match &$tx.txn {
            LmdbTxn::Write($txn) => $body,
            LmdbTxn::Read($txn) => $body,
        }
    };
}

impl<'e> LmdbTx<'e> {
    fn rw(&mut self) -> &mut heed::RwTxn<'e> {
        match &mut self.txn {
            LmdbTxn::Write(w) => w,
            LmdbTxn::Read(_) => unreachable!("a write in a read-only transaction"),
        }
    }
}

impl Tx for LmdbTx<'_> {
    fn get(&mut self, t: Table, key: &[u8], out: &mut Vec<u8>) -> Result<bool, Abort> {
        let db = self.db;
        let found = reading!(self, |txn| db.get(txn, &tagged(t, key)).unwrap().map(|v| {
            out.clear();
            out.extend_from_slice(v);
        }));
        Ok(found.is_some())
    }
    fn put(&mut self, t: Table, key: &[u8], value: &[u8]) -> Result<(), Abort> {
        let db = self.db;
        db.put(self.rw(), &tagged(t, key), value).unwrap();
        Ok(())
    }
    fn delete(&mut self, t: Table, key: &[u8]) -> Result<(), Abort> {
        let db = self.db;
        db.delete(self.rw(), &tagged(t, key)).unwrap();
        Ok(())
    }
    fn scan(
        &mut self,
        t: Table,
        low: &[u8],
        high: &[u8],
        reverse: bool,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), Abort> {
        let (low, high) = (tagged(t, low), tagged(t, high));
        let range = bounds(&low, &high);
        let db = self.db;
        let mut step = |item: heed::Result<(&[u8], &[u8])>| {
            let (k, v) = item.unwrap();
            visit(&k[1..], v)
        };
        reading!(self, |txn| {
            if reverse {
                for item in db.rev_range(txn, &range).unwrap() {
                    if !step(item) {
                        break;
                    }
                }
            } else {
                for item in db.range(txn, &range).unwrap() {
                    if !step(item) {
                        break;
                    }
                }
            }
        });
        Ok(())
    }
}

impl TxEngine for Lmdb {
    fn once(&self, read_only: bool, body: &mut dyn FnMut(&mut dyn Tx) -> Result<(), Abort>) -> Result<(), Abort> {
        if read_only {
            let mut tx = LmdbTx { db: self.db, txn: LmdbTxn::Read(self.env.read_txn().unwrap()) };
            return body(&mut tx);
        }
        let mut tx = LmdbTx { db: self.db, txn: LmdbTxn::Write(self.env.write_txn().unwrap()) };
        body(&mut tx)?;
        match tx.txn {
            LmdbTxn::Write(w) => w.commit().unwrap(),
            LmdbTxn::Read(_) => unreachable!(),
        }
        Ok(())
    }
    fn disk_bytes(&self) -> u64 {
        crate::suite::allocated_bytes(&self.dir)
    }
}

#[cfg(feature = "rocksdb")]
mod rocks {
    use super::{Abort, Table, Tx, TxEngine, tagged};

    pub struct Rocks {
        db: rocksdb::OptimisticTransactionDB,
        dir: std::path::PathBuf,
    }

    impl Rocks {
        pub fn open(dir: &std::path::Path, cache: u64) -> Rocks {
            let opts = crate::suite::rocksdb_options(cache, None);
            let db = rocksdb::OptimisticTransactionDB::open(&opts, dir.join("rocksdb")).unwrap();
            Rocks { db, dir: dir.to_path_buf() }
        }
    }

    struct RocksTx<'a, 'b> {
        /// None in a read-only transaction.
        tx: Option<&'b rocksdb::Transaction<'a, rocksdb::OptimisticTransactionDB>>,
        db: &'a rocksdb::OptimisticTransactionDB,
        /// Read options at the transaction's snapshot.
        read: &'b dyn Fn() -> rocksdb::ReadOptions,
    }

    impl RocksTx<'_, '_> {
        fn read(&self) -> rocksdb::ReadOptions {
            (self.read)()
        }
    }

    impl Tx for RocksTx<'_, '_> {
        fn get(&mut self, t: Table, key: &[u8], out: &mut Vec<u8>) -> Result<bool, Abort> {
            let read = self.read();
            let got = match &self.tx {
                Some(tx) => tx.get_pinned_opt(tagged(t, key), &read).unwrap(),
                None => self.db.get_pinned_opt(tagged(t, key), &read).unwrap(),
            };
            Ok(match got {
                Some(v) => {
                    out.clear();
                    out.extend_from_slice(&v);
                    true
                }
                None => false,
            })
        }
        fn put(&mut self, t: Table, key: &[u8], value: &[u8]) -> Result<(), Abort> {
            self.tx.as_ref().expect("a write in a read-only transaction").put(tagged(t, key), value).unwrap();
            Ok(())
        }
        fn delete(&mut self, t: Table, key: &[u8]) -> Result<(), Abort> {
            self.tx.as_ref().expect("a write in a read-only transaction").delete(tagged(t, key)).unwrap();
            Ok(())
        }
        fn scan(
            &mut self,
            t: Table,
            low: &[u8],
            high: &[u8],
            reverse: bool,
            visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
        ) -> Result<(), Abort> {
            let (low, high) = (tagged(t, low), tagged(t, high));
            // Bounds checked here: a transaction's iterator (its writes
            // merged over the snapshot) can step past ReadOptions' bounds.
            let read = self.read();
            let bounds = (&low[..], &high[..]);
            match &self.tx {
                Some(tx) => walk(tx.raw_iterator_opt(read), bounds, reverse, visit),
                None => walk(self.db.raw_iterator_opt(read), bounds, reverse, visit),
            }
            Ok(())
        }
    }

    /// Visits the keys in `low..high`, forward or backward.
    fn walk<D: rocksdb::DBAccess>(
        mut it: rocksdb::DBRawIteratorWithThreadMode<'_, D>,
        (low, high): (&[u8], &[u8]),
        reverse: bool,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) {
        if reverse {
            it.seek_for_prev(high);
            if it.valid() && it.key() == Some(high) {
                it.prev();
            }
        } else {
            it.seek(low);
        }
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            if k < low || k >= high || !visit(&k[1..], v) {
                break;
            }
            if reverse {
                it.prev();
            } else {
                it.next();
            }
        }
        it.status().unwrap();
    }

    impl TxEngine for Rocks {
        fn once(&self, read_only: bool, body: &mut dyn FnMut(&mut dyn Tx) -> Result<(), Abort>) -> Result<(), Abort> {
            if read_only {
                let snapshot = self.db.snapshot();
                let read = || {
                    let mut r = rocksdb::ReadOptions::default();
                    r.set_snapshot(&snapshot);
                    r
                };
                return body(&mut RocksTx { tx: None, db: &self.db, read: &read });
            }
            let write = rocksdb::WriteOptions::default();
            let mut options = rocksdb::OptimisticTransactionOptions::default();
            options.set_snapshot(true);
            let tx = self.db.transaction_opt(&write, &options);
            {
                // `set_snapshot` only sets where conflicts are checked
                // from: reads see it through ReadOptions (and see the
                // transaction's own writes).
                let snapshot = tx.snapshot();
                let read = || {
                    let mut r = rocksdb::ReadOptions::default();
                    r.set_snapshot(&snapshot);
                    r
                };
                body(&mut RocksTx { tx: Some(&tx), db: &self.db, read: &read })?;
            }
            match tx.commit() {
                Ok(()) => Ok(()),
                Err(e) if matches!(e.kind(), rocksdb::ErrorKind::Busy | rocksdb::ErrorKind::TryAgain) => {
                    Err(Abort::Conflict)
                }
                Err(e) => panic!("{e}"),
            }
        }
        fn disk_bytes(&self) -> u64 {
            crate::suite::allocated_bytes(&self.dir)
        }
    }
}
