//! Helpers for the database's tests.
#![allow(dead_code, unreachable_pub, reason = "each test file uses a different subset")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test helpers: set-up failures fail the test")]

use std::path::PathBuf;
use std::sync::Arc;

use snowfall_buffer::memory::MemoryKind;
use snowfall_db::{Options, Spawn};

/// Background threads from std.
pub struct Threads;

impl Spawn for Threads {
    fn spawn(&self, task: Box<dyn FnOnce() + Send>) -> Result<(), &'static str> {
        std::thread::Builder::new()
            .name("snowfall-bg".into())
            .spawn(task)
            .map(|_| ())
            .map_err(|_| "std::thread::Builder::spawn failed")
    }
}

/// Small settings: a 4 MiB pool (evictions early), a 16 MiB log and a
/// 1 MiB double-write area,
/// checkpoints every 2 MiB of log.
pub fn small() -> Options {
    Options {
        pool_bytes: 4 << 20,
        max_bytes: Some(256 << 20),
        memory: MemoryKind::Madvise,
        log_bytes: 16 << 20,
        double_write_bytes: Some(1 << 20),
        checkpoint_bytes: 2 << 20,
        ..Options::default()
    }
}

/// A fresh path in the temp directory (removed with its log when dropped).
pub struct TempPath(pub PathBuf);

impl TempPath {
    pub fn new(name: &str) -> TempPath {
        let p = std::env::temp_dir().join(format!("snowfall-db-{name}-{}", std::process::id()));
        let t = TempPath(p);
        t.remove();
        t
    }

    pub fn str(&self) -> &str {
        self.0.to_str().unwrap()
    }

    pub fn wal(&self) -> PathBuf {
        PathBuf::from(format!("{}.wal", self.str()))
    }

    fn remove(&self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = std::fs::remove_file(self.wal());
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        self.remove();
    }
}

pub fn threads() -> Option<Arc<dyn Spawn>> {
    Some(Arc::new(Threads))
}

/// An 8-byte big-endian key.
#[allow(clippy::big_endian_bytes, reason = "keys sort like numbers")]
pub fn key(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

/// The number of an 8-byte big-endian key.
#[allow(clippy::big_endian_bytes, reason = "keys sort like numbers")]
pub fn unkey(k: &[u8]) -> u64 {
    u64::from_be_bytes(k.try_into().unwrap_or([0; 8]))
}

/// Runs `work` on the database in file `path` (created with `small()`
/// settings) and then abandons it as a crash would: no close, no last
/// checkpoint, so what `work` wrote since the last checkpoint is in the log
/// only. The database is opened on its files without taking their lock
/// (which an abandoned handle would keep), so the same process can open it
/// again.
pub fn abandoned_on_files(path: &TempPath, work: impl FnOnce(&snowfall_db::Database)) {
    abandoned_on_files_with(path, small(), work);
}

/// As [`abandoned_on_files`], with `options`.
pub fn abandoned_on_files_with(path: &TempPath, options: Options, work: impl FnOnce(&snowfall_db::Database)) {
    use snowfall_buffer::device::{FileDevice, FileOptions};
    let data = FileDevice::open(path.str(), FileOptions::default()).unwrap();
    let log = FileDevice::open(path.wal().to_str().unwrap(), FileOptions::default()).unwrap();
    let db = snowfall_db::Database::open_on(Box::new(data), Box::new(log), path.str(), options).unwrap();
    work(&db);
    // A crash: the files stay as they are (the leaked descriptors hold no lock).
    std::mem::forget(db);
}

/// The bytes of a file.
pub fn bytes(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}
