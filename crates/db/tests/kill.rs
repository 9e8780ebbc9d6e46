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
//! A second test kills a child whose threads commit read-write transactions
//! concurrently.
//!
//! `SNOWFALL_KILL_ROUNDS=<n>` sets the number of kills (default 100, 60).
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

/// What follows `ack ` in each acknowledgement line (the test harness
/// prints the first one after its own `test child ... `).
fn acks(lines: &[String]) -> impl Iterator<Item = &str> {
    lines.iter().filter_map(|l| l.split_once("ack ").map(|(_, ack)| ack))
}

/// Runs the ignored test `child` in a child process with `envs`, and
/// kills it with SIGKILL after a random number of its `ack` lines (0:
/// maybe while it is still opening and recovering), or after 20 s. Returns
/// every line it printed, acknowledgements already in the pipe included.
fn run_and_kill(child: &str, envs: &[(&str, String)], rng: &mut SplitMix64) -> Vec<String> {
    let exe = std::env::current_exe().unwrap();
    let mut process = Command::new(&exe)
        .args(["--ignored", "--exact", child, "--nocapture", "--test-threads=1"])
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = process.stdout.take().unwrap();
    let kill_after = rng.below(60);
    let deadline = Instant::now() + Duration::from_secs(20);
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let mut acks = 0;
    if kill_after == 0 {
        std::thread::sleep(Duration::from_micros(rng.below(20_000)));
    }
    while acks < kill_after && Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                acks += u64::from(line.contains("ack "));
                lines.push(line);
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(_) => break,
        }
    }
    process.kill().unwrap();
    process.wait().unwrap();
    reader.join().unwrap();
    lines.extend(rx.try_iter());
    lines
}

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_write() {
    let rounds: u64 = std::env::var("SNOWFALL_KILL_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(100);
    let path = TempPath::new("kill");
    let mut done = 0u64; // operations in the database
    let mut rng = SplitMix64(7);
    let mut total_acked = 0;
    for round in 0..rounds {
        let envs = [("SNOWFALL_KILL_PATH", path.str().to_string()), ("SNOWFALL_KILL_FROM", done.to_string())];
        let lines = run_and_kill("child_writer", &envs, &mut rng);
        let acked = acks(&lines).filter_map(|a| a.parse::<u64>().ok()).max();
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

/// Accounts of the transfer workload, and what each starts with.
const ACCOUNTS: u64 = 64;
const START: u64 = 1_000;
/// Threads transferring concurrently in the child.
const MOVERS: u64 = 2;

fn number(v: Option<Vec<u8>>) -> Option<u64> {
    v.map(|v| u64::from_le_bytes(v.try_into().expect("8-byte numbers")))
}

/// Key of mover `t`'s progress: the number of its last committed transfer.
fn progress_key(t: u64) -> [u8; 8] {
    key(ACCOUNTS + t)
}

/// The child of the transaction test: opens the accounts (one batch) if
/// they are not there, then [`MOVERS`] threads transfer between random
/// accounts in read-write transactions committed with `Sync` (conflicts
/// retried), each also setting its progress key and printing
/// `ack <thread> <n>` once transfer `n` is committed; a snapshot reader sums
/// the accounts meanwhile and prints `wrong <sum>` if the total changed.
#[test]
#[ignore = "runs only as the child process of sigkill_during_concurrent_transactions_keeps_each_whole"]
fn child_transfers() {
    let path = std::env::var("SNOWFALL_KILL_PATH").expect("run by the parent test");
    let db = Database::open(&path, small()).unwrap();
    let bank = db.tree("bank").unwrap();
    if bank.get(&key(0)).unwrap().is_none() {
        let mut batch = Batch::new();
        for a in 0..ACCOUNTS {
            batch.insert(&bank, &key(a), &START.to_le_bytes());
        }
        db.write(&batch, Durability::Sync).unwrap();
    }
    std::thread::scope(|s| {
        for t in 0..MOVERS {
            let db = &db;
            s.spawn(move || {
                let first = number(db.tree("bank").unwrap().get(&progress_key(t)).unwrap()).unwrap_or(0) + 1;
                for n in first.. {
                    let mut rng = SplitMix64(t << 40 ^ n);
                    let (from, to) = (rng.below(ACCOUNTS), rng.below(ACCOUNTS));
                    loop {
                        let tx = db.begin_write().unwrap();
                        let bank = tx.tree("bank").unwrap();
                        let a = number(bank.get(&key(from)).unwrap()).unwrap();
                        let amount = rng.below(a + 1);
                        bank.insert(&key(from), &(a - amount).to_le_bytes()).unwrap();
                        let b = number(bank.get(&key(to)).unwrap()).unwrap();
                        bank.insert(&key(to), &(b + amount).to_le_bytes()).unwrap();
                        bank.insert(&progress_key(t), &n.to_le_bytes()).unwrap();
                        match tx.commit(Durability::Sync) {
                            Ok(()) => break,
                            Err(snowfall_db::Error::Conflict { .. }) => {}
                            Err(e) => panic!("{e}"),
                        }
                    }
                    println!("ack {t} {n}");
                }
            });
        }
        s.spawn(|| {
            loop {
                let snapshot = db.begin_read().unwrap();
                let bank = snapshot.tree("bank").unwrap();
                let sum: u64 = (0..ACCOUNTS).map(|a| number(bank.get(&key(a)).unwrap()).unwrap()).sum();
                if sum != ACCOUNTS * START {
                    println!("wrong {sum}");
                }
            }
        });
    });
}

/// SIGKILL while two threads commit transfers concurrently (their changes
/// interleaved in the log, their commit records in commit order) and a
/// snapshot reads: after each reopen every transaction is whole (the total
/// is unchanged), each thread's acknowledged transfers are all there and
/// at most its one in flight beyond, and the integrity check passes.
/// `SNOWFALL_KILL_ROUNDS` sets the kills here too (default 60).
#[test]
fn sigkill_during_concurrent_transactions_keeps_each_whole() {
    let rounds: u64 = std::env::var("SNOWFALL_KILL_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let path = TempPath::new("kill-tx");
    let mut rng = SplitMix64(11);
    let mut progress = [0u64; MOVERS as usize];
    let mut total_acked = 0;
    for round in 0..rounds {
        let lines = run_and_kill("child_transfers", &[("SNOWFALL_KILL_PATH", path.str().to_string())], &mut rng);
        assert!(!lines.iter().any(|l| l.contains("wrong ")), "round {round}: a snapshot saw a partial transfer");
        let db = Database::open(path.str(), small()).unwrap_or_else(|e| panic!("round {round}: reopen failed: {e}"));
        db.check().unwrap_or_else(|e| panic!("round {round}: integrity check: {e}"));
        let Ok(bank) = db.existing_tree("bank") else { continue };
        let mut sum = 0;
        for a in 0..ACCOUNTS {
            match number(bank.get(&key(a)).unwrap()) {
                Some(v) => sum += v,
                None => assert_eq!(a, 0, "round {round}: account {a} lost, the accounts' batch half there"),
            }
        }
        if sum == 0 {
            continue; // killed before the accounts were opened
        }
        assert_eq!(sum, ACCOUNTS * START, "round {round}: a transfer is half there");
        for t in 0..MOVERS {
            let acked = acks(&lines)
                .filter_map(|a| {
                    let (thread, n) = a.split_once(' ')?;
                    (thread.parse::<u64>().ok()? == t).then(|| n.parse::<u64>().ok())?
                })
                .max()
                .unwrap_or(progress[t as usize]);
            total_acked += acked - progress[t as usize];
            let got = number(bank.get(&progress_key(t)).unwrap()).unwrap_or(0);
            assert!(
                got == acked || got == acked + 1,
                "round {round}: thread {t} acknowledged {acked} transfers, the database holds {got}"
            );
            progress[t as usize] = got;
        }
        db.close().unwrap();
    }
    println!("{rounds} kills, {total_acked} acknowledged transfers");
    assert!(total_acked > rounds, "the children hardly committed anything");
}
