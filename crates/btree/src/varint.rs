//! Unsigned LEB128 for log records: seven bits a byte, low bits first, the
//! high bit set on every byte but the last. Lengths, counts, indexes and
//! the page ids of files below 2 M pages take 1-3 bytes instead of a fixed
//! 2 or 8, which is most of a small write's record.

use alloc::vec::Vec;

/// Bytes of the longest encoding (a `u64` needs ten groups of seven bits).
pub(crate) const MAX_BYTES: usize = 10;

/// Appends `v`.
pub(crate) fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Decodes the number at the start of `b`: `(value, bytes read)`. `None`
/// if `b` ends first, the encoding is longer than [`MAX_BYTES`], overflows a
/// `u64`, or is not the shortest (a final zero group), so every number has
/// exactly one encoding.
pub(crate) fn get(b: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for (i, &byte) in b.iter().take(MAX_BYTES).enumerate() {
        let group = u64::from(byte & 0x7F);
        let shift = 7 * i as u32;
        if shift == 63 && group > 1 {
            return None;
        }
        v |= group << shift;
        if byte & 0x80 == 0 {
            return (i == 0 || byte != 0).then_some((v, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_sizes() {
        for v in [0, 1, 127, 128, 300, 16_383, 16_384, u64::from(u32::MAX), u64::MAX - 1, u64::MAX] {
            let mut out = Vec::new();
            put(&mut out, v);
            assert_eq!(get(&out), Some((v, out.len())), "{v}");
            out.push(0xAA);
            assert_eq!(get(&out), Some((v, out.len() - 1)), "trailing bytes are not read: {v}");
        }
    }

    #[test]
    fn refuses_short_overlong_overflowing_and_padded() {
        assert_eq!(get(&[]), None);
        assert_eq!(get(&[0x80]), None, "ends inside a number");
        assert_eq!(get(&[0x80; 11]), None, "longer than ten bytes");
        let mut over = [0xFF; 10];
        over[9] = 0x02;
        assert_eq!(get(&over), None, "above u64::MAX");
        assert_eq!(get(&[0x81, 0x00]), None, "a final zero group is not the shortest");
        assert_eq!(get(&[0x00]), Some((0, 1)));
    }
}
