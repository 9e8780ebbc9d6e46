//! redb: its cache set to the engine's share of the budget, a write
//! transaction per write committed with `Durability::None` (not persisted
//! until a later durable commit), the load's batches likewise and one
//! durable (`Immediate`) commit at its end; a read transaction per read.

use redb::{ReadableDatabase, ReadableTable};

use super::{Batch, Engine, Setup};

const TABLE: redb::TableDefinition<'_, &[u8], &[u8]> = redb::TableDefinition::new("t");

pub struct Redb {
    db: redb::Database,
    dir: std::path::PathBuf,
}

impl Redb {
    pub fn open(setup: &Setup) -> Redb {
        let db = redb::Database::builder()
            .set_cache_size(setup.cache_bytes() as usize)
            .create(setup.dir.join("redb"))
            .unwrap();
        let w = db.begin_write().unwrap();
        w.open_table(TABLE).unwrap();
        w.commit().unwrap();
        Redb { db, dir: setup.dir.clone() }
    }

    fn write(&self, durability: redb::Durability, f: impl FnOnce(&mut redb::Table<'_, &[u8], &[u8]>)) {
        let mut w = self.db.begin_write().unwrap();
        w.set_durability(durability).unwrap();
        f(&mut w.open_table(TABLE).unwrap());
        w.commit().unwrap();
    }
}

impl Engine for Redb {
    fn load(&self, batch: &mut dyn Batch) {
        self.write(redb::Durability::None, |t| {
            while let Some((k, v)) = batch.next() {
                t.insert(k, v).unwrap();
            }
        });
    }

    fn finish_load(&self) {
        self.write(redb::Durability::Immediate, |_| {});
    }

    fn get(&self, key: &[u8], check: &mut dyn FnMut(&[u8]) -> bool) -> Option<bool> {
        let r = self.db.begin_read().unwrap();
        let t = r.open_table(TABLE).unwrap();
        t.get(key).unwrap().map(|v| check(v.value()))
    }

    fn put(&self, key: &[u8], value: &[u8]) {
        self.write(redb::Durability::None, |t| {
            t.insert(key, value).unwrap();
        });
    }

    fn scan(&self, start: &[u8], count: usize, visit: &mut dyn FnMut(&[u8], &[u8])) -> usize {
        let r = self.db.begin_read().unwrap();
        let t = r.open_table(TABLE).unwrap();
        let mut n = 0;
        for item in t.range(start..).unwrap().take(count) {
            let (k, v) = item.unwrap();
            visit(k.value(), v.value());
            n += 1;
        }
        n
    }

    fn scan_all(&self, visit: &mut dyn FnMut(&[u8], &[u8])) -> u64 {
        let r = self.db.begin_read().unwrap();
        let t = r.open_table(TABLE).unwrap();
        let mut n = 0;
        for item in t.iter().unwrap() {
            let (k, v) = item.unwrap();
            visit(k.value(), v.value());
            n += 1;
        }
        n
    }

    fn disk_bytes(&self) -> u64 {
        super::allocated_bytes(&self.dir)
    }
}
