//! Little-endian fields in the database's own page formats (superblock,
//! free-list trunks, double-write directories): out-of-range reads give
//! zero and out-of-range writes do nothing, so a malformed page is caught
//! by the format's checks, never by a panic.

/// Writes `v` at `at` of `b` (nothing if it does not fit).
pub(crate) fn put(b: &mut [u8], at: usize, v: &[u8]) {
    if let Some(dst) = b.get_mut(at..at + v.len()) {
        dst.copy_from_slice(v);
    }
}

/// The little-endian `u32` at `at` (0 past the end).
pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(b.get(at..at + 4).unwrap_or(&[0; 4]));
    u32::from_le_bytes(x)
}

/// The little-endian `u64` at `at` (0 past the end).
pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(b.get(at..at + 8).unwrap_or(&[0; 8]));
    u64::from_le_bytes(x)
}
