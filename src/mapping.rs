//! Memory mappings that fault in known places, for the self-test and the
//! debug commands: inaccessible pages (SIGSEGV) and pages of a file mapping
//! past the end of the file (SIGBUS).
//!
//! # Safety
//!
//! Each [`Mapping`] owns its mapping from creation to drop; a [`Registered`]
//! borrows the mapping, so the range is unregistered before it is unmapped.
#![allow(unsafe_code)]

use core::marker::PhantomData;
use core::ops::Deref;

use rustix::fs::{MemfdFlags, ftruncate, memfd_create};
use rustix::io::Errno;
use rustix::mm::{MapFlags, MprotectFlags, ProtFlags, mmap, mmap_anonymous, mprotect, munmap};
use snowfall_sys::PAGE_SIZE;
use snowfall_sys::fault::{RegisterError, Registration};

/// An owned mapping, unmapped on drop.
pub struct Mapping {
    ptr: *mut u8,
    len: usize,
}

impl Mapping {
    /// `pages` pages, alternating: even pages read-write and filled with
    /// their page number (mod 256), odd pages inaccessible.
    pub fn checkerboard(pages: usize) -> Result<Mapping, Errno> {
        let len = pages * PAGE_SIZE;
        // SAFETY: a fresh anonymous mapping at a kernel-chosen address aliases nothing.
        let ptr = unsafe {
            mmap_anonymous(core::ptr::null_mut(), len, ProtFlags::READ | ProtFlags::WRITE, MapFlags::PRIVATE)?
        }
        .cast::<u8>();
        let map = Mapping { ptr, len };
        for page in 0..pages {
            // SAFETY: page `page` lies inside our read-write mapping.
            let at = unsafe { ptr.add(page * PAGE_SIZE) };
            if page % 2 == 0 {
                // SAFETY: as above.
                unsafe { core::ptr::write_bytes(at, page as u8, PAGE_SIZE) };
            } else {
                // SAFETY: changing the protection of our own mapping.
                unsafe { mprotect(at.cast(), PAGE_SIZE, MprotectFlags::empty())? };
            }
        }
        Ok(map)
    }

    /// `pages` pages of a shared mapping of a one-page memory file: page 0 is
    /// readable (filled with `0xB5`), the rest lie past the end of the file.
    pub fn past_end_of_file(pages: usize) -> Result<Mapping, Errno> {
        let fd = memfd_create("snowfall-selftest", MemfdFlags::CLOEXEC)?;
        ftruncate(&fd, PAGE_SIZE as u64)?;
        let len = pages * PAGE_SIZE;
        // SAFETY: a fresh shared mapping of our own memory file.
        let ptr =
            unsafe { mmap(core::ptr::null_mut(), len, ProtFlags::READ | ProtFlags::WRITE, MapFlags::SHARED, &fd, 0)? }
                .cast::<u8>();
        // SAFETY: page 0 is backed by the file and writable.
        unsafe { core::ptr::write_bytes(ptr, 0xB5, PAGE_SIZE) };
        Ok(Mapping { ptr, len })
    }

    /// The address `offset` bytes into the mapping (not dereferenced here).
    pub fn addr(&self, offset: usize) -> *const u8 {
        self.ptr.wrapping_add(offset)
    }

    /// The mapping's length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Registers the whole mapping for fault recovery.
    pub fn register(&self) -> Result<Registered<'_>, RegisterError> {
        // SAFETY: the mapping stays in place while `self` lives, and the
        // registration borrows `self`, so it is dropped first.
        let reg = unsafe { Registration::new(self.ptr, self.len) }?;
        Ok(Registered { reg, _map: PhantomData })
    }
}

/// A registration that borrows the mapping it covers.
pub struct Registered<'a> {
    reg: Registration,
    _map: PhantomData<&'a Mapping>,
}

impl Deref for Registered<'_> {
    type Target = Registration;

    fn deref(&self) -> &Registration {
        &self.reg
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: our mapping; nothing refers to it any more.
        let _ = unsafe { munmap(self.ptr.cast(), self.len) };
    }
}
