//! Helpers for the tree's tests.
#![allow(dead_code, unreachable_pub, reason = "each test file uses a different subset")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test helpers: set-up failures fail the test")]

use snowfall_buffer::device::MemoryDevice;
use snowfall_buffer::memory::MemoryKind;
use snowfall_buffer::{BufferManager, Config};

pub const MIB: u64 = 1 << 20;

/// A buffer manager over an in-memory device.
pub fn bm(memory: MemoryKind, pool_mib: u64, virtual_mib: u64) -> BufferManager {
    let device = MemoryDevice::new(virtual_mib * MIB / 4096);
    let config = Config { pool_bytes: pool_mib * MIB, virtual_bytes: virtual_mib * MIB, memory, ..Config::default() };
    BufferManager::open(config, Box::new(device)).unwrap()
}

/// SplitMix64, as the key generator of the benchmarks (`splitmix64(i)`).
pub fn splitmix64(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A big-endian key, so keys sort like the numbers.
#[allow(clippy::big_endian_bytes, reason = "keys sort like numbers")]
pub fn key(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}
