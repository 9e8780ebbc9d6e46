//! Extent allocation: a released extent is reused only once its release is
//! durable, its batch (if any) committed, and no pinned reader is left that
//! could have read its reference; freed pages become extents only after a
//! checkpoint passed them; a checkpoint counts extents in flight as free.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, reason = "tests: a panic is a failure")]

mod common;

use common::memory_bm;
use snowfall_buffer::PageId;

#[test]
fn a_released_extent_waits_for_durability_and_for_pinned_readers() {
    let (bm, _device) = memory_bm(1, 64);
    bm.track_allocation();
    let a = bm.allocate_extent(4, 0).unwrap();
    // In flight (not referenced by the log yet): a checkpoint counts it free.
    assert!((a..a + 4).all(|p| bm.allocation().1.contains(PageId(p))));
    bm.logged_extents(&[(a, 4)], &[], 10, 0);
    assert!(!bm.allocation().1.contains(PageId(a)));
    // A reader pins, then the value is released at log position 20.
    let pin = bm.pin_extents();
    bm.logged_extents(&[], &[(a, 4)], 20, 0);
    // Not durable yet, then durable but pinned: a new extent elsewhere.
    let b = bm.allocate_extent(4, 20).unwrap();
    assert_ne!(b, a);
    let c = bm.allocate_extent(4, 21).unwrap();
    assert!(c != a && c != b);
    drop(pin);
    // Durable and unpinned: reused.
    assert_eq!(bm.allocate_extent(4, 21).unwrap(), a);
}

#[test]
fn a_batch_releases_its_extents_at_its_commit() {
    let (bm, _device) = memory_bm(1, 64);
    bm.track_allocation();
    let a = bm.allocate_extent(2, 0).unwrap();
    bm.logged_extents(&[(a, 2)], &[], 5, 0);
    bm.logged_extents(&[], &[(a, 2)], 6, 77);
    assert_ne!(bm.allocate_extent(2, 1000).unwrap(), a, "the batch has not committed");
    bm.batch_committed(77, 50);
    assert_ne!(bm.allocate_extent(2, 50).unwrap(), a, "its commit is not durable");
    assert_eq!(bm.allocate_extent(2, 51).unwrap(), a);
}

#[test]
fn freed_pages_become_extents_only_after_a_checkpoint_passed_them() {
    let (bm, _device) = memory_bm(1, 64);
    let pages: Vec<PageId> = (0..8).map(|_| bm.allocate().unwrap().id()).collect();
    bm.free_pages(&pages).unwrap();
    // Young: an extent comes from new pages, a page from the young ones.
    let e = bm.allocate_extent(8, 0).unwrap();
    assert!(e > pages[7].0, "extent at {e}");
    let p = bm.allocate().unwrap().id();
    assert!(pages.contains(&p));
    bm.free_pages(&[p]).unwrap();
    // A checkpoint whose redo point is past them was installed.
    bm.release_young(u64::MAX);
    assert_eq!(bm.allocate_extent(8, 0).unwrap(), pages[0].0);
}
