//! RocksDB (the `rocksdb` feature: Debian's librocksdb 7.8, linked, not
//! built): default options but a block cache of the engine's share of the
//! budget, a 10-bit Bloom filter per table (RocksDB's advice for point
//! lookups), and, inside a cgroup, memtables of at most an eighth of the
//! budget and index and filter blocks in the block cache. Writes with the default `WriteOptions` (WAL written, not
//! synced); the load in write batches, its WAL synced at the end.

use super::{Batch, Engine, Setup};

pub struct Rocks {
    db: rocksdb::DB,
    dir: std::path::PathBuf,
}

impl Rocks {
    pub fn open(setup: &Setup) -> Rocks {
        let bounded = setup.in_cgroup.then_some((setup.budget / 8).min(64 << 20));
        let db = rocksdb::DB::open(&options(setup.cache_bytes(), bounded), setup.dir.join("rocksdb")).unwrap();
        Rocks { db, dir: setup.dir.clone() }
    }
}

/// The options every RocksDB measurement opens with (TPC-C's too): a
/// block cache of `cache` bytes and 10-bit Bloom filters; `bounded`, the
/// settings RocksDB documents for a memory limit: memtables of at most
/// that many bytes, and index and filter blocks kept in the block cache
/// (level 0's pinned there) instead of beside it, where their memory grows
/// with the data (64 M small records: about 90 MiB of filters).
pub fn options(cache: u64, bounded: Option<u64>) -> rocksdb::Options {
    let mut table = rocksdb::BlockBasedOptions::default();
    table.set_block_cache(&rocksdb::Cache::new_lru_cache(cache as usize).unwrap());
    table.set_bloom_filter(10.0, false);
    let mut opts = rocksdb::Options::default();
    opts.create_if_missing(true);
    if let Some(bytes) = bounded {
        table.set_cache_index_and_filter_blocks(true);
        table.set_pin_l0_filter_and_index_blocks_in_cache(true);
        opts.set_write_buffer_size(bytes as usize);
    }
    opts.set_block_based_table_factory(&table);
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
