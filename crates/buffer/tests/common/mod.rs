//! Helpers shared by the buffer manager's integration tests.
#![allow(dead_code, unreachable_pub, reason = "each test file uses a different subset")]
#![allow(clippy::expect_used, reason = "test helpers: set-up failures fail the test")]

use std::path::PathBuf;
use std::sync::Arc;

use snowfall_buffer::device::{FileDevice, FileOptions, MemoryDevice};
use snowfall_buffer::memory::MemoryKind;
use snowfall_buffer::scenario::Parallel;
use snowfall_buffer::{BufferManager, Config, PAGE_SIZE};

/// The backends every CI machine can run: madvise, and exmap's semantics
/// emulated in user space (released pages fault).
pub const BACKENDS: [MemoryKind; 2] = [MemoryKind::Madvise, MemoryKind::EmulatedExmap];

/// Runs work on std threads.
pub struct Threads;

impl Parallel for Threads {
    fn run(&self, threads: usize, work: &(dyn Fn(usize) + Sync)) {
        std::thread::scope(|s| {
            for t in 0..threads {
                s.spawn(move || work(t));
            }
        });
    }
}

pub const MIB: u64 = 1 << 20;

/// A madvise configuration with a pool of `pool_mib` MiB and room for `virtual_mib` MiB.
pub fn config(pool_mib: u64, virtual_mib: u64) -> Config {
    config_with(MemoryKind::Madvise, pool_mib, virtual_mib)
}

/// The same with another memory backend.
pub fn config_with(memory: MemoryKind, pool_mib: u64, virtual_mib: u64) -> Config {
    Config { pool_bytes: pool_mib * MIB, virtual_bytes: virtual_mib * MIB, memory, ..Config::default() }
}

/// A buffer manager over a shared memory device the test keeps a handle to.
pub fn memory_bm(pool_mib: u64, virtual_mib: u64) -> (BufferManager, Arc<MemoryDevice>) {
    memory_bm_with(MemoryKind::Madvise, pool_mib, virtual_mib)
}

/// The same with another memory backend.
pub fn memory_bm_with(memory: MemoryKind, pool_mib: u64, virtual_mib: u64) -> (BufferManager, Arc<MemoryDevice>) {
    let device = Arc::new(MemoryDevice::new(virtual_mib * MIB / PAGE_SIZE as u64));
    let bm = BufferManager::open(config_with(memory, pool_mib, virtual_mib), Box::new(device.clone())).expect("open");
    (bm, device)
}

/// A fresh file path under the target directory's temp area, removed on drop.
pub struct TempFile(pub PathBuf);

impl TempFile {
    pub fn new(name: &str) -> TempFile {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let path = dir.join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        TempFile(path)
    }

    pub fn open(&self) -> FileDevice {
        FileDevice::open(self.0.to_str().expect("utf-8 path"), FileOptions::default()).expect("open the file device")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The seed: `SNOWFALL_SEED` (decimal or 0x hex) if set, else `default`.
pub fn seed(default: u64) -> u64 {
    match std::env::var("SNOWFALL_SEED") {
        Ok(s) => s
            .strip_prefix("0x")
            .map_or_else(|| s.parse().ok(), |h| u64::from_str_radix(h, 16).ok())
            .expect("SNOWFALL_SEED must be a number"),
        Err(_) => default,
    }
}
