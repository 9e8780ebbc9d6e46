//! The free list as a checkpoint stores it: a chain of trunk pages, each a
//! buffer-manager page (checksummed, naming its own id) of kind
//! [`TRUNK_KIND`] listing free page ids.
//!
//! ```text
//! body: | next trunk u64 (0: last) | count u32 | zero u32 | ids: count x u64 |
//! ```
//!
//! Trunk pages taken from the free pages are listed too (trunks taken from
//! past the allocation mark are not); either way, until a newer checkpoint
//! has replaced them, no allocation may hand them out (the database
//! withholds them from the buffer manager).

use alloc::vec::Vec;

use snowfall_buffer::{BODY_SIZE, Device, DeviceError, Page, PageId};

use crate::error::Error;
use snowfall_wal::format::{put, u64_at};

/// The page kind of a trunk page (in the buffer manager's header).
pub const TRUNK_KIND: u16 = 0xF1;
/// Ids one trunk page lists.
pub const IDS_PER_TRUNK: usize = (BODY_SIZE - 16) / 8;

/// Trunk pages needed to list `ids` ids.
pub fn trunks_for(ids: usize) -> usize {
    ids.div_ceil(IDS_PER_TRUNK)
}

/// Writes `ids` into the chain of `trunks` (exactly `trunks_for(ids.len())`
/// pages), stamped with LSN `lsn` (the checkpoint's redo point: a trunk
/// page may have been in use at the last checkpoint's redo point, and if
/// this checkpoint is cut short, redo from there must skip the page's old
/// changes, not apply them to the trunk); returns the head's id (0 for an
/// empty list). Not synced.
pub fn write(device: &dyn Device, trunks: &[PageId], ids: &[PageId], lsn: u64) -> Result<u64, DeviceError> {
    let mut page = alloc::boxed::Box::new(Page::zeroed());
    for (i, (&trunk, chunk)) in trunks.iter().zip(ids.chunks(IDS_PER_TRUNK)).enumerate() {
        page.init(trunk);
        page.set_kind(TRUNK_KIND);
        page.set_lsn(lsn);
        let next = trunks.get(i + 1).map_or(0, |p| p.0);
        let body = page.body_mut();
        put(body, 0, &next.to_le_bytes());
        put(body, 8, &(chunk.len() as u32).to_le_bytes());
        for (j, id) in chunk.iter().enumerate() {
            put(body, 16 + 8 * j, &id.0.to_le_bytes());
        }
        page.seal();
        device.write_page(trunk, page.bytes())?;
    }
    Ok(trunks.first().map_or(0, |p| p.0))
}

/// Reads the chain from `head`, expecting `count` ids, all below
/// `page_count`. Returns (free ids, trunk ids).
pub fn read(device: &dyn Device, head: u64, count: u64, page_count: u64) -> Result<(Vec<PageId>, Vec<PageId>), Error> {
    let mut ids = Vec::new();
    let mut trunks = Vec::new();
    let mut next = head;
    let mut page = alloc::boxed::Box::new(Page::zeroed());
    while next != 0 {
        let trunk = PageId(next);
        let bad = |what| Error::FreeList { page: trunk, what };
        if trunk.0 >= page_count || trunks.len() as u64 > count / IDS_PER_TRUNK as u64 + 1 {
            return Err(bad("the chain leaves the database or loops"));
        }
        device.read_page(trunk, page.bytes_mut()).map_err(|_| bad("the trunk page cannot be read"))?;
        page.verify(trunk).map_err(|_| bad("the trunk page fails its checksum"))?;
        if page.kind() != TRUNK_KIND {
            return Err(bad("not a free-list page"));
        }
        let body = page.body();
        // The count and the zero field after it, read as one: both checked.
        let n = u64_at(body, 8) as usize;
        if n > IDS_PER_TRUNK {
            return Err(bad("more ids than a trunk holds"));
        }
        for j in 0..n {
            let id = u64_at(body, 16 + 8 * j);
            if id >= page_count || id < crate::superblock::SUPERBLOCK_PAGES {
                return Err(bad("a listed page is outside the database"));
            }
            ids.push(PageId(id));
        }
        trunks.push(trunk);
        next = u64_at(body, 0);
    }
    if ids.len() as u64 != count {
        return Err(Error::FreeList {
            page: PageId(head),
            what: "the list holds a different number of pages than the superblock says",
        });
    }
    Ok((ids, trunks))
}
