//! TPC-C on SnowfallDB's read-write transactions, beside RocksDB's
//! `OptimisticTransactionDB` (with the `rocksdb` feature) and LMDB: all
//! five transactions per the specification (NURand, 1 % remote New-Order
//! items, 15 % remote payments, customers by last name), W warehouses,
//! the consistency conditions checked after the load and after the run.
//!
//! `compare tpcc [--warehouses W] [--seconds S] [--runs R] [--engines a,b]
//! [--cache-mib M] [--out DIR] [--docs FILE]` runs each engine at 1 and 2
//! threads in processes of their own, interleaved, and prints new-order
//! and total transactions per second (medians, min-max, ratios to
//! SnowfallDB), conflicts retried, and New-Order's latency; with `--docs`
//! the table goes between that file's `tpcc` markers. `compare tpcc-one
//! ENGINE W THREADS SECONDS SEED CACHE_MIB` is one process.

mod check;
mod engine;
mod load;
mod random;
mod schema;
mod txns;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use txns::{Kind, Terminal};

/// One process: load, check, run at each thread count, check; prints
/// `tpcc,ENGINE,W,THREADS,new_order/s,total/s,conflicts/s,p50_us,p99_us,load_s,disk_mib`.
pub fn one(args: &[String]) {
    let engine_name = &args[2];
    let warehouses: u32 = args[3].parse().expect("warehouses");
    let threads: Vec<u32> = args[4].split(',').map(|t| t.parse().expect("threads")).collect();
    let seconds: f64 = args[5].parse().expect("seconds");
    let seed: u64 = args[6].parse().expect("seed");
    let cache: u64 = args[7].parse::<u64>().expect("cache MiB") << 20;
    let dir = crate::fresh_dir(&format!("tpcc-{engine_name}"));
    let engine = engine::open(engine_name, &dir, cache);
    let engine = engine.as_ref();
    let t0 = Instant::now();
    load::load(engine, warehouses, seed);
    let load_s = t0.elapsed().as_secs_f64();
    check::check(engine, warehouses).unwrap_or_else(|e| panic!("{engine_name}: after the load: {e}"));
    for &n in &threads {
        let stop = AtomicBool::new(false);
        let start = Instant::now();
        let per_thread: Vec<([u64; 5], u64, u64, hdrhistogram::Histogram<u64>)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..n)
                .map(|t| {
                    let stop = &stop;
                    s.spawn(move || {
                        let mut term = Terminal::new(engine, warehouses, t, seed ^ u64::from(n) << 32 ^ u64::from(t));
                        let mut done = [0u64; 5];
                        let (mut conflicts, mut rollbacks) = (0, 0);
                        let mut latency = crate::procfs::histogram();
                        while !stop.load(Ordering::Relaxed) {
                            let t0 = Instant::now();
                            let d = term.step();
                            if d.kind == Kind::NewOrder {
                                latency.saturating_record(t0.elapsed().as_nanos() as u64);
                            }
                            done[d.kind as usize] += 1;
                            conflicts += d.conflicts;
                            rollbacks += u64::from(d.rolled_back);
                        }
                        (done, conflicts, rollbacks, latency)
                    })
                })
                .collect();
            std::thread::sleep(Duration::from_secs_f64(seconds));
            stop.store(true, Ordering::Relaxed);
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let elapsed = start.elapsed().as_secs_f64();
        let mut done = [0u64; 5];
        let (mut conflicts, mut rollbacks) = (0, 0);
        let mut latency = crate::procfs::histogram();
        for (d, c, r, l) in per_thread {
            (0..5).for_each(|i| done[i] += d[i]);
            conflicts += c;
            rollbacks += r;
            latency.add(l).unwrap();
        }
        eprintln!(
            "{engine_name}, {n} threads: {done:?} done (new-order, payment, order-status, delivery, stock-level), \
             {:.2} % of new orders rolled back",
            rollbacks as f64 * 100.0 / done[Kind::NewOrder as usize].max(1) as f64
        );
        check::check(engine, warehouses).unwrap_or_else(|e| panic!("{engine_name}: after {n} threads: {e}"));
        println!(
            "tpcc,{engine_name},{warehouses},{n},{:.1},{:.1},{:.1},{:.1},{:.1},{load_s:.1},{:.1}",
            done[Kind::NewOrder as usize] as f64 / elapsed,
            done.iter().sum::<u64>() as f64 / elapsed,
            conflicts as f64 / elapsed,
            latency.value_at_quantile(0.5) as f64 / 1e3,
            latency.value_at_quantile(0.99) as f64 / 1e3,
            engine.disk_bytes() as f64 / (1 << 20) as f64
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `compare tpcc ...`: every engine, interleaved, `--runs` times.
pub fn run(args: &[String]) {
    let value = |name: &str| args.iter().rposition(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let warehouses = value("--warehouses").unwrap_or_else(|| "4".into());
    let seconds = value("--seconds").unwrap_or_else(|| "10".into());
    let runs: u32 = value("--runs").map_or(3, |v| v.parse().expect("--runs"));
    let cache = value("--cache-mib").unwrap_or_else(|| "2048".into());
    let engines: Vec<String> = value("--engines").map_or_else(
        || engine::engines().iter().map(|e| e.to_string()).collect(),
        |v| v.split(',').map(str::to_string).collect(),
    );
    let me = std::env::current_exe().unwrap();
    // (engine, threads) -> (new-order/s, total/s, conflicts/s, p50, p99) per run.
    let mut got: BTreeMap<(String, u32), Vec<[f64; 5]>> = BTreeMap::new();
    let mut csv = String::from(
        "engine,warehouses,threads,run,new_order_per_s,total_per_s,conflicts_per_s,new_order_p50_us,new_order_p99_us,load_s,disk_mib\n",
    );
    for run in 0..runs {
        let mut order = engines.clone();
        order.rotate_left(run as usize % engines.len().max(1));
        for e in &order {
            eprintln!("tpcc run {}/{runs}: {e}, {warehouses} warehouses", run + 1);
            let out = std::process::Command::new(&me)
                .args(["tpcc-one", e, &warehouses, "1,2", &seconds, "42", &cache])
                .output()
                .unwrap();
            if !out.status.success() {
                eprintln!("tpcc: {e} failed: {}", String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or(""));
                std::process::exit(1);
            }
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                let f: Vec<&str> = line.split(',').collect();
                if f.first() != Some(&"tpcc") {
                    continue;
                }
                let n: Vec<f64> = f[4..9].iter().map(|v| v.parse().unwrap()).collect();
                got.entry((e.clone(), f[3].parse().unwrap())).or_default().push([n[0], n[1], n[2], n[3], n[4]]);
                let _ = writeln!(csv, "{},{},{},{run},{}", f[1], f[2], f[3], f[4..].join(","));
            }
        }
    }
    let spread = |e: &str, t: u32, i: usize| {
        crate::suite::spread(got.get(&(e.to_string(), t)).map(|v| v.iter().map(|r| r[i]).collect()).unwrap_or_default())
    };
    let mut md = format!(
        "TPC-C, {warehouses} warehouses, {seconds} s per measurement, {runs} interleaved runs (medians, min-max); \
         `snowfall-compare {}`; ratios are engine / SnowfallDB.\n\n\
         | engine | threads | new-order/s | total tx/s | vs SnowfallDB | conflicts retried/s | New-Order p50 / p99 µs |\n\
         |---|---|---|---|---|---|---|\n",
        args[1..].join(" ")
    );
    for e in &engines {
        for t in [1, 2] {
            let (no, total, conflicts, p50, p99) =
                (spread(e, t, 0), spread(e, t, 1), spread(e, t, 2), spread(e, t, 3), spread(e, t, 4));
            let ours = spread("snowfall", t, 1);
            let ratio = if e == "snowfall" { "-".into() } else { format!("{:.2}x", total.median / ours.median) };
            let _ = writeln!(
                md,
                "| {e} | {t} | {:.0} ({:.0}-{:.0}) | {:.0} ({:.0}-{:.0}) | {ratio} | {:.0} | {:.0} / {:.0} |",
                no.median, no.min, no.max, total.median, total.min, total.max, conflicts.median, p50.median, p99.median
            );
        }
    }
    print!("{md}");
    if let Some(out) = value("--out") {
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(std::path::Path::new(&out).join("tpcc.csv"), &csv).unwrap();
        std::fs::write(std::path::Path::new(&out).join("tpcc.md"), &md).unwrap();
    }
    if let Some(doc) = value("--docs") {
        let text = std::fs::read_to_string(&doc).unwrap_or_else(|e| panic!("{doc}: {e}"));
        let text = crate::suite::splice(&text, "tpcc", &md).unwrap_or_else(|e| panic!("{doc}: {e}"));
        std::fs::write(&doc, text).unwrap();
    }
}
