//! Pages written, evicted and loaded again come back byte for byte, header
//! included, through the memory device and through a real file (O_DIRECT).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, reason = "tests: a panic is a failure")]

mod common;

use common::{TempFile, config, memory_bm};
use snowfall_buffer::scenario::fill_body;
use snowfall_buffer::{BufferManager, PAGE_SIZE, PageId};

/// Writes 3 pools' worth of pages, so most are evicted while writing, then
/// reads every page back and compares all 4096 bytes with what was written.
fn round_trip(bm: &BufferManager) {
    let pool_pages = bm.config().pool_pages();
    let mut written = Vec::new();
    for i in 0..3 * pool_pages {
        let mut g = bm.allocate().unwrap();
        let id = g.id();
        let page = g.page_mut();
        fill_body(page.body_mut(), id, i);
        page.set_lsn(1000 + i);
        page.set_kind((i % 7) as u16);
        written.push((id, *page.bytes()));
    }
    let stats = bm.stats();
    assert!(stats.evictions >= pool_pages && stats.write_backs >= pool_pages, "{stats:?}");
    for (id, bytes) in &written {
        let g = bm.fix_shared(*id).unwrap();
        // The stored checksum field differs (it is sealed on write); all else is equal.
        assert_eq!(&g.page().bytes()[8..], &bytes[8..], "{id} changed on its way through the device");
    }
    assert!(bm.stats().faults >= 2 * pool_pages);
    bm.check_invariants().unwrap();
}

#[test]
fn pages_survive_eviction_through_the_memory_device() {
    let (bm, _device) = memory_bm(1, 64);
    round_trip(&bm);
}

#[test]
fn pages_survive_eviction_through_a_file_with_direct_io() {
    let file = TempFile::new("write-back");
    let device = file.open();
    assert!(device.is_direct(), "the test directory's file system refused O_DIRECT");
    let bm = BufferManager::open(config(1, 64), Box::new(device)).unwrap();
    round_trip(&bm);
    bm.flush().unwrap();
    let len = std::fs::metadata(&file.0).unwrap().len();
    assert_eq!(len, bm.allocated_pages() * PAGE_SIZE as u64);
}

#[test]
fn a_reopened_file_serves_the_pages_written_before() {
    let file = TempFile::new("reopen");
    let ids: Vec<PageId> = {
        let bm = BufferManager::open(config(1, 64), Box::new(file.open())).unwrap();
        let ids = (0..300)
            .map(|i| {
                let mut g = bm.allocate().unwrap();
                let id = g.id();
                fill_body(g.page_mut().body_mut(), id, i);
                id
            })
            .collect();
        bm.flush().unwrap();
        ids
    };
    let bm = BufferManager::open(config(1, 64), Box::new(file.open())).unwrap();
    assert_eq!(bm.allocated_pages(), 300);
    for (i, id) in ids.into_iter().enumerate() {
        let g = bm.fix_shared(id).unwrap();
        assert_eq!(snowfall_buffer::scenario::check_body(g.page().body(), id), Ok(i as u64));
    }
}
