//! Real process crashes: a child process writes with `Sync` durability and
//! reports each acknowledged operation through a pipe; the parent kills it
//! with SIGKILL at a random moment (sometimes while it is still recovering
//! from the last kill), reopens the database, and checks that it holds
//! every acknowledged write (and at most the one operation in flight
//! beyond), each batch whole, and passes the integrity check. Then the
//! next child goes on from there. One value in ten is large (stored out of
//! line), so kills also land in extent writes and the data syncs before the
//! log writes that refer to them.
//!
//! `SNOWFALL_KILL_ROUNDS=<n>` sets the number of kills (default 100).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{TempPath, key, small};
use snowfall_buffer::scenario::SplitMix64;
use snowfall_db::{Batch, Database, Durability};

const KEYS: u64 = 4000;

/// Operation `i` of the endless workload: (key, value) writes applied as
/// one (a batch when there are several).
fn op(i: u64) -> Vec<(u64, Vec<u8>)> {
    let mut rng = SplitMix64(i.wrapping_mul(0x9E37_79B9));
    let n = if rng.below(10) == 0 { 2 + rng.below(8) } else { 1 };
    (0..n)
        .map(|j| {
            let k = rng.below(KEYS);
            // One value in ten is large (written to an extent, then logged).
            let len = if rng.below(10) == 0 { 2000 + rng.below(40_000) } else { 16 + rng.below(300) } as usize;
            let mut v = format!("{k}:{i}:{j}:").into_bytes();
            v.resize(len, b'.');
            (k, v)
        })
        .collect()
}

/// The child: applies operations from `SNOWFALL_KILL_FROM` on, printing
/// `ack <i>` once operation `i` is acknowledged, until killed.
#[test]
#[ignore = "runs only as the child process of sigkill_at_random_moments_loses_no_acknowledged_write"]
fn child_writer() {
    let path = std::env::var("SNOWFALL_KILL_PATH").expect("run by the parent test");
    let from: u64 = std::env::var("SNOWFALL_KILL_FROM").unwrap().parse().unwrap();
    let db = Database::open(&path, small()).unwrap();
    let t = db.tree("t").unwrap();
    for i in from.. {
        let writes = op(i);
        if writes.len() == 1 {
            t.insert_with(&key(writes[0].0), &writes[0].1, Durability::Sync).unwrap();
        } else {
            let mut batch = Batch::new();
            for (k, v) in &writes {
                batch.insert(&t, &key(*k), v);
            }
            db.write(&batch, Durability::Sync).unwrap();
        }
        println!("ack {i}");
    }
}

/// The state after operations `0..n`.
fn state_after(n: u64) -> HashMap<u64, Vec<u8>> {
    let mut s = HashMap::new();
    for i in 0..n {
        for (k, v) in op(i) {
            s.insert(k, v);
        }
    }
    s
}

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_write() {
    let rounds: u64 = std::env::var("SNOWFALL_KILL_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(100);
    let path = TempPath::new("kill");
    let exe = std::env::current_exe().unwrap();
    let mut done = 0u64; // operations in the database
    let mut rng = SplitMix64(7);
    let mut total_acked = 0;
    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .args(["--ignored", "--exact", "child_writer", "--nocapture", "--test-threads=1"])
            .env("SNOWFALL_KILL_PATH", path.str())
            .env("SNOWFALL_KILL_FROM", done.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        // Kill after a random number of acknowledgements (0: maybe while
        // it is still opening and recovering), or a time limit.
        let kill_after = rng.below(60);
        let deadline = Instant::now() + Duration::from_secs(20);
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(i) = line.strip_prefix("ack ").and_then(|s| s.parse::<u64>().ok())
                    && tx.send(i).is_err()
                {
                    break;
                }
            }
        });
        let mut acked = None;
        let mut n = 0;
        if kill_after == 0 {
            std::thread::sleep(Duration::from_micros(rng.below(20_000)));
        }
        while n < kill_after && Instant::now() < deadline {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(i) => {
                    acked = Some(i);
                    n += 1;
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(_) => break,
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        // Acknowledgements already in the pipe count too.
        reader.join().unwrap();
        while let Ok(i) = rx.try_recv() {
            acked = Some(i);
        }
        let acked_ops = acked.map_or(done, |i| i + 1);
        assert!(acked_ops >= done);
        total_acked += acked_ops - done;

        let db = Database::open(path.str(), small()).unwrap_or_else(|e| panic!("round {round}: reopen failed: {e}"));
        db.check().unwrap_or_else(|e| panic!("round {round}: integrity check: {e}"));
        let t = db.tree("t").unwrap();
        let mut got = HashMap::new();
        t.scan(std::ops::Bound::Unbounded, snowfall_db::Direction::Forward, |k, v| {
            got.insert(common::unkey(k), v.to_vec());
            true
        })
        .unwrap();
        // Every acknowledged operation is there; the one in flight may be.
        done = if got == state_after(acked_ops) {
            acked_ops
        } else if got == state_after(acked_ops + 1) {
            acked_ops + 1
        } else {
            panic!("round {round}: the database holds neither the {acked_ops} acknowledged operations nor one more")
        };
        db.close().unwrap();
    }
    println!("{rounds} kills, {total_acked} acknowledged operations, {done} in the database");
    assert!(total_acked > rounds, "the child hardly wrote anything");
}
