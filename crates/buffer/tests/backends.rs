//! Memory backends: the exmap emulation behaves like exmap (released pages
//! fault at their exact address, fresh pages are not zero, the pool runs
//! dry with ENOMEM), `auto` picks exmap only where it works, and a missing
//! or misconfigured exmap is a clear typed error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, reason = "tests: a panic is a failure")]

mod common;

use common::{config_with, memory_bm_with};
use rustix::io::Errno;
use snowfall_buffer::memory::{EmulatedExmap, MemoryBackend, MemoryKind, POISON};
use snowfall_buffer::{BufferManager, ConfigError, Error, MemoryError, PAGE_SIZE, PageId};
use snowfall_sys::exmap::SetupError;
use snowfall_sys::fault::{self, Fault, FaultKind, Registration};

fn exmap_present() -> bool {
    std::path::Path::new(snowfall_sys::exmap::DEVICE).exists()
}

#[test]
fn the_emulation_faults_on_released_pages_and_hands_out_unzeroed_ones() {
    fault::install().unwrap();
    let emu = EmulatedExmap::reserve(16, 4).unwrap();
    // SAFETY: the emulation's area stays mapped while `emu` lives; the
    // registration is dropped first.
    let reg = unsafe { Registration::new(emu.base(), 16 * PAGE_SIZE) }.unwrap();
    let page = PageId(3);
    let mut byte = [0u8; 1];
    assert_eq!(
        reg.read(page.offset() as usize + 5, &mut byte).unwrap_err(),
        fault::ReadError::Fault(Fault {
            addr: emu.base() as usize + page.offset() as usize + 5,
            kind: FaultKind::Segv
        }),
        "a page never allocated faults"
    );
    emu.prepare(&[page]).unwrap();
    reg.read(page.offset() as usize + 5, &mut byte).unwrap();
    assert_eq!(byte[0], POISON, "fresh pages keep (emulated) old bytes, never zeros");
    emu.release(&[page]).unwrap();
    assert!(reg.read(page.offset() as usize, &mut byte).is_err(), "a released page faults again");
    // The pool limit: 4 pages.
    emu.prepare(&[PageId(0), PageId(1), PageId(2), PageId(3)]).unwrap();
    assert_eq!(emu.prepare(&[PageId(4)]), Err(MemoryError::Prepare { page: PageId(4), errno: Errno::NOMEM }));
    // Already mapped pages are skipped, contents kept, nothing counted twice.
    emu.prepare(&[PageId(2)]).unwrap();
    assert_eq!(emu.in_use(), 4);
    drop(reg);
}

#[test]
fn auto_picks_exmap_only_where_it_works() {
    let (bm, _device) = memory_bm_with(MemoryKind::Auto, 1, 64);
    let want = if exmap_present() { "exmap" } else { "madvise" };
    assert_eq!(bm.memory().name(), want);
}

#[test]
fn exmap_without_the_module_is_a_clear_error() {
    if exmap_present() {
        eprintln!("/dev/exmap exists here: the module is loaded, nothing to check");
        return;
    }
    let device = Box::new(snowfall_buffer::device::MemoryDevice::new(16));
    let err = BufferManager::open(config_with(MemoryKind::Exmap, 1, 64), device).map(|_| ()).unwrap_err();
    assert_eq!(err, Error::Memory(MemoryError::Exmap(SetupError::Open(Errno::NOENT))));
    assert!(err.to_string().contains("is the exmap module loaded?"), "{err}");
}

#[test]
fn too_many_exmap_interfaces_is_a_configuration_error() {
    let mut config = config_with(MemoryKind::Exmap, 1, 64);
    config.exmap_interfaces = 300;
    assert_eq!(config.validate(), Err(ConfigError::TooManyExmapInterfaces { interfaces: 300 }));
    // The exmap pool covers the buffer pool plus a bundle per interface.
    let pool = snowfall_buffer::memory::Exmap::exmap_pool_pages(256, 4);
    assert!(pool >= 256 + 513 * 4 && pool.is_multiple_of(513), "{pool}");
}

#[test]
fn optimistic_views_read_every_short_range_as_stored_and_refuse_out_of_bounds() {
    // Short reads take plain loads (unguarded backends): check every length
    // up to past the plain-load limit at the body's start, middle and end.
    for kind in common::BACKENDS {
        let (bm, _device) = memory_bm_with(kind, 1, 64);
        let mut g = bm.allocate().unwrap();
        let page = g.id();
        for (i, b) in g.page_mut().body_mut().iter_mut().enumerate() {
            *b = (i * 7 + i / 256) as u8;
        }
        let expected = g.page().body().to_vec();
        drop(g);
        let body = snowfall_buffer::BODY_SIZE;
        for len in 0..=70 {
            let starts = (0..12).chain(body / 2..body / 2 + 9).chain(body.saturating_sub(len + 12)..=body - len);
            for at in starts {
                let mut out = vec![0u8; len];
                bm.read_optimistic(page, |v| v.read(at, &mut out)).unwrap();
                assert_eq!(out, expected[at..at + len], "{kind:?}: {len} bytes at {at}");
                assert!(bm.read_optimistic(page, |v| v.read(body - len + 1, &mut out)).is_err(), "{kind:?}: {len}");
            }
        }
        let word = |at: usize| u64::from_le_bytes(expected[at..at + 8].try_into().unwrap());
        assert_eq!(bm.read_optimistic(page, |v| v.u64_at(body - 8)).unwrap(), word(body - 8));
        assert_eq!(bm.read_optimistic(page, |v| v.u32_at(body - 4)).unwrap(), (word(body - 8) >> 32) as u32);
        assert!(bm.read_optimistic(page, |v| v.u32_at(body - 3)).is_err());
    }
}
