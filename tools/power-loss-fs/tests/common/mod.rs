//! Helpers shared by the tests: scratch directories and mounting (or a loud
//! skip where FUSE is unavailable).
#![allow(dead_code, reason = "each test file uses a different subset")]
#![allow(unreachable_pub, reason = "a module shared by test binaries, not an API")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test helpers: set-up failures fail the test")]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use snowfall_power_loss_fs::Mounted;

/// A fresh directory under the system's temporary directory, removed when
/// dropped, with `backing/` and `mnt/` inside; and one for copies of the
/// backing directory, in memory (/dev/shm) where there is one, because
/// checking a database reads every page with `O_DIRECT` and syncs, which
/// on a disk makes each check cost a few hundred milliseconds.
pub struct Scratch(PathBuf, PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("power-loss-fs-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["backing", "mnt"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let shm = Path::new("/dev/shm");
        let copy = if shm.is_dir() { shm.join(dir.file_name().unwrap()) } else { dir.join("copy") };
        let _ = std::fs::remove_dir_all(&copy);
        std::fs::create_dir_all(&copy).unwrap();
        Scratch(dir, copy)
    }

    /// The directory holding the durable state.
    pub fn backing(&self) -> PathBuf {
        self.0.join("backing")
    }

    /// The mount point.
    pub fn mnt(&self) -> PathBuf {
        self.0.join("mnt")
    }

    /// A file of the scratch directory, outside the backing directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// A place for a copy of the backing directory.
    pub fn copy(&self) -> PathBuf {
        self.1.clone()
    }

    /// Mounts the emulation of `backing()` on `mnt()`, or says loudly why
    /// not and returns `None`: when /dev/fuse is missing, or (outside CI)
    /// when mounting fails, e.g. without root. With `CI=true`, a failed
    /// mount where /dev/fuse exists fails the test.
    pub fn mount(&self) -> Option<Mounted> {
        if !Path::new("/dev/fuse").exists() {
            eprintln!("SKIPPED: no /dev/fuse here, so the power-loss emulation cannot mount");
            return None;
        }
        match Mounted::mount(&self.backing(), &self.mnt()) {
            Ok(m) => Some(m),
            Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
                panic!("mounting the emulation failed in CI: {e}")
            }
            Err(e) => {
                eprintln!("SKIPPED: mounting the emulation failed (root and /dev/fuse are needed): {e}");
                None
            }
        }
    }

    /// Replaces `copy()` by a copy of `backing()` (regular files only, one
    /// level: a database's two files).
    pub fn copy_backing(&self) -> PathBuf {
        let copy = self.copy();
        std::fs::remove_dir_all(&copy).unwrap();
        std::fs::create_dir(&copy).unwrap();
        for entry in std::fs::read_dir(self.backing()).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
        }
        copy
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        let _ = std::fs::remove_dir_all(&self.1);
    }
}
