//! How a database is opened, and when writes are durable.

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::time::Duration;

use snowfall_buffer::memory::MemoryKind;

/// When a write is acknowledged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// Acknowledged once its log record is on disk (`fdatasync` done).
    /// Concurrent writers share syncs (group commit).
    #[default]
    Sync,
    /// Acknowledged at once; its log record is synced within
    /// [`Options::group_interval`] by the background flusher (so a crash
    /// loses at most that interval's acknowledged writes). Without a
    /// [`Spawn`] to run the flusher, `Group` writes are synced like `Sync`.
    Group,
    /// Acknowledged at once; synced whenever the log is flushed for other
    /// reasons (a full log buffer, a `Sync` write, a checkpoint, close). A
    /// crash may lose any of them, never a part of one.
    None,
}

/// Runs a background task on a thread of the embedder's choosing (the
/// engine is `no_std`: it does not create threads itself).
pub trait Spawn: Send + Sync {
    /// Starts `task` on a new thread; the error says why it could not
    /// (it becomes [`Error::Thread`](crate::Error::Thread)).
    fn spawn(&self, task: Box<dyn FnOnce() + Send>) -> Result<(), &'static str>;
}

/// How to open a database.
#[derive(Clone)]
pub struct Options {
    /// Create the database if the file is missing or empty.
    pub create: bool,
    /// Memory for cached pages.
    pub pool_bytes: u64,
    /// The largest the database may grow in this open: its virtual
    /// reservation, which is reserved address space, not memory. `None`
    /// (the default) chooses it from the file: the larger of 64 GiB and
    /// twice the file, and where the address space is limited (`ulimit -v`,
    /// strict overcommit) the largest that can be reserved down to the file
    /// plus a quarter (at least the pool plus 64 MiB). A database that
    /// reaches it gets [`Error::Buffer`](crate::Error::Buffer) `OutOfSpace`
    /// on writes until it is reopened with more.
    pub max_bytes: Option<u64>,
    /// The memory backend.
    pub memory: MemoryKind,
    /// Size of the write-ahead log's ring (fixed when the database is
    /// created).
    pub log_bytes: u64,
    /// Size of the double-write area at the end of the log file, where
    /// pages are copied before they are overwritten so that a crash
    /// tearing one is repaired (fixed when the database is created; at
    /// least 1 MiB). `None` (the default): a quarter of `log_bytes`, at
    /// least 1 MiB. A page is copied at most once between two checkpoints
    /// if the area holds every page written back between them; a smaller
    /// area is emptied (a sync of the data file) and starts over, copying
    /// pages again.
    pub double_write_bytes: Option<u64>,
    /// About the most log a crash makes recovery replay. Pages are written
    /// back once their oldest unwritten change is about this old, a page
    /// changed often no more often than that, and the checkpoint's redo
    /// point follows the oldest change left (`checkpoint.rs`). Larger: less
    /// written, longer recovery. Without a background thread, writers do
    /// that work inline, a step at a time. At most about half the log.
    pub checkpoint_bytes: u64,
    /// Take a full checkpoint once this long has passed since the last
    /// install, if anything was written (bounds recovery time under a load
    /// too light for the continuous checkpoint to install cuts). Without a
    /// background thread, writers look at the clock every 64th write.
    pub checkpoint_interval: Duration,
    /// What old values kept for open snapshots (`ReadTx`, `WriteTx`) may
    /// hold: their memory, plus the disk pages of replaced large values
    /// (kept from reuse while a snapshot may read them). Past it, the
    /// oldest snapshots expire ([`Error::SnapshotTooOld`](crate::Error::SnapshotTooOld))
    /// and their versions are reclaimed; nothing else fails.
    pub version_bytes: u64,
    /// The default durability of writes.
    pub durability: Durability,
    /// The longest a `Group` write waits to be synced.
    pub group_interval: Duration,
    /// Where the background flusher runs (`None`: no background thread).
    pub spawn: Option<Arc<dyn Spawn>>,
    /// Open without writing anything to the files (opened `O_RDONLY`, with
    /// a shared lock, so several read-only opens may run at once). Recovery
    /// still replays the log, into memory only. Every write gets
    /// [`Error::ReadOnly`](crate::Error::ReadOnly).
    pub read_only: bool,
    /// Open even if the log has lost records it had made durable (it is
    /// shorter than its ring, or damaged other than by a torn tail), which
    /// is otherwise [`Error::LogTruncated`](crate::Error::LogTruncated) or
    /// [`Error::LogCorrupt`](crate::Error::LogCorrupt). Recovery then ends
    /// the log before the damage: the writes in and after it are lost, and
    /// pages written back from them may remain, so run
    /// [`Database::check_integrity`](crate::Database::check_integrity)
    /// after. For salvage, never by default.
    pub accept_log_loss: bool,
}

impl core::fmt::Debug for Options {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Options")
            .field("create", &self.create)
            .field("pool_bytes", &self.pool_bytes)
            .field("max_bytes", &self.max_bytes)
            .field("memory", &self.memory)
            .field("log_bytes", &self.log_bytes)
            .field("double_write_bytes", &self.double_write_bytes)
            .field("checkpoint_bytes", &self.checkpoint_bytes)
            .field("checkpoint_interval", &self.checkpoint_interval)
            .field("version_bytes", &self.version_bytes)
            .field("durability", &self.durability)
            .field("group_interval", &self.group_interval)
            .field("background", &self.spawn.is_some())
            .field("read_only", &self.read_only)
            .field("accept_log_loss", &self.accept_log_loss)
            .finish()
    }
}

impl Options {
    /// The double-write area's size for a database created now.
    pub(crate) fn double_write_area_bytes(&self) -> u64 {
        self.double_write_bytes.unwrap_or((self.log_bytes / 4).max(1 << 20))
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            create: true,
            pool_bytes: 256 << 20,
            max_bytes: None,
            memory: MemoryKind::Auto,
            log_bytes: 256 << 20,
            double_write_bytes: None,
            checkpoint_bytes: 128 << 20,
            checkpoint_interval: Duration::from_secs(60),
            version_bytes: 64 << 20,
            durability: Durability::Sync,
            group_interval: Duration::from_millis(10),
            spawn: None,
            read_only: false,
            accept_log_loss: false,
        }
    }
}
