//! The emulated file system's state: inodes, each directory's entries as
//! programs see them and as of its last fsync, and what a directory fsync
//! and a power loss do.
//!
//! The backing directory always holds exactly the durable state: a name is
//! there only once the directory holding it was fsynced (and that
//! directory's own name is durable, up to the root), and each file there
//! holds the content of its last file fsync. So after a power loss the
//! backing directory *is* the disk after the reboot. A file whose name is
//! not durable yet keeps its durable content in an unnamed `O_TMPFILE`
//! inode on the backing file system, linked in (`linkat` through
//! `/proc/self/fd`) when a directory fsync makes its name durable.
//!
//! Simplifications, all refused rather than modelled loosely: no hard links,
//! symbolic links or special files; `rename` only within one directory
//! (`EXDEV` across directories, as between two file systems), so that an
//! inode has at most one durable name and one name in use.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, AtFlags, OFlag};
use nix::sys::stat::Mode;

use crate::SplitMix64;
use crate::content::{Content, Torn};

/// The root directory's inode number (FUSE's).
pub(crate) const ROOT: u64 = 1;

/// Where a directory fsync parks an entry it moves or removes, for the
/// moment between taking the old name away and giving the new one.
const PARKED_PREFIX: &str = ".power-loss-fs-parked-";

/// Ownership, permissions and times: kept as programs set them, not part of
/// the power-loss model.
#[derive(Clone, Debug)]
pub(crate) struct Meta {
    pub(crate) perm: u16,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) atime: SystemTime,
    pub(crate) mtime: SystemTime,
    pub(crate) ctime: SystemTime,
}

impl Meta {
    fn new(perm: u16, uid: u32, gid: u32) -> Meta {
        let now = SystemTime::now();
        Meta { perm, uid, gid, atime: now, mtime: now, ctime: now }
    }

    fn of(metadata: &std::fs::Metadata) -> Meta {
        let time = |secs: i64, nanos: i64| {
            UNIX_EPOCH + Duration::new(secs.max(0).unsigned_abs(), nanos.clamp(0, 999_999_999) as u32)
        };
        Meta {
            perm: (metadata.mode() & 0o7777) as u16,
            uid: metadata.uid(),
            gid: metadata.gid(),
            atime: time(metadata.atime(), metadata.atime_nsec()),
            mtime: time(metadata.mtime(), metadata.mtime_nsec()),
            ctime: time(metadata.ctime(), metadata.ctime_nsec()),
        }
    }

    fn touch(&mut self) {
        let now = SystemTime::now();
        self.mtime = now;
        self.ctime = now;
    }
}

/// A directory.
#[derive(Debug)]
pub(crate) struct Dir {
    /// Entries as programs see them now.
    pub(crate) entries: BTreeMap<OsString, u64>,
    /// Entries as of this directory's last fsync.
    durable: BTreeMap<OsString, u64>,
    /// The directory and name whose durable entries name this one.
    durable_name: Option<(u64, OsString)>,
    /// The parent as programs see it now (for `..`).
    pub(crate) parent: u64,
}

/// A file or a directory.
#[derive(Debug)]
pub(crate) enum Node {
    File(Content),
    Dir(Dir),
}

/// An inode.
#[derive(Debug)]
pub(crate) struct Inode {
    pub(crate) meta: Meta,
    pub(crate) node: Node,
}

/// What happens to unsynced state at a power loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerLoss {
    /// Every unsynced write, size change and directory change is lost.
    Drop,
    /// Unsynced directory changes are lost; of each file whose name is
    /// durable, each unsynced 512-byte sector and an unsynced size change
    /// independently survive or not (seeded).
    Torn {
        /// The seed choosing the survivors.
        seed: u64,
    },
}

/// What a power loss threw away.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Files with unsynced writes or size changes.
    pub files_unsynced: u64,
    /// Bytes of unsynced data, in whole 4 KiB pages.
    pub bytes_unsynced: u64,
    /// Directories whose entries changed since their last fsync.
    pub dirs_unsynced: u64,
    /// With `PowerLoss::Torn`: unsynced sectors that survived.
    pub sectors_kept: u64,
    /// With `PowerLoss::Torn`: unsynced size changes that survived.
    pub sizes_kept: u64,
}

/// The whole file system.
#[derive(Debug)]
pub(crate) struct State {
    root: PathBuf,
    inodes: HashMap<u64, Inode>,
    next_ino: u64,
}

fn errno(e: Errno) -> io::Error {
    e.into()
}

fn with_path(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

impl State {
    /// The state of `backing`: everything in it is durable.
    pub(crate) fn load(backing: &Path) -> io::Result<State> {
        let root = backing.canonicalize().map_err(|e| with_path(backing, e))?;
        let metadata = root.metadata().map_err(|e| with_path(&root, e))?;
        if !metadata.is_dir() {
            return Err(with_path(&root, errno(Errno::ENOTDIR)));
        }
        let dir = Dir { entries: BTreeMap::new(), durable: BTreeMap::new(), durable_name: None, parent: ROOT };
        let mut state = State { root: root.clone(), inodes: HashMap::new(), next_ino: ROOT + 1 };
        state.inodes.insert(ROOT, Inode { meta: Meta::of(&metadata), node: Node::Dir(dir) });
        // Unnamed files need O_TMPFILE on the backing file system: say so now
        // rather than at the first create.
        drop(state.tmpfile(0o600).map_err(|e| {
            io::Error::new(e.kind(), format!("{}: O_TMPFILE (needed for files not yet durable): {e}", root.display()))
        })?);
        state.scan(ROOT, &root)?;
        Ok(state)
    }

    fn scan(&mut self, dir: u64, path: &Path) -> io::Result<()> {
        for entry in std::fs::read_dir(path).map_err(|e| with_path(path, e))? {
            let entry = entry?;
            let (name, path) = (entry.file_name(), entry.path());
            if name.as_encoded_bytes().starts_with(PARKED_PREFIX.as_bytes()) {
                continue; // left by a crash of the real machine mid-fsync
            }
            let metadata = entry.metadata().map_err(|e| with_path(&path, e))?;
            let node = if metadata.is_dir() {
                Node::Dir(Dir {
                    entries: BTreeMap::new(),
                    durable: BTreeMap::new(),
                    durable_name: Some((dir, name.clone())),
                    parent: dir,
                })
            } else if metadata.is_file() {
                let file = File::options().read(true).write(true).open(&path).map_err(|e| with_path(&path, e))?;
                Node::File(Content::new(file)?)
            } else {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("{}: only regular files and directories are supported", path.display()),
                ));
            };
            let is_dir = matches!(node, Node::Dir(_));
            let ino = self.add(Inode { meta: Meta::of(&metadata), node });
            let parent = self.dir_mut(dir)?;
            parent.entries.insert(name.clone(), ino);
            parent.durable.insert(name, ino);
            if is_dir {
                self.scan(ino, &path)?;
            }
        }
        Ok(())
    }

    fn add(&mut self, inode: Inode) -> u64 {
        let ino = self.next_ino;
        self.next_ino += 1;
        self.inodes.insert(ino, inode);
        ino
    }

    /// A new unnamed inode on the backing file system.
    fn tmpfile(&self, perm: u16) -> io::Result<File> {
        let flags = OFlag::O_TMPFILE | OFlag::O_RDWR | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::open(&self.root, flags, Mode::from_bits_truncate(perm.into()))?;
        Ok(File::from(fd))
    }

    pub(crate) fn backing_root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn inode(&self, ino: u64) -> io::Result<&Inode> {
        self.inodes.get(&ino).ok_or_else(|| errno(Errno::ENOENT))
    }

    fn inode_mut(&mut self, ino: u64) -> io::Result<&mut Inode> {
        self.inodes.get_mut(&ino).ok_or_else(|| errno(Errno::ENOENT))
    }

    pub(crate) fn meta_mut(&mut self, ino: u64) -> io::Result<&mut Meta> {
        Ok(&mut self.inode_mut(ino)?.meta)
    }

    pub(crate) fn dir(&self, ino: u64) -> io::Result<&Dir> {
        match &self.inode(ino)?.node {
            Node::Dir(d) => Ok(d),
            Node::File(_) => Err(errno(Errno::ENOTDIR)),
        }
    }

    fn dir_mut(&mut self, ino: u64) -> io::Result<&mut Dir> {
        match &mut self.inode_mut(ino)?.node {
            Node::Dir(d) => Ok(d),
            Node::File(_) => Err(errno(Errno::ENOTDIR)),
        }
    }

    pub(crate) fn content(&self, ino: u64) -> io::Result<&Content> {
        match &self.inode(ino)?.node {
            Node::File(c) => Ok(c),
            Node::Dir(_) => Err(errno(Errno::EISDIR)),
        }
    }

    fn content_mut(&mut self, ino: u64) -> io::Result<&mut Content> {
        match &mut self.inode_mut(ino)?.node {
            Node::File(c) => Ok(c),
            Node::Dir(_) => Err(errno(Errno::EISDIR)),
        }
    }

    pub(crate) fn lookup(&self, parent: u64, name: &OsStr) -> io::Result<u64> {
        self.dir(parent)?.entries.get(name).copied().ok_or_else(|| errno(Errno::ENOENT))
    }

    fn check_new_name(&self, parent: u64, name: &OsStr) -> io::Result<()> {
        if self.dir(parent)?.entries.contains_key(name) {
            return Err(errno(Errno::EEXIST));
        }
        if name.as_encoded_bytes().starts_with(PARKED_PREFIX.as_bytes()) {
            return Err(errno(Errno::EINVAL)); // reserved for directory fsyncs
        }
        Ok(())
    }

    /// A new empty file `name` in `parent`; nothing of it durable yet.
    pub(crate) fn create_file(&mut self, parent: u64, name: &OsStr, perm: u16, uid: u32, gid: u32) -> io::Result<u64> {
        self.check_new_name(parent, name)?;
        let content = Content::new(self.tmpfile(perm)?)?;
        let ino = self.add(Inode { meta: Meta::new(perm, uid, gid), node: Node::File(content) });
        self.link(parent, name, ino)?;
        Ok(ino)
    }

    /// A new empty directory `name` in `parent`; nothing of it durable yet.
    pub(crate) fn mkdir(&mut self, parent: u64, name: &OsStr, perm: u16, uid: u32, gid: u32) -> io::Result<u64> {
        self.check_new_name(parent, name)?;
        let dir = Dir { entries: BTreeMap::new(), durable: BTreeMap::new(), durable_name: None, parent };
        let ino = self.add(Inode { meta: Meta::new(perm, uid, gid), node: Node::Dir(dir) });
        self.link(parent, name, ino)?;
        Ok(ino)
    }

    fn link(&mut self, parent: u64, name: &OsStr, ino: u64) -> io::Result<()> {
        self.dir_mut(parent)?.entries.insert(name.to_os_string(), ino);
        self.meta_mut(parent)?.touch();
        Ok(())
    }

    /// Removes file `name` from `parent` (an open file stays readable).
    pub(crate) fn unlink(&mut self, parent: u64, name: &OsStr) -> io::Result<()> {
        let ino = self.lookup(parent, name)?;
        if let Node::Dir(_) = self.inode(ino)?.node {
            return Err(errno(Errno::EISDIR));
        }
        self.dir_mut(parent)?.entries.remove(name);
        self.meta_mut(parent)?.touch();
        Ok(())
    }

    /// Removes empty directory `name` from `parent`.
    pub(crate) fn rmdir(&mut self, parent: u64, name: &OsStr) -> io::Result<()> {
        let ino = self.lookup(parent, name)?;
        if !self.dir(ino)?.entries.is_empty() {
            return Err(errno(Errno::ENOTEMPTY));
        }
        self.dir_mut(parent)?.entries.remove(name);
        self.meta_mut(parent)?.touch();
        Ok(())
    }

    /// Renames within one directory (replacing a target as POSIX says).
    pub(crate) fn rename(
        &mut self,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
        no_replace: bool,
    ) -> io::Result<()> {
        if parent != new_parent {
            // Moving an inode between directories could give it two durable
            // names (one per directory fsync); refused like a cross-device
            // rename, which programs already handle.
            return Err(errno(Errno::EXDEV));
        }
        let ino = self.lookup(parent, name)?;
        if new_name.as_encoded_bytes().starts_with(PARKED_PREFIX.as_bytes()) {
            return Err(errno(Errno::EINVAL));
        }
        if name == new_name {
            return Ok(());
        }
        if let Ok(target) = self.lookup(parent, new_name) {
            if no_replace {
                return Err(errno(Errno::EEXIST));
            }
            match (&self.inode(ino)?.node, &self.inode(target)?.node) {
                (Node::Dir(_), Node::File(_)) => return Err(errno(Errno::ENOTDIR)),
                (Node::File(_), Node::Dir(_)) => return Err(errno(Errno::EISDIR)),
                (Node::Dir(_), Node::Dir(d)) if !d.entries.is_empty() => return Err(errno(Errno::ENOTEMPTY)),
                _ => {}
            }
        }
        let dir = self.dir_mut(parent)?;
        dir.entries.remove(name);
        dir.entries.insert(new_name.to_os_string(), ino);
        self.meta_mut(parent)?.touch();
        Ok(())
    }

    pub(crate) fn read(&self, ino: u64, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        self.content(ino)?.read(offset, len)
    }

    pub(crate) fn write(&mut self, ino: u64, offset: u64, data: &[u8]) -> io::Result<()> {
        self.content_mut(ino)?.write(offset, data)?;
        self.meta_mut(ino)?.touch();
        Ok(())
    }

    pub(crate) fn set_size(&mut self, ino: u64, size: u64) -> io::Result<()> {
        self.content_mut(ino)?.set_size(size)?;
        self.meta_mut(ino)?.touch();
        Ok(())
    }

    /// `fsync`/`fdatasync` of a file: its content (data and size) becomes
    /// durable. Not its name: that takes an fsync of its directory.
    pub(crate) fn fsync_file(&mut self, ino: u64) -> io::Result<()> {
        self.content_mut(ino)?.sync()
    }

    /// `fsync` of a directory: its entries as they are now become durable
    /// (each entry's own content is only as durable as its last fsync).
    pub(crate) fn fsync_dir(&mut self, ino: u64) -> io::Result<()> {
        let dir = self.dir(ino)?;
        let (old, new) = (dir.durable.clone(), dir.entries.clone());
        if old == new {
            return Ok(());
        }
        // A failure of the backing file system here (EIO to the caller)
        // leaves the emulation undefined; the test using it fails anyway.
        if let Some(path) = self.backing_path(ino) {
            self.apply(&path, &old, &new)?;
        }
        self.dir_mut(ino)?.durable = new.clone();
        for (name, child) in &old {
            if new.get(name) != Some(child)
                && let Ok(d) = self.dir_mut(*child)
                && d.durable_name.as_ref().is_some_and(|(p, n)| *p == ino && n == name)
            {
                d.durable_name = None;
            }
        }
        for (name, child) in &new {
            if old.get(name) != Some(child)
                && let Ok(d) = self.dir_mut(*child)
            {
                d.durable_name = Some((ino, name.clone()));
            }
        }
        Ok(())
    }

    /// The backing path of directory `ino` if it is reachable from the root
    /// through durable entries (only then does it exist in the backing
    /// directory).
    fn backing_path(&self, ino: u64) -> Option<PathBuf> {
        let mut names = Vec::new();
        let mut at = ino;
        // Bounded: a chain longer than the number of inodes would be a cycle.
        for _ in 0..=self.inodes.len() {
            if at == ROOT {
                let mut path = self.root.clone();
                path.extend(names.iter().rev());
                return Some(path);
            }
            let (parent, name) = self.dir(at).ok()?.durable_name.clone()?;
            names.push(name);
            at = parent;
        }
        None
    }

    /// Changes the backing directory `path` from entries `old` to `new`:
    /// entries that go or move are parked under a reserved name first, so
    /// that swaps and replacements work, then every new name is placed, then
    /// what is still parked is removed.
    fn apply(&self, path: &Path, old: &BTreeMap<OsString, u64>, new: &BTreeMap<OsString, u64>) -> io::Result<()> {
        let mut parked = HashMap::new();
        for (name, ino) in old {
            if new.get(name) != Some(ino) {
                let (from, to) = (path.join(name), path.join(format!("{PARKED_PREFIX}{ino}")));
                std::fs::rename(&from, &to).map_err(|e| with_path(&from, e))?;
                parked.insert(*ino, to);
            }
        }
        for (name, ino) in new {
            if old.get(name) != Some(ino) {
                let target = path.join(name);
                match parked.remove(ino) {
                    Some(from) => std::fs::rename(&from, &target).map_err(|e| with_path(&from, e))?,
                    None => self.place(*ino, &target)?,
                }
            }
        }
        for (ino, path) in parked {
            let removed = match self.inode(ino)?.node {
                // Its files' inodes live on while open (and stay unreachable).
                Node::Dir(_) => std::fs::remove_dir_all(&path),
                Node::File(_) => std::fs::remove_file(&path),
            };
            removed.map_err(|e| with_path(&path, e))?;
        }
        Ok(())
    }

    /// Gives inode `ino`, which has no backing name, the name `target`: a
    /// file's unnamed inode is linked in; a directory is created with its
    /// durable entries, recursively.
    fn place(&self, ino: u64, target: &Path) -> io::Result<()> {
        let inode = self.inode(ino)?;
        match &inode.node {
            Node::File(content) => {
                let fd = format!("/proc/self/fd/{}", content.backing().as_raw_fd());
                nix::unistd::linkat(AT_FDCWD, fd.as_str(), AT_FDCWD, target, AtFlags::AT_SYMLINK_FOLLOW)
                    .map_err(|e| with_path(target, e.into()))
            }
            Node::Dir(dir) => {
                std::fs::DirBuilder::new()
                    .mode(inode.meta.perm.into())
                    .create(target)
                    .map_err(|e| with_path(target, e))?;
                for (name, child) in &dir.durable {
                    self.place(*child, &target.join(name))?;
                }
                Ok(())
            }
        }
    }

    /// Makes everything durable, as a clean unmount does: directories from
    /// the root down (so that each is reachable when its entries are
    /// placed), then every file.
    pub(crate) fn sync_all(&mut self) -> io::Result<()> {
        let mut queue = VecDeque::from([ROOT]);
        // Bounded by the number of directories: each is queued once.
        while let Some(dir) = queue.pop_front() {
            self.fsync_dir(dir)?;
            for &child in self.dir(dir)?.entries.values() {
                if let Node::Dir(_) = self.inode(child)?.node {
                    queue.push_back(child);
                }
            }
        }
        for inode in self.inodes.values_mut() {
            if let Node::File(content) = &mut inode.node {
                content.sync()?;
            }
        }
        Ok(())
    }

    /// Power fails: what is unsynced is lost (or, torn, partly written to
    /// the backing directory). The caller drops this state afterwards; the
    /// backing directory holds what a reboot would find.
    pub(crate) fn power_loss(&mut self, how: PowerLoss) -> io::Result<Report> {
        let mut report = Report::default();
        let mut rng = match how {
            PowerLoss::Drop => None,
            PowerLoss::Torn { seed } => Some(SplitMix64(seed)),
        };
        // In inode order, so that a seed always tears the same way.
        let mut inos: Vec<u64> = self.inodes.keys().copied().collect();
        inos.sort_unstable();
        for ino in inos {
            match &mut self.inode_mut(ino)?.node {
                Node::Dir(dir) => report.dirs_unsynced += u64::from(dir.entries != dir.durable),
                Node::File(content) if !content.is_synced() => {
                    report.files_unsynced += 1;
                    report.bytes_unsynced += content.unsynced_bytes();
                    // Only files with a durable name exist after the reboot.
                    if let Some(rng) = &mut rng
                        && content.backing().metadata()?.nlink() > 0
                    {
                        let Torn { sectors_kept, size_kept, .. } = content.tear(rng)?;
                        report.sectors_kept += sectors_kept;
                        report.sizes_kept += u64::from(size_kept);
                    }
                }
                Node::File(_) => {}
            }
        }
        Ok(report)
    }
}
