//! How much address space a reservation can have here, now: for choosing
//! a database's virtual size when nobody set one. `ulimit -v` counts every
//! mapping, and with strict overcommit (`vm.overcommit_memory = 2`) the
//! kernel charges a writable private mapping in full even with
//! `MAP_NORESERVE`; either can make a large reservation fail where a
//! smaller one would do.
//!
//! # Safety
//!
//! The probe maps a fresh region at an address the kernel chooses and
//! unmaps it at once; nothing else ever sees it.
#![allow(unsafe_code)]

use rustix::mm::{MapFlags, ProtFlags, mmap_anonymous, munmap};

use crate::page::PAGE_SIZE;

/// The largest size from `want` down to `floor` (halving; both rounded up
/// to whole pages) whose reservation can be mapped now, together with its
/// page-state array (8 bytes a page); `None` if not even `floor` can.
/// Mapped the way the buffer manager maps them (readable, writable,
/// `MAP_NORESERVE`), so the answer holds for it, unless other mappings
/// appear in between.
pub fn reservable_bytes(want: u64, floor: u64) -> Option<u64> {
    let page = PAGE_SIZE as u64;
    let floor = floor.div_ceil(page).checked_mul(page)?;
    let mut bytes = want.max(floor).div_ceil(page).checked_mul(page)?;
    loop {
        let states = (bytes / page) * 8;
        if fits(bytes.checked_add(states)?) {
            return Some(bytes);
        }
        if bytes <= floor {
            return None;
        }
        bytes = (bytes / 2).div_ceil(page).saturating_mul(page).max(floor);
    }
}

/// Whether `bytes` of address space can be mapped now.
fn fits(bytes: u64) -> bool {
    let Ok(len) = usize::try_from(bytes) else { return false };
    // SAFETY: a fresh mapping at a kernel-chosen address aliases nothing,
    // and is unmapped before anyone could use it.
    unsafe {
        match mmap_anonymous(
            core::ptr::null_mut(),
            len,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::PRIVATE | MapFlags::NORESERVE,
        ) {
            Ok(ptr) => {
                let _ = munmap(ptr, len);
                true
            }
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_lies_between_floor_and_want_in_whole_pages() {
        let got = reservable_bytes(1 << 30, 1 << 20).unwrap();
        assert!((1 << 20..=1 << 30).contains(&got));
        assert_eq!(got % PAGE_SIZE as u64, 0);
        assert_eq!(reservable_bytes(1, 5000), Some(8192), "the floor wins, rounded up");
        assert_eq!(reservable_bytes(u64::MAX, u64::MAX), None, "no address space is that large");
    }
}
