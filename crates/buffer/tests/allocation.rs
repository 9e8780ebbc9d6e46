//! Page allocation and freeing: freed ids are reused, and a freed page that
//! an optimistic reader with a stale pointer loaded again (a B-tree reader
//! racing a merge can do that) is reused as it is, not waited for forever.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, reason = "tests: a panic is a failure")]

mod common;

use common::memory_bm;

#[test]
fn a_freed_page_loaded_again_by_a_stale_reader_is_reused() {
    let (bm, _device) = memory_bm(1, 64);
    let page = {
        let mut g = bm.allocate().unwrap();
        g.page_mut().body_mut()[0] = 42;
        g.id()
    };
    bm.flush().unwrap();
    bm.free(bm.fix_exclusive(page).unwrap()).unwrap();
    assert!(!bm.page_state(page).unwrap().resident);
    // A reader following a stale pointer loads the freed page's old image.
    let stale = bm.optimistic(page).unwrap();
    assert!(bm.page_state(page).unwrap().resident);
    let resident_before = bm.stats().resident_bytes;
    // The next allocation takes the freed id, resident or not.
    let mut fresh = bm.allocate().unwrap();
    assert_eq!(fresh.id(), page);
    assert!(!stale.validate(), "the stale reader's view is invalid now");
    assert_eq!(fresh.page().body()[0], 0, "a fresh page is zeroed");
    fresh.page_mut().body_mut()[0] = 7;
    drop(fresh);
    assert_eq!(bm.stats().resident_bytes, resident_before, "no second frame for the same page");
    bm.check_invariants().unwrap();
}

#[test]
fn free_pages_frees_resident_and_evicted_pages_without_loading_any() {
    // A 1 MiB pool (256 frames) and 1,000 written pages: most are on the
    // device only when they are freed.
    let (bm, _device) = memory_bm(1, 64);
    let pages: Vec<_> = (0..1000u32)
        .map(|i| {
            let mut g = bm.allocate().unwrap();
            g.page_mut().body_mut()[..4].copy_from_slice(&i.to_le_bytes());
            g.id()
        })
        .collect();
    bm.flush().unwrap();
    let resident = pages.iter().filter(|&&p| bm.page_state(p).unwrap().resident).count();
    assert!(resident < 300, "{resident} of 1,000 pages resident");
    let faults = bm.stats().faults;
    bm.free_pages(&pages).unwrap();
    assert_eq!(bm.stats().faults, faults, "freeing loaded a page");
    assert_eq!(bm.stats().resident_bytes, 0, "every freed frame released");
    // Every id is reused, and a reused page starts zeroed.
    let mut again: Vec<_> = (0..1000)
        .map(|_| {
            let g = bm.allocate().unwrap();
            assert!(g.page().body().iter().all(|&b| b == 0));
            g.id()
        })
        .collect();
    again.sort_unstable();
    let mut expected = pages.clone();
    expected.sort_unstable();
    assert_eq!(again, expected);
    bm.check_invariants().unwrap();
}

#[test]
fn free_pages_names_a_bad_id() {
    let (bm, _device) = memory_bm(1, 64);
    let page = bm.allocate().unwrap().id();
    let beyond = snowfall_buffer::PageId(page.0 + 1000);
    assert!(
        matches!(bm.free_pages(&[page, beyond]), Err(snowfall_buffer::Error::PageNotAllocated { page, .. }) if page == beyond)
    );
    // The good page is unlatched again, still allocated.
    drop(bm.fix_exclusive(page).unwrap());
    bm.check_invariants().unwrap();
}
