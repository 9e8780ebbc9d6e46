//! Crash simulation: power fails at a device operation chosen by seed
//! (a log write or sync, a page write-back by eviction or checkpoint, a
//! free-list or superblock write, a large value's extent write, a data
//! sync); every write not yet synced
//! is then lost, kept or torn by sector. After recovery the database must
//! hold exactly the writes of a prefix of the workload that includes every
//! acknowledged `Sync` write, each batch whole or absent, and pass the
//! integrity check. Some writes are read-write transactions (committed,
//! aborted, or cut by the crash mid-commit: whole or absent after it), and
//! for stretches a snapshot is open, so that single writes and batches take
//! the version store's commit path. One value in eight is large (an extent written before
//! its reference is logged; half of the single ones through the streaming
//! writer, in chunks), so crashes also hit extent writes and the data syncs
//! that must precede the log writes referring to them.
//!
//! `SNOWFALL_CRASH_SEEDS=<n>` sets the number of seeds (default: 1,000 in a
//! release build, 100 in a debug build), `SNOWFALL_CRASH_SEED=<s>` runs one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use common::key;
use rustix::io::Errno;
use snowfall_buffer::device::MemoryDevice;
use snowfall_buffer::memory::MemoryKind;
use snowfall_buffer::scenario::SplitMix64;
use snowfall_buffer::{Device, DeviceError, IoOp, PAGE_SIZE, PageId};
use snowfall_db::{Batch, Database, Durability, Options};

static UNDONE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static RESTORED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
/// Crashes that came after the incremental checkpoint had installed a cut
/// during the workload (so recovery started from one, and the crash may
/// have hit a later step: its page writes, free list, superblock).
static AFTER_STEPS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
/// Crashes that hit a transaction's commit.
static TXS_CUT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Where power failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Point {
    LogWrite,
    /// A page copy (or its directory) into the double-write area.
    CopyWrite,
    LogSync,
    SuperblockWrite,
    PageWrite,
    /// A large value's extent (raw bytes, not a sealed page).
    ExtentWrite,
    DataSync,
}

/// Counts device operations of one kind down to the crash.
struct Clock {
    /// The kind of operation the crash hits.
    target: Point,
    /// Operations of that kind left until the crash.
    remaining: AtomicI64,
    /// Operations of each kind so far.
    counts: std::sync::Mutex<BTreeMap<Point, i64>>,
    dead: std::sync::atomic::AtomicBool,
    point: std::sync::Mutex<Option<Point>>,
}

impl Clock {
    fn new(target: Point, ops: i64) -> Arc<Clock> {
        Arc::new(Clock {
            target,
            remaining: AtomicI64::new(ops),
            counts: std::sync::Mutex::new(BTreeMap::new()),
            dead: false.into(),
            point: std::sync::Mutex::new(None),
        })
    }

    /// A clock that never stops anything.
    fn never() -> Arc<Clock> {
        Clock::new(Point::LogWrite, i64::MAX)
    }

    /// Whether the operation may happen (the crashing one still does: it
    /// is unsynced, so the crash decides what of it survives).
    fn tick(&self, point: Point) -> bool {
        if self.dead.load(Ordering::Acquire) {
            return false;
        }
        *self.counts.lock().unwrap().entry(point).or_default() += 1;
        if point == self.target && self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.dead.store(true, Ordering::Release);
            *self.point.lock().unwrap() = Some(point);
        }
        true
    }
}

/// A memory device whose operations stop at the clock's crash point.
struct Crashy {
    inner: Arc<MemoryDevice>,
    clock: Arc<Clock>,
    log: bool,
}

/// Whether a data page write is a large value's extent: its bytes are not
/// a sealed page of that id (tree pages, free-list trunks and superblocks
/// are).
fn is_extent(page: PageId, buf: &[u8; PAGE_SIZE]) -> bool {
    let mut p = snowfall_buffer::Page::zeroed();
    p.bytes_mut().copy_from_slice(buf);
    p.verify(page).is_err() && snowfall_db::superblock::Superblock::decode(buf).is_err()
}

fn dead(op: IoOp) -> DeviceError {
    DeviceError::Os { op, offset: 0, errno: Errno::IO }
}

impl Device for Crashy {
    fn read_page(&self, page: PageId, buf: &mut [u8; PAGE_SIZE]) -> Result<(), DeviceError> {
        self.inner.read_page(page, buf)
    }

    fn write_page(&self, page: PageId, buf: &[u8; PAGE_SIZE]) -> Result<(), DeviceError> {
        let point = match (self.log, page.0) {
            (true, p) if p >= AREA_START => Point::CopyWrite,
            (true, _) => Point::LogWrite,
            (false, 0 | 1) => Point::SuperblockWrite,
            (false, _) if is_extent(page, buf) => Point::ExtentWrite,
            (false, _) => Point::PageWrite,
        };
        if !self.clock.tick(point) {
            return Err(dead(IoOp::Write));
        }
        self.inner.write_page(page, buf)
    }

    fn sync(&self) -> Result<(), DeviceError> {
        if !self.clock.tick(if self.log { Point::LogSync } else { Point::DataSync }) {
            return Err(dead(IoOp::Sync));
        }
        self.inner.sync()
    }

    fn page_count(&self) -> Result<u64, DeviceError> {
        self.inner.page_count()
    }

    fn describe(&self) -> &str {
        if self.log { "crashy log" } else { "crashy data" }
    }
}

/// A device a read-only open must never write to: any write or sync
/// fails the test.
struct NoWrites(Arc<MemoryDevice>);

impl Device for NoWrites {
    fn read_page(&self, page: PageId, buf: &mut [u8; PAGE_SIZE]) -> Result<(), DeviceError> {
        self.0.read_page(page, buf)
    }

    fn write_page(&self, page: PageId, _buf: &[u8; PAGE_SIZE]) -> Result<(), DeviceError> {
        panic!("a read-only open wrote {page}")
    }

    fn sync(&self) -> Result<(), DeviceError> {
        panic!("a read-only open synced")
    }

    fn page_count(&self) -> Result<u64, DeviceError> {
        self.0.page_count()
    }

    fn describe(&self) -> &str {
        "read-only"
    }
}

/// Recovers read-only (in memory; the devices refuse writes): checks the
/// integrity and that writes are refused; returns the contents.
fn read_only_contents(data: &Arc<MemoryDevice>, log: &Arc<MemoryDevice>, seed: u64) -> BTreeMap<u64, Vec<u8>> {
    let ro = match Database::open_on(
        Box::new(NoWrites(data.clone())),
        Box::new(NoWrites(log.clone())),
        "crash",
        Options { read_only: true, ..options() },
    ) {
        Ok(ro) => ro,
        // Power failed before the database was first created: nothing to
        // read (a writable open creates it).
        Err(snowfall_db::Error::Empty { .. }) => return BTreeMap::new(),
        Err(e) => panic!("seed {seed}: read-only recovery failed: {e}"),
    };
    ro.check().unwrap_or_else(|e| panic!("seed {seed}: integrity check after read-only recovery: {e}"));
    if let Ok(t) = ro.existing_tree("t") {
        assert!(matches!(t.insert(b"no", b"no"), Err(snowfall_db::Error::ReadOnly { .. })), "seed {seed}");
    }
    contents(&ro)
}

fn options() -> Options {
    Options {
        pool_bytes: 1 << 20,
        max_bytes: Some(64 << 20),
        memory: MemoryKind::Madvise,
        log_bytes: 16 << 20,
        double_write_bytes: Some(1 << 20),
        checkpoint_bytes: 256 << 10,
        ..Options::default()
    }
}

fn open(data: &Arc<MemoryDevice>, log: &Arc<MemoryDevice>, clock: &Arc<Clock>) -> Result<Database, snowfall_db::Error> {
    Database::open_on(
        Box::new(Crashy { inner: data.clone(), clock: clock.clone(), log: false }),
        Box::new(Crashy { inner: log.clone(), clock: clock.clone(), log: true }),
        "crash",
        options(),
    )
}

/// One operation of the workload: keys and their new values (`None`:
/// removed), applied as one.
type Op = Vec<(u64, Option<Vec<u8>>)>;

/// The workload for `seed`: single writes and batches, mixed durability.
/// Returns the operations attempted and the index after the last one
/// acknowledged with `Sync`.
fn workload(db: &Database, seed: u64, ops: usize) -> (Vec<Op>, usize) {
    // Half the workloads insert in ascending order: splits in order.
    workload_keys(db, seed, ops, 0, 6000, seed % 4 >= 2)
}

/// [`workload`] on keys `base..base + keys`; `ordered`: each insert takes
/// the next key up (removes still pick keys at random).
fn workload_keys(db: &Database, seed: u64, ops: usize, base: u64, keys: u64, ordered: bool) -> (Vec<Op>, usize) {
    let mut rng = SplitMix64(seed);
    let t = db.tree("t");
    let Ok(t) = t else { return (Vec::new(), 0) };
    let mut attempted = Vec::new();
    let mut durable_prefix = 0;
    let mut snapshot = None;
    let mut next = 0;
    let mut insert_key = |random: u64| {
        next += 1;
        if ordered { base + next % keys } else { random }
    };
    for _ in 0..ops {
        let durability = if rng.below(3) == 0 { Durability::None } else { Durability::Sync };
        let value = |rng: &mut SplitMix64| {
            // One value in eight is large: stored out of line, written
            // straight to the data file before its reference is logged.
            let len = if rng.below(8) == 0 { 1000 + rng.below(20_000) } else { rng.below(900) } as usize;
            let b = rng.next_u64() as u8;
            (0..len).map(|i| b.wrapping_add(i as u8)).collect::<Vec<u8>>()
        };
        // A snapshot open now and then: writes meanwhile go through the
        // version store's commit path (one at a time, old values kept).
        if rng.below(40) == 0 {
            snapshot = match snapshot.take() {
                Some(open) => {
                    drop(open);
                    None
                }
                None => db.begin_read().ok(),
            };
        }
        let result = if rng.below(10) == 0 {
            // A read-write transaction: committed (possibly cut by the
            // crash mid-commit) or aborted (then it is not attempted).
            let abort = rng.below(5) == 0;
            let mut op = Vec::new();
            let tx = db.begin_write();
            let written = tx.and_then(|tx| {
                let tree = tx.tree("t")?;
                for _ in 0..rng.below(12) + 1 {
                    let k = base + rng.below(keys);
                    if rng.below(4) == 0 {
                        tree.remove(&key(k))?;
                        op.push((k, None));
                    } else {
                        let k = insert_key(k);
                        let v = value(&mut rng);
                        tree.insert(&key(k), &v)?;
                        op.push((k, Some(v)));
                    }
                }
                Ok(tx)
            });
            match written {
                Ok(tx) if abort => {
                    // Nothing written, nothing synced: not an acknowledgement
                    // of the writes before it.
                    tx.abort();
                    continue;
                }
                Ok(tx) => {
                    attempted.push(op);
                    let committed = tx.commit(durability);
                    if committed.is_err() {
                        TXS_CUT.fetch_add(1, Ordering::Relaxed);
                    }
                    committed
                }
                Err(e) => Err(e),
            }
        } else if rng.below(8) == 0 {
            let mut batch = Batch::new();
            let mut op = Vec::new();
            for _ in 0..rng.below(20) + 2 {
                let k = base + rng.below(keys);
                if rng.below(4) == 0 {
                    batch.remove(&t, &key(k));
                    op.push((k, None));
                } else {
                    let k = insert_key(k);
                    let v = value(&mut rng);
                    batch.insert(&t, &key(k), &v);
                    op.push((k, Some(v)));
                }
            }
            attempted.push(op);
            db.write(&batch, durability)
        } else {
            let k = base + rng.below(keys);
            if rng.below(4) == 0 {
                attempted.push(vec![(k, None)]);
                t.remove_with(&key(k), durability).map(|_| ())
            } else {
                let k = insert_key(k);
                let v = value(&mut rng);
                attempted.push(vec![(k, Some(v.clone()))]);
                if v.len() > 1000 && rng.below(2) == 0 {
                    // Streamed in chunks: extents allocated as it grows,
                    // the unused tail given back at the commit.
                    t.writer(&key(k)).and_then(|mut w| {
                        for chunk in v.chunks(3000) {
                            w.write(chunk)?;
                        }
                        w.commit(durability).map(|_| ())
                    })
                } else {
                    t.insert_with(&key(k), &v, durability).map(|_| ())
                }
            }
        };
        match result {
            Ok(()) if durability == Durability::Sync => durable_prefix = attempted.len(),
            Ok(()) => {}
            Err(_) => {
                // The open installed one checkpoint; more came from steps.
                if db.stats().checkpoints > 1 {
                    AFTER_STEPS.fetch_add(1, Ordering::Relaxed);
                }
                break;
            }
        }
    }
    (attempted, durable_prefix)
}

/// Checks that `got` equals the state after some prefix of `ops` of length
/// at least `min`; returns that length.
fn matching_prefix(ops: &[Op], min: usize, got: &BTreeMap<u64, Vec<u8>>) -> Option<usize> {
    let mut state: HashMap<u64, Vec<u8>> = HashMap::new();
    let apply = |state: &mut HashMap<u64, Vec<u8>>, op: &Op| {
        for (k, v) in op {
            match v {
                Some(v) => state.insert(*k, v.clone()),
                None => state.remove(k),
            };
        }
    };
    for op in &ops[..min] {
        apply(&mut state, op);
    }
    let differs = |state: &HashMap<u64, Vec<u8>>, k: &u64| state.get(k) != got.get(k);
    let mut keys: Vec<u64> = state.keys().chain(got.keys()).copied().collect();
    keys.extend(ops.iter().flatten().map(|(k, _)| *k));
    keys.sort_unstable();
    keys.dedup();
    let mut mismatched: usize = keys.iter().filter(|k| differs(&state, k)).count();
    if mismatched == 0 {
        return Some(min);
    }
    for (i, op) in ops.iter().enumerate().skip(min) {
        let mut touched: Vec<u64> = op.iter().map(|(k, _)| *k).collect();
        touched.sort_unstable();
        touched.dedup();
        let before: usize = touched.iter().filter(|k| differs(&state, k)).count();
        apply(&mut state, op);
        let after: usize = touched.iter().filter(|k| differs(&state, k)).count();
        mismatched = mismatched + after - before;
        if mismatched == 0 {
            return Some(i + 1);
        }
    }
    None
}

fn dump(data: &Arc<MemoryDevice>, log: &Arc<MemoryDevice>) {
    let mut page = Box::new(snowfall_buffer::Page::zeroed());
    let mut sbs = Vec::new();
    for i in 0..2 {
        if data.read_page(PageId(i), page.bytes_mut()).is_ok() {
            let b: &[u8; 4096] = page.bytes();
            if let Ok(sb) = snowfall_db::superblock::Superblock::decode(b) {
                println!(
                    "slot {i}: gen {} redo {} scan {} epoch {} ckpt epoch {} pages {}",
                    sb.generation, sb.redo, sb.scan, sb.epoch, sb.checkpoint_epoch, sb.page_count
                );
                sbs.push(sb);
            }
        }
    }
    let sb = sbs.into_iter().max_by_key(|s| s.generation).unwrap();
    let mut scan = snowfall_wal::Scan::new(&**log, sb.ring, sb.scan, sb.checkpoint_epoch);
    while let Some(r) = scan.next_record().unwrap() {
        if r.kind == 1 {
            let u = snowfall_btree::journal::Decoded::decode(&r.body).unwrap();
            let w = u.write.map(|w| (common::unkey(w.key), w.batch));
            let ops: Vec<_> = u
                .changes
                .iter()
                .map(|(p, o)| {
                    (
                        p.0,
                        match o {
                            snowfall_btree::journal::Op::Image(_) => "img",
                            snowfall_btree::journal::Op::Insert { .. } => "ins",
                            snowfall_btree::journal::Op::Remove { .. } => "rm",
                            snowfall_btree::journal::Op::Split { .. } => "split",
                            _ => "other",
                        },
                    )
                })
                .collect();
            println!("{}..{} unit {w:?} {ops:?} freed {:?}", r.start, r.end, u.freed);
        } else {
            println!("{}..{} kind {} {:?}", r.start, r.end, r.kind, &r.body[..r.body.len().min(8)]);
        }
    }
    println!("end {:?}", scan.resume());
}

/// Prints how `got` differs from the state after `min` operations.
fn explain(ops: &[Op], min: usize, got: &BTreeMap<u64, Vec<u8>>) {
    let mut state: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    for op in &ops[..min] {
        for (k, v) in op {
            match v {
                Some(v) => state.insert(*k, v.clone()),
                None => state.remove(k),
            };
        }
    }
    let short = |v: Option<&Vec<u8>>| v.map(|v| (v.len(), v.first().copied()));
    for k in state.keys().chain(got.keys()).collect::<std::collections::BTreeSet<_>>() {
        if state.get(k) != got.get(k) {
            let writes: Vec<_> = ops
                .iter()
                .enumerate()
                .filter(|(_, op)| op.iter().any(|(kk, _)| kk == k))
                .map(|(i, op)| {
                    (i, op.len(), short(op.iter().rev().find(|(kk, _)| kk == k).and_then(|(_, v)| v.as_ref())))
                })
                .collect();
            println!("key {k}: expected {:?}, got {:?}; writes {writes:?}", short(state.get(k)), short(got.get(k)));
        }
    }
}

fn contents(db: &Database) -> BTreeMap<u64, Vec<u8>> {
    tree_contents(db, "t")
}

/// The entries of tree `name` (empty if there is none).
fn tree_contents(db: &Database, name: &str) -> BTreeMap<u64, Vec<u8>> {
    let mut got = BTreeMap::new();
    let Ok(t) = db.existing_tree(name) else { return got };
    t.scan(std::ops::Bound::Unbounded, snowfall_db::Direction::Forward, |k, v| {
        got.insert(common::unkey(k), v.to_vec());
        true
    })
    .unwrap();
    got
}

const OPS: usize = 1500;
const POINTS: [Point; 7] = [
    Point::LogWrite,
    Point::CopyWrite,
    Point::LogSync,
    Point::SuperblockWrite,
    Point::PageWrite,
    Point::ExtentWrite,
    Point::DataSync,
];

/// The log device's first page of the double-write area: after the header
/// and the ring of a 16 MiB log.
const AREA_START: u64 = (16 << 20) / PAGE_SIZE as u64;

/// Device operations of each kind in a whole run of a workload.
fn total_ops(workload_seed: u64) -> BTreeMap<Point, i64> {
    let (data, log) = (Arc::new(MemoryDevice::new(16 << 10)), Arc::new(MemoryDevice::new(5 << 10)));
    let clock = Clock::never();
    let db = open(&data, &log, &clock).unwrap();
    workload(&db, workload_seed, OPS);
    drop(db);
    clock.counts.lock().unwrap().clone()
}

/// One crash of workload `workload_seed` at an operation chosen by `seed`
/// among those of the kind `seed` picks (`totals`: how many of each kind
/// a whole run makes). Returns where it hit (None: the run ended first).
fn crash_once(seed: u64, workload_seed: u64, totals: &BTreeMap<Point, i64>) -> Option<Point> {
    let (data, log) = (Arc::new(MemoryDevice::new(16 << 10)), Arc::new(MemoryDevice::new(5 << 10)));
    let mut rng = SplitMix64(seed ^ 0xC0FFEE);
    let target = POINTS[(seed / 4 % POINTS.len() as u64) as usize];
    let total = totals.get(&target).copied().unwrap_or(1).max(1);
    let crash_at = 1 + rng.below(total as u64) as i64;
    let clock = Clock::new(target, crash_at);
    let (ops, durable) = match open(&data, &log, &clock) {
        Ok(db) => {
            let r = workload(&db, workload_seed, OPS);
            drop(db);
            r
        }
        Err(_) => (Vec::new(), 0),
    };
    let point = *clock.point.lock().unwrap();
    // Power fails: unsynced writes are lost, kept or torn.
    data.crash_torn(seed);
    log.crash_torn(seed.rotate_left(17));
    if std::env::var("SNOWFALL_CRASH_DUMP").is_ok() {
        dump(&data, &log);
    }
    // Every third seed, power fails again during recovery (its redo
    // writes back pages, it undoes batches, it checkpoints).
    if seed.is_multiple_of(3) {
        let clock = Clock::new(POINTS[(seed / 3 % POINTS.len() as u64) as usize], 1 + rng.below(6) as i64);
        drop(open(&data, &log, &clock));
        data.crash_torn(seed ^ 1);
        log.crash_torn(seed ^ 2);
    }
    // A read-only open first: the same recovery, in memory only.
    let read_only = read_only_contents(&data, &log, seed);
    let clock = Clock::never();
    let db = open(&data, &log, &clock).unwrap_or_else(|e| panic!("seed {seed}: recovery failed: {e}"));
    db.check().unwrap_or_else(|e| panic!("seed {seed}: integrity check after recovery: {e}"));
    UNDONE.fetch_add(db.recovery().batches_undone, Ordering::Relaxed);
    RESTORED.fetch_add(db.recovery().pages_restored, Ordering::Relaxed);
    let got = contents(&db);
    assert!(read_only == got, "seed {seed}: a read-only open saw other contents than recovery");
    let prefix = matching_prefix(&ops, durable, &got);
    if prefix.is_none() {
        explain(&ops, durable, &got);
    }
    assert!(
        prefix.is_some(),
        "seed {seed} (crash at {target:?} {crash_at} of {total}): the database is not a prefix of the workload \
         including the {durable} acknowledged operations ({} attempted)",
        ops.len()
    );
    // The database goes on working after recovery.
    let t = db.tree("t").unwrap();
    t.insert(&key(1_000_000), b"after").unwrap();
    db.close().unwrap();
    point
}

#[test]
fn every_acknowledged_write_survives_crashes_at_seeded_points() {
    // CI runs the release build (1,000 seeds); a debug build is ~10x slower.
    let default = if cfg!(debug_assertions) { 100 } else { 1000 };
    let seeds: u64 = std::env::var("SNOWFALL_CRASH_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(default);
    let only: Option<u64> = std::env::var("SNOWFALL_CRASH_SEED").ok().and_then(|s| s.parse().ok());
    let mut hits: BTreeMap<Point, u32> = BTreeMap::new();
    let mut totals = HashMap::new();
    let seed_list: Vec<u64> = match only {
        Some(s) => vec![s],
        None => (0..seeds).collect(),
    };
    for &seed in &seed_list {
        // Four workloads, each crashed at many points.
        let workload_seed = seed % 4;
        let total = totals.entry(workload_seed).or_insert_with(|| total_ops(workload_seed));
        if let Some(p) = crash_once(seed, workload_seed, total) {
            *hits.entry(p).or_default() += 1;
        }
    }
    let undone = UNDONE.load(Ordering::Relaxed);
    let restored = RESTORED.load(Ordering::Relaxed);
    let after_steps = AFTER_STEPS.load(Ordering::Relaxed);
    let txs_cut = TXS_CUT.load(Ordering::Relaxed);
    println!(
        "crash points hit: {hits:?}; batches undone by recovery: {undone}; torn pages put back: {restored}; \
         crashes after incremental installs: {after_steps}; transactions cut mid-commit: {txs_cut}"
    );
    if only.is_none() {
        for p in POINTS {
            assert!(hits.get(&p).copied().unwrap_or(0) > 0, "no crash at {p:?} in {seeds} seeds: {hits:?}");
        }
        assert!(undone > 0, "no crash cut a batch in {seeds} seeds");
        assert!(restored > 0, "no crash tore a page the double-write area had to put back in {seeds} seeds");
        assert!(after_steps > 0, "no crash came after an incremental checkpoint's install in {seeds} seeds");
        assert!(seeds < 500 || txs_cut > 0, "no crash cut a transaction's commit in {seeds} seeds");
    }
}

/// Three writers on disjoint keys with the background flusher and
/// checkpointer; power fails at a seeded point, twice on the same files
/// (a second run of writers on the recovered database, on fresh keys):
/// after each recovery every writer's keys hold a prefix of its writes
/// including all it had acknowledged, and the first run's keys are as the
/// first recovery left them.
#[test]
fn concurrent_writers_with_background_checkpoints_survive_crashes() {
    let seeds: u64 = if cfg!(debug_assertions) { 20 } else { 500 };
    let (mut acknowledged, mut hits) = (0, BTreeMap::<String, u64>::new());
    for seed in 0..seeds {
        let (data, log) = (Arc::new(MemoryDevice::new(16 << 10)), Arc::new(MemoryDevice::new(5 << 10)));
        let mut before = BTreeMap::new();
        for round in 0..2 {
            let (acked, hit) = concurrent_round(&data, &log, seed, round, &mut before);
            acknowledged += acked;
            *hits.entry(format!("{hit:?}")).or_default() += 1;
        }
    }
    eprintln!("{seeds} seeds x 2 rounds: {acknowledged} acknowledged writes; crashes by point {hits:?}");
    assert!(acknowledged as u64 >= 40 * seeds, "too few writes before the crashes to test anything");
}

/// One round of [`concurrent_writers_with_background_checkpoints_survive_crashes`]:
/// writers on keys of round `round`, a crash, recovery, checks. `before`:
/// the contents the round must leave alone (updated to the recovered
/// contents). Returns the writes acknowledged and where power failed.
fn concurrent_round(
    data: &Arc<MemoryDevice>,
    log: &Arc<MemoryDevice>,
    seed: u64,
    round: u64,
    before: &mut BTreeMap<u64, Vec<u8>>,
) -> (usize, Option<Point>) {
    const THREADS: u64 = 3;
    const SPAN: u64 = 100_000;
    let base = |t: u64| t * SPAN + round * SPAN / 2;
    let mut rng = SplitMix64(seed ^ 0xBEEF ^ (round << 32));
    let target = POINTS[((seed + round) % POINTS.len() as u64) as usize];
    let clock = Clock::new(target, 1 + rng.below(if target == Point::LogWrite { 600 } else { 60 }) as i64);
    let options = Options {
        spawn: Some(Arc::new(common::Threads)),
        group_interval: std::time::Duration::from_millis(1),
        checkpoint_bytes: 128 << 10,
        ..options()
    };
    let db = Database::open_on(
        Box::new(Crashy { inner: data.clone(), clock: clock.clone(), log: false }),
        Box::new(Crashy { inner: log.clone(), clock: clock.clone(), log: true }),
        "crash",
        options,
    );
    // Power may fail while the database is created or recovered.
    let results: Vec<(Vec<Op>, usize)> = match db {
        Ok(db) => {
            let results = std::thread::scope(|s| {
                let handles: Vec<_> = (0..THREADS)
                    .map(|t| {
                        let db = &db;
                        // Writer 0 inserts in order, before writer 1's keys.
                        let ordered = t == 0;
                        s.spawn(move || workload_keys(db, seed * 7 + t + round * 1000, 400, base(t), 2000, ordered))
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            drop(db);
            results
        }
        Err(_) => Vec::new(),
    };
    data.crash_torn(seed ^ round);
    log.crash_torn(seed ^ round ^ 5);
    let db =
        open(data, log, &Clock::never()).unwrap_or_else(|e| panic!("seed {seed}, round {round}: recovery failed: {e}"));
    db.check().unwrap_or_else(|e| panic!("seed {seed}, round {round}: integrity check after recovery: {e}"));
    let got = contents(&db);
    db.close().unwrap();
    let in_round = |k: &u64| (0..THREADS).any(|t| (base(t)..base(t) + SPAN / 2).contains(k));
    let untouched: BTreeMap<u64, Vec<u8>> =
        got.iter().filter(|(k, _)| !in_round(k)).map(|(k, v)| (*k, v.clone())).collect();
    assert!(untouched == *before, "seed {seed}, round {round}: keys of earlier rounds changed");
    for (t, (ops, durable)) in results.iter().enumerate() {
        let range = base(t as u64)..base(t as u64) + SPAN / 2;
        let mine: BTreeMap<u64, Vec<u8>> =
            got.iter().filter(|(k, _)| range.contains(k)).map(|(k, v)| (*k, v.clone())).collect();
        if matching_prefix(ops, *durable, &mine).is_none() {
            explain(ops, *durable, &mine);
            panic!(
                "seed {seed}, round {round}, thread {t}: not a prefix including its {durable} acknowledged operations"
            );
        }
    }
    *before = got;
    let hit = *clock.point.lock().unwrap();
    (results.iter().map(|(_, d)| d).sum(), hit)
}

/// Power fails while a large tree (a drop of many log records) is being
/// dropped: after recovery the tree is either gone or whole, the other
/// tree is untouched, and every page is accounted for.
#[test]
fn a_tree_dropped_when_power_fails_is_whole_or_gone() {
    const BIG: u64 = 6000;
    let fill = |db: &Database| {
        let (a, b) = (db.tree("a").unwrap(), db.tree("b").unwrap());
        for i in 0..BIG {
            a.insert_with(&key(i), &[i as u8; 900], Durability::None).unwrap();
        }
        for i in 0..100 {
            b.insert_with(&key(i), b"b", Durability::None).unwrap();
        }
        db.sync().unwrap();
    };
    // Device operations before the drop and during it.
    let counted = || {
        let (data, log) = (Arc::new(MemoryDevice::new(16 << 10)), Arc::new(MemoryDevice::new(5 << 10)));
        let clock = Clock::never();
        let mut db = open(&data, &log, &clock).unwrap();
        fill(&db);
        let before = clock.counts.lock().unwrap().clone();
        db.drop_tree("a").unwrap();
        let after = clock.counts.lock().unwrap().clone();
        (before, after)
    };
    let (before, after) = counted();
    let full = {
        let (data, log) = (Arc::new(MemoryDevice::new(16 << 10)), Arc::new(MemoryDevice::new(5 << 10)));
        let db = open(&data, &log, &Clock::never()).unwrap();
        fill(&db);
        tree_contents(&db, "a")
    };
    assert_eq!(full.len() as u64, BIG);
    let seeds: u64 = if cfg!(debug_assertions) { 8 } else { 60 };
    let (mut gone, mut whole) = (0, 0);
    for seed in 0..seeds {
        let target = [Point::LogWrite, Point::LogSync, Point::PageWrite, Point::DataSync][(seed % 4) as usize];
        let (b, a) = (before.get(&target).copied().unwrap_or(0), after.get(&target).copied().unwrap_or(0));
        let clock = Clock::new(target, b + 1 + SplitMix64(seed).below((a - b).max(1) as u64 + 1) as i64);
        let (data, log) = (Arc::new(MemoryDevice::new(16 << 10)), Arc::new(MemoryDevice::new(5 << 10)));
        let mut db = open(&data, &log, &clock).unwrap();
        fill(&db);
        let dropped = db.drop_tree("a").is_ok();
        drop(db);
        data.crash_torn(seed);
        log.crash_torn(seed ^ 3);
        let db = open(&data, &log, &Clock::never()).unwrap_or_else(|e| panic!("seed {seed}: recovery failed: {e}"));
        db.check().unwrap_or_else(|e| panic!("seed {seed}: integrity check after recovery: {e}"));
        let a = tree_contents(&db, "a");
        assert_eq!(tree_contents(&db, "b").len(), 100, "seed {seed}: the other tree changed");
        if db.existing_tree("a").is_err() {
            gone += 1;
        } else {
            assert!(!dropped, "seed {seed}: an acknowledged drop was undone");
            assert!(a == full, "seed {seed}: the tree survived its drop only in part ({} entries)", a.len());
            whole += 1;
        }
    }
    eprintln!("{seeds} crashes during a drop: tree gone {gone} times, whole {whole} times");
    assert!(gone > 0 && whole > 0, "the crash points never split the outcomes");
}
