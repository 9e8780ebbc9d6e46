//! SnowfallDB through `snowfalldb` (std: opened by path, the background
//! flusher and checkpointer on threads), default options but the pool.

use std::ops::Bound;

use snowfall_db::{Direction, Durability};

use super::{Batch, Engine, Setup};

pub struct Snowfall {
    // Leaked: the process ends after one measurement, and the tree borrows
    // the database.
    db: &'static snowfalldb::Database,
    tree: snowfall_db::Tree<'static>,
    dir: std::path::PathBuf,
}

impl Snowfall {
    pub fn open(setup: &Setup) -> Snowfall {
        // Inside the cgroup the pool leaves room for the rest of the
        // process: its heap (26 MiB at the full preset's sizes, 16 bytes
        // of state for every page of the file among it), the harness's,
        // threads' stacks. With 7/8 of 256 MiB it was killed in YCSB A at 2 threads.
        let pool = if setup.in_cgroup { setup.budget / 4 * 3 } else { setup.budget };
        let db = snowfalldb::Database::builder(setup.dir.join("db")).pool_bytes(pool).create().unwrap();
        let db: &'static snowfalldb::Database = Box::leak(Box::new(db));
        let tree = db.tree("t").unwrap();
        Snowfall { db, tree, dir: setup.dir.clone() }
    }
}

impl Engine for Snowfall {
    fn load(&self, batch: &mut dyn Batch) {
        while let Some((k, v)) = batch.next() {
            self.tree.insert_with(k, v, Durability::None).unwrap();
        }
    }

    fn finish_load(&self) {
        self.db.sync().unwrap();
    }

    fn get(&self, key: &[u8], check: &mut dyn FnMut(&[u8]) -> bool) -> Option<bool> {
        self.tree.get_with(key, |v| check(v)).unwrap()
    }

    fn put(&self, key: &[u8], value: &[u8]) {
        self.tree.insert_with(key, value, Durability::Group).unwrap();
    }

    fn scan(&self, start: &[u8], count: usize, visit: &mut dyn FnMut(&[u8], &[u8])) -> usize {
        let mut n = 0;
        if count > 0 {
            self.tree
                .scan(Bound::Included(start), Direction::Forward, |k, v| {
                    visit(k, v);
                    n += 1;
                    n < count
                })
                .unwrap();
        }
        n
    }

    fn scan_all(&self, visit: &mut dyn FnMut(&[u8], &[u8])) -> u64 {
        let mut n = 0;
        self.tree
            .scan(Bound::Unbounded, Direction::Forward, |k, v| {
                visit(k, v);
                n += 1;
                true
            })
            .unwrap();
        n
    }

    fn disk_bytes(&self) -> u64 {
        super::allocated_bytes(&self.dir)
    }
}
