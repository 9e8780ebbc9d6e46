//! Opening a database: files and locks, a new database's first superblock
//! and log header, the superblock and free list of an existing one, then
//! recovery, a new epoch, the log, and a first checkpoint.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use snowfall_buffer::device::{FileDevice, FileOptions};
use snowfall_buffer::{BufferManager, Config, Device, DeviceError, PAGE_SIZE, PageId, WriteBackHook};
use snowfall_latch::Mutex;
use snowfall_wal::format::{MAX_FLUSH_BLOCKS, lsn};
use snowfall_wal::{Log, LogError, LogHeader, LogHook};

use crate::db::{Database, Inner, State};
use crate::error::{Error, SuperblockProblem};
use crate::freelist;
use crate::options::Options;
use crate::superblock::{SUPERBLOCK_PAGES, Superblock};

/// A page-aligned page buffer (`O_DIRECT` needs aligned memory).
#[repr(C, align(4096))]
pub(crate) struct Aligned(pub(crate) [u8; PAGE_SIZE]);

pub(crate) fn aligned(bytes: [u8; PAGE_SIZE]) -> Box<Aligned> {
    Box::new(Aligned(bytes))
}

/// The write-back hook while the log does not exist yet (recovery redoes
/// pages, and evictions may write them back): every record recovery has
/// read is on disk already, so pages up to `recovered` may be written.
/// Once the log is open, the log's own hook decides.
pub(crate) struct Hook {
    recovered: AtomicU64,
    log: Mutex<Option<LogHook>>,
}

impl WriteBackHook for Hook {
    fn before_write_back(&self, max_lsn: u64) -> Result<(), DeviceError> {
        if let Some(hook) = &*self.log.lock() {
            return hook.before_write_back(max_lsn);
        }
        if max_lsn <= self.recovered.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err(DeviceError::Os { op: snowfall_buffer::IoOp::Write, offset: max_lsn, errno: rustix::io::Errno::IO })
        }
    }
}

/// The hook, shared between the buffer manager and recovery.
pub(crate) struct SharedHook(pub(crate) Arc<Hook>);

impl WriteBackHook for SharedHook {
    fn before_write_back(&self, max_lsn: u64) -> Result<(), DeviceError> {
        self.0.before_write_back(max_lsn)
    }
}

impl Hook {
    pub(crate) fn recovered_to(&self, lsn: u64) {
        self.recovered.fetch_max(lsn, Ordering::AcqRel);
    }
}

fn io(file: &str) -> impl Fn(DeviceError) -> Error + '_ {
    move |source| Error::Io { file: String::from(file), source }
}

impl Database {
    /// Opens the database in file `path`, its log in `path.wal` (creating
    /// both if `options.create` and the file is missing or empty). The file
    /// is locked against other processes (the log is only ever opened with
    /// it).
    pub fn open(path: &str, options: Options) -> Result<Database, Error> {
        let file_options = FileOptions { create: options.create, direct: true };
        let data = FileDevice::open(path, file_options).map_err(io(path))?;
        data.lock_exclusive().map_err(|e| match e {
            DeviceError::Os { errno: rustix::io::Errno::WOULDBLOCK, .. } => Error::InUse { file: path.into() },
            other => Error::Io { file: path.into(), source: other },
        })?;
        let log_path = format!("{path}.wal");
        let log = FileDevice::open(&log_path, file_options).map_err(|e| match e {
            DeviceError::Os { errno: rustix::io::Errno::NOENT, .. } if data.page_count() == Ok(0) => {
                Error::Empty { file: path.into() }
            }
            // Say what the data file is before blaming the missing log.
            DeviceError::Os { errno: rustix::io::Errno::NOENT, .. } => {
                match read_slot(&data, 0, path).and_then(|a| Superblock::newest([a, read_slot(&data, 1, path)?], path))
                {
                    Err(e) => e,
                    Ok(_) => Error::LogMismatch { file: log_path.clone(), what: "the log file is missing" },
                }
            }
            other => io(&log_path)(other),
        })?;
        Database::open_on(Box::new(data), Box::new(log), path, options)
    }

    /// Opens the database on two devices (the data pages and the log);
    /// `name` is for messages.
    pub fn open_on(
        data: Box<dyn Device>,
        log_device: Box<dyn Device>,
        name: &str,
        options: Options,
    ) -> Result<Database, Error> {
        let log_name = format!("{name}.wal");
        let slot = |data: &dyn Device, i: u64| read_slot(data, i, name);
        // A database never created, or whose creation a crash cut short
        // (nothing in the log yet, no superblock), is created afresh; a
        // missing superblock with anything else present is an error.
        let never_written = data.page_count().map_err(io(name))? <= SUPERBLOCK_PAGES
            && slot(&*data, 0)? == Err(SuperblockProblem::Empty)
            && slot(&*data, 1)? == Err(SuperblockProblem::Empty);
        if never_written {
            if Log::read_header(&*log_device).is_ok_and(|h| Log::has_records(&*log_device, &h)) {
                return Err(Error::Truncated { file: name.into(), pages: 0, expected: SUPERBLOCK_PAGES });
            }
            if !options.create {
                return Err(Error::Empty { file: name.into() });
            }
            create(&*data, &*log_device, name, &options)?;
        }
        let sb = Superblock::newest([slot(&*data, 0)?, slot(&*data, 1)?], name)?;
        let header = match Log::read_header(&*log_device) {
            Ok(h) => h,
            Err(LogError::Read { source: DeviceError::PastEnd { .. } }) => {
                return Err(Error::LogMismatch { file: log_name, what: "the log file is missing or empty" });
            }
            Err(LogError::Header(snowfall_wal::HeaderError::NotALog)) => {
                return Err(Error::LogMismatch { file: log_name, what: "the log file is not a SnowfallDB log" });
            }
            Err(e) => return Err(Error::Log(e)),
        };
        if header.db_id != sb.db_id || header.ring != sb.ring {
            return Err(Error::LogMismatch { file: log_name, what: "the log file belongs to another database" });
        }
        let (free, trunks) = freelist::read(&*data, sb.free_head, sb.free_pages, sb.page_count)?;
        check_length(name, data.page_count().map_err(io(name))?, &sb, &free)?;

        let hook = Arc::new(Hook { recovered: AtomicU64::new(0), log: Mutex::new(None) });
        let config = Config {
            pool_bytes: options.pool_bytes,
            virtual_bytes: options.max_bytes,
            memory: options.memory,
            ..Config::default()
        };
        config.validate().map_err(|e| Error::Buffer(e.into()))?;
        let memory = snowfall_buffer::memory::open_backend(&config, config.virtual_pages(), data.block_device())
            .map_err(|e| Error::Buffer(e.into()))?;
        let bm = BufferManager::with_parts(config, data, memory, Box::new(SharedHook(hook.clone())))?;
        bm.restore_allocation(sb.page_count, Vec::new())?;

        let recovered = crate::recovery::redo(&bm, &*log_device, &sb, free, &hook)?;

        // A new epoch, durable before this open writes any log block.
        let epoch = sb.epoch.max(recovered.max_epoch) + 1;
        let sb = Superblock { generation: sb.generation + 1, epoch, ..sb };
        let page = aligned(sb.encode());
        bm.device().write_page(sb.slot(), &page.0).and_then(|()| bm.device().sync()).map_err(io(name))?;

        let log = Arc::new(Log::open(log_device, sb.ring, epoch, recovered.resume, sb.scan, sb.redo)?);
        *hook.log.lock() = Some(LogHook(log.clone()));
        bm.track_allocation();
        let free: Vec<PageId> = recovered.free.into_iter().filter(|p| !trunks.contains(p)).collect();
        bm.restore_allocation(recovered.next, free)?;

        let inner = Arc::new(Inner {
            bm,
            log,
            file: name.into(),
            tree_config: snowfall_btree::Config::default(),
            state: Mutex::new(State { catalog: recovered.catalog, quarantine: trunks, sb: sb.clone() }),
            checkpointing: Mutex::new(()),
            batches: Mutex::new(Vec::new()),
            next_batch: AtomicU64::new((u64::from(epoch) << 32) | 1),
            stopped: AtomicBool::new(false),
            stop_cause: Mutex::new(None),
            last_checkpoint: AtomicU64::new(sb.redo),
            last_checkpoint_at: AtomicU64::new(snowfall_sys::clock::Instant::now().as_nanos()),
            closed: AtomicBool::new(false),
            recovery: crate::db::Recovery {
                records_redone: recovered.redone,
                batches_undone: recovered.undone_batches,
            },
            options,
        });
        inner.undo(recovered.incomplete, sb.scan)?;
        inner.checkpoint()?;
        log::info!(
            "{name}: open (epoch {epoch}; recovery redid {} records, undid {} batches)",
            inner.recovery.records_redone,
            inner.recovery.batches_undone
        );
        let maintenance = crate::maintenance::start(&inner)?;
        Ok(Database { inner, maintenance })
    }
}

/// Writes a new database's log header and first superblock.
fn create(data: &dyn Device, log: &dyn Device, name: &str, options: &Options) -> Result<(), Error> {
    let ring = (options.log_bytes / PAGE_SIZE as u64).saturating_sub(1);
    if ring < 4 * MAX_FLUSH_BLOCKS || options.log_bytes < 16 << 20 {
        return Err(Error::Config { what: "the log must be at least 16 MiB" });
    }
    let mut id = [0u8; 8];
    // Retried on EINTR (a signal while the kernel's entropy pool is still
    // being initialised, early at boot), which would leave the id zero;
    // nothing is lost by asking again.
    while matches!(
        rustix::rand::getrandom(&mut id, rustix::rand::GetRandomFlags::empty()),
        Err(rustix::io::Errno::INTR)
    ) {}
    let db_id = u64::from_le_bytes(id) | 1;
    Log::format(log, &LogHeader { db_id, ring })?;
    let start = lsn(1, 0);
    let sb = Superblock {
        generation: 1,
        db_id,
        ring,
        epoch: 1,
        checkpoint_epoch: 1,
        redo: start,
        scan: start,
        page_count: SUPERBLOCK_PAGES,
        free_head: 0,
        free_pages: 0,
        catalog: Vec::new(),
    };
    let page = aligned(sb.encode());
    data.write_page(sb.slot(), &page.0).and_then(|()| data.sync()).map_err(io(name))?;
    log::info!("{name}: created (log of {} MiB)", options.log_bytes >> 20);
    Ok(())
}

/// Superblock slot `i` of `data` as it decodes (`Empty` past the end).
fn read_slot(data: &dyn Device, i: u64, name: &str) -> Result<Result<Superblock, SuperblockProblem>, Error> {
    let mut page = aligned([0; PAGE_SIZE]);
    match data.read_page(PageId(i), &mut page.0) {
        Ok(()) => Ok(Superblock::decode(&page.0)),
        Err(DeviceError::PastEnd { .. }) => Ok(Err(SuperblockProblem::Empty)),
        Err(e) => Err(io(name)(e)),
    }
}

/// A file shorter than the pages in use is truncated (pages past its end
/// that are free, never written, are fine).
fn check_length(name: &str, pages: u64, sb: &Superblock, free: &[PageId]) -> Result<(), Error> {
    if pages >= sb.page_count {
        return Ok(());
    }
    let missing_in_use = (pages.max(SUPERBLOCK_PAGES)..sb.page_count).any(|p| !free.contains(&PageId(p)));
    if missing_in_use || pages < SUPERBLOCK_PAGES {
        return Err(Error::Truncated { file: name.into(), pages, expected: sb.page_count });
    }
    Ok(())
}
