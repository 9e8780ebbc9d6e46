//! SnowfallDB through a power loss: a child process (this test binary again)
//! writes to a database on the emulation with `Sync` durability, taking
//! checkpoints as it goes, and reports each acknowledged operation and each
//! checkpoint through a pipe. The parent kills it with SIGKILL at a random
//! moment (after some acknowledgements, just as a checkpoint starts, or at a
//! random time, possibly while it is still opening and recovering), then the
//! power fails: every unsynced write is dropped, or torn by sector. The
//! backing directory is then exactly what a reboot finds; a copy of it is
//! opened directly and must hold every acknowledged operation (and at most
//! the one in flight), each batch whole, and pass the integrity check. The
//! next child recovers the uncopied backing directory through the emulation
//! and goes on. Every tenth round starts a new database, so that a crash
//! soon after creation is tried too: without an fsync of the directory
//! after creating the files, the power loss takes the files themselves.
//!
//! `SNOWFALL_POWER_LOSS_ROUNDS=<n>` sets the rounds (default 40),
//! `SNOWFALL_SEED=<seed>` the seed (default 1; printed on failure).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use common::Scratch;
use snowfall_db::{Batch, Database, Direction, Durability, MemoryKind, Options};
use snowfall_power_loss_fs::{PowerLoss, Report, SplitMix64};

const KEYS: u64 = 20_000;

/// Small settings: the smallest pool (1 MiB), so that the database outgrows
/// it within a few rounds and evictions write pages back between
/// checkpoints (unsynced data-file writes for the power loss to drop); a
/// checkpoint every 512 KiB of log.
fn options(create: bool) -> Options {
    Options {
        create,
        pool_bytes: 1 << 20,
        max_bytes: Some(256 << 20),
        memory: MemoryKind::Madvise,
        log_bytes: 16 << 20,
        checkpoint_bytes: 512 << 10,
        ..Options::default()
    }
}

#[allow(clippy::big_endian_bytes, reason = "keys sort like numbers")]
fn key(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

#[allow(clippy::big_endian_bytes, reason = "keys sort like numbers")]
fn unkey(k: &[u8]) -> u64 {
    u64::from_be_bytes(k.try_into().unwrap())
}

/// Operation `i` of the endless workload: writes applied as one (a batch
/// when there are several); `None` removes the key.
fn op(i: u64) -> Vec<(u64, Option<Vec<u8>>)> {
    let mut rng = SplitMix64(i.wrapping_mul(0x9E37_79B9));
    let n = if rng.below(4) == 0 { 2 + rng.below(15) } else { 1 };
    (0..n)
        .map(|j| {
            let k = rng.below(KEYS);
            if rng.below(10) == 0 {
                return (k, None);
            }
            let len = 16 + rng.below(900) as usize;
            let mut v = format!("{k}:{i}:{j}:").into_bytes();
            v.resize(len, b'.');
            (k, Some(v))
        })
        .collect()
}

/// The contents after operations `0..n`.
fn state_after(n: u64) -> HashMap<u64, Vec<u8>> {
    let mut s = HashMap::new();
    for i in 0..n {
        for (k, v) in op(i) {
            match v {
                Some(v) => s.insert(k, v),
                None => s.remove(&k),
            };
        }
    }
    s
}

/// The child: opens (or creates) the database and applies operations from
/// `SNOWFALL_POWER_LOSS_FROM` on, printing `ack <i>` once operation `i` is
/// acknowledged, and `checkpoint` and `checkpoint done` around a checkpoint
/// after every 128th operation, until killed.
#[test]
#[ignore = "runs only as the child process of power_loss_at_random_moments_loses_no_acknowledged_write"]
fn child_writer() {
    let path = std::env::var("SNOWFALL_POWER_LOSS_PATH").expect("run by the parent test");
    let from: u64 = std::env::var("SNOWFALL_POWER_LOSS_FROM").unwrap().parse().unwrap();
    let db = Database::open(&path, options(true)).unwrap();
    let t = db.tree("t").unwrap();
    for i in from.. {
        let writes = op(i);
        match writes.as_slice() {
            [(k, Some(v))] => drop(t.insert_with(&key(*k), v, Durability::Sync).unwrap()),
            [(k, None)] => drop(t.remove_with(&key(*k), Durability::Sync).unwrap()),
            _ => {
                let mut batch = Batch::new();
                for (k, v) in &writes {
                    match v {
                        Some(v) => batch.insert(&t, &key(*k), v),
                        None => batch.remove(&t, &key(*k)),
                    }
                }
                db.write(&batch, Durability::Sync).unwrap();
            }
        }
        println!("ack {i}");
        if i % 128 == 127 {
            println!("checkpoint");
            db.checkpoint().unwrap();
            println!("checkpoint done");
        }
    }
}

/// When the parent kills the child.
#[derive(Clone, Copy, Debug)]
enum Kill {
    /// Right after reading this many acknowledgements.
    AfterAcks(u64),
    /// This long after the child announced its first checkpoint.
    InCheckpoint(Duration),
    /// This long after starting it (maybe during open and recovery).
    AfterTime(Duration),
}

struct Round {
    /// Operations acknowledged by the end of the round (all of them).
    acked_ops: u64,
    /// Whether the kill came between `checkpoint` and `checkpoint done`.
    killed_in_checkpoint: bool,
}

/// Runs a child from operation `from` and kills it as `kill` says.
fn run_child(s: &Scratch, from: u64, kill: Kill, round: u64) -> Round {
    let stderr = std::fs::File::create(s.file("child-stderr")).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "child_writer", "--nocapture", "--test-threads=1"])
        .env("SNOWFALL_POWER_LOSS_PATH", s.mnt().join("db"))
        .env("SNOWFALL_POWER_LOSS_FROM", from.to_string())
        .env_remove("SNOWFALL_LOG")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let started = Instant::now();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut acked = None;
    let mut acks = 0;
    let mut in_checkpoint = false;
    let deadline = started + Duration::from_secs(20);
    let mut kill_at = match kill {
        Kill::AfterTime(d) => Some(started + d),
        _ => None,
    };
    loop {
        if kill_at.is_some_and(|t| Instant::now() >= t) || Instant::now() >= deadline {
            break;
        }
        let wait = kill_at.map_or(Duration::from_millis(100), |t| t.saturating_duration_since(Instant::now()));
        match rx.recv_timeout(wait) {
            Ok(line) => {
                if let Some(i) = line.strip_prefix("ack ").and_then(|s| s.parse::<u64>().ok()) {
                    acked = Some(i);
                    acks += 1;
                    if matches!(kill, Kill::AfterAcks(n) if acks >= n) {
                        break;
                    }
                } else if line == "checkpoint done" {
                    in_checkpoint = false;
                } else if line == "checkpoint" {
                    in_checkpoint = true;
                    if let (Kill::InCheckpoint(d), None) = (kill, kill_at) {
                        kill_at = Some(Instant::now() + d);
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    if let Ok(Some(status)) = child.try_wait() {
        let stderr = std::fs::read_to_string(s.file("child-stderr")).unwrap_or_default();
        panic!("round {round}: the child ended by itself ({status}) before being killed:\n{stderr}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    // Acknowledgements already in the pipe count too.
    while let Ok(line) = rx.try_recv() {
        if let Some(i) = line.strip_prefix("ack ").and_then(|s| s.parse::<u64>().ok()) {
            acked = Some(i);
        } else if line == "checkpoint done" {
            in_checkpoint = false;
        } else if line == "checkpoint" {
            in_checkpoint = true;
        }
    }
    Round { acked_ops: acked.map_or(from, |i| i + 1), killed_in_checkpoint: in_checkpoint }
}

/// The number of operations the database at `path` holds, checked: every
/// acknowledged one, perhaps the one in flight, nothing else; integrity
/// checked. `None` if the database files do not exist.
fn verify(path: &Path, acked_ops: u64, round: u64, seed: u64) -> Option<u64> {
    if !path.exists() && !Path::new(&format!("{}.wal", path.display())).exists() {
        return None;
    }
    let fail = |what: String| -> ! { panic!("round {round} (SNOWFALL_SEED={seed}): {what}") };
    // A pool that holds it all: the checking need not evict.
    let db = Database::open(path.to_str().unwrap(), Options { pool_bytes: 64 << 20, ..options(false) })
        .unwrap_or_else(|e| fail(format!("reopening after the power loss failed: {e}")));
    db.check_integrity().unwrap_or_else(|e| fail(format!("integrity check: {e}")));
    let mut got = HashMap::new();
    if let Ok(t) = db.existing_tree("t") {
        t.scan(std::ops::Bound::Unbounded, Direction::Forward, |k, v| {
            got.insert(unkey(k), v.to_vec());
            true
        })
        .unwrap();
    }
    let done = if got == state_after(acked_ops) {
        acked_ops
    } else if got == state_after(acked_ops + 1) {
        acked_ops + 1
    } else {
        fail(format!("the database holds neither the {acked_ops} acknowledged operations nor one more"))
    };
    db.close().unwrap();
    Some(done)
}

#[test]
fn power_loss_at_random_moments_loses_no_acknowledged_write() {
    let rounds: u64 = std::env::var("SNOWFALL_POWER_LOSS_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(200);
    let seed: u64 = std::env::var("SNOWFALL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let s = Scratch::new("db");
    let mut rng = SplitMix64(seed);
    let started = Instant::now();
    let mut done = 0u64; // operations in the durable database
    let (mut total_acked, mut in_checkpoint, mut torn, mut fresh_starts) = (0, 0, 0, 0);
    let mut lost = Report::default(); // summed over the rounds
    let mut kills: HashMap<&str, u64> = HashMap::new();
    for round in 0..rounds {
        if round % 40 == 0 {
            // A new database: the crash comes soon after its creation.
            for entry in std::fs::read_dir(s.backing()).unwrap() {
                std::fs::remove_file(entry.unwrap().path()).unwrap();
            }
            done = 0;
            fresh_starts += 1;
        }
        let kill = if round % 40 == 0 {
            Kill::AfterAcks(1 + rng.below(3))
        } else {
            match rng.below(3) {
                0 => Kill::AfterAcks(rng.below(40)),
                1 => Kill::InCheckpoint(Duration::from_micros(rng.below(3000))),
                _ => Kill::AfterTime(Duration::from_micros(rng.below(60_000))),
            }
        };
        *kills
            .entry(match kill {
                Kill::AfterAcks(_) => "after acknowledgements",
                Kill::InCheckpoint(_) => "after a checkpoint began",
                Kill::AfterTime(_) => "at a random time",
            })
            .or_default() += 1;
        let Some(mounted) = s.mount() else { return };
        let r = run_child(&s, done, kill, round);
        let how = if rng.below(2) == 1 { PowerLoss::Drop } else { PowerLoss::Torn { seed: rng.next_u64() } };
        torn += u64::from(matches!(how, PowerLoss::Torn { .. }));
        let report = mounted.power_loss(how).unwrap();
        lost.files_unsynced += report.files_unsynced;
        lost.bytes_unsynced += report.bytes_unsynced;
        lost.dirs_unsynced += report.dirs_unsynced;
        lost.sectors_kept += report.sectors_kept;
        lost.sizes_kept += report.sizes_kept;
        assert!(r.acked_ops >= done);
        total_acked += r.acked_ops - done;
        in_checkpoint += u64::from(r.killed_in_checkpoint);
        let copy = s.copy_backing();
        done = match verify(&copy.join("db"), r.acked_ops, round, seed) {
            Some(n) => n,
            None if r.acked_ops == 0 => 0,
            None => panic!(
                "round {round} (SNOWFALL_SEED={seed}): {} operations were acknowledged, but after the power loss \
                 the database files are gone: their directory entries were never made durable (the directory \
                 was not fsynced after creating them). Power loss report: {report:?}",
                r.acked_ops
            ),
        };
    }
    println!(
        "{rounds} power losses ({torn} torn) in {:.1} s: {fresh_starts} soon after creating the database; kills {kills:?}; \
         {in_checkpoint} during a checkpoint; {total_acked} acknowledged operations, {done} in the database at the end; \
         unsynced at the power losses: {} KiB in {} files ({} sectors and {} sizes kept by torn ones), {} directories",
        started.elapsed().as_secs_f64(),
        lost.bytes_unsynced >> 10,
        lost.files_unsynced,
        lost.sectors_kept,
        lost.sizes_kept,
        lost.dirs_unsynced
    );
    assert!(total_acked > rounds, "the child hardly wrote anything");
}
