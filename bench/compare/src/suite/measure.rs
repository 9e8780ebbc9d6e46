//! One measurement process: opens an engine, loads it, checks the load
//! with a full scan, then runs the workloads at each thread count for a
//! fixed time; prints one CSV row per phase (`row,` and the columns of
//! [`crate::suite::report::COLUMNS`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::engines::{self, Batch, Engine, Setup};
use super::keys::{LoadOrder, Order, Shape, Space};
use super::workload::{Worker, Workload};
use crate::procfs;

/// What a measurement process is asked to do.
#[derive(Clone, Debug)]
pub struct Job {
    pub engine: String,
    pub shape: Shape,
    /// `in` (data fits in the budget) or `out` (it does not).
    pub memory: String,
    pub records: u64,
    pub budget: u64,
    pub order: Order,
    pub load_threads: u64,
    /// Empty: load only.
    pub workloads: Vec<Workload>,
    pub threads: Vec<u64>,
    pub seconds: f64,
    pub run: u32,
    pub seed: u64,
    /// The memory cgroup to join first, if any.
    pub cgroup: Option<String>,
}

impl Job {
    /// The arguments of `compare suite-one` that run this job.
    pub fn args(&self) -> Vec<String> {
        let list = |v: Vec<String>| if v.is_empty() { "-".to_string() } else { v.join(",") };
        let mut a = vec![
            "suite-one".to_string(),
            self.engine.clone(),
            self.shape.name().into(),
            self.memory.clone(),
            self.records.to_string(),
            self.budget.to_string(),
            self.order.name().into(),
            self.load_threads.to_string(),
            list(self.workloads.iter().map(|w| w.name().to_string()).collect()),
            list(self.threads.iter().map(u64::to_string).collect()),
            self.seconds.to_string(),
            self.run.to_string(),
            self.seed.to_string(),
        ];
        a.extend(self.cgroup.clone());
        a
    }

    /// A CSV row of [`super::report::COLUMNS`]: this job's `workload` at
    /// `threads`, with on-disk bytes and peak RSS after it.
    pub fn row(&self, workload: &str, threads: u64, f: &Figures, disk: u64, rss: u64) -> String {
        let mib = |b: u64| b as f64 / (1 << 20) as f64;
        format!(
            "{},{},{},{},{},{},{},{},{workload},{threads},{:.3},{},{:.1},{:.2},{:.2},{:.2},{:.2},{:.1},{:.1},{:.1},{:.1},{:x}",
            self.engine,
            self.shape.name(),
            self.memory,
            self.records,
            self.budget >> 20,
            self.order.name(),
            self.load_threads,
            self.run,
            f.seconds,
            f.ops,
            if f.seconds > 0.0 { f.ops as f64 / f.seconds } else { 0.0 },
            f.p50_us,
            f.p99_us,
            f.p999_us,
            f.cpu_s,
            mib(f.read_bytes),
            mib(f.write_bytes),
            mib(disk),
            mib(rss),
            f.digest
        )
    }

    /// Parses what [`Job::args`] wrote (after `suite-one`).
    pub fn parse(a: &[String]) -> Job {
        let list =
            |s: &str| -> Vec<String> { if s == "-" { Vec::new() } else { s.split(',').map(str::to_string).collect() } };
        Job {
            engine: a[0].clone(),
            shape: Shape::parse(&a[1]).expect("shape"),
            memory: a[2].clone(),
            records: a[3].parse().expect("records"),
            budget: a[4].parse().expect("budget"),
            order: Order::parse(&a[5]).expect("order"),
            load_threads: a[6].parse().expect("load threads"),
            workloads: list(&a[7]).iter().map(|w| Workload::parse(w).expect("workload")).collect(),
            threads: list(&a[8]).iter().map(|t| t.parse().expect("threads")).collect(),
            seconds: a[9].parse().expect("seconds"),
            run: a[10].parse().expect("run"),
            seed: a[11].parse().expect("seed"),
            cgroup: a.get(12).cloned(),
        }
    }
}

/// One phase's figures.
#[derive(Default)]
pub struct Figures {
    pub ops: u64,
    pub seconds: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub cpu_s: f64,
    pub read_bytes: u64,
    pub write_bytes: u64,
    /// A digest of what a full scan saw (the load's check), else 0.
    pub digest: u64,
}

/// Measures `f` (which returns operations done, latency recorded in the
/// histogram it is given) on `threads` threads.
fn timed(threads: u64, f: impl Fn(u64, &mut hdrhistogram::Histogram<u64>) -> u64 + Sync) -> Figures {
    let (io0, cpu0, t0) = (procfs::io(), procfs::cpu_seconds(), Instant::now());
    let mut hist = procfs::histogram();
    let ops: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let f = &f;
                s.spawn(move || {
                    let mut h = procfs::histogram();
                    (f(t, &mut h), h)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                let (ops, h) = h.join().unwrap();
                hist.add(h).unwrap();
                ops
            })
            .sum()
    });
    let seconds = t0.elapsed().as_secs_f64();
    let io1 = procfs::io();
    let us = |q: f64| hist.value_at_quantile(q) as f64 / 1e3;
    Figures {
        ops,
        seconds,
        p50_us: us(0.5),
        p99_us: us(0.99),
        p999_us: us(0.999),
        cpu_s: procfs::cpu_seconds() - cpu0,
        read_bytes: io1.0 - io0.0,
        write_bytes: io1.1 - io0.1,
        digest: 0,
    }
}

/// Load steps `next..end`, made as they are taken.
struct Steps {
    shape: Shape,
    space: Space,
    order: LoadOrder,
    next: u64,
    end: u64,
    key: Vec<u8>,
    value: Vec<u8>,
}

impl Batch for Steps {
    fn next(&mut self) -> Option<(&[u8], &[u8])> {
        if self.next >= self.end {
            return None;
        }
        let n = self.space.loaded(self.order.record(self.next));
        self.shape.key(n, &mut self.key);
        self.shape.value(n, &mut self.value);
        self.next += 1;
        Some((&self.key, &self.value))
    }
}

/// Loads `job.records` records in `job.order` on `job.load_threads`
/// threads (each taking whole batches in turn), then syncs.
fn load(engine: &dyn Engine, job: &Job, space: Space) -> Figures {
    let order = LoadOrder::new(job.order, job.records, job.seed);
    let shape = job.shape;
    let size = engines::load_batch((shape.key_len() + shape.value_len()) as u64, job.budget);
    let batches = job.records.div_ceil(size);
    let next = std::sync::atomic::AtomicU64::new(0);
    let mut f = timed(job.load_threads, |_, hist| {
        let mut done = 0;
        loop {
            let b = next.fetch_add(1, Ordering::Relaxed);
            if b >= batches {
                break;
            }
            let (start, end) = (b * size, ((b + 1) * size).min(job.records));
            let mut steps = Steps {
                shape,
                space,
                order,
                next: start,
                end,
                key: vec![0; shape.key_len()],
                value: vec![0; shape.value_len()],
            };
            let t0 = Instant::now();
            engine.load(&mut steps);
            hist.saturating_record(t0.elapsed().as_nanos() as u64);
            done += end - start;
        }
        done
    });
    let t0 = Instant::now();
    let (io0, cpu0) = (procfs::io(), procfs::cpu_seconds());
    engine.finish_load();
    f.seconds += t0.elapsed().as_secs_f64();
    f.cpu_s += procfs::cpu_seconds() - cpu0;
    f.write_bytes += procfs::io().1 - io0.1;
    f
}

/// Scans everything: the count must be the records loaded, in order, each
/// value right. The digest (of keys in order) lets the driver check that
/// every engine holds the same.
fn check_all(engine: &dyn Engine, shape: Shape, records: u64) -> Figures {
    let digest = std::sync::Mutex::new(0u64);
    let mut f = timed(1, |_, _| {
        let (mut d, mut last) = (0u64, None::<Vec<u8>>);
        let n = engine.scan_all(&mut |k, v| {
            let n = shape.number(k).unwrap_or_else(|| panic!("a foreign key {k:?}"));
            assert!(shape.check(n, v), "key number {n}: wrong value");
            assert!(last.as_deref().is_none_or(|l| l < k), "scan out of order at key number {n}");
            last = Some(k.to_vec());
            d = crate::splitmix64(d ^ n);
        });
        *digest.lock().unwrap() = d;
        n
    });
    assert_eq!(f.ops, records, "a full scan found {} records, not {records}", f.ops);
    f.digest = digest.into_inner().unwrap();
    f
}

/// Runs `workload` on `threads` threads for `seconds`.
fn phase(engine: &dyn Engine, job: &Job, space: Space, workload: Workload, threads: u64) -> Figures {
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_secs_f64(job.seconds));
            stop.store(true, Ordering::Relaxed);
        });
        timed(threads, |t, hist| {
            let stream = job.seed ^ (workload as u64) << 40 ^ threads << 32 ^ t;
            let mut worker = Worker::new(engine, workload, job.shape, space, stream);
            let mut ops = 0;
            let mut t0 = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                worker.step();
                let t1 = Instant::now();
                hist.saturating_record((t1 - t0).as_nanos() as u64);
                t0 = t1;
                ops += 1;
            }
            ops
        })
    })
}

/// `compare suite-one ...`: one job in this process.
pub fn one(job: &Job) {
    if let Some(cgroup) = &job.cgroup {
        super::cgroup::join(cgroup);
    }
    let dir = crate::fresh_dir(&format!("suite-{}", job.engine));
    let data_bytes = job.records * (job.shape.key_len() + job.shape.value_len()) as u64;
    let setup = Setup { dir: dir.clone(), budget: job.budget, in_cgroup: job.cgroup.is_some(), data_bytes };
    let engine = engines::open(&job.engine, &setup);
    let space = Space::new(job.records);
    // Where a process killed by its cgroup was (the driver shows the tail).
    eprintln!("{}: loading", job.engine);
    let loaded = load(engine.as_ref(), job, space);
    println!("row,{}", job.row("load", job.load_threads, &loaded, engine.disk_bytes(), procfs::peak_rss()));
    let checked = check_all(engine.as_ref(), job.shape, job.records);
    println!("row,{}", job.row("scan-all", 1, &checked, engine.disk_bytes(), procfs::peak_rss()));
    for &threads in &job.threads {
        for &w in &job.workloads {
            eprintln!("{}: {} at {threads} threads (peak RSS {} MiB)", job.engine, w.name(), procfs::peak_rss() >> 20);
            let f = phase(engine.as_ref(), job, space, w, threads);
            println!("row,{}", job.row(w.name(), threads, &f, engine.disk_bytes(), procfs::peak_rss()));
        }
    }
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
}
