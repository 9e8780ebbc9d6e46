//! TPC-C's random inputs (clause 2.1.6 and 4.3.2): uniform numbers,
//! NURand, last names from syllables, strings.

use rand::{RngExt, SeedableRng};

/// The constants C of NURand. The run's C for last names differs from the
/// load's by 66 (clause 2.1.6.1: 65..=119, not 96 or 112); the others may
/// be the same.
#[derive(Clone, Copy)]
pub struct Constants {
    pub c_last: u32,
    pub c_id: u32,
    pub ol_i_id: u32,
}

pub const LOAD: Constants = Constants { c_last: 157, c_id: 259, ol_i_id: 7911 };
pub const RUN: Constants = Constants { c_last: 223, c_id: 259, ol_i_id: 7911 };

pub struct Random {
    rng: rand::rngs::SmallRng,
    pub c: Constants,
}

impl Random {
    pub fn new(seed: u64, c: Constants) -> Random {
        Random { rng: rand::rngs::SmallRng::seed_from_u64(seed), c }
    }

    /// Uniform in `lo..=hi`.
    pub fn uniform(&mut self, lo: u32, hi: u32) -> u32 {
        self.rng.random_range(lo..=hi)
    }

    /// NURand(A, x, y) with this run's C for A.
    pub fn nurand(&mut self, a: u32, x: u32, y: u32) -> u32 {
        let c = match a {
            255 => self.c.c_last,
            1023 => self.c.c_id,
            _ => self.c.ol_i_id,
        };
        ((self.uniform(0, a) | self.uniform(x, y)) + c) % (y - x + 1) + x
    }

    /// A customer id of a transaction (NURand(1023, 1, 3000)).
    pub fn customer_id(&mut self) -> u32 {
        self.nurand(1023, 1, 3000)
    }

    /// A last name of a transaction (NURand(255, 0, 999)).
    pub fn last_name(&mut self) -> [u8; 16] {
        let n = self.nurand(255, 0, 999);
        last_name(n)
    }

    /// An item id of a New-Order line.
    pub fn item_id(&mut self) -> u32 {
        self.nurand(8191, 1, 100_000)
    }

    /// A random alphanumeric string of `lo..=hi` characters, zero-padded.
    pub fn astring<const N: usize>(&mut self, lo: usize, hi: usize) -> [u8; N] {
        const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let len = self.rng.random_range(lo..=hi.min(N));
        let mut out = [0u8; N];
        for b in &mut out[..len] {
            *b = CHARS[self.rng.random_range(0..CHARS.len())];
        }
        out
    }

    /// A random numeric string of `len` digits.
    pub fn nstring<const N: usize>(&mut self, len: usize) -> [u8; N] {
        let mut out = [0u8; N];
        for b in &mut out[..len.min(N)] {
            *b = b'0' + self.rng.random_range(0..10u8);
        }
        out
    }

    /// A zip code: 4 random digits and "11111".
    pub fn zip(&mut self) -> [u8; 9] {
        let mut z: [u8; 9] = self.nstring(4);
        z[4..].copy_from_slice(b"11111");
        z
    }

    /// A data string of `lo..=hi` characters, "ORIGINAL" at a random place
    /// in 10 % of them (items and stock, clause 4.3.3.1).
    pub fn data<const N: usize>(&mut self, lo: usize, hi: usize) -> [u8; N] {
        let mut d: [u8; N] = self.astring(lo, hi);
        if self.uniform(1, 10) == 1 {
            let len = d.iter().position(|&b| b == 0).unwrap_or(N);
            let at = self.rng.random_range(0..=len - 8);
            d[at..at + 8].copy_from_slice(b"ORIGINAL");
        }
        d
    }
}

/// The last name numbered `n` (0..=999): three syllables by its digits.
pub fn last_name(n: u32) -> [u8; 16] {
    const SYLLABLES: [&str; 10] = ["BAR", "OUGHT", "ABLE", "PRI", "PRES", "ESE", "ANTI", "CALLY", "ATION", "EING"];
    let mut out = [0u8; 16];
    let mut at = 0;
    for digit in [n / 100, n / 10 % 10, n % 10] {
        let s = SYLLABLES[digit as usize].as_bytes();
        out[at..at + s.len()].copy_from_slice(s);
        at += s.len();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_names_follow_the_syllables() {
        assert_eq!(&last_name(371)[..12], b"PRICALLYOUGH");
        assert_eq!(&last_name(0)[..9], b"BARBARBAR");
    }

    #[test]
    fn nurand_stays_in_range() {
        let mut r = Random::new(1, RUN);
        for _ in 0..10_000 {
            assert!((1..=3000).contains(&r.customer_id()));
            assert!((1..=100_000).contains(&r.item_id()));
        }
    }
}
