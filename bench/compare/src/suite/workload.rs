//! The operations of each workload, run on one engine by many threads.
//!
//! YCSB's core workloads, with YCSB's request distributions: A (50 % reads,
//! 50 % updates), B (95/5), C (reads only), F (50 % reads, 50 %
//! read-modify-writes), all Zipfian (0.99, scrambled); D (95 % reads of the
//! latest records, 5 % inserts); E (95 % scans of 1-100 records from a
//! Zipfian start, 5 % inserts). Plus `uniform`: uniform point lookups. An
//! update writes the whole record (YCSB's bindings for key-value stores
//! write the record back). Every value read is checked; a scan checks its
//! order, its start and every value.

use super::engines::Engine;
use super::keys::{Picker, Shape, Space};

/// A workload of the suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    Uniform,
    A,
    B,
    C,
    D,
    E,
    F,
}

impl Workload {
    /// In the order they run: reads first, then writes of existing
    /// records, then inserts (which change what later ones would see).
    pub const ALL: [Workload; 7] =
        [Workload::Uniform, Workload::C, Workload::B, Workload::A, Workload::F, Workload::D, Workload::E];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Uniform => "uniform",
            Workload::A => "ycsb-a",
            Workload::B => "ycsb-b",
            Workload::C => "ycsb-c",
            Workload::D => "ycsb-d",
            Workload::E => "ycsb-e",
            Workload::F => "ycsb-f",
        }
    }

    pub fn parse(s: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == s)
    }

    /// What one operation is, for tables.
    pub fn describe(self) -> &'static str {
        match self {
            Workload::Uniform => "uniform point lookups",
            Workload::A => "YCSB A: 50 % reads, 50 % updates, Zipfian",
            Workload::B => "YCSB B: 95 % reads, 5 % updates, Zipfian",
            Workload::C => "YCSB C: Zipfian point lookups",
            Workload::D => "YCSB D: 95 % reads of the latest, 5 % inserts",
            Workload::E => "YCSB E: 95 % scans of 1-100 records, 5 % inserts (one scan is one operation)",
            Workload::F => "YCSB F: 50 % reads, 50 % read-modify-writes, Zipfian",
        }
    }
}

/// One thread's share of a workload: its random stream, buffers, and the
/// inserts it made (D reads the latest of them).
pub struct Worker<'a> {
    engine: &'a dyn Engine,
    workload: Workload,
    shape: Shape,
    space: Space,
    picker: Picker,
    /// Where this thread's inserts come from.
    stream: u64,
    inserted: u64,
    key: Vec<u8>,
    end: Vec<u8>,
    value: Vec<u8>,
}

impl<'a> Worker<'a> {
    /// `stream` names this (phase, thread): its draws and inserted keys.
    pub fn new(engine: &'a dyn Engine, workload: Workload, shape: Shape, space: Space, stream: u64) -> Worker<'a> {
        let zipfian = workload != Workload::Uniform;
        Worker {
            engine,
            workload,
            shape,
            space,
            picker: Picker::new(space.records, zipfian, stream),
            stream,
            inserted: 0,
            key: vec![0; shape.key_len()],
            end: vec![0; shape.key_len()],
            value: vec![0; shape.value_len()],
        }
    }

    /// Runs one operation.
    pub fn step(&mut self) {
        let roll = self.picker.uniform(0..=99);
        match self.workload {
            Workload::Uniform | Workload::C => {
                self.read_record();
            }
            Workload::A if roll < 50 => {
                self.read_record();
            }
            Workload::B if roll < 95 => {
                self.read_record();
            }
            Workload::A | Workload::B => self.update(),
            Workload::F if roll < 50 => {
                self.read_record();
            }
            Workload::F => {
                let n = self.read_record();
                self.write(n);
            }
            Workload::D if roll < 95 => self.read_latest(),
            Workload::E if roll < 95 => self.scan(),
            Workload::D | Workload::E => self.insert(),
        }
    }

    /// Reads a loaded record (uniform or Zipfian); its key number.
    fn read_record(&mut self) -> u64 {
        let n = self.space.loaded(self.picker.record());
        self.read(n);
        n
    }

    fn read(&mut self, n: u64) {
        self.shape.key(n, &mut self.key);
        let shape = self.shape;
        match self.engine.get(&self.key, &mut |v| shape.check(n, v)) {
            Some(true) => {}
            Some(false) => panic!("key number {n}: wrong value"),
            None => panic!("key number {n}: missing"),
        }
    }

    fn update(&mut self) {
        let n = self.space.loaded(self.picker.record());
        self.write(n);
    }

    fn write(&mut self, n: u64) {
        self.shape.key(n, &mut self.key);
        self.shape.value(n, &mut self.value);
        self.engine.put(&self.key, &self.value);
    }

    fn insert(&mut self) {
        let n = self.space.inserted(self.stream, self.inserted);
        self.write(n);
        self.inserted += 1;
    }

    /// YCSB's "latest": the newest record (loaded records count as older
    /// than this thread's inserts, in the order of their key numbers) less
    /// a Zipfian rank.
    fn read_latest(&mut self) {
        let rank = self.picker.rank();
        let n = if rank <= self.inserted {
            self.space.inserted(self.stream, self.inserted - rank)
        } else {
            let back = (rank - self.inserted).min(self.space.records);
            self.space.loaded(self.space.records - back)
        };
        self.read(n);
    }

    fn scan(&mut self) {
        let start = self.space.loaded(self.picker.record());
        let len = self.picker.uniform(1..=100) as usize;
        self.shape.key(start, &mut self.key);
        let (shape, end) = (self.shape, &mut self.end);
        let mut first = true;
        let visited = self.engine.scan(&self.key, len, &mut |k, v| {
            let n = shape.number(k).unwrap_or_else(|| panic!("scan from key number {start}: a foreign key {k:?}"));
            assert!(shape.check(n, v), "scan from key number {start}: key number {n}: wrong value");
            assert!(if first { n == start } else { k > &end[..] }, "scan from key number {start}: out of order at {n}");
            first = false;
            end.copy_from_slice(k);
        });
        assert!(visited >= 1, "scan from key number {start}: found nothing");
    }
}
