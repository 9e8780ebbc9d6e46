//! The user-space ABI of exmap, the kernel module from the vmcache authors
//! that maps and unmaps pages of a virtual area explicitly, in batches
//! ("exmap", SIGMOD 2023; the module itself is not part of this project).
//!
//! - `/dev/exmap`, one context per open file descriptor;
//! - SETUP (once per descriptor): the pool (in pages, allocated at once),
//!   the number of interfaces (1..=256), an optional backing block device;
//! - the area: `mmap(MAP_SHARED)` of the descriptor at offset 0; page `i` of
//!   the area is byte `i * 4096` of the backing device;
//! - interface `n`: a 4 KiB page mapped at offset `0xE000_0000_0000_0000 |
//!   n << 12`, holding 512 64-bit entries `page | len << 52` that an ACTION
//!   ioctl (ALLOC or FREE) processes and overwrites with `res: i32`
//!   (0 or -errno) and `pages: i16`;
//! - READ: `preadv(fd, &[iovec { area + page * 4096, len }], 1,
//!   READ << 8 | interface)`: one iovec, never `pread`. On 6.1 a `pread`
//!   reaches the module as a single-buffer (`ITER_UBUF`) iterator, which the
//!   kernel's `iov_iter_restore`, called by the module's read, does not
//!   support: a kernel WARNING (once per boot) that taints the kernel and
//!   panics one running with `panic_on_warn`. `preadv` gives an iovec
//!   iterator, which it supports.
//!
//! What this module never does, because it crashes the 6.1 kernel: entries
//! of more than one page (ENOMEM inside one returns with a spinlock held),
//! CLONE (a freed notifier stays registered), the WRITE opcode (indexes past
//! the kernel's table), `mprotect`/`madvise`/partial `munmap` of the area
//! (splits the VMA, whose close frees the pool twice). Interfaces are mapped
//! only for `0..max_interfaces` (the kernel accepts one more by mistake).
//!
//! # Safety
//!
//! The area and the interface pages are shared with the kernel. An
//! interface page is written and read only by the thread that holds that
//! interface (the caller's contract on [`Exmap::action`]), between ioctls.
//! The area is unmapped only whole, in `Drop`, after the interfaces.
#![allow(unsafe_code)]

use core::ptr::null_mut;

use linux_raw_sys::general as k;
use rustix::fd::{AsRawFd, BorrowedFd, OwnedFd};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::mm::{MapFlags, ProtFlags, mmap, munmap};
use static_assertions::const_assert_eq;

use crate::PAGE_SIZE;
use crate::syscall::{syscall4, syscall5};

/// The device node.
pub const DEVICE: &str = "/dev/exmap";
/// Most interfaces per context.
pub const MAX_INTERFACES: u16 = 256;
/// Entries in one interface page: the most pages one ACTION handles.
pub const INTERFACE_ENTRIES: usize = 512;
/// The pool is handed to interfaces in bundles of this many pages; up to a
/// bundle per interface can sit unused in its local free list.
pub const BUNDLE_PAGES: u64 = 513;

const IOCTL_SETUP: usize = 0x4018_6b01;
const IOCTL_ACTION: usize = 0x4010_6b02;
const IOCTL_STATS: usize = 0x4020_6b04;
const INTERFACE_OFFSET: u64 = 0xE000_0000_0000_0000;
const ONE_PAGE_ENTRY: u64 = 1 << 52;
const OP_READ: u64 = 0;

/// An ACTION opcode (READ goes through `preadv`; WRITE is never sent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum Op {
    /// Map pool pages at the given area pages (already mapped: skipped).
    Alloc = 1,
    /// Unmap them and return them to the interface's free list.
    Free = 2,
}

#[repr(C)]
struct Setup {
    fd: i32,
    max_interfaces: i32,
    buffer_size: u64,
    flags: u64,
}
const_assert_eq!(core::mem::size_of::<Setup>(), 24);

#[repr(C)]
struct Action {
    interface: u16,
    iov_len: u16,
    opcode: u16,
    _pad: u16,
    flags: u64,
}
const_assert_eq!(core::mem::size_of::<Action>(), 16);

/// The kernel's `exmap_ioctl_stats`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bit 0: the context is active.
    pub flags: u64,
    /// Pool size in pages.
    pub buffer_size: u64,
    /// Always 0 in the released module.
    pub alloc_count: u64,
    /// Interfaces set up.
    pub max_interfaces: u32,
    _pad: u32,
}
const_assert_eq!(core::mem::size_of::<Stats>(), 32);

/// What went wrong setting exmap up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetupError {
    /// `/dev/exmap` could not be opened (module not loaded: `ENOENT`).
    Open(Errno),
    /// Mapping the area failed.
    MapArea(Errno),
    /// The SETUP ioctl failed (`ENOMEM`: the pool does not fit in memory;
    /// `EBADF`: the backing descriptor is not a block device).
    Setup {
        /// The error.
        errno: Errno,
        /// The pool asked for, in pages.
        pool_pages: u64,
        /// Interfaces asked for.
        interfaces: u16,
    },
    /// Mapping interface `n` failed.
    MapInterface(u16, Errno),
    /// Asked for 0 or more than [`MAX_INTERFACES`] interfaces.
    Interfaces(u16),
}

impl core::fmt::Display for SetupError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SetupError::Open(e) => write!(f, "cannot open {DEVICE}: {e} (is the exmap module loaded?)"),
            SetupError::MapArea(e) => write!(f, "cannot map the exmap area: {e}"),
            SetupError::Setup { errno, pool_pages, interfaces } => write!(
                f,
                "exmap SETUP of a {pool_pages}-page pool with {interfaces} interfaces failed: {errno} \
                 (the pool is allocated at once and must hold at least {BUNDLE_PAGES} pages per interface)"
            ),
            SetupError::MapInterface(n, e) => write!(f, "cannot map exmap interface {n}: {e}"),
            SetupError::Interfaces(n) => write!(f, "{n} exmap interfaces asked for; 1..={MAX_INTERFACES} are possible"),
        }
    }
}

/// One exmap context: the descriptor, its area and its interface pages.
#[derive(Debug)]
pub struct Exmap {
    fd: OwnedFd,
    area: *mut u8,
    area_pages: u64,
    /// The mapped interface pages; the first `interface_count` are set.
    interface_pages: [*mut u64; MAX_INTERFACES as usize],
    interface_count: u16,
}

// SAFETY: the context is shared by threads by design; each interface page is
// used by one thread at a time (the contract of `action` and `read`).
unsafe impl Send for Exmap {}
// SAFETY: as above.
unsafe impl Sync for Exmap {}

impl Exmap {
    /// Opens `/dev/exmap`, maps an area of `area_pages` pages, sets up a
    /// pool of `pool_pages` pages with `interfaces` interfaces, optionally
    /// backed by `backing` (a block device opened `O_DIRECT`), and maps the
    /// interface pages.
    pub fn setup(
        area_pages: u64,
        pool_pages: u64,
        interfaces: u16,
        backing: Option<BorrowedFd<'_>>,
    ) -> Result<Exmap, SetupError> {
        if interfaces == 0 || interfaces > MAX_INTERFACES {
            return Err(SetupError::Interfaces(interfaces));
        }
        let fd = rustix::fs::open(DEVICE, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty()).map_err(SetupError::Open)?;
        let area_len = (area_pages as usize).saturating_mul(PAGE_SIZE);
        // SAFETY: a fresh shared mapping of the exmap device at a
        // kernel-chosen address aliases nothing of ours.
        let area = unsafe { mmap(null_mut(), area_len, ProtFlags::READ | ProtFlags::WRITE, MapFlags::SHARED, &fd, 0) }
            .map_err(SetupError::MapArea)?;
        let mut this = Exmap {
            fd,
            area: area.cast(),
            area_pages,
            interface_pages: [null_mut(); MAX_INTERFACES as usize],
            interface_count: 0,
        };
        let setup = Setup {
            fd: backing.map_or(-1, |b| b.as_raw_fd()),
            max_interfaces: i32::from(interfaces),
            buffer_size: pool_pages,
            flags: 0,
        };
        // SAFETY: SETUP reads a 24-byte `exmap_ioctl_setup` from our stack.
        unsafe { this.ioctl(IOCTL_SETUP, (&raw const setup) as usize) }.map_err(|errno| SetupError::Setup {
            errno,
            pool_pages,
            interfaces,
        })?;
        for n in 0..interfaces {
            let offset = INTERFACE_OFFSET | (u64::from(n) << 12);
            // SAFETY: interface pages are mapped one page each, only for
            // 0..interfaces, at the offsets the module defines.
            let page = unsafe {
                mmap(null_mut(), PAGE_SIZE, ProtFlags::READ | ProtFlags::WRITE, MapFlags::SHARED, &this.fd, offset)
            }
            .map_err(|e| SetupError::MapInterface(n, e))?;
            if let Some(slot) = this.interface_pages.get_mut(usize::from(n)) {
                *slot = page.cast();
                this.interface_count = n + 1;
            }
        }
        Ok(this)
    }

    /// # Safety
    ///
    /// `arg` must be what ioctl `request` expects.
    unsafe fn ioctl(&self, request: usize, arg: usize) -> Result<usize, Errno> {
        // SAFETY: per the caller; the descriptor is ours.
        unsafe { syscall4(k::__NR_ioctl, self.fd.as_raw_fd() as usize, request, arg, 0) }
    }

    /// The first byte of the area.
    pub fn area(&self) -> *mut u8 {
        self.area
    }

    /// Pages in the area.
    pub fn area_pages(&self) -> u64 {
        self.area_pages
    }

    /// Interfaces set up.
    pub fn interfaces(&self) -> u16 {
        self.interface_count
    }

    /// The kernel's statistics of this context.
    pub fn stats(&self) -> Result<Stats, Errno> {
        let mut stats = Stats::default();
        // SAFETY: STATS writes a 32-byte `exmap_ioctl_stats` into ours.
        unsafe { self.ioctl(IOCTL_STATS, (&raw mut stats) as usize)? };
        Ok(stats)
    }

    /// Runs `op` on single pages `pages` (at most [`INTERFACE_ENTRIES`])
    /// through interface `interface`, and writes each entry's result to
    /// `results`: `(res, pages)`, `res` 0 or -errno, `pages` how many pages
    /// the entry mapped or unmapped (0 for an ALLOC of a page already mapped
    /// or a FREE of one that was not). `Err` only if the ioctl itself failed.
    ///
    /// # Safety
    ///
    /// The caller holds `interface` exclusively for the call. For `Free`,
    /// nothing may be using the pages (touching them afterwards faults).
    pub unsafe fn action(
        &self,
        interface: u16,
        op: Op,
        pages: &[u64],
        results: &mut [(i32, i16)],
    ) -> Result<(), Errno> {
        let iface = *self.interface_pages.get(usize::from(interface)).ok_or(Errno::INVAL)?;
        if iface.is_null() || pages.len() > INTERFACE_ENTRIES || results.len() < pages.len() {
            return Err(Errno::INVAL);
        }
        for (i, &page) in pages.iter().enumerate() {
            // SAFETY: entry `i < 512` of our interface page, held by the caller.
            unsafe { iface.add(i).write_volatile(page | ONE_PAGE_ENTRY) };
        }
        let params = Action { interface, iov_len: pages.len() as u16, opcode: op as u16, _pad: 0, flags: 0 };
        // SAFETY: ACTION reads a 16-byte `exmap_action_params` from our stack
        // and processes the entries just written (one page each).
        unsafe { self.ioctl(IOCTL_ACTION, (&raw const params) as usize)? };
        for (i, result) in results.iter_mut().enumerate().take(pages.len()) {
            // SAFETY: as above; the kernel rewrote every entry it processed.
            let entry = unsafe { iface.add(i).read_volatile() };
            *result = (entry as u32 as i32, (entry >> 32) as u16 as i16);
        }
        Ok(())
    }

    /// Reads `count` pages at `page` from the backing block device into the
    /// area (allocating them), through `interface`, with one `preadv` of one
    /// iovec (not `pread`: see the module documentation). Returns bytes read.
    ///
    /// # Safety
    ///
    /// The caller holds `interface` exclusively and nothing reads the pages
    /// until the call returns.
    pub unsafe fn read(&self, interface: u16, page: u64, count: usize) -> Result<usize, Errno> {
        if page.saturating_add(count as u64) > self.area_pages {
            return Err(Errno::INVAL);
        }
        let iov = k::iovec {
            iov_base: self.area.wrapping_add(page as usize * PAGE_SIZE).cast(),
            iov_len: (count * PAGE_SIZE) as k::__kernel_size_t,
        };
        // SAFETY: `iov` is one valid iovec on our stack, and its range lies
        // in our area; the kernel fills it. The offset (`pos_l`; `pos_h` is
        // 0) encodes the opcode and interface, as the module defines for
        // reads through its descriptor.
        unsafe {
            syscall5(
                k::__NR_preadv,
                self.fd.as_raw_fd() as usize,
                (&raw const iov) as usize,
                1,
                ((OP_READ << 8) | u64::from(interface)) as usize,
                0,
            )
        }
    }
}

impl Drop for Exmap {
    fn drop(&mut self) {
        for &iface in self.interface_pages.iter().take(usize::from(self.interface_count)) {
            // SAFETY: our interface mapping of one page.
            let _ = unsafe { munmap(iface.cast(), PAGE_SIZE) };
        }
        // The whole area at once: that tears the context down cleanly.
        // SAFETY: our area mapping, no longer used.
        let _ = unsafe { munmap(self.area.cast(), self.area_pages as usize * PAGE_SIZE) };
    }
}
