//! Opening a database: files and locks, a new database's first superblock
//! and log header, the superblock and free list of an existing one, then
//! recovery, a new epoch, the log, and a first checkpoint.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use once_cell::race::OnceBox;
use snowfall_buffer::device::{Counted, FileDevice, FileOptions, Overlay};
use snowfall_buffer::{BufferManager, Config, Device, DeviceError, FreeSpace, PAGE_SIZE, Page, PageId, WriteBackHook};
use snowfall_latch::Mutex;
use snowfall_wal::format::{MAX_FLUSH_BLOCKS, lsn};
use snowfall_wal::{Log, LogError, LogHeader};

use crate::db::{Database, Inner, State};
use crate::double_write::{self, DoubleWrite};
use crate::error::{Error, ReadOnly, SuperblockProblem};
use crate::freelist;
use crate::options::Options;
use crate::superblock::{SUPERBLOCK_PAGES, Superblock};

/// A page-aligned page buffer (`O_DIRECT` needs aligned memory).
#[repr(C, align(4096))]
pub(crate) struct Aligned(pub(crate) [u8; PAGE_SIZE]);

pub(crate) fn aligned(bytes: [u8; PAGE_SIZE]) -> Box<Aligned> {
    Box::new(Aligned(bytes))
}

/// The write-back hook: "log before data", then torn-write protection
/// (`double_write.rs`). Until the log is open (recovery redoes pages, and
/// evictions may write them back), every record recovery has read is on
/// disk already, so pages up to `recovered` may be written; once the log is
/// open, the log's own hook decides.
pub(crate) struct Hook {
    recovered: AtomicU64,
    /// Set once, when the log opens; read on every page's first change
    /// (without a lock).
    log: OnceBox<Arc<Log>>,
    pub(crate) copies: DoubleWrite,
}

impl Hook {
    /// Log before data; returns the log's end now (the position a copy
    /// taken now holds the page at).
    fn log_first(&self, max_lsn: u64) -> Result<u64, DeviceError> {
        if let Some(log) = self.log.get() {
            log.durable_to(max_lsn)?;
            return Ok(log.appended());
        }
        let recovered = self.recovered.load(Ordering::Acquire);
        if max_lsn <= recovered {
            Ok(recovered)
        } else {
            Err(DeviceError::Os { op: snowfall_buffer::IoOp::Write, offset: max_lsn, errno: rustix::io::Errno::IO })
        }
    }
}

impl WriteBackHook for Hook {
    fn before_write_back(&self, bm: &BufferManager, pages: &[Page]) -> Result<u64, DeviceError> {
        let position = self.log_first(pages.iter().map(Page::lsn).max().unwrap_or(0))?;
        self.copies.protect(bm, pages, position)
    }

    fn after_write_back(&self, token: u64) {
        self.copies.done(token);
    }

    fn log_position(&self) -> u64 {
        // While recovery redoes (no log yet): zero, the oldest there is.
        self.log.get().map_or(0, |log| log.appended())
    }
}

/// The hook, shared between the buffer manager, recovery and checkpoints.
pub(crate) struct SharedHook(pub(crate) Arc<Hook>);

impl WriteBackHook for SharedHook {
    fn before_write_back(&self, bm: &BufferManager, pages: &[Page]) -> Result<u64, DeviceError> {
        self.0.before_write_back(bm, pages)
    }

    fn after_write_back(&self, token: u64) {
        self.0.after_write_back(token);
    }

    fn log_position(&self) -> u64 {
        self.0.log_position()
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

/// Address space a database reserves by default at least (when the file
/// and the address-space limit allow): room to grow well past a small file
/// within one open.
const DEFAULT_RESERVATION_BYTES: u64 = 64 << 30;
/// Room the automatic reservation leaves beyond the file and the pool at
/// the least.
const MIN_HEADROOM_BYTES: u64 = 64 << 20;

impl Database {
    /// Opens the database in file `path`, its log in `path.wal` (creating
    /// both if `options.create` and the file is missing or empty). The file
    /// is locked against other processes (the log is only ever opened with
    /// it): exclusively, or shared if `options.read_only`.
    ///
    /// If opening for writing fails because the disk is full (recovery
    /// could not write back what it redid) or the files are not writable,
    /// the database is opened read-only instead, with the reason in
    /// [`Database::read_only`] and every write refused with
    /// [`Error::ReadOnly`]; if that fails too, the first error is returned.
    pub fn open(path: &str, options: Options) -> Result<Database, Error> {
        if path.ends_with(".wal") {
            return Err(Error::Config { what: "a database path must not end in .wal (that is the name of its log)" });
        }
        if options.read_only {
            return open_path(path, options, Some(ReadOnly::Requested));
        }
        match open_path(path, options.clone(), None) {
            Err(e) if e.is_no_space() || e.is_not_writable() => {
                let read_only = Options { read_only: true, create: false, ..options };
                let why = ReadOnly::Fallback(Box::new(e.clone()));
                log::warn!("{path}: opening read-only: {why}");
                open_path(path, read_only, Some(why)).map_err(|_| e)
            }
            other => other,
        }
    }

    /// Opens the database on two devices (the data pages and the log);
    /// `name` is for messages. With `options.read_only` nothing is ever
    /// written to either device.
    pub fn open_on(
        data: Box<dyn Device>,
        log_device: Box<dyn Device>,
        name: &str,
        options: Options,
    ) -> Result<Database, Error> {
        let why = options.read_only.then_some(ReadOnly::Requested);
        open_devices(data, log_device, name, options, why)
    }
}

/// Opens the files of the database at `path` and then the database on
/// them; `why` is set when opening read-only.
fn open_path(path: &str, options: Options, why: Option<ReadOnly>) -> Result<Database, Error> {
    let read_only = why.is_some();
    let file_options = FileOptions { create: options.create && !read_only, direct: true, read_only };
    // Whether this open makes the files: a creation that fails (no room for
    // the log, say) then takes them away again.
    let existed = if file_options.create {
        (rustix::fs::stat(path).is_ok(), rustix::fs::stat(format!("{path}.wal").as_str()).is_ok())
    } else {
        (true, true)
    };
    let data = FileDevice::open(path, file_options).map_err(io(path))?;
    let locked = if read_only { data.lock_shared() } else { data.lock_exclusive() };
    locked.map_err(|e| match e {
        DeviceError::Os { errno: rustix::io::Errno::WOULDBLOCK, .. } => Error::InUse { file: path.into() },
        other => Error::Io { file: path.into(), source: other },
    })?;
    // The log is created only with its database: opening an existing one
    // whose log is gone must not leave an empty log behind.
    let new = never_written(&data, path)?;
    let log_path = format!("{path}.wal");
    let log_options = FileOptions { create: file_options.create && new, ..file_options };
    let log = FileDevice::open(&log_path, log_options).map_err(|e| match e {
        DeviceError::Os { errno: rustix::io::Errno::NOENT, .. } if new => Error::Empty { file: path.into() },
        // Say what the data file is before blaming the missing log.
        DeviceError::Os { errno: rustix::io::Errno::NOENT, .. } => {
            match read_slot(&data, 0, path).and_then(|a| Superblock::newest([a, read_slot(&data, 1, path)?], path)) {
                Err(e) => e,
                Ok(_) => Error::LogMismatch { file: log_path.clone(), what: "the log file is missing" },
            }
        }
        other => io(&log_path)(other),
    })?;
    let db = match open_devices(Box::new(data), Box::new(log), path, options, why) {
        Ok(db) => db,
        Err(e) => {
            if new && !read_only {
                // Both files are closed by now; only what this open made goes.
                if !existed.1 {
                    let _ = rustix::fs::unlink(log_path.as_str());
                }
                if !existed.0 {
                    let _ = rustix::fs::unlink(path);
                }
            }
            return Err(e);
        }
    };
    if new && !read_only {
        // The two files exist once their directory entries are durable.
        FileDevice::sync_directory_of(path).map_err(io(path))?;
    }
    Ok(db)
}

/// Whether `data` holds no database yet: never created, or a creation a
/// crash cut short (no superblock written).
fn never_written(data: &dyn Device, name: &str) -> Result<bool, Error> {
    Ok(data.page_count().map_err(io(name))? <= SUPERBLOCK_PAGES
        && read_slot(data, 0, name)? == Err(SuperblockProblem::Empty)
        && read_slot(data, 1, name)? == Err(SuperblockProblem::Empty))
}

/// The virtual reservation for a database file of `file_pages` pages (see
/// [`Options::max_bytes`]).
fn reservation_bytes(options: &Options, file_pages: u64) -> Result<u64, Error> {
    if let Some(bytes) = options.max_bytes {
        return Ok(bytes);
    }
    let file = file_pages.saturating_mul(PAGE_SIZE as u64);
    let want = DEFAULT_RESERVATION_BYTES.max(file.saturating_mul(2));
    let floor = (file.saturating_add(file / 4)).max(options.pool_bytes).saturating_add(MIN_HEADROOM_BYTES);
    snowfall_buffer::memory::reservable_bytes(want, floor).ok_or(Error::Buffer(snowfall_buffer::Error::Memory(
        snowfall_buffer::MemoryError::Reserve { bytes: floor, errno: rustix::io::Errno::NOMEM },
    )))
}

/// Opens the database on its devices: superblock, log header, free list,
/// recovery, a new epoch, the log, undo, a first checkpoint (all but the
/// reading skipped when `why` says it is read-only).
fn open_devices(
    data: Box<dyn Device>,
    log_device: Box<dyn Device>,
    name: &str,
    options: Options,
    why: Option<ReadOnly>,
) -> Result<Database, Error> {
    let read_only = why.is_some();
    // Every byte to and from the files is counted (`Database::stats`),
    // below the overlay: what a read-only open keeps in memory is not I/O.
    // Read-only: whatever recovery writes stays in memory.
    let (data, log_device) = (Counted::new(data), Counted::new(log_device));
    let counters = crate::stats::Io { data: data.counters(), log: log_device.counters() };
    let (data, log_device): (Arc<dyn Device>, Arc<dyn Device>) = if read_only {
        (Arc::new(Overlay::new(Box::new(data))), Arc::new(Overlay::new(Box::new(log_device))))
    } else {
        (Arc::new(data), Arc::new(log_device))
    };
    let data_first = Arc::new(crate::values::DataFirst { data: data.clone(), unsynced: AtomicU64::new(0) });
    let log_name = format!("{name}.wal");
    let slot = |data: &dyn Device, i: u64| read_slot(data, i, name);
    // A database never created, or whose creation a crash cut short
    // (nothing in the log yet, no superblock), is created afresh; a
    // missing superblock with anything else present is an error.
    if never_written(&*data, name)? {
        if Log::read_header(&*log_device).is_ok_and(|h| Log::has_records(&*log_device, &h)) {
            return Err(Error::Truncated { file: name.into(), pages: 0, expected: SUPERBLOCK_PAGES });
        }
        if !options.create || read_only {
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
    // A log shorter than its ring lost blocks (it is created whole).
    let log_pages = log_device.page_count().map_err(io(&log_name))?;
    let log_expected = header.device_pages();
    let log_short = log_pages < log_expected;
    if log_short && !options.accept_log_loss {
        return Err(Error::LogTruncated { file: log_name, pages: log_pages, expected: log_expected });
    }
    // Pages a crash tore while they were written back are whole again
    // before anything reads them.
    let restored = double_write::restore(&*log_device, header.area_start(), header.area, &*data, sb.redo)
        .map_err(|(file, source)| Error::Io { file, source })?;
    if !restored.is_empty() {
        log::warn!("{name}: {} pages torn or lost by a crash put back from the double-write area", restored.len());
    }
    let (free, trunks) = freelist::read(&*data, sb.free_head, sb.free_pages, sb.page_count)?;
    let file_pages = data.page_count().map_err(io(name))?;
    check_length(name, file_pages, &sb, &free)?;

    let copies = DoubleWrite::new(log_device.clone(), header.area_start(), header.area, sb.redo);
    let hook = Arc::new(Hook { recovered: AtomicU64::new(0), log: OnceBox::new(), copies });
    let config = Config {
        pool_bytes: options.pool_bytes,
        virtual_bytes: reservation_bytes(&options, file_pages.max(sb.page_count))?,
        memory: options.memory,
        ..Config::default()
    };
    config.validate().map_err(|e| Error::Buffer(e.into()))?;
    let memory = snowfall_buffer::memory::open_backend(&config, config.virtual_pages(), data.block_device())
        .map_err(|e| Error::Buffer(e.into()))?;
    let bm = BufferManager::with_parts(config, Box::new(data), memory, Box::new(SharedHook(hook.clone())))?;
    bm.restore_allocation(sb.page_count, FreeSpace::default())?;

    let salvage = crate::recovery::Salvage { accept: options.accept_log_loss, log_short, log_name: &log_name };
    let recovered = crate::recovery::redo(&bm, &*log_device, &sb, free, &hook, &salvage)?;
    if let Some(loss) = &recovered.lost {
        log::warn!("{name}: opened accepting the loss of log records: {loss}");
    }
    if log_short && !read_only {
        // Whole again, so that the next open does not see a loss.
        log_device.allocate(log_expected).and_then(|()| log_device.sync()).map_err(io(&log_name))?;
    }

    // A new epoch, durable before this open writes any log block.
    let epoch = sb.epoch.max(recovered.max_epoch) + 1;
    let sb = Superblock { generation: sb.generation + 1, epoch, ..sb };
    if !read_only {
        let page = aligned(sb.encode());
        bm.device().write_page(sb.slot(), &page.0).and_then(|()| bm.device().sync()).map_err(io(name))?;
    }

    let log = Arc::new(Log::open(Box::new(log_device), sb.ring, epoch, recovered.resume, sb.scan)?);
    // Opened once, right here.
    let _ = hook.log.set(Box::new(log.clone()));
    log.set_write_first(Box::new(data_first.clone()));
    bm.track_allocation();
    // The checkpoint's trunks are listed free, but stay set aside until a
    // newer checkpoint replaces them (the quarantine).
    let mut free = recovered.free;
    for &trunk in &trunks {
        free.remove(trunk);
    }
    bm.restore_allocation(recovered.next, free)?;

    let inner = Arc::new(Inner {
        bm,
        log,
        file: name.into(),
        tree_config: snowfall_btree::Config::default(),
        state: Mutex::new(State { catalog: recovered.catalog, quarantine: trunks, sb: sb.clone() }),
        checkpointing: Mutex::new(Vec::new()),
        checkpoint_running: AtomicBool::new(false),
        batches: Mutex::new(Vec::new()),
        next_batch: AtomicU64::new((u64::from(epoch) << 32) | 1),
        stopped: AtomicBool::new(false),
        stop_cause: Mutex::new(None),
        no_space: Mutex::new(None),
        full: AtomicBool::new(false),
        read_only: why,
        last_checkpoint: AtomicU64::new(sb.redo),
        last_cut: AtomicU64::new(sb.redo),
        last_checkpoint_at: AtomicU64::new(snowfall_sys::clock::Instant::now().as_nanos()),
        checkpoints: AtomicU64::new(0),
        closed: AtomicBool::new(false),
        hook: hook.clone(),
        recovery: crate::db::Recovery {
            records_redone: recovered.redone,
            batches_undone: recovered.undone_batches,
            pages_restored: restored.len(),
        },
        io: counters,
        lifetime_base: sb.lifetime,
        data_first,
        bounces: Mutex::new(Vec::new()),
        versions: snowfall_version::Versions::new(usize::try_from(options.version_bytes).unwrap_or(usize::MAX)),
        options,
    });
    inner.undo(recovered.incomplete, sb.scan, recovered.end)?;
    if read_only {
        log::info!("{name}: open read-only (recovery redid {} records in memory)", inner.recovery.records_redone);
        return Ok(Database { inner, maintenance: None });
    }
    inner.checkpoint()?;
    log::info!(
        "{name}: open (epoch {epoch}; recovery redid {} records, undid {} batches)",
        inner.recovery.records_redone,
        inner.recovery.batches_undone
    );
    let maintenance = crate::maintenance::start(&inner)?;
    Ok(Database { inner, maintenance })
}

/// The smallest double-write area: room for several write-back batches
/// (a batch needs its pages plus a directory page).
const MIN_DOUBLE_WRITE_PAGES: u64 = 256;

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
    // The log's whole ring is reserved here: a disk without room for it
    // fails the creation, never a write later.
    let area = options.double_write_area_bytes() / PAGE_SIZE as u64;
    if area < MIN_DOUBLE_WRITE_PAGES {
        return Err(Error::Config { what: "the double-write area must be at least 1 MiB" });
    }
    Log::format(log, &LogHeader { db_id, ring, area }).map_err(|e| match e.device_error() {
        Some(source) => Error::Io { file: format!("{name}.wal"), source },
        None => Error::Log(e),
    })?;
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
        lifetime: crate::superblock::Lifetime::default(),
    };
    // Both slots, the other one zeroed: later superblock writes then land
    // on space the file already has (no hole to fill on a full disk).
    let page = aligned(sb.encode());
    let other = aligned([0; PAGE_SIZE]);
    data.write_page(PageId(1 - sb.slot().0), &other.0)
        .and_then(|()| data.write_page(sb.slot(), &page.0))
        .and_then(|()| data.sync())
        .map_err(io(name))?;
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
fn check_length(name: &str, pages: u64, sb: &Superblock, free: &FreeSpace) -> Result<(), Error> {
    if pages >= sb.page_count {
        return Ok(());
    }
    let missing_in_use = (pages.max(SUPERBLOCK_PAGES)..sb.page_count).any(|p| !free.contains(PageId(p)));
    if missing_in_use || pages < SUPERBLOCK_PAGES {
        return Err(Error::Truncated { file: name.into(), pages, expected: sb.page_count });
    }
    Ok(())
}
