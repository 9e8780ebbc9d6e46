//! Cached extents: loaded with one read and checked once, read in place,
//! evicted as a unit by the clock, dropped before their pages are reused,
//! and never loaded over by a stale reader of one of their pages.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, reason = "tests: a panic is a failure")]

mod common;

use common::{BACKENDS, memory_bm_with};
use snowfall_buffer::memory::MemoryKind;
use snowfall_buffer::{BufferManager, Error, PAGE_SIZE, PageId};

/// The byte at `offset` of extent `tag`'s contents.
fn byte(tag: u64, offset: usize) -> u8 {
    (tag.wrapping_mul(131) as usize + offset / 7) as u8
}

/// Allocates an extent of `pages`, references it, and writes its contents
/// straight to the device (as the database writes a large value).
fn stored_extent(bm: &BufferManager, pages: u64, tag: u64) -> PageId {
    let start = bm.allocate_extent(pages, 0).unwrap();
    bm.logged_extents(&[(start, pages)], &[], 1, 0);
    let bytes: Vec<[u8; PAGE_SIZE]> =
        (0..pages as usize).map(|p| core::array::from_fn(|i| byte(tag, p * PAGE_SIZE + i))).collect();
    let refs: Vec<&[u8; PAGE_SIZE]> = bytes.iter().collect();
    bm.device().write_pages(PageId(start), &refs).map_err(|(_, e)| e).unwrap();
    PageId(start)
}

fn holds(tag: u64) -> impl Fn(&[u8]) -> bool {
    move |bytes| bytes.iter().enumerate().all(|(i, &b)| b == byte(tag, i))
}

#[test]
fn an_extent_is_loaded_once_read_in_place_and_evicted_as_a_unit() {
    for kind in BACKENDS {
        let (bm, _device) = memory_bm_with(kind, 1, 64);
        let head = stored_extent(&bm, 8, 3);
        let faults = bm.stats().faults;
        let extent = bm.fix_extent(head, 8, holds(3)).unwrap().expect("small enough to cache");
        assert_eq!(extent.bytes().len(), 8 * PAGE_SIZE);
        assert!(holds(3)(extent.bytes()));
        assert_eq!(
            (bm.stats().resident_bytes, bm.stats().extent_bytes, bm.stats().faults - faults),
            (8 * PAGE_SIZE as u64, 8 * PAGE_SIZE as u64, 8),
            "{kind:?}: all its frames, one load"
        );
        // A second reader shares it; nothing is read again.
        let again = bm.fix_extent(head, 8, |_| panic!("checked again")).unwrap().unwrap();
        assert_eq!(again.bytes().as_ptr(), extent.bytes().as_ptr());
        drop((extent, again));
        assert_eq!(bm.stats().faults - faults, 8);
        bm.check_invariants().unwrap();
        // A stale reader of a member is refused: its memory is the extent's.
        let member = PageId(head.0 + 5);
        assert_eq!(bm.fix_shared(member).err(), Some(Error::InExtent { page: member, head }));
        assert!(holds(3)(bm.fix_extent(head, 8, holds(3)).unwrap().unwrap().bytes()));
        // The clock evicts it whole.
        bm.evict_until(0).unwrap();
        assert_eq!((bm.stats().resident_bytes, bm.stats().extent_bytes), (0, 0), "{kind:?}");
        bm.check_invariants().unwrap();
        assert!(matches!(bm.fix_shared(member), Err(Error::Checksum { .. })), "raw bytes are no page");
        assert!(holds(3)(bm.fix_extent(head, 8, holds(3)).unwrap().unwrap().bytes()));
        bm.check_invariants().unwrap();
    }
}

#[test]
fn a_damaged_extent_is_an_error_and_leaves_nothing_behind() {
    let (bm, device) = memory_bm_with(MemoryKind::Madvise, 1, 64);
    let head = stored_extent(&bm, 4, 9);
    assert!(device.corrupt(PageId(head.0 + 2), 100, 0x01));
    assert_eq!(bm.fix_extent(head, 4, holds(9)).err(), Some(Error::CorruptExtent { page: head, pages: 4 }));
    assert_eq!(bm.stats().resident_bytes, 0);
    bm.check_invariants().unwrap();
    // Nothing of it stays latched: its pages load (and fail) as any page.
    assert!(matches!(bm.fix_shared(PageId(head.0 + 1)), Err(Error::Checksum { .. })));
    // An extent past the allocated pages is damage too, not a load.
    let end = bm.allocated_pages();
    assert_eq!(
        bm.fix_extent(PageId(end - 1), 4, |_| true).err(),
        Some(Error::CorruptExtent { page: PageId(end - 1), pages: 4 })
    );
}

#[test]
fn extents_over_an_eighth_of_the_pool_are_not_cached() {
    let (bm, _device) = memory_bm_with(MemoryKind::Madvise, 1, 64);
    assert_eq!(bm.extent_cache_limit(), 32);
    let big = stored_extent(&bm, 33, 1);
    assert!(bm.fix_extent(big, 33, |_| true).unwrap().is_none());
    let fits = stored_extent(&bm, 32, 2);
    assert!(bm.fix_extent(fits, 32, holds(2)).unwrap().is_some());
}

#[test]
fn a_released_extent_loses_its_cached_copy_before_its_pages_are_reused() {
    let (bm, _device) = memory_bm_with(MemoryKind::Madvise, 1, 64);
    bm.track_allocation();
    let head = stored_extent(&bm, 8, 4);
    {
        let _pin = bm.pin_extents();
        assert!(bm.fix_extent(head, 8, holds(4)).unwrap().is_some());
    }
    assert_eq!(bm.stats().resident_bytes, 8 * PAGE_SIZE as u64);
    bm.logged_extents(&[], &[(head.0, 8)], 20, 0);
    // Reused (durable, no pin left): the cached copy went first.
    assert_eq!(bm.allocate_extent(3, 21).unwrap(), head.0);
    assert_eq!(bm.stats().resident_bytes, 0);
    bm.check_invariants().unwrap();
    // Its pages are pages again: a new value's extent there caches anew.
    bm.logged_extents(&[(head.0, 3)], &[], 22, 0);
    let bytes = [[byte(5, 0); PAGE_SIZE]; 3];
    let refs: Vec<&[u8; PAGE_SIZE]> = bytes.iter().collect();
    bm.device().write_pages(head, &refs).map_err(|(_, e)| e).unwrap();
    let extent = bm.fix_extent(head, 3, |b| b.iter().all(|&x| x == byte(5, 0))).unwrap().unwrap();
    assert_eq!(extent.bytes().len(), 3 * PAGE_SIZE);
}

#[test]
fn readers_stale_readers_and_the_clock_share_cached_extents() {
    for kind in BACKENDS {
        // 256 frames, extents of up to 32 pages: 24 of them (about 600
        // pages) keep the clock busy.
        let (bm, _device) = memory_bm_with(kind, 1, 64);
        let extents: Vec<(PageId, u64)> =
            (0..24u64).map(|i| (stored_extent(&bm, 1 + (i * 7) % 32, i), 1 + (i * 7) % 32)).collect();
        std::thread::scope(|s| {
            for t in 0..3u64 {
                let (bm, extents) = (&bm, &extents);
                s.spawn(move || {
                    let mut x = t + 1;
                    for _ in 0..3_000 {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let i = (x % extents.len() as u64) as usize;
                        let (head, pages) = extents[i];
                        if t == 2 {
                            // A stale reader: any page of any extent, as a page.
                            // A cached head is resident (its reader's parent
                            // fails validation); anything else is refused or
                            // fails its checksum, and disturbs no extent.
                            let page = PageId(head.0 + (x >> 20) % pages);
                            let fixed = bm.fix_shared(page);
                            assert!(page == head || fixed.is_err(), "{page} holds raw bytes");
                        } else if let Some(extent) = bm.fix_extent(head, pages, holds(i as u64)).unwrap() {
                            assert!(holds(i as u64)(extent.bytes()), "{kind:?}: extent {i} changed under its reader");
                        }
                        // else: a page of it was held, for a moment, by the
                        // stale reader's load (refused as documented).
                    }
                });
            }
        });
        bm.check_invariants().unwrap();
        assert!(bm.stats().resident_bytes <= 256 * PAGE_SIZE as u64);
        // With the stale reader gone, every extent caches and reads whole.
        for (i, &(head, pages)) in extents.iter().enumerate() {
            let extent = bm.fix_extent(head, pages, holds(i as u64)).unwrap();
            assert!(extent.is_some_and(|e| holds(i as u64)(e.bytes())), "{kind:?}: extent {i} after the readers");
        }
    }
}

#[test]
fn a_new_extent_is_written_from_its_frames_and_stays_cached() {
    for kind in BACKENDS {
        let (bm, device) = memory_bm_with(kind, 1, 64);
        bm.track_allocation();
        let start = bm.allocate_extent(5, 0).unwrap();
        let mut frames = bm.new_extent(PageId(start), 5).unwrap().expect("small enough to cache");
        for (i, b) in frames.bytes_mut().iter_mut().enumerate() {
            *b = byte(7, i);
        }
        frames.write_through().unwrap();
        frames.cache();
        bm.check_invariants().unwrap();
        // Cached: read without a load; and the device holds it too.
        let faults = bm.stats().faults;
        assert!(holds(7)(bm.fix_extent(PageId(start), 5, |_| panic!("loaded again")).unwrap().unwrap().bytes()));
        assert_eq!(bm.stats().faults, faults);
        let mut page = [0u8; PAGE_SIZE];
        snowfall_buffer::Device::read_page(&*device, PageId(start + 4), &mut page).unwrap();
        assert!(page.iter().enumerate().all(|(i, &b)| b == byte(7, 4 * PAGE_SIZE + i)), "{kind:?}");
        // Abandoned (its reference never logged): uncached, and reusable.
        bm.abandon_extent(start, 5);
        assert_eq!(bm.stats().resident_bytes, 0, "{kind:?}");
        bm.check_invariants().unwrap();
        assert_eq!(bm.allocate_extent(5, 0).unwrap(), start);
    }
}

#[test]
fn a_new_extent_dropped_before_it_is_cached_leaves_nothing_behind() {
    let (bm, _device) = memory_bm_with(MemoryKind::Madvise, 1, 64);
    let start = bm.allocate_extent(3, 0).unwrap();
    let frames = bm.new_extent(PageId(start), 3).unwrap().unwrap();
    // Dropped unwritten: its frames are released, nothing is cached.
    drop(frames);
    assert_eq!(bm.stats().resident_bytes, 0);
    bm.check_invariants().unwrap();
    assert!(bm.fix_shared(PageId(start + 1)).is_err());
    // Too large to cache: written without the pool.
    let big = bm.allocate_extent(33, 0).unwrap();
    assert!(bm.new_extent(PageId(big), 33).unwrap().is_none());
}

/// A read that misses while the pool is full loads the extent only on its
/// second miss (`admission.rs`); with room, or once cached, at once.
#[test]
fn a_full_pool_admits_an_extent_on_its_second_miss() {
    let (bm, _device) = memory_bm_with(MemoryKind::Madvise, 1, 64);
    let pool = bm.config().pool_pages();
    let heads: Vec<PageId> = (0..pool / 32).map(|t| stored_extent(&bm, 32, t)).collect();
    for (t, &head) in heads.iter().enumerate() {
        let cached = bm.fix_extent_admitted(head, 32, holds(t as u64)).unwrap();
        assert!(cached.is_some(), "room in the pool: loaded at once");
    }
    assert_eq!(bm.stats().extent_bytes, pool * PAGE_SIZE as u64, "the pool is full of extents");
    let late = stored_extent(&bm, 32, 99);
    let faults = bm.stats().faults;
    assert!(bm.fix_extent_admitted(late, 32, holds(99)).unwrap().is_none(), "first miss: read past the pool");
    assert_eq!(bm.stats().faults, faults, "nothing loaded, nothing evicted");
    let again = bm.fix_extent_admitted(late, 32, holds(99)).unwrap().expect("second miss: admitted");
    assert!(holds(99)(again.bytes()));
    drop(again);
    assert!(bm.fix_extent_admitted(late, 32, |_| panic!("cached: not read again")).unwrap().is_some());
    bm.check_invariants().unwrap();
}
