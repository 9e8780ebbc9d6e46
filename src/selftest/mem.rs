//! The binary's `memcpy` and `memmove` (snowfall-rt's, through the linker's
//! `--wrap`) against a byte-at-a-time reference: every length up to 300,
//! eight source and destination alignments, and overlaps both ways.

use alloc::format;
use core::hint::black_box;

use super::{Outcome, ensure};

/// A byte pattern that differs at every position.
fn pattern(buf: &mut [u8], seed: u8) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31).wrapping_add(seed);
    }
}

/// `memcpy` through `copy_from_slice` (a length unknown at compile time).
pub fn memcpy_matches_a_byte_loop() -> Outcome {
    let mut src = [0u8; 400];
    pattern(&mut src, 7);
    let mut cases = 0;
    for n in 0..=300 {
        for (s, d) in (0..8).flat_map(|s| (0..8).map(move |d| (s, d))) {
            let n = black_box(n);
            let (mut got, mut want) = ([0xEEu8; 400], [0xEEu8; 400]);
            got.get_mut(d..d + n).unwrap_or_default().copy_from_slice(src.get(s..s + n).unwrap_or_default());
            for i in 0..n {
                if let (Some(w), Some(&b)) = (want.get_mut(d + i), src.get(s + i)) {
                    *w = black_box(b);
                }
            }
            ensure(got == want, || format!("memcpy of {n} bytes from offset {s} to offset {d} differs"))?;
            cases += 1;
        }
    }
    Ok(format!("{cases} copies"))
}

/// `memmove` through `copy_within`, overlapping forwards and backwards.
pub fn memmove_matches_a_byte_loop() -> Outcome {
    let mut cases = 0;
    for n in 0..=300 {
        for (from, to) in [(0, 1), (1, 0), (0, 7), (7, 0), (3, 40), (40, 3), (0, 64), (64, 0), (5, 5)] {
            let n = black_box(n);
            let (mut got, mut want) = ([0u8; 400], [0u8; 400]);
            pattern(&mut got, 3);
            pattern(&mut want, 3);
            got.copy_within(from..from + n, to);
            let copy: alloc::vec::Vec<u8> =
                want.get(from..from + n).unwrap_or_default().iter().map(|&b| black_box(b)).collect();
            for (i, &b) in copy.iter().enumerate() {
                if let Some(w) = want.get_mut(to + i) {
                    *w = black_box(b);
                }
            }
            ensure(got == want, || format!("memmove of {n} bytes from offset {from} to offset {to} differs"))?;
            cases += 1;
        }
    }
    Ok(format!("{cases} moves"))
}
