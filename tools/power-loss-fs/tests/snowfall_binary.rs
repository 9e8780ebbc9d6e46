//! The static `snowfall` binary through a power loss: `snowfall put` and
//! `snowfall del` run one after another on a database on the emulation
//! (each process opens the database, recovering it, writes with `Sync`
//! durability and closes it with a checkpoint), and each one that exits
//! successfully has its write acknowledged. At a random moment the running
//! process is killed with SIGKILL and the power fails (unsynced writes
//! dropped, or torn by sector). Then `snowfall check` and `snowfall scan`
//! run on a copy of the backing directory (what a reboot finds): the check
//! must pass and the contents must hold every acknowledged write and at
//! most the one in flight. Every eighth round starts a new database, so
//! that the first `put`, which creates it, is acknowledged and then lost
//! unless the directory was fsynced after creating the files.
//!
//! The binary: `SNOWFALL_BIN`, else `target/release/snowfall` or
//! `target/debug/snowfall` of the repository. `SNOWFALL_POWER_LOSS_ROUNDS`
//! sets the rounds (default 40), `SNOWFALL_SEED` the seed (default 1).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::Scratch;
use snowfall_power_loss_fs::{PowerLoss, SplitMix64};

/// The binary under test, or `None` (said loudly) if it was not built.
fn snowfall_bin() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SNOWFALL_BIN") {
        return Some(PathBuf::from(path));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let built = ["release", "debug"].iter().map(|p| root.join("target").join(p).join("snowfall")).find(|p| p.exists());
    if built.is_none() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI must build the snowfall binary first");
        eprintln!(
            "SKIPPED: no snowfall binary; run `cargo build --release` at the repository root or set SNOWFALL_BIN"
        );
    }
    built
}

/// Operation `i`: `put KEY VALUE`, or (one in five) `del KEY` of the key
/// the operation before put, which is always there: operations run in order
/// and each starts from the state after the one before.
fn op(i: u64) -> (String, Option<String>) {
    let key = |i: u64| format!("k{:02}", SplitMix64(i.wrapping_mul(0x9E37_79B9)).below(40));
    if i % 5 == 4 { (key(i - 1), None) } else { (key(i), Some(format!("v{i}"))) }
}

fn state_after(n: u64) -> BTreeMap<String, String> {
    let mut s = BTreeMap::new();
    for i in 0..n {
        match op(i) {
            (k, Some(v)) => s.insert(k, v),
            (k, None) => s.remove(&k),
        };
    }
    s
}

fn start(bin: &Path, db: &Path, i: u64) -> Child {
    let mut cmd = Command::new(bin);
    cmd.arg("--db").arg(db);
    match op(i) {
        (k, Some(v)) => cmd.args(["put", &k, &v]),
        (k, None) => cmd.args(["del", &k]),
    };
    cmd.env_remove("SNOWFALL_LOG").stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()
}

fn run(bin: &Path, db: &Path, args: &[&str]) -> Output {
    Command::new(bin).arg("--db").arg(db).args(args).env_remove("SNOWFALL_LOG").output().unwrap()
}

/// Runs operations from `from` on until `kill_after` has passed, then kills
/// the one running; returns the number acknowledged (all of them). Warnings
/// on stderr (such as the O_DIRECT fallback) are collected in `warnings`.
fn run_until_killed(bin: &Path, db: &Path, from: u64, kill_after: Duration, warnings: &mut Vec<String>) -> u64 {
    let kill_at = Instant::now() + kill_after;
    let mut i = from;
    let mut child = start(bin, db, i);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
            warnings.extend(stderr.lines().filter(|l| l.contains("WARN")).map(String::from));
            assert!(status.success(), "operation {i} ({:?}) failed: {status}\n{stderr}", op(i));
            i += 1;
            child = start(bin, db, i);
        } else if Instant::now() >= kill_at {
            child.kill().unwrap();
            child.wait().unwrap();
            return i;
        } else {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
}

#[test]
fn power_loss_while_the_binary_writes_loses_no_acknowledged_write() {
    let Some(bin) = snowfall_bin() else { return };
    let rounds: u64 = std::env::var("SNOWFALL_POWER_LOSS_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(40);
    let seed: u64 = std::env::var("SNOWFALL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let s = Scratch::new("binary");
    let mut rng = SplitMix64(seed);
    let started = Instant::now();
    let mut done = 0u64;
    let (mut total_acked, mut torn) = (0, 0);
    let (mut unsynced_files, mut unsynced_bytes, mut sectors_kept) = (0, 0, 0);
    let mut warnings = Vec::new();
    for round in 0..rounds {
        if round % 8 == 0 {
            for entry in std::fs::read_dir(s.backing()).unwrap() {
                std::fs::remove_file(entry.unwrap().path()).unwrap();
            }
            done = 0;
        }
        let Some(mounted) = s.mount() else { return };
        // A fresh database: long enough for the first `put` to finish.
        let kill_after = Duration::from_millis(if round % 8 == 0 { 150 + rng.below(100) } else { rng.below(400) });
        let acked = run_until_killed(&bin, &s.mnt().join("db"), done, kill_after, &mut warnings);
        let how = if rng.below(2) == 1 { PowerLoss::Drop } else { PowerLoss::Torn { seed: rng.next_u64() } };
        torn += u64::from(matches!(how, PowerLoss::Torn { .. }));
        let report = mounted.power_loss(how).unwrap();
        (unsynced_files, unsynced_bytes) =
            (unsynced_files + report.files_unsynced, unsynced_bytes + report.bytes_unsynced);
        sectors_kept += report.sectors_kept;
        total_acked += acked - done;

        let db = s.copy_backing().join("db");
        let fail = |what: String| -> ! { panic!("round {round} (SNOWFALL_SEED={seed}): {what}") };
        if !db.exists() {
            if acked > 0 {
                fail(format!(
                    "{acked} writes were acknowledged, but after the power loss the database files are gone: \
                     their directory entries were never made durable (the directory was not fsynced after \
                     creating them). Power loss report: {report:?}"
                ));
            }
            done = 0;
            continue;
        }
        let out = run(&bin, &db, &["check"]);
        if !out.status.success() {
            fail(format!("`snowfall check` failed: {out:?}"));
        }
        let out = run(&bin, &db, &["scan"]);
        let got: BTreeMap<String, String> = match out.status.code() {
            // Created, but killed before the first write made its tree.
            Some(3) if acked == 0 && String::from_utf8_lossy(&out.stderr).contains("no tree named") => BTreeMap::new(),
            Some(0) => String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .map(|l| {
                    let (k, v) = l.split_once('\t').unwrap();
                    (k.to_owned(), v.to_owned())
                })
                .collect(),
            _ => fail(format!("`snowfall scan` failed: {out:?}")),
        };
        done = if got == state_after(acked) {
            acked
        } else if got == state_after(acked + 1) {
            acked + 1
        } else {
            fail(format!("the database holds neither the {acked} acknowledged writes nor one more: {got:?}"))
        };
    }
    warnings.sort();
    warnings.dedup();
    println!(
        "{rounds} power losses ({torn} torn) in {:.1} s; {total_acked} acknowledged writes; unsynced at the power \
         losses: {} KiB in {unsynced_files} files ({sectors_kept} sectors kept by torn ones); warnings: {warnings:?}",
        started.elapsed().as_secs_f64(),
        unsynced_bytes >> 10
    );
    assert!(total_acked > rounds, "the binary hardly wrote anything");
}
