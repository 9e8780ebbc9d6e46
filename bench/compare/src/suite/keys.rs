//! What the suite's workloads read and write: record shapes, key numbers,
//! load orders and the request distributions of YCSB.
//!
//! Keys are numbers. The `records` loaded records are spread evenly over
//! the 64-bit space (record `j` is key number `j * step`, `step` even), so
//! the keys that YCSB D and E insert (odd numbers drawn at random below the
//! last loaded key) land between them, all over the tree, as YCSB's hashed
//! inserts do, instead of all at its right end. A key number is stored as 8
//! big-endian bytes (the `small` shape) or as `user` and 20 decimal digits
//! (the `ycsb` shape, 24 bytes, about YCSB's own key length): either way
//! key order is number order, so a sorted load is `j = 0, 1, 2, ...`.
//!
//! A value is a function of its key number alone, so every read is checked
//! exactly, and updates write the value the key always has: the `small`
//! shape's 8 bytes are a hash of it; the `ycsb` shape's 1,000 are a stream
//! seeded by it of printable characters of 6 random bits each, as YCSB's
//! own random field values are: block compression (RocksDB's Snappy) finds
//! nothing in them to shrink, as it would not in YCSB's. (A repeated word,
//! as the first runs used, compressed 8x in RocksDB and let its data fit in
//! memory.)

use rand::{RngExt, SeedableRng};

use crate::splitmix64;

/// The shape of a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// YCSB's standard record: 10 fields of 100 bytes stored as one
    /// 1,000-byte value; 24-byte keys.
    Ycsb,
    /// 8-byte keys, 8-byte values.
    Small,
}

impl Shape {
    pub fn parse(s: &str) -> Option<Shape> {
        match s {
            "ycsb" => Some(Shape::Ycsb),
            "small" => Some(Shape::Small),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Shape::Ycsb => "ycsb",
            Shape::Small => "small",
        }
    }

    pub fn key_len(self) -> usize {
        match self {
            Shape::Ycsb => 24,
            Shape::Small => 8,
        }
    }

    pub fn value_len(self) -> usize {
        match self {
            Shape::Ycsb => 1000,
            Shape::Small => 8,
        }
    }

    /// Writes key number `n` into `out` (which must hold `key_len` bytes).
    pub fn key(self, n: u64, out: &mut [u8]) {
        match self {
            Shape::Small => out.copy_from_slice(&n.to_be_bytes()),
            Shape::Ycsb => {
                out[..4].copy_from_slice(b"user");
                let mut v = n;
                for d in out[4..].iter_mut().rev() {
                    *d = b'0' + (v % 10) as u8;
                    v /= 10;
                }
            }
        }
    }

    /// The key number of a key this shape wrote.
    pub fn number(self, key: &[u8]) -> Option<u64> {
        match self {
            Shape::Small => Some(u64::from_be_bytes(key.try_into().ok()?)),
            Shape::Ycsb => {
                let digits = key.strip_prefix(b"user").filter(|d| d.len() == 20)?;
                digits.iter().try_fold(0u64, |n, &d| {
                    d.is_ascii_digit().then_some(n.wrapping_mul(10).wrapping_add(u64::from(d - b'0')))
                })
            }
        }
    }

    /// Writes the value of key number `n` into `out` (`value_len` bytes).
    pub fn value(self, n: u64, out: &mut [u8]) {
        match self {
            Shape::Small => out.copy_from_slice(&value_word(n).to_le_bytes()),
            Shape::Ycsb => {
                let seed = value_word(n);
                for (i, chunk) in out.chunks_exact_mut(8).enumerate() {
                    chunk.copy_from_slice(&printable(seed, i as u64));
                }
            }
        }
    }

    /// Whether `v` is the value of key number `n`.
    pub fn check(self, n: u64, v: &[u8]) -> bool {
        if v.len() != self.value_len() {
            return false;
        }
        match self {
            Shape::Small => v == value_word(n).to_le_bytes(),
            Shape::Ycsb => {
                let seed = value_word(n);
                v.chunks_exact(8).enumerate().all(|(i, c)| c == printable(seed, i as u64))
            }
        }
    }
}

/// Word `i` of the stream seeded by `seed`: 8 printable characters (from
/// `' '` on, 6 random bits each).
fn printable(seed: u64, i: u64) -> [u8; 8] {
    (splitmix64(seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15)) & 0x3F3F_3F3F_3F3F_3F3F)
        .wrapping_add(0x2020_2020_2020_2020)
        .to_le_bytes()
}

fn value_word(n: u64) -> u64 {
    splitmix64(n ^ 0x5EED_F00D)
}

/// The key space of `records` loaded records.
#[derive(Clone, Copy, Debug)]
pub struct Space {
    pub records: u64,
    step: u64,
}

impl Space {
    pub fn new(records: u64) -> Space {
        Space { records, step: (u64::MAX / records.max(1)) & !1 }
    }

    /// Key number of loaded record `j`.
    pub fn loaded(&self, j: u64) -> u64 {
        j * self.step
    }

    /// Key number of insert `c` of stream `stream` (a phase and a thread):
    /// odd, so never a loaded record; random below the last loaded key.
    /// Two inserts may draw the same number (the second overwrites the
    /// first with the same value), as rarely as a 63-bit collision.
    pub fn inserted(&self, stream: u64, c: u64) -> u64 {
        (splitmix64(splitmix64(stream) ^ c) % (self.records * self.step)) | 1
    }
}

/// A random permutation of `0..n` (a 4-round Feistel network over the
/// next power of four, cycle-walking back into range): the random load
/// order, without a table of `n` entries.
#[derive(Clone, Copy)]
pub struct Permutation {
    n: u64,
    half_bits: u32,
    seed: u64,
}

impl Permutation {
    pub fn new(n: u64, seed: u64) -> Permutation {
        let bits = 64 - n.max(2).saturating_sub(1).leading_zeros();
        Permutation { n, half_bits: bits.div_ceil(2).max(1), seed }
    }

    pub fn get(&self, mut x: u64) -> u64 {
        loop {
            x = self.round_trip(x);
            if x < self.n {
                return x;
            }
        }
    }

    fn round_trip(&self, x: u64) -> u64 {
        let mask = (1u64 << self.half_bits) - 1;
        let (mut l, mut r) = (x >> self.half_bits, x & mask);
        for round in 0..4 {
            let f = splitmix64(r ^ self.seed.rotate_left(round * 16)) & mask;
            (l, r) = (r, l ^ f);
        }
        (l << self.half_bits) | r
    }
}

/// The order records are loaded in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    Random,
    Sorted,
}

impl Order {
    pub fn parse(s: &str) -> Option<Order> {
        match s {
            "random" => Some(Order::Random),
            "sorted" => Some(Order::Sorted),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Order::Random => "random",
            Order::Sorted => "sorted",
        }
    }
}

/// Which loaded record the `t`-th load step writes.
#[derive(Clone, Copy)]
pub struct LoadOrder {
    order: Order,
    permutation: Permutation,
}

impl LoadOrder {
    pub fn new(order: Order, records: u64, seed: u64) -> LoadOrder {
        LoadOrder { order, permutation: Permutation::new(records, seed) }
    }

    pub fn record(&self, t: u64) -> u64 {
        match self.order {
            Order::Sorted => t,
            Order::Random => self.permutation.get(t),
        }
    }
}

/// YCSB's Zipfian constant.
pub const ZIPF_THETA: f64 = 0.99;

/// Picks loaded records: uniform, or Zipfian scrambled as YCSB's
/// `ScrambledZipfianGenerator` is (rank `r`, 1 the most popular, from
/// rand_distr's `Zipf` is record `splitmix64(r) % records`, so the popular
/// records are spread over the tree rather than all in its first leaf).
pub struct Picker {
    records: u64,
    zipf: Option<rand_distr::Zipf<f64>>,
    pub rng: rand::rngs::SmallRng,
}

impl Picker {
    pub fn new(records: u64, zipfian: bool, seed: u64) -> Picker {
        let zipf = zipfian.then(|| rand_distr::Zipf::new(records as f64, ZIPF_THETA).unwrap());
        Picker { records, zipf, rng: rand::rngs::SmallRng::seed_from_u64(seed) }
    }

    /// A loaded record.
    pub fn record(&mut self) -> u64 {
        match self.zipf {
            Some(z) => splitmix64(self.rng.sample(z) as u64) % self.records,
            None => self.rng.random_range(0..self.records),
        }
    }

    /// A Zipfian rank in `1..=records` (1 the most popular), unscrambled:
    /// YCSB D's "latest" is the newest record minus a rank.
    pub fn rank(&mut self) -> u64 {
        match self.zipf {
            Some(z) => self.rng.sample(z) as u64,
            None => self.rng.random_range(1..=self.records),
        }
    }

    /// A number in `range`, uniform (scan lengths, operation mixes).
    pub fn uniform(&mut self, range: std::ops::RangeInclusive<u64>) -> u64 {
        self.rng.random_range(range)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_as_their_numbers_and_parse_back() {
        for shape in [Shape::Ycsb, Shape::Small] {
            let (mut a, mut b) = (vec![0; shape.key_len()], vec![0; shape.key_len()]);
            let space = Space::new(1000);
            for j in 0..999 {
                shape.key(space.loaded(j), &mut a);
                shape.key(space.loaded(j + 1), &mut b);
                assert!(a < b);
                assert_eq!(shape.number(&a), Some(space.loaded(j)));
            }
        }
    }

    #[test]
    fn values_check_only_for_their_key() {
        for shape in [Shape::Ycsb, Shape::Small] {
            let mut v = vec![0; shape.value_len()];
            shape.value(7, &mut v);
            assert!(shape.check(7, &v));
            assert!(!shape.check(8, &v));
            v[shape.value_len() - 1] ^= 1;
            assert!(!shape.check(7, &v));
        }
    }

    #[test]
    fn ycsb_values_are_printable_and_do_not_repeat() {
        let mut v = vec![0; Shape::Ycsb.value_len()];
        Shape::Ycsb.value(7, &mut v);
        assert!(v.iter().all(|&b| (0x20..0x60).contains(&b)));
        let mut words: Vec<&[u8]> = v.chunks_exact(8).collect();
        words.sort_unstable();
        words.dedup();
        assert_eq!(words.len(), v.len() / 8, "a repeated word: compressible");
        // Every byte value of the alphabet occurs: 6 random bits each.
        let mut seen = [false; 64];
        v.iter().for_each(|&b| seen[usize::from(b - 0x20)] = true);
        assert!(seen.iter().filter(|&&x| x).count() > 60);
    }

    #[test]
    fn the_permutation_visits_each_record_once() {
        for n in [1, 2, 3, 17, 1000, 4097] {
            let p = Permutation::new(n, 42);
            let mut seen: Vec<u64> = (0..n).map(|i| p.get(i)).collect();
            seen.sort_unstable();
            assert_eq!(seen, (0..n).collect::<Vec<_>>(), "n = {n}");
        }
    }

    #[test]
    fn inserted_keys_fall_between_loaded_ones() {
        let space = Space::new(100);
        for c in 0..1000 {
            let k = space.inserted(3, c);
            assert_eq!(k % 2, 1);
            assert!(k < space.loaded(99) + space.step);
        }
    }
}
