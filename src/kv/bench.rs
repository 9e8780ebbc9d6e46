//! `snowfall bench [WORKLOAD ...] [--keys N] [--value SIZE] [--threads T]
//! [--seconds S] [--seed X] [--csv] [--keep]`: workloads on a fresh
//! database (`--db`, default `snowfall-bench.db`, removed afterwards
//! unless `--keep`), reported as a table (or CSV): ops/s and MB/s (keys
//! and values moved), latency p50, p99 and p99.9, page faults, evictions,
//! bytes written to the database file and to the log and bytes read per
//! operation, peak RSS.
//!
//! - `load`: `--keys` inserts of keys `splitmix64(i)` (8 bytes, big-endian:
//!   random order), values of `--value` bytes (a size such as `100`, `4K`
//!   or `1M`; up to [`MAX_VALUE`](snowfall_db::MAX_VALUE); values that do
//!   not fit a leaf beside the 8-byte key are stored out of line), the key
//!   range split over the threads.
//! - `rndread` (vmcache's): keys `i` in order (8 bytes, big-endian), then
//!   uniform random lookups for `--seconds`, each value checked.
//! - `mixed`: on `rndread`'s data, half lookups and half updates of
//!   uniform random keys for `--seconds` (YCSB A's mix).
//! - Transactions (`bench/tx.rs`; an operation is a committed transaction,
//!   conflicts are retried and reported as `aborts/s`): `bank`, transfers
//!   between `--keys` accounts (read two, write two; the total checked
//!   through a snapshot at the end); `txn`, YCSB-style read-write
//!   transactions of 4 to 16 operations (half reads, half updates) on
//!   `rndread`'s data; `snapread`, read-only transactions of 16 lookups
//!   each (counted in lookups, latency per transaction). Keys uniform, or
//!   with `--zipf` Zipfian (0.99, scrambled as YCSB does).
//!
//! Writes use `--durability` if given, else `none` (the log is synced at
//! the end of each workload); the table says which. Bytes per operation
//! are the files' I/O counters (`Stats`) across the workload and that sync:
//! pages written back by evictions and by the checkpoints the workload
//! triggered, log blocks flushed. Pages still dirty in the pool at the end
//! are not in them (the next checkpoint writes them).
//!
//! Memory proportional to the input: one latency sample per
//! [`SAMPLE_EVERY`] operations (8 bytes each: `--keys` bytes for the
//! inserts, growing with `--seconds` for the timed workloads) and a thread
//! per `--threads` (at most 64). Each is fallible: a failed allocation or
//! thread start stops the bench with one line on stderr and status 3.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use snowfall_buffer::scenario::SplitMix64;
use snowfall_db::{Database, Durability, Tree};
use snowfall_rt::thread::SpawnError;
use snowfall_rt::{errln, outln};
use snowfall_sys::clock::Instant;

mod tx;
mod zipf;

use super::out::written;
use super::{DB_ERROR, Global, db_error};
use crate::cli::{SUCCESS, lossy, usage};
use crate::oom::OutOfMemory;

/// One operation: `(thread, i, scratch buffer)`.
/// One operation: thread, index, and the thread's buffers (the value to
/// write or expect, and one to read into), reused from one op to the next.
type Op<'a> = dyn Fn(usize, u64, &mut [Vec<u8>; 2]) -> Result<(), snowfall_db::Error> + Sync + 'a;

/// Every this many operations, one latency sample.
const SAMPLE_EVERY: u64 = 8;

/// Why a workload stopped.
enum Failure {
    /// The database failed.
    Db(snowfall_db::Error),
    /// Latency samples did not fit in memory.
    Memory(OutOfMemory),
    /// Not every thread could be started (so the results would not be for
    /// `threads` threads).
    Threads {
        /// Why.
        error: SpawnError,
        /// How many were wanted.
        threads: usize,
    },
}

impl From<snowfall_db::Error> for Failure {
    fn from(e: snowfall_db::Error) -> Failure {
        Failure::Db(e)
    }
}

impl Failure {
    /// Reports the failure on stderr (one line); returns the exit status.
    fn report(self) -> i32 {
        match self {
            Failure::Db(e) => db_error(e),
            Failure::Memory(e) => e.report(),
            Failure::Threads { error, threads } => {
                errln!("snowfall: bench: cannot start {threads} threads: {error}");
                DB_ERROR
            }
        }
    }
}

/// What a workload measured: operations, seconds, latency samples
/// (nanoseconds, [`DURING`] set on those taken during a checkpoint).
type Run = (u64, f64, Vec<u64>);

struct Settings {
    workloads: Vec<&'static str>,
    keys: u64,
    value: usize,
    threads: usize,
    seconds: u64,
    seed: u64,
    csv: bool,
    keep: bool,
    /// Zipfian keys for the transactional workloads.
    zipf: bool,
}

/// One workload's results.
struct Report {
    workload: &'static str,
    ops: u64,
    seconds: f64,
    p50_us: f64,
    p99_us: f64,
    p999_us: f64,
    /// p99.9 of the operations outside checkpoints, and during them (none
    /// ran: `None`), and the share of samples taken during one.
    p999_outside_us: f64,
    p999_during_us: Option<f64>,
    during_share: f64,
    faults: u64,
    evictions: u64,
    /// Bytes written to the database file, to the log, and read from both.
    data_written: u64,
    log_written: u64,
    read: u64,
    peak_rss_mib: f64,
    /// Transactions that conflicted (and were retried).
    aborts: u64,
}

impl Report {
    /// `bytes` per operation.
    fn per_op(&self, bytes: u64) -> f64 {
        bytes as f64 / self.ops.max(1) as f64
    }
}

fn parse(args: &[&[u8]]) -> Result<Settings, i32> {
    let mut s = Settings {
        workloads: Vec::new(),
        keys: 1_000_000,
        value: 8,
        threads: 2,
        seconds: 3,
        seed: 42,
        csv: false,
        keep: false,
        zipf: false,
    };
    let mut it = args.iter().copied();
    while let Some(arg) = it.next() {
        let mut number = |name: &str| -> Result<u64, i32> {
            let v = it.next().ok_or_else(|| usage(format!("bench: {name} needs a value")))?;
            core::str::from_utf8(v)
                .ok()
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| usage(format!("bench: {name} '{}' is not a number", lossy(v))))
        };
        match arg {
            b"load" => s.workloads.push("load"),
            b"rndread" => s.workloads.push("rndread"),
            b"mixed" => s.workloads.push("mixed"),
            b"bank" => s.workloads.push("bank"),
            b"txn" => s.workloads.push("txn"),
            b"snapread" => s.workloads.push("snapread"),
            b"--zipf" => s.zipf = true,
            b"--keys" => s.keys = number("--keys")?.max(1),
            b"--value" => {
                let v = it.next().ok_or_else(|| usage(String::from("bench: --value needs a value")))?;
                s.value = core::str::from_utf8(v)
                    .ok()
                    .and_then(super::size::parse_size)
                    .and_then(|bytes| usize::try_from(bytes).ok())
                    .ok_or_else(|| usage(format!("bench: --value '{}' is not a size like 100, 4K or 1M", lossy(v))))?;
            }
            b"--threads" => s.threads = number("--threads")?.clamp(1, 64) as usize,
            b"--seconds" => s.seconds = number("--seconds")?.max(1),
            b"--seed" => s.seed = number("--seed")?,
            b"--csv" => s.csv = true,
            b"--keep" => s.keep = true,
            other => return Err(usage(format!("bench: unknown argument '{}'", lossy(other)))),
        }
    }
    if s.workloads.is_empty() {
        s.workloads = alloc::vec!["load", "rndread", "mixed"];
    }
    if s.value > snowfall_db::MAX_VALUE {
        return Err(usage(format!("bench: --value {} is larger than {}", s.value, snowfall_db::MAX_VALUE)));
    }
    Ok(s)
}

#[expect(clippy::big_endian_bytes, reason = "keys sort like the numbers they encode")]
fn key(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

fn unkey(k: &[u8]) -> u64 {
    k.try_into().map_or(u64::MAX, u64::from_be_bytes)
}

fn splitmix(i: u64) -> u64 {
    SplitMix64(i).next_u64()
}

/// A value for key number `i`: its number, then filler.
fn value_of(i: u64, len: usize, out: &mut Vec<u8>) {
    out.clear();
    out.extend(i.to_le_bytes().iter().copied().cycle().take(len));
}

/// Peak resident memory of this process (VmHWM), in MiB.
fn peak_rss_mib() -> f64 {
    let Ok(fd) = rustix::fs::open("/proc/self/status", rustix::fs::OFlags::RDONLY, rustix::fs::Mode::empty()) else {
        return 0.0;
    };
    let mut buf = [0u8; 4096];
    let n = rustix::io::read(&fd, &mut buf).unwrap_or(0);
    let text = core::str::from_utf8(buf.get(..n).unwrap_or_default()).unwrap_or("");
    text.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// Runs `op(thread, i, scratch)` on every thread: for `n` operations split over the
/// threads (`Some(n)`), or until `seconds` pass. Returns the operations
/// done, the seconds taken and sorted latency samples (nanoseconds).
fn drive(threads: usize, n: Option<u64>, seconds: u64, during: &Probe<'_>, op: &Op<'_>) -> Result<Run, Failure> {
    let done = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let failure: snowfall_latch::Mutex<Option<Failure>> = snowfall_latch::Mutex::new(None);
    let samples: snowfall_latch::Mutex<Vec<u64>> = snowfall_latch::Mutex::new(Vec::new());
    let start = Instant::now();
    let fail = |f: Failure| {
        *failure.lock() = Some(f);
        stop.store(true, Ordering::Relaxed);
    };
    let work = |t: usize| {
        let (from, to) = match n {
            // In 128 bits: `--keys` times the thread number may not fit in 64.
            Some(n) => {
                let share = |t: usize| (u128::from(n) * t as u128 / threads as u128) as u64;
                (share(t), share(t + 1))
            }
            None => (0, u64::MAX),
        };
        // Room for every sample of a counted run up front (`--keys` decides
        // how many); a timed run's samples grow as it goes.
        let expected = n.map_or(0, |_| ((to - from) / SAMPLE_EVERY + 1) as usize);
        let mut mine = match crate::oom::with_capacity(expected, "latency samples") {
            Ok(mine) => mine,
            Err(e) => return fail(Failure::Memory(e)),
        };
        let mut scratch = [Vec::new(), Vec::new()];
        let mut count = 0;
        for i in from..to {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            if n.is_none() && count % 256 == 0 && start.elapsed().as_secs() >= seconds {
                stop.store(true, Ordering::Relaxed);
                break;
            }
            let sampled = count % SAMPLE_EVERY == 0;
            let t0 = if sampled { Some((Instant::now(), during())) } else { None };
            if let Err(e) = op(t, i, &mut scratch) {
                fail(Failure::Db(e));
                break;
            }
            if let Some((t0, was)) = t0 {
                if let Err(e) = crate::oom::reserve(&mut mine, 1, "latency samples") {
                    fail(Failure::Memory(e));
                    break;
                }
                let ns = (t0.elapsed().as_nanos() as u64).min(!DURING);
                mine.push(if was || during() { ns | DURING } else { ns });
            }
            count += 1;
        }
        done.fetch_add(count, Ordering::Relaxed);
        let mut all = samples.lock();
        match crate::oom::reserve(&mut all, mine.len(), "latency samples") {
            Ok(()) => all.extend(mine),
            Err(e) => {
                drop(all);
                fail(Failure::Memory(e));
            }
        }
    };
    // Threads that did start run to the end of their share (or of
    // `--seconds`) before the error is returned: `run_parallel` joins them.
    snowfall_rt::thread::run_parallel(threads, &work).map_err(|error| Failure::Threads { error, threads })?;
    let secs = start.elapsed().as_secs_f64();
    if let Some(e) = failure.lock().take() {
        return Err(e);
    }
    let samples = core::mem::take(&mut *samples.lock());
    Ok((done.load(Ordering::Relaxed), secs, samples))
}

/// Whether something to tell apart is going on (a checkpoint).
type Probe<'a> = dyn Fn() -> bool + Sync + 'a;

/// The top bit of a latency sample: a checkpoint ran at the start or the
/// end of the operation.
const DURING: u64 = 1 << 63;

fn percentile(sorted: &[u64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p + 0.5) as usize;
    sorted.get(i).map_or(0.0, |&ns| ns as f64 / 1000.0)
}

fn report(db: &Database, workload: &'static str, before: snowfall_db::Stats, run: Run, aborts: u64) -> Report {
    let after = db.stats();
    let (ops, seconds, tagged) = run;
    let (mut inside, mut outside): (Vec<u64>, Vec<u64>) = tagged.iter().partition(|&&ns| ns & DURING != 0);
    inside.iter_mut().for_each(|ns| *ns &= !DURING);
    inside.sort_unstable();
    outside.sort_unstable();
    let mut samples = inside.clone();
    samples.extend_from_slice(&outside);
    samples.sort_unstable();
    Report {
        workload,
        ops,
        seconds,
        p50_us: percentile(&samples, 0.50),
        p99_us: percentile(&samples, 0.99),
        p999_us: percentile(&samples, 0.999),
        p999_outside_us: percentile(&outside, 0.999),
        p999_during_us: (!inside.is_empty()).then(|| percentile(&inside, 0.999)),
        during_share: inside.len() as f64 / tagged.len().max(1) as f64,
        faults: after.faults - before.faults,
        evictions: after.evictions - before.evictions,
        data_written: after.data_bytes_written - before.data_bytes_written,
        log_written: after.log_bytes_written - before.log_bytes_written,
        read: (after.data_bytes_read + after.log_bytes_read) - (before.data_bytes_read + before.log_bytes_read),
        peak_rss_mib: peak_rss_mib(),
        aborts,
    }
}

/// Inserts `s.keys` keys, key number `i` being `order(i)`, split over the
/// threads: `splitmix` for `load`'s random order, the identity for the
/// ordered data `rndread` and `mixed` read.
fn insert_keys(
    db: &Database,
    tree: &Tree<'_>,
    s: &Settings,
    durability: Durability,
    order: fn(u64) -> u64,
) -> Result<Run, Failure> {
    let value_len = s.value;
    drive(s.threads, Some(s.keys), 0, &|| db.checkpoint_in_progress(), &|_, i, [v, _]| {
        value_of(i, value_len, v);
        tree.insert_with(&key(order(i)), v, durability).map(drop)
    })
}

/// Uniform random lookups on the ordered data for `s.seconds`, each value
/// checked; with `mixed`, half of the operations update instead.
fn lookups(db: &Database, data: &Tree<'_>, s: &Settings, durability: Durability, mixed: bool) -> Result<Run, Failure> {
    let (keys, value_len, seed) = (s.keys, s.value, s.seed);
    drive(s.threads, None, s.seconds, &|| db.checkpoint_in_progress(), &|t, i, [v, got]| {
        let r = splitmix(seed ^ (t as u64) << 48 ^ i);
        let k = r % keys;
        value_of(k, value_len, v);
        if mixed && r >> 63 == 1 {
            return data.insert_with(&key(k), v, durability).map(drop);
        }
        // The optimistic read (a validated copy), as an engine's users read.
        match data.get_into(&key(k), got)? {
            Some(_) if got == v => Ok(()),
            _ => Err(snowfall_db::Error::Integrity {
                file: String::from("bench"),
                what: format!("key {k} lost or wrong"),
            }),
        }
    })
}

/// Runs `bench`.
pub fn run(g: &Global, args: &[&[u8]]) -> Result<i32, i32> {
    let s = parse(args)?;
    let durability = if g.durability_given { g.durability } else { Durability::None };
    let path = if g.db_given { g.db.clone() } else { String::from("snowfall-bench.db") };
    let wal = format!("{path}.wal");
    let remove = || {
        let _ = rustix::fs::unlink(path.as_str());
        let _ = rustix::fs::unlink(wal.as_str());
    };
    remove();
    let bench_global = Global { db: path.clone(), durability, ..g.clone() };
    let db = bench_global.open(super::Open::Create)?;
    let mut reports = Vec::new();
    let mut loaded_in_order = false;
    let result = (|| -> Result<(), Failure> {
        for &w in &s.workloads {
            if !matches!(w, "load" | "bank") && !loaded_in_order {
                insert_keys(&db, &db.tree("ordered")?, &s, durability, |i| i)?;
                db.sync()?;
                loaded_in_order = true;
            }
            if w == "bank" {
                tx::open_accounts(&db, &s)?;
                db.sync()?;
            }
            let before = db.stats();
            let aborts = AtomicU64::new(0);
            let run = match w {
                "load" => insert_keys(&db, &db.tree("load")?, &s, durability, splitmix)?,
                "bank" => tx::bank(&db, &s, durability, &aborts)?,
                "txn" => tx::txn(&db, &s, durability, &aborts)?,
                "snapread" => tx::snapread(&db, &s)?,
                _ => lookups(&db, &db.tree("ordered")?, &s, durability, w == "mixed")?,
            };
            db.sync()?;
            reports.push(report(&db, w, before, run, aborts.load(Ordering::Relaxed)));
        }
        Ok(())
    })();
    let closed = db.close();
    if !s.keep {
        remove();
    }
    result.map_err(Failure::report)?;
    closed.map_err(db_error)?;
    print(&s, g, durability, &reports)
}

/// Keys and values moved per second (each operation reads or writes one
/// 8-byte key and its value), in MB (10^6 bytes).
fn mb_per_sec(s: &Settings, r: &Report) -> f64 {
    r.ops as f64 * (8 + s.value) as f64 / r.seconds / 1e6
}

fn print(s: &Settings, g: &Global, durability: Durability, reports: &[Report]) -> Result<i32, i32> {
    let mut lines: Vec<String> = Vec::new();
    if s.csv {
        lines.push(String::from(
            "workload,threads,keys,value_bytes,durability,ops,seconds,ops_per_sec,p50_us,p99_us,p999_us,faults,evictions,\
             data_bytes_per_op,log_bytes_per_op,read_bytes_per_op,peak_rss_mib,p999_outside_checkpoints_us,\
             p999_during_checkpoints_us,share_during_checkpoints,mb_per_sec,aborts_per_sec",
        ));
        for r in reports {
            lines.push(format!(
                "{},{},{},{},{:?},{},{:.3},{:.0},{:.2},{:.2},{:.2},{},{},{:.1},{:.1},{:.1},{:.1},{:.2},{},{:.3},{:.2},{:.0}",
                r.workload,
                s.threads,
                s.keys,
                s.value,
                durability,
                r.ops,
                r.seconds,
                r.ops as f64 / r.seconds,
                r.p50_us,
                r.p99_us,
                r.p999_us,
                r.faults,
                r.evictions,
                r.per_op(r.data_written),
                r.per_op(r.log_written),
                r.per_op(r.read),
                r.peak_rss_mib,
                r.p999_outside_us,
                r.p999_during_us.map_or(String::new(), |us| format!("{us:.2}")),
                r.during_share,
                mb_per_sec(s, r),
                r.aborts as f64 / r.seconds
            ));
        }
    } else {
        lines.push(format!(
            "{} keys, {}-byte values, {} threads, pool {} MiB, durability {:?}",
            s.keys,
            s.value,
            s.threads,
            g.pool >> 20,
            durability
        ));
        lines.push(format!(
            "{:<9} {:>12} {:>13} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10} {:>9} {:>10} {:>9} {:>10}",
            "workload",
            "ops",
            "ops/s",
            "MB/s",
            "p50 us",
            "p99 us",
            "p99.9 us",
            "faults",
            "evictions",
            "data B/op",
            "log B/op",
            "read B/op",
            "peak MiB",
            "aborts/s"
        ));
        for r in reports {
            lines.push(format!(
                "{:<9} {:>12} {:>13.0} {:>9.1} {:>9.2} {:>9.2} {:>9.2} {:>9} {:>10} {:>10.1} {:>9.1} {:>10.1} {:>9.1} {:>10.0}",
                r.workload,
                r.ops,
                r.ops as f64 / r.seconds,
                mb_per_sec(s, r),
                r.p50_us,
                r.p99_us,
                r.p999_us,
                r.faults,
                r.evictions,
                r.per_op(r.data_written),
                r.per_op(r.log_written),
                r.per_op(r.read),
                r.peak_rss_mib,
                r.aborts as f64 / r.seconds
            ));
        }
        // Checkpoints' effect on latency, where any ran.
        for r in reports {
            if let Some(during) = r.p999_during_us {
                lines.push(format!(
                    "{}: p99.9 {:.2} us outside checkpoints, {during:.2} us during them ({:.1} % of operations)",
                    r.workload,
                    r.p999_outside_us,
                    r.during_share * 100.0
                ));
            }
        }
    }
    for line in lines {
        written(outln!("{line}"))?;
    }
    Ok(SUCCESS)
}
