//! The free list as a checkpoint stores it: a chain of trunk pages, each a
//! buffer-manager page (checksummed, naming its own id) of kind
//! [`RUN_TRUNK_KIND`] listing runs of consecutive free page ids.
//!
//! ```text
//! body: | next trunk u64 (0: last) | count u32 | zero u32 | runs: count x (start u64, pages u32) |
//! ```
//!
//! Runs rather than single ids: a run of free pages (a dropped tree's
//! pages allocated together, and extents of large values) takes 12 bytes
//! however long it is. Files of format 1 hold trunks of kind
//! [`TRUNK_KIND`] that list single ids (`count x u64`): they are still
//! read, and the next checkpoint writes runs.
//!
//! Trunk pages taken from the free pages are listed too (trunks taken from
//! past the allocation mark are not); either way, until a newer checkpoint
//! has replaced them, no allocation may hand them out (the database
//! withholds them from the buffer manager).

use alloc::vec::Vec;

use snowfall_buffer::{BODY_SIZE, Device, DeviceError, FreeSpace, Page, PageId};

use crate::error::Error;
use snowfall_wal::format::{put, u32_at, u64_at};

/// The page kind of a trunk page listing runs (in the buffer manager's header).
pub const RUN_TRUNK_KIND: u16 = 0xF2;
/// The page kind of a format-1 trunk page listing single ids (read only).
pub const TRUNK_KIND: u16 = 0xF1;
/// Runs one trunk page lists.
pub const RUNS_PER_TRUNK: usize = (BODY_SIZE - 16) / RUN_BYTES;
/// Ids one format-1 trunk page lists.
pub const IDS_PER_TRUNK: usize = (BODY_SIZE - 16) / 8;

const RUN_BYTES: usize = 12;

/// The runs of `free` as trunks store them: (start, pages), a run longer
/// than a `u32` counts split.
fn stored_runs(free: &FreeSpace) -> impl Iterator<Item = (u64, u32)> + '_ {
    free.runs().flat_map(|(start, pages)| {
        let max = u64::from(u32::MAX);
        (0..pages.div_ceil(max)).map(move |i| (start + i * max, (pages - i * max).min(max) as u32))
    })
}

/// Trunk pages needed to list `free`.
pub fn trunks_for(free: &FreeSpace) -> usize {
    stored_runs(free).count().div_ceil(RUNS_PER_TRUNK)
}

/// Writes `free` as runs into the chain of `trunks` (exactly
/// `trunks_for(free)` pages), stamped with LSN `lsn` (the checkpoint's
/// redo point: a trunk page may have been in use at the last checkpoint's
/// redo point, and if this checkpoint is cut short, redo from there must
/// skip the page's old changes, not apply them to the trunk); returns the
/// head's id (0 for an empty list). Not synced.
pub fn write(device: &dyn Device, trunks: &[PageId], free: &FreeSpace, lsn: u64) -> Result<u64, DeviceError> {
    let runs: Vec<(u64, u32)> = stored_runs(free).collect();
    let mut page = alloc::boxed::Box::new(Page::zeroed());
    for (i, (&trunk, chunk)) in trunks.iter().zip(runs.chunks(RUNS_PER_TRUNK)).enumerate() {
        page.init(trunk);
        page.set_kind(RUN_TRUNK_KIND);
        page.set_lsn(lsn);
        let next = trunks.get(i + 1).map_or(0, |p| p.0);
        let body = page.body_mut();
        put(body, 0, &next.to_le_bytes());
        put(body, 8, &(chunk.len() as u32).to_le_bytes());
        for (j, &(start, pages)) in chunk.iter().enumerate() {
            put(body, 16 + RUN_BYTES * j, &start.to_le_bytes());
            put(body, 16 + RUN_BYTES * j + 8, &pages.to_le_bytes());
        }
        page.seal();
        device.write_page(trunk, page.bytes())?;
    }
    Ok(trunks.first().map_or(0, |p| p.0))
}

/// Reads the chain from `head`, expecting `count` free pages in all, each
/// below `page_count`, none twice. Returns (the free pages, trunk ids).
pub fn read(device: &dyn Device, head: u64, count: u64, page_count: u64) -> Result<(FreeSpace, Vec<PageId>), Error> {
    let mut free = FreeSpace::default();
    let mut trunks = Vec::new();
    let mut next = head;
    let mut page = alloc::boxed::Box::new(Page::zeroed());
    while next != 0 {
        let trunk = PageId(next);
        let bad = |what| Error::FreeList { page: trunk, what };
        // Every trunk lists at least one id, so there are at most `count`.
        if trunk.0 >= page_count || trunks.len() as u64 >= count || trunks.contains(&trunk) {
            return Err(bad("the chain leaves the database or loops"));
        }
        device.read_page(trunk, page.bytes_mut()).map_err(|_| bad("the trunk page cannot be read"))?;
        page.verify(trunk).map_err(|_| bad("the trunk page fails its checksum"))?;
        let body = page.body();
        // The count and the zero field after it, read as one: both checked.
        let n = u64_at(body, 8) as usize;
        let in_database = |id: u64| (crate::superblock::SUPERBLOCK_PAGES..page_count).contains(&id);
        match page.kind() {
            RUN_TRUNK_KIND => {
                if n == 0 || n > RUNS_PER_TRUNK {
                    return Err(bad("a run count no trunk holds"));
                }
                for j in 0..n {
                    let start = u64_at(body, 16 + RUN_BYTES * j);
                    let pages = u64::from(u32_at(body, 16 + RUN_BYTES * j + 8));
                    let end = start.saturating_add(pages);
                    if pages == 0 || !in_database(start) || end > page_count {
                        return Err(bad("a listed run is empty or outside the database"));
                    }
                    if free.len() + pages > count {
                        return Err(bad("the list holds more pages than the superblock says"));
                    }
                    if !free.insert_run(start, pages) {
                        return Err(bad("a page is listed twice"));
                    }
                }
            }
            TRUNK_KIND => {
                if n == 0 || n > IDS_PER_TRUNK {
                    return Err(bad("an id count no trunk holds"));
                }
                if free.len() + n as u64 > count {
                    return Err(bad("the list holds more pages than the superblock says"));
                }
                for j in 0..n {
                    let id = u64_at(body, 16 + 8 * j);
                    if !in_database(id) {
                        return Err(bad("a listed page is outside the database"));
                    }
                    if !free.insert(PageId(id)) {
                        return Err(bad("a page is listed twice"));
                    }
                }
            }
            _ => return Err(bad("not a free-list page")),
        }
        trunks.push(trunk);
        next = u64_at(body, 0);
    }
    if free.len() != count {
        return Err(Error::FreeList {
            page: PageId(head),
            what: "the list holds a different number of pages than the superblock says",
        });
    }
    Ok((free, trunks))
}

#[cfg(test)]
mod tests {
    use super::*;
    use snowfall_buffer::device::MemoryDevice;

    const PAGES: u64 = 10_000;

    fn ids(ranges: &[(u64, u64)]) -> Vec<PageId> {
        ranges.iter().flat_map(|&(a, b)| (a..b).map(PageId)).collect()
    }

    fn space(ranges: &[(u64, u64)]) -> FreeSpace {
        FreeSpace::from_ids(&ids(ranges))
    }

    /// Writes `free` into trunks `first..` and returns (device, trunks, head).
    fn written(free: &FreeSpace, first: u64) -> (MemoryDevice, Vec<PageId>, u64) {
        let device = MemoryDevice::new(PAGES);
        let trunks: Vec<PageId> = (first..first + trunks_for(free) as u64).map(PageId).collect();
        let head = write(&device, &trunks, free, 5).unwrap();
        (device, trunks, head)
    }

    /// Rewrites trunk `page` after `edit` changes its body (resealed, so
    /// only the edit is wrong).
    fn edit(device: &MemoryDevice, page: PageId, edit: impl FnOnce(&mut Page)) {
        let mut p = alloc::boxed::Box::new(Page::zeroed());
        device.read_page(page, p.bytes_mut()).unwrap();
        edit(&mut p);
        p.seal();
        device.write_page(page, p.bytes()).unwrap();
    }

    fn error(r: Result<(FreeSpace, Vec<PageId>), Error>) -> (PageId, &'static str) {
        match r {
            Err(Error::FreeList { page, what }) => (page, what),
            other => panic!("not a free-list error: {other:?}"),
        }
    }

    #[test]
    fn a_run_takes_one_entry_however_long() {
        assert_eq!(trunks_for(&space(&[])), 0);
        assert_eq!(trunks_for(&space(&[(2, 1_000_002)])), 1);
        // Longer than a u32 counts: stored as two runs.
        let mut huge = FreeSpace::default();
        assert!(huge.insert_run(2, u64::from(u32::MAX) + 5));
        assert_eq!(stored_runs(&huge).collect::<Vec<_>>(), [(2, u32::MAX), (2 + u64::from(u32::MAX), 5)]);
    }

    #[test]
    fn a_list_round_trips_across_trunks() {
        // Every other page free: one run each, more runs than a trunk holds.
        let every_other: Vec<PageId> = (0..2 * RUNS_PER_TRUNK as u64 + 7).map(|i| PageId(100 + 2 * i)).collect();
        let free = FreeSpace::from_ids(&every_other);
        let (device, trunks, head) = written(&free, 9000);
        assert_eq!(trunks.len(), 3);
        assert_eq!(head, 9000);
        assert_eq!(read(&device, head, free.len(), PAGES).unwrap(), (free, trunks));
        // An empty list is no chain.
        assert_eq!(read(&device, 0, 0, PAGES).unwrap(), (FreeSpace::default(), Vec::new()));
    }

    #[test]
    fn a_format_1_list_of_single_ids_is_read() {
        let device = MemoryDevice::new(PAGES);
        let free = ids(&[(10, 600), (700, 705)]);
        let trunks = [PageId(50), PageId(51)];
        for (i, (&trunk, chunk)) in trunks.iter().zip(free.chunks(IDS_PER_TRUNK)).enumerate() {
            let mut page = alloc::boxed::Box::new(Page::zeroed());
            page.init(trunk);
            page.set_kind(TRUNK_KIND);
            let body = page.body_mut();
            let next = if i == 0 { 51u64 } else { 0 };
            put(body, 0, &next.to_le_bytes());
            put(body, 8, &(chunk.len() as u32).to_le_bytes());
            for (j, id) in chunk.iter().enumerate() {
                put(body, 16 + 8 * j, &id.0.to_le_bytes());
            }
            page.seal();
            device.write_page(trunk, page.bytes()).unwrap();
        }
        assert_eq!(read(&device, 50, free.len() as u64, PAGES).unwrap(), (FreeSpace::from_ids(&free), trunks.to_vec()));
    }

    #[test]
    fn every_kind_of_damage_is_an_error_naming_the_trunk() {
        let free = space(&[(10, 20), (30, 31), (40, 45)]);
        let count = free.len();
        /// A second trunk after the first, listing pages 40 and 41 again.
        fn second(device: &MemoryDevice) {
            write(device, &[PageId(8001)], &space(&[(40, 42)]), 5).unwrap();
            edit(device, PageId(8000), |p| put(p.body_mut(), 0, &8001u64.to_le_bytes()));
        }
        type Damage = fn(&MemoryDevice);
        let cases: [(&str, u64, Damage, &str); 12] = [
            ("kind", 8000, |d| edit(d, PageId(8000), |p| p.set_kind(0x10)), "not a free-list page"),
            ("zero runs", 8000, |d| edit(d, PageId(8000), |p| put(p.body_mut(), 8, &0u32.to_le_bytes())), "run count"),
            (
                "too many runs",
                8000,
                |d| edit(d, PageId(8000), |p| put(p.body_mut(), 8, &(RUNS_PER_TRUNK as u32 + 1).to_le_bytes())),
                "run count",
            ),
            (
                "nonzero after the count",
                8000,
                |d| edit(d, PageId(8000), |p| put(p.body_mut(), 12, &1u32.to_le_bytes())),
                "run count",
            ),
            ("empty run", 8000, |d| edit(d, PageId(8000), |p| put(p.body_mut(), 24, &0u32.to_le_bytes())), "empty"),
            (
                "run past the end",
                8000,
                |d| edit(d, PageId(8000), |p| put(p.body_mut(), 16, &(PAGES - 2).to_le_bytes())),
                "outside",
            ),
            (
                "run over the superblocks",
                8000,
                |d| edit(d, PageId(8000), |p| put(p.body_mut(), 16, &1u64.to_le_bytes())),
                "outside",
            ),
            (
                "longer run than counted",
                8000,
                |d| edit(d, PageId(8000), |p| put(p.body_mut(), 24, &500u32.to_le_bytes())),
                "more pages",
            ),
            ("a loop", 8000, |d| edit(d, PageId(8000), |p| put(p.body_mut(), 0, &8000u64.to_le_bytes())), "loops"),
            (
                "next past the end",
                PAGES,
                |d| edit(d, PageId(8000), |p| put(p.body_mut(), 0, &PAGES.to_le_bytes())),
                "leaves the database",
            ),
            (
                "checksum",
                8000,
                |d| {
                    let mut b = [0u8; snowfall_buffer::PAGE_SIZE];
                    d.read_page(PageId(8000), &mut b).unwrap();
                    b[100] ^= 1;
                    d.write_page(PageId(8000), &b).unwrap();
                },
                "checksum",
            ),
            ("more pages than counted in a second trunk", 8001, second, "more pages"),
        ];
        for (name, page, damage, what) in cases {
            let (device, _, head) = written(&free, 8000);
            damage(&device);
            let (at, said) = error(read(&device, head, count, PAGES));
            assert!(said.contains(what), "{name}: {said}");
            // Named: the trunk at fault, or the id a chain goes to wrongly.
            assert_eq!(at, PageId(page), "{name}");
        }
        // The count: fewer pages listed than the superblock says; a page
        // twice (in two trunks, the total right).
        let (device, _, head) = written(&free, 8000);
        assert!(error(read(&device, head, count + 1, PAGES)).1.contains("different number"));
        let (device, _, head) = written(&free, 8000);
        second(&device);
        assert!(error(read(&device, head, count + 2, PAGES)).1.contains("twice"));
    }
}
