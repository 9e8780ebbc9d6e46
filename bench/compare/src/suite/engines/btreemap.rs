//! `std::collections::BTreeMap` behind an `RwLock`: in memory, nothing
//! persisted, a ceiling rather than a competitor.

use std::collections::BTreeMap;
use std::sync::RwLock;

use super::{Batch, Engine};

type Bytes = Box<[u8]>;

#[derive(Default)]
pub struct Map {
    map: RwLock<BTreeMap<Bytes, Bytes>>,
}

impl Engine for Map {
    fn load(&self, batch: &mut dyn Batch) {
        let mut map = self.map.write().unwrap();
        while let Some((k, v)) = batch.next() {
            map.insert(k.into(), v.into());
        }
    }

    fn finish_load(&self) {}

    fn get(&self, key: &[u8], check: &mut dyn FnMut(&[u8]) -> bool) -> Option<bool> {
        self.map.read().unwrap().get(key).map(|v| check(v))
    }

    fn put(&self, key: &[u8], value: &[u8]) {
        self.map.write().unwrap().insert(key.into(), value.into());
    }

    fn scan(&self, start: &[u8], count: usize, visit: &mut dyn FnMut(&[u8], &[u8])) -> usize {
        let map = self.map.read().unwrap();
        let mut n = 0;
        for (k, v) in map.range::<[u8], _>((std::ops::Bound::Included(start), std::ops::Bound::Unbounded)).take(count) {
            visit(k, v);
            n += 1;
        }
        n
    }

    fn scan_all(&self, visit: &mut dyn FnMut(&[u8], &[u8])) -> u64 {
        let map = self.map.read().unwrap();
        map.iter().for_each(|(k, v)| visit(k, v));
        map.len() as u64
    }

    fn disk_bytes(&self) -> u64 {
        0
    }
}
