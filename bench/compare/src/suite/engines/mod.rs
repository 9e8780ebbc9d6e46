//! The engines the suite compares, behind one adapter trait.
//!
//! Every engine gets the same memory budget and writes the same way:
//! - memory: when the data fits, SnowfallDB's page pool is the budget and
//!   the engines with a cache of their own (redb, RocksDB's block cache,
//!   fjall) get the budget as that cache. Out of memory every engine runs
//!   inside a memory cgroup of the budget (see `cgroup.rs`), which charges
//!   it for its heap, its caches and the page cache of its files alike:
//!   SnowfallDB, which reads and logs past the page cache (`O_DIRECT`),
//!   gets 3/4 of it as its pool (the rest is its heap, about 26 MiB at the
//!   full preset's sizes, and the harness's); redb, RocksDB and fjall get a quarter as their
//!   cache, the rest left for the page cache, memtables and heap they also
//!   need; LMDB has no cache but the page cache.
//! - writes (updates and inserts of the workloads): acknowledged before
//!   they are on disk, each engine's usual setting for that: SnowfallDB
//!   `Durability::Group` (synced by its background flusher within 10 ms),
//!   LMDB `NO_SYNC` (a write transaction per write), redb
//!   `Durability::None` (a write transaction per write), RocksDB's default
//!   `WriteOptions` (the WAL written, not synced), fjall's default (the
//!   journal buffered, not synced).
//! - loads: batches of records (one write transaction or write batch
//!   each, unsynced; SnowfallDB one `Durability::None` insert per record),
//!   then one sync, timed with the load. A batch is [`LOAD_BATCH`] records,
//!   or fewer where that would take more than 1/64 of the budget: a write
//!   batch is held in memory whole, and an LSM copies it into memtables
//!   (with batches of 1/8 of the budget, fjall was killed in its cgroup).

pub mod btreemap;
pub mod fjall;
pub mod lmdb;
pub mod redb;
#[cfg(feature = "rocksdb")]
pub mod rocksdb;
pub mod snowfall;

use std::path::{Path, PathBuf};

/// Records per load batch, at most.
pub const LOAD_BATCH: u64 = 100_000;

/// Records per load batch for records of `record` bytes and `budget`.
pub fn load_batch(record: u64, budget: u64) -> u64 {
    (budget / 64 / record.max(1)).clamp(1_000, LOAD_BATCH)
}

/// Every engine the suite knows (RocksDB only with the `rocksdb` feature).
pub fn all() -> Vec<&'static str> {
    let mut v = vec!["snowfall", "lmdb", "redb"];
    if cfg!(feature = "rocksdb") {
        v.push("rocksdb");
    }
    v.extend(["fjall", "btreemap"]);
    v
}

/// Whether `engine` keeps its data in files (and so runs out of memory).
pub fn persistent(engine: &str) -> bool {
    engine != "btreemap"
}

/// The records of a load batch, made as they are taken (a batch of large
/// records is never all in memory at once, outside the engine).
pub trait Batch {
    /// The next record, or `None` at the end of the batch.
    fn next(&mut self) -> Option<(&[u8], &[u8])>;
}

/// What the suite asks of an engine. Calls come from several threads at
/// once; an engine that allows one writer at a time (LMDB, redb) waits
/// for it inside.
pub trait Engine: Sync {
    /// Writes one load batch.
    fn load(&self, batch: &mut dyn Batch);
    /// Makes the load durable (timed with it).
    fn finish_load(&self);
    /// Runs `check` on the value of `key`; `None` if the key is absent.
    fn get(&self, key: &[u8], check: &mut dyn FnMut(&[u8]) -> bool) -> Option<bool>;
    /// Sets `key` to `value` (an update or an insert).
    fn put(&self, key: &[u8], value: &[u8]);
    /// Visits up to `count` entries from `start` on, in key order; how
    /// many it visited.
    fn scan(&self, start: &[u8], count: usize, visit: &mut dyn FnMut(&[u8], &[u8])) -> usize;
    /// Visits every entry in key order (the load's check).
    fn scan_all(&self, visit: &mut dyn FnMut(&[u8], &[u8])) -> u64;
    /// Bytes the engine's files take on disk (what is allocated to them).
    fn disk_bytes(&self) -> u64;
}

/// How an engine is opened for one measurement.
pub struct Setup {
    /// A fresh directory for its files.
    pub dir: PathBuf,
    /// The memory budget.
    pub budget: u64,
    /// Whether it runs in a memory cgroup of the budget (out of memory).
    pub in_cgroup: bool,
    /// About how many bytes of records it will hold (for LMDB's map size).
    pub data_bytes: u64,
}

impl Setup {
    /// The size of the cache of an engine that also relies on the page
    /// cache: the budget, or a quarter of it inside a cgroup of the budget.
    pub fn cache_bytes(&self) -> u64 {
        if self.in_cgroup { self.budget / 4 } else { self.budget }
    }
}

pub fn open(engine: &str, setup: &Setup) -> Box<dyn Engine> {
    match engine {
        "snowfall" => Box::new(snowfall::Snowfall::open(setup)),
        "lmdb" => Box::new(lmdb::Lmdb::open(setup)),
        "redb" => Box::new(redb::Redb::open(setup)),
        #[cfg(feature = "rocksdb")]
        "rocksdb" => Box::new(rocksdb::Rocks::open(setup)),
        "fjall" => Box::new(fjall::Fjall::open(setup)),
        "btreemap" => Box::new(btreemap::Map::default()),
        other => panic!("unknown engine {other} (known: {})", all().join(", ")),
    }
}

/// Bytes allocated to the files under `dir` (blocks, not lengths: sparse
/// files count what they use).
pub fn allocated_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => allocated_bytes(&e.path()),
            Ok(m) => m.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}
