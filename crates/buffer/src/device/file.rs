//! A file or block device as page storage.
//!
//! Opened with `O_DIRECT` by default: pages then go straight between the
//! buffer pool and the disk, and the kernel's page cache never holds a
//! second copy (which would count against nobody's memory budget and hide
//! real I/O costs). File systems that refuse `O_DIRECT` (tmpfs, some FUSE)
//! get a logged fallback to buffered I/O.
//!
//! Every system call here is retried while it fails with `EINTR` (see
//! [`uninterrupted`]): an interrupted call is not an I/O error, and the
//! database stops on I/O errors.

use alloc::string::String;
use alloc::vec::Vec;

use rustix::fd::OwnedFd;
use rustix::fs::{Mode, OFlags};
use rustix::io::{Errno, IoSlice, IoSliceMut};

use super::Device;
use crate::error::{DeviceError, IoOp};
use crate::page::{PAGE_SIZE, PageId};

/// Calls `f` again for as long as it fails with `EINTR`.
///
/// `EINTR` means a signal handler ran while the call waited (the binary
/// catches SIGINT without `SA_RESTART`; network and FUSE file systems
/// sleep interruptibly; `strace` injects it in the tests). Retrying is
/// always right for the calls in this file: an interrupted `pread`,
/// `pwrite`, `preadv` or `pwritev` moved no byte (once any byte moves it
/// returns a short count instead), and it names its offset, so the retry
/// does exactly the same thing; an interrupted `fdatasync` returned no
/// write-back error (the kernel reports each such error once, by returning
/// it), so calling it again loses none and syncs the same data; `open`
/// (never with `O_EXCL` here), `flock` and `fstat` have nothing to undo.
/// Not bounded: each retry needs a new signal, so the loop ends unless
/// signals keep arriving, and giving up would turn a signal into a stopped
/// database.
fn uninterrupted<T>(mut f: impl FnMut() -> Result<T, Errno>) -> Result<T, Errno> {
    loop {
        match f() {
            Err(Errno::INTR) => {}
            done => return done,
        }
    }
}

/// Pages in a file.
#[derive(Debug)]
pub struct FileDevice {
    fd: OwnedFd,
    path: String,
    direct: bool,
    block: bool,
}

/// How to open a [`FileDevice`].
#[derive(Clone, Copy, Debug)]
pub struct FileOptions {
    /// Create the file if it does not exist.
    pub create: bool,
    /// Try `O_DIRECT` (falling back with a warning if refused).
    pub direct: bool,
    /// Open for reading only (`O_RDONLY`): every write fails with `EBADF`.
    pub read_only: bool,
}

impl Default for FileOptions {
    fn default() -> Self {
        FileOptions { create: true, direct: true, read_only: false }
    }
}

/// A write that failed for want of space (a full disk, or a quota) is
/// [`DeviceError::NoSpace`]: callers treat it apart from I/O errors, since
/// the kernel took none of the data and freeing space cures it.
fn write_error(offset: u64, errno: Errno) -> DeviceError {
    match errno {
        Errno::NOSPC | Errno::DQUOT => DeviceError::NoSpace { offset },
        errno => DeviceError::Os { op: IoOp::Write, offset, errno },
    }
}

impl FileDevice {
    /// Opens (or creates) the file at `path`.
    pub fn open(path: &str, options: FileOptions) -> Result<FileDevice, DeviceError> {
        let mut flags = if options.read_only { OFlags::RDONLY } else { OFlags::RDWR };
        flags |= OFlags::CLOEXEC;
        if options.create && !options.read_only {
            flags |= OFlags::CREATE;
        }
        let mode = Mode::RUSR | Mode::WUSR;
        let open_err = |errno| DeviceError::Os { op: IoOp::Open, offset: 0, errno };
        let open = |flags| uninterrupted(|| rustix::fs::open(path, flags, mode));
        let (fd, direct) = if options.direct {
            match open(flags | OFlags::DIRECT) {
                Ok(fd) => (fd, true),
                Err(Errno::INVAL) => {
                    log::warn!("{path}: the file system refuses O_DIRECT; using buffered I/O (the page cache)");
                    (open(flags).map_err(open_err)?, false)
                }
                Err(e) => return Err(open_err(e)),
            }
        } else {
            (open(flags).map_err(open_err)?, false)
        };
        let stat = uninterrupted(|| rustix::fs::fstat(&fd)).map_err(open_err)?;
        let block = rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::BlockDevice;
        Ok(FileDevice { fd, path: String::from(path), direct, block })
    }

    /// Takes an exclusive advisory lock on the file (`flock`), held until
    /// the device is dropped: a second process (or a second open in this
    /// one) gets `Err(WOULDBLOCK)` instead of sharing the file.
    pub fn lock_exclusive(&self) -> Result<(), DeviceError> {
        self.lock(rustix::fs::FlockOperation::NonBlockingLockExclusive)
    }

    /// Takes a shared advisory lock on the file: other shared locks may be
    /// held at once (readers), an exclusive one may not (`Err(WOULDBLOCK)`).
    pub fn lock_shared(&self) -> Result<(), DeviceError> {
        self.lock(rustix::fs::FlockOperation::NonBlockingLockShared)
    }

    fn lock(&self, how: rustix::fs::FlockOperation) -> Result<(), DeviceError> {
        uninterrupted(|| rustix::fs::flock(&self.fd, how)).map_err(|errno| DeviceError::Os {
            op: IoOp::Open,
            offset: 0,
            errno,
        })
    }

    /// Makes the directory entry of `path` durable: fsyncs the directory
    /// that holds it. A newly created (or renamed) file survives a power
    /// loss only once its directory is synced (POSIX leaves it undefined,
    /// and ext4 and XFS can lose it); SQLite and RocksDB do the same.
    pub fn sync_directory_of(path: &str) -> Result<(), DeviceError> {
        let dir = match path.rfind('/') {
            Some(0) => "/",
            Some(i) => path.get(..i).unwrap_or("."),
            None => ".",
        };
        let err = |op| move |errno| DeviceError::Os { op, offset: 0, errno };
        let fd = uninterrupted(|| {
            rustix::fs::open(dir, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        })
        .map_err(err(IoOp::Open))?;
        uninterrupted(|| rustix::fs::fsync(&fd)).map_err(err(IoOp::Sync))
    }

    /// The file's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether I/O bypasses the page cache.
    pub fn is_direct(&self) -> bool {
        self.direct
    }
}

impl Device for FileDevice {
    fn read_page(&self, page: PageId, buf: &mut [u8; PAGE_SIZE]) -> Result<(), DeviceError> {
        let offset = page.offset();
        let mut done = 0;
        while let Some(rest) = buf.get_mut(done..).filter(|r| !r.is_empty()) {
            match uninterrupted(|| rustix::io::pread(&self.fd, &mut *rest, offset + done as u64)) {
                Ok(0) if done == 0 => return Err(DeviceError::PastEnd { offset }),
                Ok(0) => return Err(DeviceError::Short { op: IoOp::Read, offset, done, wanted: PAGE_SIZE }),
                Ok(n) => done += n,
                Err(errno) => return Err(DeviceError::Os { op: IoOp::Read, offset, errno }),
            }
        }
        Ok(())
    }

    /// One `preadv` per 1,024 pages (the kernel's limit on buffers per
    /// call), where the default would wait for each page in turn.
    fn read_pages(&self, first: PageId, bufs: &mut [&mut [u8; PAGE_SIZE]]) -> Result<usize, DeviceError> {
        let mut total = 0;
        for chunk in bufs.chunks_mut(1024) {
            let offset = PageId(first.0 + total as u64).offset();
            let mut slices: Vec<IoSliceMut<'_>> = chunk.iter_mut().map(|b| IoSliceMut::new(&mut b[..])).collect();
            let n = uninterrupted(|| rustix::io::preadv(&self.fd, &mut slices, offset))
                .map_err(|errno| DeviceError::Os { op: IoOp::Read, offset, errno })?;
            match (n / PAGE_SIZE, n % PAGE_SIZE) {
                // The file ends inside the first page: as `read_page` says.
                (0, done @ 1..) if total == 0 => {
                    return Err(DeviceError::Short { op: IoOp::Read, offset, done, wanted: PAGE_SIZE });
                }
                // A partial last page is read again, alone, by the next call.
                (pages, _) if pages < chunk.len() => return Ok(total + pages),
                (pages, _) => total += pages,
            }
        }
        Ok(total)
    }

    fn write_page(&self, page: PageId, buf: &[u8; PAGE_SIZE]) -> Result<(), DeviceError> {
        let offset = page.offset();
        let mut done = 0;
        while let Some(rest) = buf.get(done..).filter(|r| !r.is_empty()) {
            match uninterrupted(|| rustix::io::pwrite(&self.fd, rest, offset + done as u64)) {
                Ok(0) => return Err(DeviceError::Short { op: IoOp::Write, offset, done, wanted: PAGE_SIZE }),
                Ok(n) => done += n,
                Err(errno) => return Err(write_error(offset, errno)),
            }
        }
        Ok(())
    }

    /// One `pwritev` per 1,024 pages. After a call that fails (or writes
    /// less than a page), the next page is written alone, so that an error
    /// belongs to the page it happened at.
    fn write_pages(&self, first: PageId, bufs: &[&[u8; PAGE_SIZE]]) -> Result<(), (usize, DeviceError)> {
        let mut done = 0;
        while done < bufs.len() {
            let chunk = bufs.get(done..(done + 1024).min(bufs.len())).unwrap_or_default();
            let slices: Vec<IoSlice<'_>> = chunk.iter().map(|b| IoSlice::new(&b[..])).collect();
            match uninterrupted(|| rustix::io::pwritev(&self.fd, &slices, PageId(first.0 + done as u64).offset())) {
                // Whole pages written; a partial last one is written again.
                Ok(n) if n >= PAGE_SIZE => done += n / PAGE_SIZE,
                Ok(_) | Err(_) => {
                    let Some(buf) = chunk.first() else { break };
                    self.write_page(PageId(first.0 + done as u64), buf).map_err(|e| (done, e))?;
                    done += 1;
                }
            }
        }
        Ok(())
    }

    fn sync(&self) -> Result<(), DeviceError> {
        uninterrupted(|| rustix::fs::fdatasync(&self.fd)).map_err(|errno| DeviceError::Os {
            op: IoOp::Sync,
            offset: 0,
            errno,
        })
    }

    /// `fallocate`, so that the space is the file's from now on; where the
    /// file system cannot (`EOPNOTSUPP`), the length alone, like the
    /// default.
    fn allocate(&self, pages: u64) -> Result<(), DeviceError> {
        if self.block || self.page_count()? >= pages {
            return Ok(());
        }
        let len = pages * PAGE_SIZE as u64;
        let last = len - PAGE_SIZE as u64;
        match uninterrupted(|| rustix::fs::fallocate(&self.fd, rustix::fs::FallocateFlags::empty(), 0, len)) {
            Err(Errno::OPNOTSUPP | Errno::NOSYS) => {}
            done => return done.map_err(|errno| write_error(last, errno)),
        }
        uninterrupted(|| rustix::fs::ftruncate(&self.fd, len)).map_err(|errno| write_error(last, errno))
    }

    fn page_count(&self) -> Result<u64, DeviceError> {
        if self.block {
            // A block device's size says nothing about which pages hold
            // data (until the durability layer records it): none do yet.
            return Ok(0);
        }
        let st = uninterrupted(|| rustix::fs::fstat(&self.fd)).map_err(|errno| DeviceError::Os {
            op: IoOp::Open,
            offset: 0,
            errno,
        })?;
        Ok(st.st_size as u64 / PAGE_SIZE as u64)
    }

    fn describe(&self) -> &str {
        &self.path
    }

    fn block_device(&self) -> Option<rustix::fd::BorrowedFd<'_>> {
        use rustix::fd::AsFd;
        (self.block && self.direct).then(|| self.fd.as_fd())
    }
}
