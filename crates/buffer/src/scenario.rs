//! Seeded workloads with an oracle, shared by the cargo tests and the
//! static binary (which runs them where the std harness cannot, such as
//! under QEMU with the real exmap module).
//!
//! [`eviction_race`]: optimistic readers race a thread that evicts
//! everything over and over; validated reads must return the right data.
//!
//! [`round_trip`]: pages written through a small pool come back byte for byte.
//!
//! [`stress`]: threads pick random pages and write them (exclusive), read
//! them shared, or read them optimistically. Every page carries its id, a
//! version and a checksum of its filler; a shared oracle holds each page's
//! current version. Readers check the page against the oracle; a validated
//! optimistic read must fall between the oracle's value before and after
//! the read. The first discrepancy stops the run with the seed, thread and
//! operation that reproduce it.

use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use xxhash_rust::xxh3::xxh3_64;

use crate::manager::BufferManager;
use crate::page::{BODY_SIZE, PageId};
use crate::stats::Stats;

/// Runs work on several threads at once: std threads in tests, origin
/// threads in the static binary.
pub trait Parallel {
    /// Calls `work(t)` for `t` in `0..threads`, each on its own thread, and
    /// returns when all have returned.
    fn run(&self, threads: usize, work: &(dyn Fn(usize) + Sync));
}

/// SplitMix64: a small, good, seedable generator.
#[derive(Clone, Debug)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// The body a page holds at `version`: id, version, checksum, filler.
pub fn fill_body(body: &mut [u8], page: PageId, version: u64) {
    let mut rng = SplitMix64(page.0.wrapping_mul(0x1000_0000_01B3) ^ version);
    for chunk in body.get_mut(24..).unwrap_or_default().chunks_mut(8) {
        let w = rng.next_u64().to_le_bytes();
        chunk.copy_from_slice(w.get(..chunk.len()).unwrap_or_default());
    }
    let sum = xxh3_64(body.get(24..).unwrap_or_default());
    for (at, value) in [(0, page.0), (8, version), (16, sum)] {
        if let Some(dst) = body.get_mut(at..at + 8) {
            dst.copy_from_slice(&value.to_le_bytes());
        }
    }
}

fn word(body: &[u8], at: usize) -> u64 {
    let mut b = [0; 8];
    b.copy_from_slice(body.get(at..at + 8).unwrap_or(&[0; 8]));
    u64::from_le_bytes(b)
}

/// Checks a body written by [`fill_body`] for `page`; returns its version.
pub fn check_body(body: &[u8], page: PageId) -> Result<u64, String> {
    let (id, version, sum) = (word(body, 0), word(body, 8), word(body, 16));
    if id != page.0 {
        return Err(alloc::format!("{page} holds the body of page {id}"));
    }
    let computed = xxh3_64(body.get(24..).unwrap_or_default());
    if sum != computed {
        return Err(alloc::format!("{page} version {version}: filler checksum {sum:#x} != {computed:#x}"));
    }
    let mut expected = alloc::vec![0u8; body.len()];
    fill_body(&mut expected, page, version);
    if expected != body {
        return Err(alloc::format!("{page} version {version}: filler differs from what that version wrote"));
    }
    Ok(version)
}

/// Allocates `pages` pages, page `i` holding [`fill_body`] at version `i`;
/// returns their ids in order.
pub fn populate(bm: &BufferManager, pages: u64) -> Result<Vec<PageId>, crate::Error> {
    (0..pages)
        .map(|i| {
            let mut g = bm.allocate()?;
            let id = g.id();
            fill_body(g.page_mut().body_mut(), id, i);
            Ok(id)
        })
        .collect()
}

/// A stress run's parameters.
#[derive(Clone, Copy, Debug)]
pub struct Stress {
    /// Threads at once.
    pub threads: usize,
    /// Pages in the working set (allocated by the run).
    pub pages: u64,
    /// Operations per thread.
    pub ops_per_thread: u64,
    /// Seed; the same seed gives each thread the same operation sequence.
    pub seed: u64,
    /// Percentage of operations that write.
    pub write_percent: u64,
    /// Percentage of operations that read optimistically (the rest read shared).
    pub optimistic_percent: u64,
}

/// What a stress run did.
#[derive(Clone, Copy, Debug, Default)]
pub struct Report {
    /// Writes.
    pub writes: u64,
    /// Shared reads.
    pub shared_reads: u64,
    /// Optimistic reads.
    pub optimistic_reads: u64,
    /// Buffer-manager statistics at the end.
    pub stats: Stats,
}

/// The first discrepancy of a run, with what reproduces it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The run's seed.
    pub seed: u64,
    /// The thread (`usize::MAX`: set-up or the final check).
    pub thread: usize,
    /// The operation index in that thread.
    pub op: u64,
    /// What went wrong.
    pub what: String,
}

impl core::fmt::Display for Failure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "seed {:#x}, thread {}, op {}: {}", self.seed, self.thread, self.op, self.what)
    }
}

struct Shared<'a> {
    bm: &'a BufferManager,
    s: &'a Stress,
    pages: Vec<PageId>,
    oracle: Vec<AtomicU64>,
    stop: AtomicBool,
    failure: snowfall_latch::Mutex<Option<Failure>>,
    counts: [AtomicU64; 3],
}

impl Shared<'_> {
    fn fail(&self, thread: usize, op: u64, what: String) {
        let mut f = self.failure.lock();
        if f.is_none() {
            *f = Some(Failure { seed: self.s.seed, thread, op, what });
        }
        self.stop.store(true, Ordering::Relaxed);
    }

    /// One thread's operations.
    fn worker(&self, thread: usize) {
        let mut rng = SplitMix64(self.s.seed ^ (thread as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407));
        let mut body = alloc::vec![0u8; BODY_SIZE];
        for op in 0..self.s.ops_per_thread {
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            let i = rng.below(self.pages.len() as u64) as usize;
            let roll = rng.below(100);
            let outcome = if roll < self.s.write_percent {
                self.write(i)
            } else if roll < self.s.write_percent + self.s.optimistic_percent {
                self.read_optimistic(i, &mut body)
            } else {
                self.read_shared(i).map(|()| self.count(1))
            };
            if let Err(what) = outcome {
                self.fail(thread, op, what);
                return;
            }
        }
    }

    fn page_and_oracle(&self, i: usize) -> Result<(PageId, &AtomicU64), String> {
        match (self.pages.get(i), self.oracle.get(i)) {
            (Some(&p), Some(o)) => Ok((p, o)),
            _ => Err(alloc::format!("page index {i} out of range")),
        }
    }

    fn write(&self, i: usize) -> Result<(), String> {
        let (page, oracle) = self.page_and_oracle(i)?;
        let mut g = self.bm.fix_exclusive(page).map_err(|e| alloc::format!("fix_exclusive({page}): {e}"))?;
        let version = check_body(g.page().body(), page)?;
        let expected = oracle.load(Ordering::Relaxed);
        if version != expected {
            return Err(alloc::format!("{page}: latched exclusively at version {version}, oracle says {expected}"));
        }
        fill_body(g.page_mut().body_mut(), page, version + 1);
        // Before the unlatch, so readers never see the page ahead of the oracle.
        oracle.store(version + 1, Ordering::Release);
        self.count(0);
        Ok(())
    }

    fn read_shared(&self, i: usize) -> Result<(), String> {
        let (page, oracle) = self.page_and_oracle(i)?;
        let g = self.bm.fix_shared(page).map_err(|e| alloc::format!("fix_shared({page}): {e}"))?;
        let version = check_body(g.page().body(), page)?;
        let expected = oracle.load(Ordering::Acquire);
        if version != expected {
            return Err(alloc::format!("{page}: latched shared at version {version}, oracle says {expected}"));
        }
        Ok(())
    }

    fn read_optimistic(&self, i: usize, body: &mut [u8]) -> Result<(), String> {
        let (page, oracle) = self.page_and_oracle(i)?;
        let before = oracle.load(Ordering::Acquire);
        self.bm
            .read_optimistic(page, |view| view.read(0, body))
            .map_err(|e| alloc::format!("read_optimistic({page}): {e}"))?;
        let after = oracle.load(Ordering::Acquire);
        let version = check_body(body, page).map_err(|e| alloc::format!("validated optimistic read: {e}"))?;
        if version < before || version > after {
            return Err(alloc::format!(
                "{page}: validated optimistic read saw version {version}, oracle went {before}..={after}"
            ));
        }
        self.count(2);
        Ok(())
    }

    fn count(&self, which: usize) {
        if let Some(c) = self.counts.get(which) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Runs a stress scenario on `bm`: allocates `s.pages` pages, runs the
/// threads, then checks every page against the oracle and the buffer
/// manager's invariants.
pub fn stress(bm: &BufferManager, s: &Stress, parallel: &dyn Parallel) -> Result<Report, Failure> {
    let setup = |what: String| Failure { seed: s.seed, thread: usize::MAX, op: 0, what };
    let mut pages = Vec::new();
    for _ in 0..s.pages {
        let mut g = bm.allocate().map_err(|e| setup(alloc::format!("allocate: {e}")))?;
        let page = g.id();
        fill_body(g.page_mut().body_mut(), page, 0);
        pages.push(page);
    }
    let shared = Shared {
        bm,
        s,
        oracle: pages.iter().map(|_| AtomicU64::new(0)).collect(),
        pages,
        stop: AtomicBool::new(false),
        failure: snowfall_latch::Mutex::new(None),
        counts: Default::default(),
    };
    parallel.run(s.threads, &|t| shared.worker(t));
    if let Some(f) = shared.failure.lock().take() {
        return Err(f);
    }
    for i in 0..shared.pages.len() {
        shared.read_shared(i).map_err(setup)?;
    }
    bm.check_invariants().map_err(setup)?;
    let [w, r, o] = &shared.counts;
    Ok(Report {
        writes: w.load(Ordering::Relaxed),
        shared_reads: r.load(Ordering::Relaxed),
        optimistic_reads: o.load(Ordering::Relaxed),
        stats: bm.stats(),
    })
}

/// Write-back round trip: writes three pools' worth of pages (so most are
/// evicted while writing), then loads every page again and compares all
/// its bytes (header included, but for the checksum field, which is sealed
/// on write) with what was written.
pub fn round_trip(bm: &BufferManager) -> Result<Stats, Failure> {
    let fail = |what: String| Failure { seed: 0, thread: usize::MAX, op: 0, what };
    let pool_pages = bm.config().pool_pages();
    let mut written = Vec::new();
    for i in 0..3 * pool_pages {
        let mut g = bm.allocate().map_err(|e| fail(alloc::format!("allocate: {e}")))?;
        let id = g.id();
        let page = g.page_mut();
        fill_body(page.body_mut(), id, i);
        page.set_lsn(1000 + i);
        page.set_kind((i % 7) as u16);
        written.push((id, alloc::boxed::Box::new(*page.bytes())));
    }
    let stats = bm.stats();
    if stats.evictions < pool_pages || stats.write_backs < pool_pages {
        return Err(fail(alloc::format!("the pool never overflowed: {stats:?}")));
    }
    for (id, bytes) in &written {
        let g = bm.fix_shared(*id).map_err(|e| fail(alloc::format!("fix_shared({id}): {e}")))?;
        if g.page().bytes().get(8..) != bytes.get(8..) {
            return Err(fail(alloc::format!("{id} changed on its way through the device")));
        }
    }
    bm.check_invariants().map_err(fail)?;
    Ok(bm.stats())
}

/// Bounds of an [`eviction_race`]: it runs until it has seen `races`
/// rejected and `races` validated reads, and `faults` recovered faults
/// (for backends whose released pages fault), or until each reader made
/// `max_reads` reads.
#[derive(Clone, Copy, Debug)]
pub struct RaceBounds {
    /// Rejected (and validated) reads wanted.
    pub races: u64,
    /// Recovered faults wanted (0 for backends whose pages do not fault).
    pub faults: u64,
    /// Reads per reader at most.
    pub max_reads: u64,
}

/// What an [`eviction_race`] saw.
#[derive(Clone, Copy, Debug, Default)]
pub struct RaceReport {
    /// Reads that validated (and were checked against what was written).
    pub validated: u64,
    /// Reads that failed validation and were discarded.
    pub rejected: u64,
    /// Faults the fault guard recovered meanwhile (process-wide).
    pub faults: u64,
}

/// Two readers read 64 pages optimistically, in small pieces with pauses
/// (as a B-tree search reads), while a third thread evicts every page over
/// and over. A validated read must hold exactly what the page was written
/// with; a rejected one is discarded. With exmap (or its emulation) a read
/// of an evicted page faults and the fault guard turns it into a rejection.
pub fn eviction_race(bm: &BufferManager, bounds: RaceBounds, parallel: &dyn Parallel) -> Result<RaceReport, Failure> {
    const PAGES: u64 = 64;
    const READERS: usize = 2;
    let fail = |thread: usize, op: u64, what: String| Failure { seed: 0, thread, op, what };
    let mut pages = Vec::new();
    for _ in 0..PAGES {
        let mut g = bm.allocate().map_err(|e| fail(usize::MAX, 0, alloc::format!("allocate: {e}")))?;
        let id = g.id();
        fill_body(g.page_mut().body_mut(), id, id.0);
        pages.push(id);
    }
    let faults_before = snowfall_sys::fault::recovered_count();
    let (validated, rejected, readers_done) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let failure = snowfall_latch::Mutex::new(None);
    let enough = || {
        validated.load(Ordering::Relaxed) >= bounds.races
            && rejected.load(Ordering::Relaxed) >= bounds.races
            && snowfall_sys::fault::recovered_count() - faults_before >= bounds.faults
    };
    parallel.run(READERS + 1, &|t| {
        if t == READERS {
            // The evictor: until both readers are done.
            while readers_done.load(Ordering::Acquire) < READERS as u64 {
                if let Err(e) = bm.evict_until(0) {
                    *failure.lock() = Some(fail(t, 0, alloc::format!("evict: {e}")));
                    break;
                }
            }
            return;
        }
        let mut body = alloc::vec![0u8; BODY_SIZE];
        for i in 0..bounds.max_reads {
            if enough() || failure.lock().is_some() {
                break;
            }
            let Some(&page) = pages.get(((i * 7 + t as u64) % PAGES) as usize) else { break };
            let guard = match bm.optimistic(page) {
                Ok(g) => g,
                Err(e) => {
                    *failure.lock() = Some(fail(t, i, alloc::format!("optimistic({page}): {e}")));
                    break;
                }
            };
            let view = guard.view();
            let read = body.chunks_mut(32).enumerate().try_for_each(|(c, chunk)| {
                for _ in 0..20 {
                    core::hint::spin_loop();
                }
                view.read(c * 32, chunk)
            });
            if guard.validate() {
                let checked = read
                    .map_err(|_| String::from("a validated read reported Invalid"))
                    .and_then(|()| check_body(&body, page))
                    .and_then(|v| if v == page.0 { Ok(()) } else { Err(alloc::format!("{page}: version {v}")) });
                if let Err(what) = checked {
                    *failure.lock() = Some(fail(t, i, alloc::format!("validated optimistic read: {what}")));
                    break;
                }
                validated.fetch_add(1, Ordering::Relaxed);
            } else {
                rejected.fetch_add(1, Ordering::Relaxed);
            }
        }
        readers_done.fetch_add(1, Ordering::Release);
    });
    if let Some(f) = failure.lock().take() {
        return Err(f);
    }
    bm.check_invariants().map_err(|what| fail(usize::MAX, 0, what))?;
    Ok(RaceReport {
        validated: validated.load(Ordering::Relaxed),
        rejected: rejected.load(Ordering::Relaxed),
        faults: snowfall_sys::fault::recovered_count() - faults_before,
    })
}
