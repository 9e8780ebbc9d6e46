//! Record framing inside the payload stream.
//!
//! ```text
//!  0          4          8      9
//!  +----------+----------+------+----------- ... --+
//!  | checksum |  length  | kind |  body (length)    |
//!  +----------+----------+------+----------- ... --+
//!    u32        u32        u8
//! ```
//!
//! checksum: the low 32 bits of XXH3-64 of bytes 4.. (length, kind, body),
//! so a record that spans blocks is checked once reassembled. The body's
//! meaning belongs to the layer above, by `kind`.

use alloc::vec::Vec;

use xxhash_rust::xxh3::xxh3_64;

use crate::format::{put, u32_at};

/// Bytes of a record's header.
pub const RECORD_HEADER: usize = 9;

/// Starts a record at the end of `out`; returns where it starts.
pub(crate) fn begin(out: &mut Vec<u8>, kind: u8) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0; RECORD_HEADER - 1]);
    out.push(kind);
    at
}

/// Completes the record started at `at` (its body is the rest of `out`).
pub(crate) fn finish(out: &mut [u8], at: usize) {
    let body = out.len() - at - RECORD_HEADER;
    put(out, at + 4, &(body as u32).to_le_bytes());
    let sum = out.get(at + 4..).map_or(0, xxh3_64) as u32;
    put(out, at, &sum.to_le_bytes());
}

/// A record's header as read: (checksum, body length, kind).
pub(crate) fn header(h: &[u8]) -> (u32, usize, u8) {
    (u32_at(h, 0), u32_at(h, 4) as usize, h.get(8).copied().unwrap_or(0))
}

/// Whether a reassembled record (header and body) matches its checksum.
pub(crate) fn verify(record: &[u8]) -> bool {
    let stored = u32_at(record, 0);
    record.get(4..).map_or(0, xxh3_64) as u32 == stored
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_framed_record_verifies_and_a_flip_is_caught() {
        let mut out = alloc::vec![1, 2, 3];
        let at = begin(&mut out, 7);
        out.extend_from_slice(b"hello");
        finish(&mut out, at);
        let rec = &out[at..];
        assert_eq!(header(rec), (u32_at(rec, 0), 5, 7));
        assert!(verify(rec));
        for i in 0..rec.len() {
            let mut bad = rec.to_vec();
            bad[i] ^= 0x40;
            assert!(!verify(&bad), "byte {i}");
        }
    }
}
