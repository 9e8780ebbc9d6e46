//! The benchmark suite: every engine a user would pick instead of
//! SnowfallDB (LMDB, redb, RocksDB, fjall, and `BTreeMap` as an in-memory
//! ceiling), on the standard workloads (loads in random and sorted order,
//! uniform point lookups, YCSB A-F), two record shapes, in and out of
//! memory, at 1 and 2 threads; CSV, Markdown tables and SVG plots.
//!
//! `compare suite [--preset tiny|small|full] [--runs R] [--seconds S]
//! [--engines a,b] [--configs ycsb-in,small-out] [--seed N] [--out DIR]
//! [--docs FILE]` runs it: each measurement a process of its own (a fresh
//! directory, a fresh page cache for its files), engines interleaved and
//! their order rotated from run to run. Out of memory, the engines that
//! rely on the page cache run in a memory cgroup of the budget (created and
//! removed here; the run says when it cannot). Rows are appended to
//! `DIR/suite.csv` as they come; at the end the suite checks that every
//! engine loaded the same records (a digest of a full scan), writes
//! `DIR/tables.md` and `DIR/plots/*.svg`, and with `--docs` puts the
//! tables between the `suite` markers of that file and the plots beside
//! it in `suite/`. `compare suite-report CSV [--out DIR] [--docs FILE]`
//! redoes the tables and plots from a CSV. `compare suite-one ...` is one
//! measurement (see `measure.rs`).

mod cgroup;
mod engines;
mod keys;
mod measure;
mod plot;
mod report;
mod workload;

pub use engines::allocated_bytes;
#[cfg(feature = "rocksdb")]
pub use engines::rocksdb::options as rocksdb_options;
pub use report::{splice, spread};

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use keys::{Order, Shape};
use measure::Job;
use workload::Workload;

/// A data set to run: shape, in or out of memory, records, budget.
#[derive(Clone, Debug)]
struct DataSet {
    shape: Shape,
    out_of_memory: bool,
    records: u64,
    budget: u64,
}

impl DataSet {
    fn name(&self) -> String {
        format!("{}-{}", self.shape.name(), if self.out_of_memory { "out" } else { "in" })
    }
}

const MIB: u64 = 1 << 20;

/// The data sets of a preset. In memory, the records take at most a
/// quarter of the budget: B-trees of 1,000-byte values hold two or three
/// per 4 KiB page (100,000 of them outgrew a 256 MiB pool). Out of memory,
/// the records take 4x the budget (keys plus values); 2x in `tiny`, a
/// check that everything runs rather than a measurement. Budgets out of
/// memory are at least 256 MiB: at 128 MiB, fjall and RocksDB (memtables,
/// heap, about 100-135 MiB outside their caches) were killed in their
/// cgroups during the update workloads.
fn preset(name: &str) -> Vec<DataSet> {
    let set = |shape: Shape, out_of_memory, budget: u64, records| DataSet { shape, out_of_memory, records, budget };
    let oom = |shape: Shape, budget: u64, times: u64| {
        let record = (shape.key_len() + shape.value_len()) as u64;
        set(shape, true, budget, times * budget / record)
    };
    match name {
        // CI: seconds, not minutes.
        "tiny" => vec![
            set(Shape::Small, false, 64 * MIB, 20_000),
            set(Shape::Ycsb, false, 64 * MIB, 5_000),
            oom(Shape::Ycsb, 256 * MIB, 2),
        ],
        "small" => vec![
            set(Shape::Small, false, 256 * MIB, 1_000_000),
            set(Shape::Ycsb, false, 256 * MIB, 60_000),
            oom(Shape::Small, 256 * MIB, 4),
            oom(Shape::Ycsb, 256 * MIB, 4),
        ],
        "full" => vec![
            set(Shape::Small, false, 1024 * MIB, 10_000_000),
            set(Shape::Ycsb, false, 1024 * MIB, 250_000),
            oom(Shape::Small, 256 * MIB, 4),
            oom(Shape::Ycsb, 256 * MIB, 4),
        ],
        other => panic!("unknown preset {other} (tiny, small, full)"),
    }
}

struct Options {
    preset: String,
    runs: u32,
    seconds: f64,
    engines: Vec<String>,
    configs: Option<Vec<String>>,
    seed: u64,
    out: PathBuf,
    docs: Option<PathBuf>,
    /// Only the main job (random order, one loading thread) per engine.
    main_only: bool,
}

fn parse(args: &[String]) -> Options {
    let value = |name: &str| args.iter().rposition(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let list = |name: &str| value(name).map(|v| v.split(',').map(str::to_string).collect::<Vec<_>>());
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    Options {
        preset: value("--preset").unwrap_or_else(|| "small".into()),
        runs: value("--runs").map_or(3, |v| v.parse().expect("--runs")),
        seconds: value("--seconds").map_or(5.0, |v| v.parse().expect("--seconds")),
        engines: list("--engines").unwrap_or_else(|| engines::all().iter().map(|e| e.to_string()).collect()),
        configs: list("--configs"),
        seed: value("--seed").map_or(42, |v| v.parse().expect("--seed")),
        out: value("--out").map_or_else(|| PathBuf::from(format!("results/suite-{stamp}")), PathBuf::from),
        docs: value("--docs").map(PathBuf::from),
        main_only: args.iter().any(|a| a == "--main-only"),
    }
}

/// The jobs of one run, engines in an order rotated by `run`.
fn jobs(o: &Options, sets: &[DataSet], run: u32) -> Vec<Job> {
    let mut v = Vec::new();
    for set in sets {
        let mut engines: Vec<&String> =
            o.engines.iter().filter(|e| !set.out_of_memory || engines::persistent(e)).collect();
        if !engines.is_empty() {
            let k = run as usize % engines.len();
            engines.rotate_left(k);
        }
        // In memory: the workloads after a random load (the harder one),
        // then the three other loads alone. Out of memory: after a sorted
        // load, and no other: a random load of data 4x the memory is one
        // random read (and soon a write) per record for the B-trees, hours
        // at realistic sizes, and says little that the in-memory loads and
        // the update workloads out of memory do not.
        let mut loads = vec![(if set.out_of_memory { Order::Sorted } else { Order::Random }, 1, true)];
        if !o.main_only && !set.out_of_memory {
            loads.extend([(Order::Sorted, 1, false), (Order::Random, 2, false), (Order::Sorted, 2, false)]);
        }
        for (order, load_threads, main) in loads {
            for e in &engines {
                v.push(Job {
                    engine: e.to_string(),
                    shape: set.shape,
                    memory: if set.out_of_memory { "out" } else { "in" }.into(),
                    records: set.records,
                    budget: set.budget,
                    order,
                    load_threads,
                    workloads: if main { Workload::ALL.to_vec() } else { Vec::new() },
                    threads: if main { vec![1, 2] } else { Vec::new() },
                    seconds: o.seconds,
                    run,
                    seed: o.seed,
                    cgroup: None,
                });
            }
        }
    }
    v
}

fn hms(s: f64) -> String {
    let s = s as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// Lets the disk settle before a measurement: writes back what earlier
/// processes left dirty (their files are gone, but the kernel may still be
/// writing) and, as root, drops the page cache, so each engine starts cold
/// on a quiet disk. A sorted load measured right after other engines'
/// processes ran at a sixth of its speed alone.
fn settle() {
    let _ = Command::new("sync").status();
    if std::fs::write("/proc/sys/vm/drop_caches", "3").is_err() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| eprintln!("warning: cannot drop the page cache (not root): measurements start warm"));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
}

/// Runs `job` in a process of its own, adding its rows to `rows` (and
/// `csv`) as they come; why it failed, if it did. A process the kernel
/// killed for going over its cgroup's budget has not failed: that is a
/// finding about the engine, recorded as an `oom-killed` row (its earlier
/// rows stand).
fn spawn(job: &Job, n: u32, csv: &mut std::fs::File, rows: &mut Vec<report::Row>) -> Result<(), String> {
    settle();
    let mut job = job.clone();
    let group = if job.memory == "out" && engines::persistent(&job.engine) {
        match cgroup::Cgroup::create(n, job.budget) {
            Ok(g) => Some(g),
            Err(e) => {
                eprintln!("warning: {} runs without a memory cgroup: {e}", job.engine);
                None
            }
        }
    } else {
        None
    };
    job.cgroup = group.as_ref().map(|g| g.path().display().to_string());
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(me)
        .args(job.args())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.map_err(|e| e.to_string())?;
        if let Some(row) = line.strip_prefix("row,") {
            writeln!(csv, "{row}").map_err(|e| e.to_string())?;
            rows.extend(report::Row::parse(row));
        }
    }
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).map_err(|e| e.to_string())?;
    let status = child.wait().map_err(|e| e.to_string())?;
    if let Some(g) = group.as_ref().filter(|g| g.failures() > 0) {
        eprintln!("  (cgroup: limit reached {} times, peak {} MiB)", g.failures(), g.max_usage() / MIB);
    }
    if status.success() {
        return Ok(());
    }
    // The last line the process wrote says where it was.
    let at = stderr.lines().last().unwrap_or("");
    if let Some(g) = group.as_ref().filter(|g| g.oom_kills() > 0) {
        eprintln!("  KILLED by the out-of-memory killer, over its {} MiB budget; at {at}", job.budget / MIB);
        let row = job.row(report::KILLED, 0, &measure::Figures::default(), 0, g.max_usage());
        writeln!(csv, "{row}").map_err(|e| e.to_string())?;
        rows.extend(report::Row::parse(&row));
        return Ok(());
    }
    let tail: Vec<&str> = stderr.lines().rev().take(6).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(format!("{status}: {}", tail.join(" | ")))
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_string()))
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse::<u64>().ok()))
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpu}, {cores} cores, {} GiB, Linux {}", mem >> 20, kernel.trim())
}

/// Writes the tables and plots of `rows` (and into `docs`, if given).
fn finish(rows: &[report::Row], out: &Path, docs: Option<&Path>, header: &str) -> Result<(), String> {
    report::check_agreement(rows)?;
    let plots = match plot::font().and_then(|()| plot::all(rows, &out.join("plots"))) {
        Ok(p) => Some(p),
        Err(e) => {
            eprintln!("warning: no plots: {e}");
            None
        }
    };
    let tables = report::markdown(rows, plots.as_ref().map(|_| "plots"));
    std::fs::write(out.join("tables.md"), format!("{header}\n{tables}")).map_err(|e| e.to_string())?;
    eprintln!("tables: {}", out.join("tables.md").display());
    if let Some(doc) = docs {
        let text = std::fs::read_to_string(doc).map_err(|e| format!("{}: {e}", doc.display()))?;
        let linked = report::markdown(rows, plots.as_ref().map(|_| "suite"));
        std::fs::write(doc, report::splice(&text, "suite", &format!("{header}\n{linked}"))?)
            .map_err(|e| e.to_string())?;
        if let Some(files) = &plots {
            let dir = doc.parent().unwrap_or(Path::new(".")).join("suite");
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            for f in files {
                std::fs::copy(out.join("plots").join(f), dir.join(f)).map_err(|e| e.to_string())?;
            }
        }
        eprintln!("updated {}", doc.display());
    }
    Ok(())
}

/// `compare suite ...`.
pub fn run(args: &[String]) {
    let o = parse(args);
    let mut sets = preset(&o.preset);
    if let Some(names) = &o.configs {
        sets.retain(|s| names.contains(&s.name()));
    }
    std::fs::create_dir_all(&o.out).unwrap_or_else(|e| panic!("{}: {e}", o.out.display()));
    let csv_path = o.out.join("suite.csv");
    let mut csv = std::fs::File::create(&csv_path).unwrap_or_else(|e| panic!("{}: {e}", csv_path.display()));
    writeln!(csv, "{}", report::COLUMNS).unwrap();
    let all: Vec<Job> = (0..o.runs).flat_map(|run| jobs(&o, &sets, run)).collect();
    eprintln!("suite: {} measurements into {}; {}", all.len(), o.out.display(), machine());
    let t0 = Instant::now();
    let (mut rows, mut failed) = (Vec::new(), Vec::new());
    for (i, job) in all.iter().enumerate() {
        let elapsed = t0.elapsed().as_secs_f64();
        let left = if i == 0 { String::from("?") } else { hms(elapsed / i as f64 * (all.len() - i) as f64) };
        let what = if job.workloads.is_empty() {
            "load only".to_string()
        } else {
            format!("{} workloads at {:?} threads", job.workloads.len(), job.threads)
        };
        eprintln!(
            "[{}/{} {} elapsed, ~{left} left] run {}/{}: {} {}-{}: {}, {} load on {} thread(s), {what}",
            i + 1,
            all.len(),
            hms(elapsed),
            job.run + 1,
            o.runs,
            job.shape.name(),
            job.memory,
            job.records,
            job.engine,
            job.order.name(),
            job.load_threads,
        );
        match spawn(job, i as u32, &mut csv, &mut rows) {
            Ok(()) => {}
            Err(e) => {
                eprintln!("  FAILED: {e}");
                failed.push(format!("{} {}-{} run {}: {e}", job.engine, job.shape.name(), job.memory, job.run));
            }
        }
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let header = format!(
        "Suite run of {}: `snowfall-compare {}` ({}; `bench/run.sh` builds it and runs it so); {}; {} s of each \
         workload per measurement.",
        git_head(),
        args.join(" "),
        if cfg!(feature = "rocksdb") { "with RocksDB" } else { "without RocksDB" },
        machine(),
        o.seconds
    );
    if let Err(e) = finish(&rows, &o.out, o.docs.as_deref(), &header) {
        eprintln!("suite: {e}");
        std::process::exit(1);
    }
    if !failed.is_empty() {
        eprintln!("suite: {} measurement(s) failed:\n  {}", failed.len(), failed.join("\n  "));
        std::process::exit(1);
    }
    eprintln!("suite: done in {}", hms(t0.elapsed().as_secs_f64()));
}

fn git_head() -> String {
    Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(|| "an unknown commit".into(), |o| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// `compare suite-report CSV... [--out DIR] [--docs FILE]`: the tables and
/// plots of one run's CSV, or of several merged (a long run done in parts,
/// `--configs` at a time).
pub fn report(args: &[String]) {
    let o = parse(args);
    let paths: Vec<&String> = args[2..].iter().take_while(|a| !a.starts_with("--")).collect();
    assert!(!paths.is_empty(), "compare suite-report CSV...");
    let mut rows = Vec::new();
    for path in &paths {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        rows.extend(report::read_csv(&text));
    }
    let out = args
        .iter()
        .position(|a| a == "--out")
        .map_or_else(|| Path::new(paths[0]).parent().unwrap_or(Path::new(".")).to_path_buf(), |_| o.out.clone());
    std::fs::create_dir_all(&out).unwrap();
    let names: Vec<&str> = paths.iter().map(|p| p.as_str()).collect();
    let header = format!("Suite results from {}; {}.", names.join(", "), machine());
    if let Err(e) = finish(&rows, &out, o.docs.as_deref(), &header) {
        eprintln!("suite: {e}");
        std::process::exit(1);
    }
}

/// `compare suite-one ...`.
pub fn one(args: &[String]) {
    measure::one(&Job::parse(&args[2..]));
}
