//! Where each dirty page's oldest unwritten change lies in the log
//! (`changes.rs`): set by the first change after a write-back, from the
//! hook's log position; cleared by a write-back; and, when a writer
//! changes the page while a checkpoint's write of it is in flight, moved up
//! to where the log stood when the copy was taken (else a checkpoint
//! waiting for no page to hold a change older than its cut could wait for
//! as long as that page keeps changing).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, reason = "tests: a panic is a failure")]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::config;
use snowfall_buffer::device::MemoryDevice;
use snowfall_buffer::{BufferManager, DeviceError, Page, WriteBackHook, WrittenBack};

/// A log that stands at `position`; while `meddle` is set, every
/// write-back batch finds a writer changing its first page (as a writer
/// may, since a checkpoint writes without latches).
#[derive(Default)]
struct Hook {
    position: AtomicU64,
    meddle: AtomicBool,
}

impl WriteBackHook for Hook {
    fn before_write_back(&self, bm: &BufferManager, pages: &[Page]) -> Result<u64, DeviceError> {
        if self.meddle.load(Ordering::Relaxed) {
            let mut g = bm.fix_exclusive(pages[0].id()).unwrap();
            g.page_mut().body_mut()[0] ^= 1;
        }
        Ok(0)
    }

    fn log_position(&self) -> u64 {
        self.position.load(Ordering::Relaxed)
    }
}

struct Shared(Arc<Hook>);

impl WriteBackHook for Shared {
    fn before_write_back(&self, bm: &BufferManager, pages: &[Page]) -> Result<u64, DeviceError> {
        self.0.before_write_back(bm, pages)
    }

    fn log_position(&self) -> u64 {
        self.0.log_position()
    }
}

#[test]
fn the_oldest_change_follows_changes_and_write_backs() {
    let hook = Arc::new(Hook::default());
    let config = config(1, 64);
    let memory = snowfall_buffer::memory::open_backend(&config, config.virtual_pages(), None).unwrap();
    let device = Box::new(MemoryDevice::new(1 << 14));
    let bm = BufferManager::with_parts(config, device, memory, Box::new(Shared(hook.clone()))).unwrap();
    assert_eq!(bm.oldest_change(), None);
    hook.position.store(100, Ordering::Relaxed);
    let a = bm.allocate().unwrap().id();
    hook.position.store(200, Ordering::Relaxed);
    let b = bm.allocate().unwrap().id();
    assert_eq!(bm.oldest_change(), Some(100));
    // A later change of a dirty page leaves its oldest change where it was.
    hook.position.store(300, Ordering::Relaxed);
    bm.fix_exclusive(a).unwrap().page_mut().body_mut()[1] = 7;
    assert_eq!(bm.oldest_change(), Some(100));
    // Written back: only `b`'s is left.
    assert_eq!(bm.write_back_older(150, 0).unwrap(), WrittenBack { pages: 1, oldest_left: Some(200) });
    assert_eq!(bm.oldest_change(), Some(200));
    // A writer changes `b` while its write is in flight: it stays dirty,
    // with its oldest change where the log stood at the copy (400), not 200.
    hook.position.store(400, Ordering::Relaxed);
    hook.meddle.store(true, Ordering::Relaxed);
    assert_eq!(bm.write_back_older(u64::MAX, 0).unwrap(), WrittenBack { pages: 1, oldest_left: Some(400) });
    hook.meddle.store(false, Ordering::Relaxed);
    assert!(bm.page_state(b).unwrap().dirty);
    assert_eq!(bm.oldest_change(), Some(400));
    bm.flush().unwrap();
    assert_eq!(bm.oldest_change(), None);
    // Noted as the change begins, before it is logged (the dirty flag comes
    // when the guard lets go); freed, nothing of it waits to be written.
    hook.position.store(500, Ordering::Relaxed);
    let mut g = bm.fix_exclusive(a).unwrap();
    g.page_mut().body_mut()[2] = 1;
    assert_eq!(bm.oldest_change(), Some(500));
    bm.free(g).unwrap();
    assert_eq!(bm.oldest_change(), None);
}
