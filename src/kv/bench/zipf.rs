//! YCSB's scrambled Zipfian key chooser (Gray et al., "Quickly Generating
//! Billion-Record Synthetic Databases", SIGMOD 1994, as YCSB's
//! `ScrambledZipfianGenerator` uses it): item `i` of `n` is drawn with
//! probability proportional to `1 / (i + 1)^theta`, and the popular items
//! are scattered over the key space by a hash (so they do not share
//! leaves).

/// YCSB's constant.
pub(super) const THETA: f64 = 0.99;

pub(super) struct Zipf {
    n: u64,
    zetan: f64,
    alpha: f64,
    eta: f64,
    half_pow_theta: f64,
}

fn zeta(n: u64, theta: f64) -> f64 {
    (1..=n).map(|i| 1.0 / libm::pow(i as f64, theta)).sum()
}

impl Zipf {
    /// Over `0..n` (`n` at least 1). Takes O(n) to set up (the zeta sum).
    pub(super) fn new(n: u64) -> Zipf {
        let n = n.max(1);
        let zetan = zeta(n, THETA);
        let zeta2 = zeta(2, THETA);
        let eta = (1.0 - libm::pow(2.0 / n as f64, 1.0 - THETA)) / (1.0 - zeta2 / zetan);
        Zipf { n, zetan, alpha: 1.0 / (1.0 - THETA), eta, half_pow_theta: libm::pow(0.5, THETA) }
    }

    /// The item for 64 random bits `r`, scrambled.
    pub(super) fn pick(&self, r: u64) -> u64 {
        let u = (r >> 11) as f64 / (1u64 << 53) as f64;
        let uz = u * self.zetan;
        let rank = if uz < 1.0 {
            0
        } else if uz < 1.0 + self.half_pow_theta {
            1
        } else {
            (self.n as f64 * libm::pow(self.eta * u - self.eta + 1.0, self.alpha)) as u64
        };
        fnv1a(rank.min(self.n - 1)) % self.n
    }
}

/// FNV-1a of the 8 bytes of `x` (YCSB scrambles with FNV too).
fn fnv1a(x: u64) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for b in x.to_le_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}
