//! The suite's results: the CSV rows measurement processes print, checks
//! across engines, and the Markdown tables (medians of the runs, min-max,
//! ratios to SnowfallDB) that go into docs/BENCHMARKS.md.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::workload::Workload;

/// The CSV header; `measure.rs` prints rows in this order.
pub const COLUMNS: &str = "engine,shape,memory,records,budget_mib,order,load_threads,run,workload,threads,seconds,ops,\
ops_per_s,p50_us,p99_us,p999_us,cpu_s,read_mib,write_mib,disk_mib,peak_rss_mib,digest";

/// One row of the CSV.
#[derive(Clone, Debug)]
pub struct Row {
    pub engine: String,
    pub shape: String,
    pub memory: String,
    pub records: u64,
    pub budget_mib: u64,
    pub order: String,
    pub run: u32,
    pub workload: String,
    pub threads: u64,
    pub ops: u64,
    pub ops_per_s: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub cpu_s: f64,
    pub read_mib: f64,
    pub write_mib: f64,
    pub disk_mib: f64,
    pub peak_rss_mib: f64,
    pub digest: String,
}

impl Row {
    pub fn parse(line: &str) -> Option<Row> {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != COLUMNS.split(',').count() || f[0] == "engine" {
            return None;
        }
        let n = |i: usize| f[i].parse::<f64>().ok();
        Some(Row {
            engine: f[0].into(),
            shape: f[1].into(),
            memory: f[2].into(),
            records: f[3].parse().ok()?,
            budget_mib: f[4].parse().ok()?,
            order: f[5].into(),
            run: f[7].parse().ok()?,
            workload: f[8].into(),
            threads: f[9].parse().ok()?,
            ops: f[11].parse().ok()?,
            ops_per_s: n(12)?,
            p50_us: n(13)?,
            p99_us: n(14)?,
            p999_us: n(15)?,
            cpu_s: n(16)?,
            read_mib: n(17)?,
            write_mib: n(18)?,
            disk_mib: n(19)?,
            peak_rss_mib: n(20)?,
            digest: f[21].into(),
        })
    }

    /// The data set it belongs to.
    pub fn config(&self) -> Config {
        Config {
            shape: self.shape.clone(),
            memory: self.memory.clone(),
            records: self.records,
            budget_mib: self.budget_mib,
        }
    }
}

/// The workload of the row of a measurement the out-of-memory killer
/// ended (in its memory cgroup, for going over the budget).
pub const KILLED: &str = "oom-killed";

pub fn read_csv(text: &str) -> Vec<Row> {
    text.lines().filter_map(Row::parse).collect()
}

/// A data set: shape, in or out of memory, size, budget.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Config {
    pub shape: String,
    pub memory: String,
    pub records: u64,
    pub budget_mib: u64,
}

impl Config {
    pub fn title(&self) -> String {
        let record =
            if self.shape == "ycsb" { "24-byte keys, 1,000-byte values" } else { "8-byte keys, 8-byte values" };
        format!(
            "{} records of {record}, {} (memory budget {} MiB)",
            thousands(self.records),
            if self.memory == "in" { "in memory" } else { "out of memory" },
            self.budget_mib
        )
    }

    /// A file-name stem.
    pub fn slug(&self) -> String {
        format!("{}-{}", self.shape, if self.memory == "in" { "in-memory" } else { "out-of-memory" })
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Median, min and max.
#[derive(Clone, Copy, Debug, Default)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub n: usize,
}

pub fn spread(mut v: Vec<f64>) -> Spread {
    if v.is_empty() {
        return Spread::default();
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
    Spread { median, min: v[0], max: v[n - 1], n }
}

/// Every engine must have loaded the same records of a data set: the full
/// scans after each load (any order, any thread count) have one digest
/// and count.
pub fn check_agreement(rows: &[Row]) -> Result<(), String> {
    let mut seen: BTreeMap<Config, (String, &Row)> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.workload == "scan-all") {
        let key = format!("{}/{}", r.digest, r.ops);
        match seen.get(&r.config()) {
            None => {
                seen.insert(r.config(), (key, r));
            }
            Some((k, first)) if *k != key => {
                return Err(format!(
                    "{}: {} (run {}, {} load) scanned {} records with digest {}, {} (run {}, {} load) {} with {}",
                    r.config().title(),
                    first.engine,
                    first.run,
                    first.order,
                    first.ops,
                    first.digest,
                    r.engine,
                    r.run,
                    r.order,
                    r.ops,
                    r.digest
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// The engines present, SnowfallDB first, in the suite's order.
pub fn engines(rows: &[Row]) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for e in super::engines::all() {
        if rows.iter().any(|r| r.engine == e) {
            v.push(e.to_string());
        }
    }
    v
}

pub fn configs(rows: &[Row]) -> Vec<Config> {
    let mut v: Vec<Config> = rows.iter().map(Row::config).collect();
    v.sort();
    v.dedup();
    v
}

/// The rows of one cell (workloads run once per process, after its load).
pub fn cell<'a>(
    rows: &'a [Row],
    config: &Config,
    engine: &str,
    workload: &str,
    threads: u64,
) -> impl Iterator<Item = &'a Row> + 'a {
    let (config, engine, workload) = (config.clone(), engine.to_string(), workload.to_string());
    rows.iter()
        .filter(move |r| r.config() == config && r.engine == engine && r.workload == workload && r.threads == threads)
}

fn rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1} K", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

fn range(s: Spread, f: impl Fn(f64) -> String) -> String {
    if s.n > 1 { format!("{} ({}-{})", f(s.median), f(s.min), f(s.max)) } else { f(s.median) }
}

/// A table with a row per workload and thread count and a column per
/// engine; `text(engine, rows, workload, threads)` fills a cell that has
/// rows.
fn workload_table(
    md: &mut String,
    rows: &[Row],
    config: &Config,
    engines: &[String],
    threads: &[u64],
    text: impl Fn(&str, &[&Row], &str, u64) -> String,
) {
    let _ = write!(md, "| workload | threads |");
    engines.iter().for_each(|e| {
        let _ = write!(md, " {e} |");
    });
    let _ = writeln!(md, "\n|---|---|{}", "---|".repeat(engines.len()));
    for w in Workload::ALL {
        for &t in threads {
            let cells: Vec<Vec<&Row>> = engines.iter().map(|e| cell(rows, config, e, w.name(), t).collect()).collect();
            if cells.iter().all(Vec::is_empty) {
                continue;
            }
            let _ = write!(md, "| {} | {t} |", w.name());
            for (e, got) in engines.iter().zip(&cells) {
                if got.is_empty() {
                    md.push_str(" - |");
                } else {
                    let _ = write!(md, " {} |", text(e, got, w.name(), t));
                }
            }
            md.push('\n');
        }
    }
}

/// The Markdown tables of a run: per data set, throughput of every
/// workload, latency, and the loads.
pub fn markdown(rows: &[Row], plots: Option<&str>) -> String {
    let engines = engines(rows);
    let mut md = String::new();
    let runs = rows.iter().map(|r| r.run).max().map_or(0, |r| r + 1);
    let _ = writeln!(
        md,
        "Medians of {runs} interleaved runs (min-max in parentheses); ratios are engine / SnowfallDB \
         (above 1: the other engine is faster)."
    );
    for config in configs(rows) {
        let _ = writeln!(md, "\n#### {}\n", config.title());
        let threads: Vec<u64> = {
            let mut t: Vec<u64> = rows
                .iter()
                .filter(|r| r.config() == config && !["load", "scan-all", KILLED].contains(&r.workload.as_str()))
                .map(|r| r.threads)
                .collect();
            t.sort_unstable();
            t.dedup();
            t
        };
        for e in &engines {
            let runs: Vec<String> = rows
                .iter()
                .filter(|r| r.config() == config && &r.engine == e && r.workload == KILLED)
                .map(|r| (r.run + 1).to_string())
                .collect();
            if !runs.is_empty() {
                let _ = writeln!(
                    md,
                    "{e} went over the budget: the kernel's out-of-memory killer ended it in run(s) {} (its \
                     cells hold what it measured before).\n",
                    runs.join(", ")
                );
            }
        }
        // Throughput.
        workload_table(&mut md, rows, &config, &engines, &threads, |e, got, w, t| {
            let ours = spread(cell(rows, &config, "snowfall", w, t).map(|r| r.ops_per_s).collect());
            let s = spread(got.iter().map(|r| r.ops_per_s).collect());
            if e == "snowfall" || ours.n == 0 {
                format!("{}/s", range(s, rate))
            } else {
                format!("**{:.2}x** {}/s", s.median / ours.median, range(s, rate))
            }
        });
        let _ = writeln!(md, "\nLatency p50 / p99 / p99.9 (µs, medians of runs):\n");
        workload_table(&mut md, rows, &config, &engines, &threads, |_, got, _, _| {
            let m = |f: fn(&Row) -> f64| spread(got.iter().map(|r| f(r)).collect()).median;
            format!("{:.1} / {:.1} / {:.0}", m(|r| r.p50_us), m(|r| r.p99_us), m(|r| r.p999_us))
        });
        let _ = writeln!(
            md,
            "\nPer operation at 1 thread: CPU µs (user + system) / bytes read from disk / bytes written (medians):\n"
        );
        workload_table(&mut md, rows, &config, &engines, &[1], |_, got, _, _| {
            let per = |f: fn(&Row) -> f64| spread(got.iter().map(|r| f(r) / r.ops.max(1) as f64).collect()).median;
            format!(
                "{:.2} / {:.0} / {:.0}",
                per(|r| r.cpu_s * 1e6),
                per(|r| r.read_mib * (1 << 20) as f64),
                per(|r| r.write_mib * (1 << 20) as f64)
            )
        });
        // Loads.
        let _ = writeln!(
            md,
            "\nLoads (records/s, the final sync included; on-disk bytes per record after it; bytes written per \
             record; peak RSS of the process):\n"
        );
        let _ = writeln!(
            md,
            "| engine | order | threads | records/s | vs SnowfallDB | disk B/record | written B/record | peak RSS MiB |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
        let mut loads: Vec<(String, u64)> = rows
            .iter()
            .filter(|r| r.config() == config && r.workload == "load")
            .map(|r| (r.order.clone(), r.threads))
            .collect();
        loads.sort();
        loads.dedup();
        for (order, t) in &loads {
            let pick = |e: &str| {
                rows.iter()
                    .filter(|r| {
                        r.config() == config
                            && r.workload == "load"
                            && r.engine == e
                            && &r.order == order
                            && r.threads == *t
                    })
                    .collect::<Vec<_>>()
            };
            let ours = spread(pick("snowfall").iter().map(|r| r.ops_per_s).collect());
            for e in &engines {
                let got = pick(e);
                if got.is_empty() {
                    continue;
                }
                let s = spread(got.iter().map(|r| r.ops_per_s).collect());
                let per = |f: fn(&Row) -> f64| {
                    spread(got.iter().map(|r| f(r) * (1 << 20) as f64 / r.records as f64).collect()).median
                };
                let ratio = if e == "snowfall" || ours.n == 0 {
                    "-".to_string()
                } else {
                    format!("{:.2}x", s.median / ours.median)
                };
                let _ = writeln!(
                    md,
                    "| {e} | {order} | {t} | {}/s | {ratio} | {:.0} | {:.0} | {:.0} |",
                    range(s, rate),
                    per(|r| r.disk_mib),
                    per(|r| r.write_mib),
                    spread(got.iter().map(|r| r.peak_rss_mib).collect()).median
                );
            }
        }
        if let Some(dir) = plots {
            let _ = writeln!(md, "\nPlots: ");
            for w in Workload::ALL {
                if rows.iter().any(|r| r.config() == config && r.workload == w.name()) {
                    let _ = writeln!(md, "[{}]({dir}/{}-{}.svg) ", w.name(), config.slug(), w.name());
                }
            }
        }
    }
    md
}

/// Replaces what lies between the markers `<!-- NAME:begin -->` and
/// `<!-- NAME:end -->` in `doc` with `body`.
pub fn splice(doc: &str, name: &str, body: &str) -> Result<String, String> {
    let (begin, end) = (format!("<!-- {name}:begin -->"), format!("<!-- {name}:end -->"));
    let b = doc.find(&begin).ok_or(format!("no {begin} marker"))?;
    let e = doc.find(&end).ok_or(format!("no {end} marker"))?;
    if e < b {
        return Err(format!("{end} comes before {begin}"));
    }
    Ok(format!("{}{begin}\n{body}\n{}", &doc[..b], &doc[e..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_of_even_and_odd_counts() {
        let s = spread(vec![3.0, 1.0, 2.0]);
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(spread(vec![1.0, 4.0]).median, 2.5);
    }

    #[test]
    fn splice_replaces_between_markers() {
        let doc = "a\n<!-- suite:begin -->\nold\n<!-- suite:end -->\nb\n";
        assert_eq!(splice(doc, "suite", "new").unwrap(), "a\n<!-- suite:begin -->\nnew\n<!-- suite:end -->\nb\n");
        assert!(splice("no markers", "suite", "x").is_err());
    }

    #[test]
    fn rows_round_trip_and_disagreement_is_found() {
        let line = |engine: &str, digest: &str| {
            format!(
                "{engine},small,in,100,64,random,1,0,scan-all,1,0.1,100,1000.0,1.0,2.0,3.0,0.1,0.0,0.0,1.0,10.0,{digest}"
            )
        };
        let rows = read_csv(&[COLUMNS.to_string(), line("snowfall", "ab"), line("lmdb", "ab")].join("\n"));
        assert_eq!(rows.len(), 2);
        assert!(check_agreement(&rows).is_ok());
        let rows = read_csv(&[line("snowfall", "ab"), line("lmdb", "ac")].join("\n"));
        assert!(check_agreement(&rows).unwrap_err().contains("lmdb"));
    }
}
