//! Buffer-manager settings, validated once at open ("sizes fixed at open").

use crate::error::ConfigError;
use crate::memory::MemoryKind;
use crate::page::PAGE_SIZE;

/// How a buffer manager is sized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Physical memory for cached pages: at most this many bytes of pages
    /// are resident at any time.
    pub pool_bytes: u64,
    /// The virtual reservation: the largest database this buffer manager
    /// can address. Costs address space and page tables only where used.
    pub virtual_bytes: u64,
    /// Pages evicted together (one write batch, one release call).
    pub eviction_batch: usize,
    /// Which memory backend.
    pub memory: MemoryKind,
    /// exmap interfaces (threads acting on the pool at once); 0: one per
    /// available CPU.
    pub exmap_interfaces: u16,
    /// Load pages with exmap's own READ when the database is a block device
    /// opened `O_DIRECT` (one system call instead of ALLOC + `pread`).
    /// Regular files always use ALLOC + `pread`.
    pub exmap_read: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            pool_bytes: 1 << 30,
            virtual_bytes: 64 << 30,
            eviction_batch: DEFAULT_EVICTION_BATCH,
            memory: MemoryKind::Auto,
            exmap_interfaces: 0,
            exmap_read: true,
        }
    }
}

/// The default eviction batch, as in vmcache.
pub const DEFAULT_EVICTION_BATCH: usize = 64;
/// The largest eviction batch (one exmap interface page holds 512 entries).
pub const MAX_EVICTION_BATCH: usize = 512;

impl Config {
    /// Pool size in pages.
    pub const fn pool_pages(&self) -> u64 {
        self.pool_bytes / PAGE_SIZE as u64
    }

    /// Reservation size in pages.
    pub const fn virtual_pages(&self) -> u64 {
        self.virtual_bytes / PAGE_SIZE as u64
    }

    /// exmap interfaces to set up (resolving 0 to the available CPUs).
    pub fn exmap_interfaces(&self) -> u16 {
        match self.exmap_interfaces {
            0 => snowfall_sys::thread::available_cpus().min(u32::from(snowfall_sys::exmap::MAX_INTERFACES)) as u16,
            n => n,
        }
    }

    /// The smallest pool that still leaves room to evict in batches while
    /// other threads hold pages.
    pub const fn min_pool_pages(&self) -> u64 {
        4 * self.eviction_batch as u64
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (setting, bytes) in [("pool_bytes", self.pool_bytes), ("virtual_bytes", self.virtual_bytes)] {
            if bytes % PAGE_SIZE as u64 != 0 {
                return Err(ConfigError::NotPageMultiple { setting, bytes });
            }
        }
        if !(1..=MAX_EVICTION_BATCH).contains(&self.eviction_batch) {
            return Err(ConfigError::BadEvictionBatch { batch: self.eviction_batch });
        }
        if self.exmap_interfaces > snowfall_sys::exmap::MAX_INTERFACES {
            return Err(ConfigError::TooManyExmapInterfaces { interfaces: self.exmap_interfaces });
        }
        if self.pool_pages() < self.min_pool_pages() {
            return Err(ConfigError::PoolTooSmall { pages: self.pool_pages(), min_pages: self.min_pool_pages() });
        }
        if self.virtual_bytes < self.pool_bytes {
            return Err(ConfigError::VirtualSmallerThanPool {
                virtual_bytes: self.virtual_bytes,
                pool_bytes: self.pool_bytes,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_sizes_get_typed_errors() {
        let ok = Config { pool_bytes: 1 << 20, virtual_bytes: 1 << 24, ..Config::default() };
        assert_eq!(ok.validate(), Ok(()));
        let c = Config { pool_bytes: (1 << 20) + 1, ..ok };
        assert_eq!(c.validate(), Err(ConfigError::NotPageMultiple { setting: "pool_bytes", bytes: (1 << 20) + 1 }));
        let c = Config { pool_bytes: 64 * 4096, ..ok };
        assert_eq!(c.validate(), Err(ConfigError::PoolTooSmall { pages: 64, min_pages: 256 }));
        let c = Config { eviction_batch: 0, ..ok };
        assert_eq!(c.validate(), Err(ConfigError::BadEvictionBatch { batch: 0 }));
        let c = Config { virtual_bytes: 1 << 19, ..ok };
        assert!(matches!(c.validate(), Err(ConfigError::VirtualSmallerThanPool { .. })));
    }
}
