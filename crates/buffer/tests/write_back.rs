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

/// `write_pages` on a file (vectored, more than the kernel's 1,024 buffers
/// per call) writes what the page-by-page default writes on memory; a
/// failing page is named, the pages before it written, none after it.
#[test]
fn write_pages_writes_runs_and_names_the_failing_page() {
    use snowfall_buffer::Device;
    use snowfall_buffer::device::{FaultyDevice, Injected, MemoryDevice, Rule};
    use snowfall_buffer::{DeviceError, IoOp};
    #[repr(C, align(4096))]
    struct Aligned([u8; PAGE_SIZE]);
    let pages: Vec<Box<Aligned>> = (0..1500u32)
        .map(|i| {
            let mut p = Box::new(Aligned([0; PAGE_SIZE]));
            p.0[..4].copy_from_slice(&i.to_le_bytes());
            p.0[PAGE_SIZE - 4..].copy_from_slice(&i.to_le_bytes());
            p
        })
        .collect();
    let refs: Vec<&[u8; PAGE_SIZE]> = pages.iter().map(|p| &p.0).collect();
    let file = TempFile::new("write-pages");
    let devices: [Box<dyn Device>; 2] = [Box::new(file.open()), Box::new(MemoryDevice::new(2048))];
    for device in devices {
        device.write_pages(PageId(7), &refs).unwrap();
        let mut back = Box::new(Aligned([0; PAGE_SIZE]));
        for i in [0u32, 1, 1023, 1024, 1025, 1499] {
            device.read_page(PageId(7 + u64::from(i)), &mut back.0).unwrap();
            assert_eq!(back.0[..4], i.to_le_bytes(), "{}: page {}", device.describe(), 7 + i);
            assert_eq!(back.0[PAGE_SIZE - 4..], i.to_le_bytes(), "{}: page {}", device.describe(), 7 + i);
        }
    }
    // Page 12 fails: two pages written before it, the error is its own,
    // nothing written after it.
    let faulty = FaultyDevice::new(MemoryDevice::new(64));
    faulty.inject(Rule { op: IoOp::Write, page: Some(PageId(12)), fault: Injected::NoSpace, times: 1 });
    let (written, error) = faulty.write_pages(PageId(10), &refs[..5]).unwrap_err();
    assert_eq!((written, error), (2, DeviceError::NoSpace { offset: 12 * PAGE_SIZE as u64 }));
    let mut back = Box::new(Aligned([0; PAGE_SIZE]));
    faulty.read_page(PageId(11), &mut back.0).unwrap();
    assert_eq!(back.0[..4], 1u32.to_le_bytes());
    assert!(faulty.read_page(PageId(13), &mut back.0).is_err() || back.0.iter().all(|&b| b == 0));
}
