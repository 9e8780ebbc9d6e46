//! The FUSE side: each kernel request becomes one operation on the state,
//! under one lock (the session runs a single thread, so requests are
//! handled one at a time in the order the kernel sends them).
//!
//! The kernel is left to do what it does locally for FUSE: `flock` and POSIX
//! locks (this file system does not claim them), permission checks (`root`
//! only, FUSE's default), and no write-back cache (not negotiated), so every
//! `write` reaches us before it returns, and an `fsync` comes after them.

use std::ffi::OsStr;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner, OpenFlags,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs,
    ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use crate::state::{Inode, Node, ROOT, State};

/// How long the kernel may cache names and attributes. Nothing but this
/// mount changes them while it is mounted, and a power loss unmounts.
const TTL: Duration = Duration::from_secs(1);

/// The file system as the session sees it.
#[derive(Debug)]
pub(crate) struct PowerLossFs {
    pub(crate) state: Arc<Mutex<State>>,
}

impl PowerLossFs {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a torn update that
        // matters more than the panic itself, which fails the test anyway.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The errno for a failed operation; failures of the backing file system
/// (no errno of their own) become EIO and are printed, since the program on
/// the mount sees only the EIO.
fn errno(e: io::Error) -> Errno {
    if e.raw_os_error().is_none() {
        eprintln!("power-loss-fs: {e}");
    }
    Errno::from(e)
}

fn attr(ino: u64, inode: &Inode) -> FileAttr {
    let (kind, size, nlink) = match &inode.node {
        Node::File(content) => (FileType::RegularFile, content.size(), 1),
        Node::Dir(_) => (FileType::Directory, 4096, 2),
    };
    let m = &inode.meta;
    FileAttr {
        ino: INodeNo(ino),
        size,
        blocks: size.div_ceil(512),
        atime: m.atime,
        mtime: m.mtime,
        ctime: m.ctime,
        crtime: m.ctime,
        kind,
        perm: m.perm,
        nlink,
        uid: m.uid,
        gid: m.gid,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

fn attr_of(state: &State, ino: u64) -> io::Result<FileAttr> {
    Ok(attr(ino, state.inode(ino)?))
}

fn time(t: TimeOrNow) -> SystemTime {
    match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => SystemTime::now(),
    }
}

fn perm(mode: u32, umask: u32) -> u16 {
    (mode & !umask & 0o7777) as u16
}

impl Filesystem for PowerLossFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let state = self.state();
        match state.lookup(parent.0, name).and_then(|ino| attr_of(&state, ino)) {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match attr_of(&self.state(), ino.0) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut state = self.state();
        let result = (|| {
            if let Some(size) = size {
                state.set_size(ino.0, size)?;
            }
            let meta = state.meta_mut(ino.0)?;
            if let Some(mode) = mode {
                meta.perm = perm(mode, 0);
            }
            meta.uid = uid.unwrap_or(meta.uid);
            meta.gid = gid.unwrap_or(meta.gid);
            meta.atime = atime.map_or(meta.atime, time);
            meta.mtime = mtime.map_or(meta.mtime, time);
            meta.ctime = ctime.unwrap_or(meta.ctime);
            attr_of(&state, ino.0)
        })();
        match result {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn mkdir(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, umask: u32, reply: ReplyEntry) {
        let mut state = self.state();
        match state.mkdir(parent.0, name, perm(mode, umask), req.uid(), req.gid()).and_then(|i| attr_of(&state, i)) {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.state().unlink(parent.0, name) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.state().rmdir(parent.0, name) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if flags.intersects(RenameFlags::RENAME_EXCHANGE | RenameFlags::RENAME_WHITEOUT) {
            return reply.error(Errno::EINVAL);
        }
        let no_replace = flags.contains(RenameFlags::RENAME_NOREPLACE);
        match self.state().rename(parent.0, name, newparent.0, newname, no_replace) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        // Stateless handles: every operation names the inode.
        match self.state().content(ino.0) {
            Ok(_) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.state().read(ino.0, offset, size as usize) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        // O_SYNC/O_DSYNC writes are not made durable here: SnowfallDB never
        // asks for them, and the model stays "durable only after fsync".
        match self.state().write(ino.0, offset, data) {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn flush(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _lock_owner: LockOwner, reply: ReplyEmpty) {
        // close() makes nothing durable.
        reply.ok();
    }

    fn fsync(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        // fdatasync makes the size durable too (it is needed to read the
        // data back), so both are the same here.
        match self.state().fsync_file(ino.0) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.state().dir(ino.0) {
            Ok(_) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let state = self.state();
        let listing = (|| {
            let dir = state.dir(ino.0)?;
            let mut entries = vec![
                (ino.0, FileType::Directory, OsStr::new(".")),
                (dir.parent, FileType::Directory, OsStr::new("..")),
            ];
            for (name, &child) in &dir.entries {
                let kind = match state.inode(child)?.node {
                    Node::File(_) => FileType::RegularFile,
                    Node::Dir(_) => FileType::Directory,
                };
                entries.push((child, kind, name.as_os_str()));
            }
            Ok::<_, io::Error>(entries)
        })();
        match listing {
            Ok(entries) => {
                // An entry's offset is that of the next one to read.
                for (i, (child, kind, name)) in entries.into_iter().enumerate().skip(offset as usize) {
                    if reply.add(INodeNo(child), i as u64 + 1, kind, name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn fsyncdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        match self.state().fsync_dir(ino.0) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        // The backing file system's numbers (free space is what matters).
        match nix::sys::statvfs::statvfs(self.state().backing_root()) {
            Ok(s) => reply.statfs(
                s.blocks(),
                s.blocks_free(),
                s.blocks_available(),
                s.files(),
                s.files_free(),
                s.block_size() as u32,
                s.name_max() as u32,
                s.fragment_size() as u32,
            ),
            Err(e) => reply.error(errno(e.into())),
        }
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        // Only the mounting user (root) gets in at all (FUSE's default).
        reply.ok();
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let mut state = self.state();
        let created =
            state.create_file(parent.0, name, perm(mode, umask), req.uid(), req.gid()).and_then(|i| attr_of(&state, i));
        match created {
            Ok(attr) => reply.created(&TTL, &attr, Generation(0), FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _length: u64,
        _mode: i32,
        reply: ReplyEmpty,
    ) {
        // Not modelled (SnowfallDB does not use it); programs fall back.
        reply.error(Errno::EOPNOTSUPP);
    }
}

// The state numbers its root as FUSE does.
const _: () = assert!(ROOT == INodeNo::ROOT.0);
