//! Pages written, evicted and loaded again come back byte for byte, header
//! included, through the memory device and through a real file (O_DIRECT).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, reason = "tests: a panic is a failure")]

mod common;

use common::{BACKENDS, TempFile, config, config_with, memory_bm, memory_bm_with};
use snowfall_buffer::{BufferManager, PAGE_SIZE, PageId};

fn round_trip(bm: &BufferManager) {
    let pool_pages = bm.config().pool_pages();
    let stats = snowfall_buffer::scenario::round_trip(bm).unwrap_or_else(|f| panic!("{f}"));
    assert!(stats.faults >= 2 * pool_pages, "{stats:?}");
}

#[test]
fn pages_survive_eviction_through_the_memory_device() {
    for memory in BACKENDS {
        let (bm, _device) = memory_bm_with(memory, 1, 64);
        round_trip(&bm);
    }
}

#[test]
fn pages_survive_eviction_through_a_file_with_direct_io() {
    let file = TempFile::new("write-back");
    for memory in BACKENDS {
        let _ = std::fs::remove_file(&file.0);
        let device = file.open();
        assert!(device.is_direct(), "the test directory's file system refused O_DIRECT");
        let bm = BufferManager::open(config_with(memory, 1, 64), Box::new(device)).unwrap();
        round_trip(&bm);
        bm.flush().unwrap();
        let len = std::fs::metadata(&file.0).unwrap().len();
        assert_eq!(len, bm.allocated_pages() * PAGE_SIZE as u64);
    }
}

#[test]
fn a_reopened_file_serves_the_pages_written_before() {
    let file = TempFile::new("reopen");
    let ids: Vec<PageId> = {
        let bm = BufferManager::open(config(1, 64), Box::new(file.open())).unwrap();
        let ids = snowfall_buffer::scenario::populate(&bm, 300).unwrap();
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

/// A flush must not wait for a latch while it holds others: a writer that
/// holds one dirty page exclusively and then, by latch coupling, wants
/// another dirty page must get it while the flush waits for the first.
#[test]
fn a_flush_waiting_for_a_latch_holds_no_other() {
    use std::sync::mpsc;
    use std::time::Duration;
    let (bm, _device) = memory_bm(1, 64);
    let ids = snowfall_buffer::scenario::populate(&bm, 16).unwrap();
    let middle = ids[8];
    std::thread::scope(|s| {
        let held = bm.fix_exclusive(middle).unwrap();
        let flusher = s.spawn(|| bm.flush());
        // Let the flush reach the page held here (it then waits for it).
        std::thread::sleep(Duration::from_millis(100));
        let (tx, rx) = mpsc::channel();
        let others: Vec<PageId> = ids.iter().copied().filter(|&p| p != middle).collect();
        let bm = &bm;
        s.spawn(move || {
            for p in others {
                drop(bm.fix_exclusive(p).unwrap());
            }
            tx.send(()).unwrap();
        });
        let got = rx.recv_timeout(Duration::from_secs(10));
        drop(held);
        assert!(got.is_ok(), "the flush held other pages while it waited for one: a writer could not latch them");
        flusher.join().unwrap().unwrap();
    });
}

/// `read_pages` on a file reads consecutive pages in one request and stops
/// at the end of the file, like the page-by-page default on memory.
#[test]
fn read_pages_stops_at_the_end_of_the_device() {
    use snowfall_buffer::Device;
    use snowfall_buffer::device::MemoryDevice;
    #[repr(C, align(4096))]
    struct Aligned([u8; PAGE_SIZE]);
    let file = TempFile::new("read-pages");
    let devices: [Box<dyn Device>; 2] = [Box::new(file.open()), Box::new(MemoryDevice::new(64))];
    for device in devices {
        let mut page = Box::new(Aligned([0; PAGE_SIZE]));
        for i in 0..10u8 {
            page.0.fill(i);
            device.write_page(PageId(u64::from(i)), &page.0).unwrap();
        }
        let mut bufs: Vec<Box<Aligned>> = (0..12).map(|_| Box::new(Aligned([0xFF; PAGE_SIZE]))).collect();
        let mut refs: Vec<&mut [u8; PAGE_SIZE]> = bufs.iter_mut().map(|b| &mut b.0).collect();
        assert_eq!(device.read_pages(PageId(3), &mut refs).unwrap(), 7, "{}", device.describe());
        for (i, b) in bufs.iter().take(7).enumerate() {
            assert!(b.0.iter().all(|&x| usize::from(x) == i + 3), "{}: page {}", device.describe(), i + 3);
        }
        let mut refs: Vec<&mut [u8; PAGE_SIZE]> = bufs.iter_mut().map(|b| &mut b.0).collect();
        assert_eq!(device.read_pages(PageId(10), &mut refs).unwrap(), 0, "{}", device.describe());
    }
}
