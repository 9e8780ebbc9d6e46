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
