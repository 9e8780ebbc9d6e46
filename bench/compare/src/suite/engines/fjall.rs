//! fjall 3: default options but its cache (the engine's share of the
//! budget) and, inside a cgroup, memtables of at most an eighth of the
//! budget each and a quarter in all, and a 64 MiB journal (its least). Writes with the default persistence (the journal buffered, not
//! synced); the load in write batches, the journal synced at the end.

use super::{Batch, Engine, Setup};

pub struct Fjall {
    db: fjall::Database,
    tree: fjall::Keyspace,
    dir: std::path::PathBuf,
}

impl Fjall {
    pub fn open(setup: &Setup) -> Fjall {
        let mut builder = fjall::Database::builder(setup.dir.join("fjall")).cache_size(setup.cache_bytes());
        if setup.in_cgroup {
            // Memtables waiting to be flushed are bounded by the journal's
            // size (512 MiB by default) and, off by default, by this; a
            // load holds them all in memory and is killed in its cgroup
            // without both. The write-buffer limit is marked deprecated
            // ("todo") and hidden, but it is the one that bounds them.
            #[allow(deprecated)]
            {
                builder = builder.max_journaling_size(64 << 20).max_write_buffer_size(Some(setup.budget / 4));
            }
        }
        let db = builder.open().unwrap();
        let in_cgroup = setup.in_cgroup;
        let memtable = (setup.budget / 8).clamp(1 << 20, 64 << 20);
        let options = move || {
            let o = fjall::KeyspaceCreateOptions::default();
            if in_cgroup { o.max_memtable_size(memtable) } else { o }
        };
        let tree = db.keyspace("t", options).unwrap();
        Fjall { db, tree, dir: setup.dir.clone() }
    }
}

impl Engine for Fjall {
    fn load(&self, batch: &mut dyn Batch) {
        let mut write = self.db.batch();
        while let Some((k, v)) = batch.next() {
            write.insert(&self.tree, k, v);
        }
        write.commit().unwrap();
    }

    fn finish_load(&self) {
        self.db.persist(fjall::PersistMode::SyncAll).unwrap();
    }

    fn get(&self, key: &[u8], check: &mut dyn FnMut(&[u8]) -> bool) -> Option<bool> {
        self.tree.get(key).unwrap().map(|v| check(&v))
    }

    fn put(&self, key: &[u8], value: &[u8]) {
        self.tree.insert(key, value).unwrap();
    }

    fn scan(&self, start: &[u8], count: usize, visit: &mut dyn FnMut(&[u8], &[u8])) -> usize {
        let mut n = 0;
        for guard in self.tree.range(start..).take(count) {
            let (k, v) = guard.into_inner().unwrap();
            visit(&k, &v);
            n += 1;
        }
        n
    }

    fn scan_all(&self, visit: &mut dyn FnMut(&[u8], &[u8])) -> u64 {
        let mut n = 0;
        for guard in self.tree.iter() {
            let (k, v) = guard.into_inner().unwrap();
            visit(&k, &v);
            n += 1;
        }
        n
    }

    fn disk_bytes(&self) -> u64 {
        super::allocated_bytes(&self.dir)
    }
}
