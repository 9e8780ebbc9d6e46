//! RocksDB (the `rocksdb` feature: Debian's librocksdb 7.8, linked, not
//! built): default options but a block cache of the engine's share of the
//! budget, a 10-bit Bloom filter per table (RocksDB's advice for point
//! lookups), and, inside a cgroup, memtables of at most an eighth of the
//! budget. Writes with the default `WriteOptions` (WAL written, not
//! synced); the load in write batches, its WAL synced at the end.

use super::{Batch, Engine, Setup};

pub struct Rocks {
    db: rocksdb::DB,
    dir: std::path::PathBuf,
}

impl Rocks {
    pub fn open(setup: &Setup) -> Rocks {
        let memtable = setup.in_cgroup.then_some((setup.budget / 8).min(64 << 20));
        let db = rocksdb::DB::open(&options(setup.cache_bytes(), memtable), setup.dir.join("rocksdb")).unwrap();
        Rocks { db, dir: setup.dir.clone() }
    }
}

/// The options every RocksDB measurement opens with (TPC-C's too): a
/// block cache of `cache` bytes, 10-bit Bloom filters, and memtables of at
/// most `memtable` bytes if given.
pub fn options(cache: u64, memtable: Option<u64>) -> rocksdb::Options {
    let mut table = rocksdb::BlockBasedOptions::default();
    table.set_block_cache(&rocksdb::Cache::new_lru_cache(cache as usize).unwrap());
    table.set_bloom_filter(10.0, false);
    let mut opts = rocksdb::Options::default();
    opts.create_if_missing(true);
    opts.set_block_based_table_factory(&table);
    if let Some(bytes) = memtable {
        opts.set_write_buffer_size(bytes as usize);
    }
    opts
}

impl Engine for Rocks {
    fn load(&self, batch: &mut dyn Batch) {
        let mut write = rocksdb::WriteBatch::default();
        while let Some((k, v)) = batch.next() {
            write.put(k, v);
        }
        self.db.write(write).unwrap();
    }

    fn finish_load(&self) {
        self.db.flush_wal(true).unwrap();
    }

    fn get(&self, key: &[u8], check: &mut dyn FnMut(&[u8]) -> bool) -> Option<bool> {
        self.db.get_pinned(key).unwrap().map(|v| check(&v))
    }

    fn put(&self, key: &[u8], value: &[u8]) {
        self.db.put(key, value).unwrap();
    }

    fn scan(&self, start: &[u8], count: usize, visit: &mut dyn FnMut(&[u8], &[u8])) -> usize {
        let mut it = self.db.raw_iterator();
        it.seek(start);
        let mut n = 0;
        while n < count && it.valid() {
            visit(it.key().unwrap(), it.value().unwrap());
            n += 1;
            it.next();
        }
        it.status().unwrap();
        n
    }

    fn scan_all(&self, visit: &mut dyn FnMut(&[u8], &[u8])) -> u64 {
        let mut it = self.db.raw_iterator();
        it.seek_to_first();
        let mut n = 0;
        while it.valid() {
            visit(it.key().unwrap(), it.value().unwrap());
            n += 1;
            it.next();
        }
        it.status().unwrap();
        n
    }

    fn disk_bytes(&self) -> u64 {
        super::allocated_bytes(&self.dir)
    }
}
