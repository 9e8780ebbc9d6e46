//! Node bytes for the layout crate's readers: a page body under a latch is
//! a plain slice; an optimistic page is read through the buffer manager's
//! [`PageView`] (assembly copies, fault-guarded with exmap), adapted here.

use snowfall_buffer::{BODY_SIZE, PageView};
use snowfall_node::{Bytes, Torn};

/// An optimistically read node body.
pub(crate) struct View<'a>(pub(crate) PageView<'a>);

impl Bytes for View<'_> {
    #[inline]
    fn len(&self) -> usize {
        BODY_SIZE
    }

    #[inline]
    fn read(&self, at: usize, out: &mut [u8]) -> Result<(), Torn> {
        self.0.read(at, out).map_err(|_| Torn)
    }

    #[inline]
    fn u32_at(&self, at: usize) -> Result<u32, Torn> {
        self.0.u32_at(at).map_err(|_| Torn)
    }

    #[inline]
    fn u64_at(&self, at: usize) -> Result<u64, Torn> {
        self.0.u64_at(at).map_err(|_| Torn)
    }
}
