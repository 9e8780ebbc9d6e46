//! How node bytes are read: [`Bytes`].
//!
//! Readers that hold a latch read plain slices. Optimistic readers race
//! with writers, so their bytes come through an implementation that is not
//! a data race in Rust's model (the buffer manager's assembly copies; in
//! tests, [`AtomicBytes`]) and may be garbage: every accessor is
//! bounds-checked and fails with [`Torn`] instead of reading out of bounds,
//! and every loop over node contents is bounded by the node's size. The
//! result of an optimistic read is used only after validation.

use core::sync::atomic::{AtomicU8, Ordering};

/// The bytes read made no sense (out of bounds, impossible values): the
/// node changed under an optimistic reader, or is corrupt. Not an error by
/// itself: the reader validates and restarts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Torn;

/// Read access to a node's bytes.
pub trait Bytes {
    /// The node's size in bytes.
    fn len(&self) -> usize;

    /// Whether the node has no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies `out.len()` bytes at `at`; [`Torn`] if they are not all inside.
    fn read(&self, at: usize, out: &mut [u8]) -> Result<(), Torn>;

    /// The byte at `at`.
    #[inline]
    fn u8_at(&self, at: usize) -> Result<u8, Torn> {
        let mut b = [0; 1];
        self.read(at, &mut b)?;
        Ok(b[0])
    }

    /// The little-endian u16 at `at`.
    #[inline]
    fn u16_at(&self, at: usize) -> Result<u16, Torn> {
        let mut b = [0; 2];
        self.read(at, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }

    /// The little-endian u32 at `at`.
    #[inline]
    fn u32_at(&self, at: usize) -> Result<u32, Torn> {
        let mut b = [0; 4];
        self.read(at, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// The little-endian u64 at `at`.
    #[inline]
    fn u64_at(&self, at: usize) -> Result<u64, Torn> {
        let mut b = [0; 8];
        self.read(at, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }
}

impl Bytes for [u8] {
    #[inline]
    fn len(&self) -> usize {
        <[u8]>::len(self)
    }

    #[inline]
    fn read(&self, at: usize, out: &mut [u8]) -> Result<(), Torn> {
        let src = at.checked_add(out.len()).and_then(|end| self.get(at..end)).ok_or(Torn)?;
        out.copy_from_slice(src);
        Ok(())
    }
}

/// Node bytes in atomics: a reader and a writer may race on them without a
/// data race in Rust's model (what Miri checks). Used by tests to race an
/// optimistic reader against a writer.
#[derive(Clone, Copy, Debug)]
pub struct AtomicBytes<'a>(pub &'a [AtomicU8]);

impl AtomicBytes<'_> {
    /// Stores `src` at `at` byte by byte (Relaxed; the caller's version
    /// protocol orders it).
    pub fn store(&self, at: usize, src: &[u8]) {
        for (cell, &b) in self.0.iter().skip(at).zip(src) {
            cell.store(b, Ordering::Relaxed);
        }
    }
}

impl Bytes for AtomicBytes<'_> {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn read(&self, at: usize, out: &mut [u8]) -> Result<(), Torn> {
        let src = at.checked_add(out.len()).and_then(|end| self.0.get(at..end)).ok_or(Torn)?;
        for (o, cell) in out.iter_mut().zip(src) {
            *o = cell.load(Ordering::Relaxed);
        }
        Ok(())
    }
}
