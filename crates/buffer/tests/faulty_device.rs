//! Every injected device failure surfaces as the exact typed error, leaves
//! the page in the documented state, and loses nothing: re-read data equals
//! the last durable image.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, reason = "tests: a panic is a failure")]

mod common;

use std::sync::Arc;

use common::config;
use rustix::io::Errno;
use snowfall_buffer::device::{FaultyDevice, Injected, MemoryDevice, Rule};
use snowfall_buffer::{
    BufferManager, Device, DeviceError, Error, IoOp, PAGE_SIZE, Page, PageId, PageState, WriteBackHook,
};

type Faulty = Arc<FaultyDevice<MemoryDevice>>;

fn faulty() -> Faulty {
    Arc::new(FaultyDevice::new(MemoryDevice::new(1 << 14)))
}

fn open(device: &Faulty) -> BufferManager {
    BufferManager::open(config(1, 64), Box::new(device.clone())).unwrap()
}

/// Allocates a page holding `byte` in its whole body.
fn page_with(bm: &BufferManager, byte: u8) -> PageId {
    let mut g = bm.allocate().unwrap();
    g.page_mut().body_mut().fill(byte);
    g.id()
}

fn set(bm: &BufferManager, page: PageId, byte: u8) {
    bm.fix_exclusive(page).unwrap().page_mut().body_mut().fill(byte);
}

fn body_byte(bm: &BufferManager, page: PageId) -> u8 {
    let g = bm.fix_shared(page).unwrap();
    let body = g.page().body();
    assert!(body.iter().all(|&b| b == body[0]), "{page} is torn");
    body[0]
}

fn rule(op: IoOp, page: PageId, fault: Injected) -> Rule {
    Rule { op, page: Some(page), fault, times: 1 }
}

fn state(bm: &BufferManager, page: PageId) -> PageState {
    bm.page_state(page).unwrap()
}

#[test]
fn a_failed_read_leaves_the_page_evicted_and_a_retry_succeeds() {
    let device = faulty();
    let bm = open(&device);
    let page = page_with(&bm, 7);
    bm.flush().unwrap();
    bm.evict_until(0).unwrap();
    assert!(!state(&bm, page).resident);

    device.inject(rule(IoOp::Read, page, Injected::Errno(Errno::IO)));
    let err = bm.fix_shared(page).map(|_| ()).unwrap_err();
    assert_eq!(
        err,
        Error::Read { page, source: DeviceError::Os { op: IoOp::Read, offset: page.offset(), errno: Errno::IO } }
    );
    assert!(!state(&bm, page).resident, "a failed load leaves the page evicted");
    assert_eq!(bm.stats().resident_bytes, 0, "and gives its frame back");

    device.inject(rule(IoOp::Read, page, Injected::Short(100)));
    let err = bm.read_optimistic(page, |v| v.u8_at(0)).unwrap_err();
    let short = DeviceError::Short { op: IoOp::Read, offset: page.offset(), done: 100, wanted: PAGE_SIZE };
    assert_eq!(err, Error::Read { page, source: short });

    assert_eq!(body_byte(&bm, page), 7, "the retry loads the last durable image");
    assert_eq!(device.fired(), 2);
    bm.check_invariants().unwrap();
}

#[test]
fn a_failed_write_back_keeps_the_page_dirty_and_resident_and_reports_it() {
    let device = faulty();
    let bm = open(&device);
    let page = page_with(&bm, 1);
    for (fault, source) in [
        (Injected::Errno(Errno::IO), DeviceError::Os { op: IoOp::Write, offset: page.offset(), errno: Errno::IO }),
        (Injected::NoSpace, DeviceError::NoSpace { offset: page.offset() }),
    ] {
        device.inject(rule(IoOp::Write, page, fault));
        assert_eq!(bm.evict_until(0), Err(Error::WriteBack { page, source }));
        let s = state(&bm, page);
        assert!(s.resident && s.dirty, "{fault:?}: {s:?}");
    }
    // Nothing was lost: the next eviction writes it and the page comes back.
    bm.evict_until(0).unwrap();
    assert!(!state(&bm, page).resident);
    assert_eq!(body_byte(&bm, page), 1);
    bm.check_invariants().unwrap();
}

#[test]
fn a_torn_write_then_a_crash_gives_back_the_last_durable_image() {
    let device = faulty();
    let page = {
        let bm = open(&device);
        let page = page_with(&bm, 1);
        bm.flush().unwrap(); // durable: 1
        set(&bm, page, 2);
        device.inject(rule(IoOp::Write, page, Injected::Short(100)));
        let torn = DeviceError::Short { op: IoOp::Write, offset: page.offset(), done: 100, wanted: PAGE_SIZE };
        assert_eq!(bm.evict_until(0), Err(Error::WriteBack { page, source: torn }));
        let s = state(&bm, page);
        assert!(s.resident && s.dirty, "{s:?}");
        assert_eq!(body_byte(&bm, page), 2, "memory still holds the newest version");
        page
        // The process "dies" here with the torn page on the device.
    };
    device.inner().crash();
    let bm = open(&device);
    assert_eq!(body_byte(&bm, page), 1, "after the crash: the last durable image, not the torn one");
}

#[test]
fn writes_never_synced_are_lost_in_a_crash_and_synced_ones_are_not() {
    let device = faulty();
    let (a, b) = {
        let bm = open(&device);
        let (a, b) = (page_with(&bm, 1), page_with(&bm, 1));
        bm.flush().unwrap(); // durable: a = 1, b = 1
        set(&bm, a, 2);
        set(&bm, b, 3);
        bm.flush().unwrap(); // durable: a = 2, b = 3
        set(&bm, a, 4);
        bm.evict_until(0).unwrap(); // a = 4 written, never synced
        (a, b)
    };
    device.inner().crash();
    let bm = open(&device);
    assert_eq!((body_byte(&bm, a), body_byte(&bm, b)), (2, 3));
}

#[test]
fn a_corrupt_stored_page_is_a_checksum_error_naming_it() {
    let device = faulty();
    let bm = open(&device);
    let page = page_with(&bm, 9);
    bm.flush().unwrap();
    bm.evict_until(0).unwrap();
    assert!(device.inner().corrupt(page, 3000, 0x40));
    let err = bm.fix_shared(page).map(|_| ()).unwrap_err();
    assert!(matches!(err, Error::Checksum { page: p, stored, computed } if p == page && stored != computed), "{err:?}");
    assert!(!state(&bm, page).resident);
    let text = err.to_string();
    assert!(text.contains("page") && text.contains("corrupt"), "{text}");
}

#[test]
fn a_misdirected_page_is_caught() {
    let device = faulty();
    let bm = open(&device);
    let (a, b) = (page_with(&bm, 1), page_with(&bm, 2));
    bm.flush().unwrap();
    bm.evict_until(0).unwrap();
    // Page a's image lands where page b belongs.
    let mut image = [0u8; PAGE_SIZE];
    device.read_page(a, &mut image).unwrap();
    device.write_page(b, &image).unwrap();
    assert_eq!(bm.fix_shared(b).map(|_| ()).unwrap_err(), Error::Misdirected { page: b, found: a });
}

#[test]
fn a_failed_sync_is_reported_by_flush() {
    let device = faulty();
    let bm = open(&device);
    page_with(&bm, 1);
    device.inject(Rule { op: IoOp::Sync, page: None, fault: Injected::Errno(Errno::IO), times: 1 });
    assert_eq!(
        bm.flush(),
        Err(Error::Sync { source: DeviceError::Os { op: IoOp::Sync, offset: 0, errno: Errno::IO } })
    );
    bm.flush().unwrap();
}

/// A write-ahead log that cannot flush.
struct BrokenLog;

impl WriteBackHook for BrokenLog {
    fn before_write_back(&self, _bm: &BufferManager, _pages: &[Page]) -> Result<u64, DeviceError> {
        Err(DeviceError::NoSpace { offset: 77 })
    }
}

#[test]
fn pages_are_not_written_before_the_log_and_stay_dirty_if_it_fails() {
    let device = faulty();
    let memory = snowfall_buffer::memory::Madvise::reserve(64 * 256).unwrap();
    let bm = BufferManager::with_parts(config(1, 64), Box::new(device.clone()), Box::new(memory), Box::new(BrokenLog))
        .unwrap();
    let page = {
        let mut g = bm.allocate().unwrap();
        g.page_mut().set_lsn(41);
        g.id()
    };
    assert_eq!(bm.flush(), Err(Error::LogFlush { lsn: 41, source: DeviceError::NoSpace { offset: 77 } }));
    assert!(state(&bm, page).dirty);
    assert_eq!(device.page_count().unwrap(), 0, "nothing reached the device");
}

#[test]
fn bad_page_ids_and_a_full_reservation_are_typed_errors() {
    let device = faulty();
    let bm = BufferManager::open(config(1, 1), Box::new(device.clone())).unwrap();
    assert_eq!(
        bm.fix_shared(PageId(5)).map(|_| ()).unwrap_err(),
        Error::PageNotAllocated { page: PageId(5), allocated: 0 }
    );
    let mut held = Vec::new();
    for _ in 0..256 {
        let g = bm.allocate().unwrap();
        held.push(g.id());
    }
    assert_eq!(bm.allocate().map(|_| ()).unwrap_err(), Error::OutOfSpace { virtual_pages: 256 });
    // Freed ids are reused.
    let g = bm.fix_exclusive(held[10]).unwrap();
    bm.free(g).unwrap();
    assert_eq!(bm.allocate().unwrap().id(), held[10]);
}
