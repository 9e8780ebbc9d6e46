//! LMDB through heed: `NO_SYNC` and `NO_META_SYNC` (writes reach the
//! memory map at commit, the disk when the kernel writes them back or at
//! the load's forced sync), `NO_READ_AHEAD` (LMDB's advice for databases
//! larger than memory; with read-ahead it thrashes in a cgroup smaller than
//! its file), a read transaction per read, a write transaction per write.

use std::ops::Bound;

use heed::types::Bytes;

use super::{Batch, Engine, Setup};

pub struct Lmdb {
    env: heed::Env,
    db: heed::Database<Bytes, Bytes>,
    dir: std::path::PathBuf,
}

impl Lmdb {
    pub fn open(setup: &Setup) -> Lmdb {
        // Room for the data four times over (B-tree pages are not full,
        // and copy-on-write keeps old pages until commits end), at least
        // 1 GiB: the map is address space, not memory.
        let map = (setup.data_bytes * 4).max(1 << 30).next_multiple_of(1 << 20);
        let flags = heed::EnvFlags::NO_SYNC | heed::EnvFlags::NO_META_SYNC | heed::EnvFlags::NO_READ_AHEAD;
        // SAFETY: a fresh directory only this process opens.
        let env = unsafe { heed::EnvOpenOptions::new().map_size(map as usize).flags(flags).open(&setup.dir).unwrap() };
        let mut txn = env.write_txn().unwrap();
        let db = env.create_database(&mut txn, None).unwrap();
        txn.commit().unwrap();
        Lmdb { env, db, dir: setup.dir.clone() }
    }
}

impl Engine for Lmdb {
    fn load(&self, batch: &mut dyn Batch) {
        let mut txn = self.env.write_txn().unwrap();
        while let Some((k, v)) = batch.next() {
            self.db.put(&mut txn, k, v).unwrap();
        }
        txn.commit().unwrap();
    }

    fn finish_load(&self) {
        self.env.force_sync().unwrap();
    }

    fn get(&self, key: &[u8], check: &mut dyn FnMut(&[u8]) -> bool) -> Option<bool> {
        let txn = self.env.read_txn().unwrap();
        self.db.get(&txn, key).unwrap().map(check)
    }

    fn put(&self, key: &[u8], value: &[u8]) {
        let mut txn = self.env.write_txn().unwrap();
        self.db.put(&mut txn, key, value).unwrap();
        txn.commit().unwrap();
    }

    fn scan(&self, start: &[u8], count: usize, visit: &mut dyn FnMut(&[u8], &[u8])) -> usize {
        let txn = self.env.read_txn().unwrap();
        let range = (Bound::Included(start), Bound::Unbounded);
        let mut n = 0;
        for item in self.db.range(&txn, &range).unwrap().take(count) {
            let (k, v) = item.unwrap();
            visit(k, v);
            n += 1;
        }
        n
    }

    fn scan_all(&self, visit: &mut dyn FnMut(&[u8], &[u8])) -> u64 {
        let txn = self.env.read_txn().unwrap();
        let mut n = 0;
        for item in self.db.iter(&txn).unwrap() {
            let (k, v) = item.unwrap();
            visit(k, v);
            n += 1;
        }
        n
    }

    fn disk_bytes(&self) -> u64 {
        super::allocated_bytes(&self.dir)
    }
}
