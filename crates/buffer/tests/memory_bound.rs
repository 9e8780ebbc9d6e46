//! The memory bound, measured: a child process runs a buffer manager with a
//! 16 MiB pool over a file 16 times larger while the parent samples its
//! VmRSS at 20 Hz; the peak (sampled, and the kernel's VmHWM) must stay
//! within the documented bound plus the process's own footprint before the
//! buffer manager existed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, reason = "tests: a panic is a failure")]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{TempFile, config};
use snowfall_buffer::BufferManager;
use snowfall_buffer::scenario::{SplitMix64, fill_body};

const POOL_MIB: u64 = 16;
const DATA_MULTIPLE: u64 = 16;
/// Slack for the allocator and thread stacks of the test harness itself.
const SLACK_BYTES: u64 = 1 << 20;

/// `VmRSS` or `VmHWM` of a process, in bytes.
fn status_bytes(pid: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[test]
fn resident_memory_stays_within_the_bound_while_touching_sixteen_times_the_pool() {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_touch_sixteen_times_the_pool", "--ignored", "--nocapture", "--test-threads=1"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || BufReader::new(stdout).lines().map_while(Result::ok).collect::<Vec<_>>());
    let mut peak_sampled = 0;
    let mut samples = 0;
    while child.try_wait().unwrap().is_none() {
        if let Some(rss) = status_bytes(&pid, "VmRSS:") {
            peak_sampled = peak_sampled.max(rss);
            samples += 1;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let lines = reader.join().unwrap();
    let value = |key: &str| -> u64 {
        let line = lines
            .iter()
            .find_map(|l| l.split_once(key).map(|(_, v)| v))
            .unwrap_or_else(|| panic!("child did not report {key}: {lines:?}"));
        line.trim().parse().unwrap()
    };
    let (baseline, bound, peak_hwm) = (value("baseline_bytes="), value("bound_bytes="), value("peak_hwm_bytes="));
    let limit = baseline + bound + SLACK_BYTES;
    eprintln!(
        "samples {samples}, baseline {} KiB, bound {} KiB, limit {} KiB, peak sampled {} KiB, VmHWM {} KiB",
        baseline >> 10,
        bound >> 10,
        limit >> 10,
        peak_sampled >> 10,
        peak_hwm >> 10
    );
    assert!(samples >= 10, "only {samples} samples: the child ran too briefly to measure");
    assert!(peak_sampled <= limit, "sampled RSS {peak_sampled} exceeds {limit}");
    assert!(peak_hwm <= limit, "VmHWM {peak_hwm} exceeds {limit}");
    // The pool was really used: the peak is well above the baseline.
    assert!(peak_hwm > baseline + POOL_MIB * (1 << 20) / 2, "the pool never filled");
}

#[test]
#[ignore = "run in a child process by resident_memory_stays_within_the_bound_while_touching_sixteen_times_the_pool"]
fn child_touch_sixteen_times_the_pool() {
    let file = TempFile::new("memory-bound");
    let cfg = config(POOL_MIB, 1024);
    let pages = DATA_MULTIPLE * cfg.pool_pages();
    // The test's own bookkeeping, touched before the baseline is taken.
    let mut ids = vec![snowfall_buffer::PageId(u64::MAX); pages as usize];
    let baseline = status_bytes("self", "VmRSS:").unwrap();
    let bm = BufferManager::open(cfg, Box::new(file.open())).unwrap();
    for (i, slot) in ids.iter_mut().enumerate() {
        let mut g = bm.allocate().unwrap();
        *slot = g.id();
        fill_body(g.page_mut().body_mut(), *slot, i as u64);
    }
    let mut rng = SplitMix64(42);
    for _ in 0..20_000 {
        let id = ids[rng.below(pages) as usize];
        let g = bm.fix_shared(id).unwrap();
        assert_eq!(snowfall_buffer::scenario::check_body(g.page().body(), id), Ok(id.0));
    }
    let bound = bm.memory_bound_bytes(1);
    let hwm = status_bytes("self", "VmHWM:").unwrap();
    let mut out = std::io::stdout().lock();
    writeln!(out, "baseline_bytes={baseline}").unwrap();
    writeln!(out, "bound_bytes={bound}").unwrap();
    writeln!(out, "peak_hwm_bytes={hwm}").unwrap();
    writeln!(out, "stats={:?}", bm.stats()).unwrap();
}
