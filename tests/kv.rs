//! The key-value commands as a user drives them: every command and exit
//! status, escaping round trips (`scan` output fed back to `load`), a
//! closed pipe, Ctrl-C during `load`, a second process on the same
//! database, and corrupt or foreign files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{snowfall_bin, stderr, stdout};

/// A fresh directory for one test's database (removed when dropped).
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("snowfall-kv-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    fn db(&self) -> String {
        self.0.join("test.db").to_str().unwrap().to_owned()
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(snowfall_bin());
        c.arg("--db").arg(self.db()).args(args).env_remove("SNOWFALL_LOG");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn run_with_input(&self, args: &[&str], input: &[u8]) -> Output {
        let mut child =
            self.cmd(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn code(out: &Output) -> Option<i32> {
    out.status.code()
}

#[test]
fn put_get_del_and_their_exit_statuses() {
    let d = Dir::new("basic");
    // Reading a database that does not exist is a database error.
    let out = d.run(&["get", "k"]);
    assert_eq!(code(&out), Some(3), "{out:?}");
    assert!(stderr(&out).contains("test.db"), "{}", stderr(&out));
    assert_eq!(code(&d.run(&["put", "k", "v1"])), Some(0));
    assert_eq!(code(&d.run(&["put", "k", "v2"])), Some(0));
    let out = d.run(&["get", "k"]);
    assert_eq!((code(&out), stdout(&out).as_str()), (Some(0), "v2\n"));
    let out = d.run(&["get", "missing"]);
    assert_eq!(code(&out), Some(1));
    assert_eq!(stderr(&out), "snowfall: key not found\n");
    assert!(out.stdout.is_empty());
    assert_eq!(code(&d.run(&["del", "k"])), Some(0));
    assert_eq!(code(&d.run(&["del", "k"])), Some(1));
    assert_eq!(code(&d.run(&["get", "k"])), Some(1));
    // Other trees, listed and dropped.
    assert_eq!(code(&d.run(&["--tree", "other", "put", "a", "b"])), Some(0));
    assert_eq!(stdout(&d.run(&["trees"])), "default\nother\n");
    assert_eq!(code(&d.run(&["drop-tree", "other"])), Some(0));
    assert_eq!(stdout(&d.run(&["trees"])), "default\n");
    let out = d.run(&["--tree", "other", "get", "a"]);
    assert_eq!(code(&out), Some(3), "{out:?}");
    assert!(stderr(&out).contains("no tree named \"other\""), "{}", stderr(&out));
    let out = d.run(&["stat"]);
    assert!(stdout(&out).contains("trees: 1\n") && stdout(&out).contains("page faults: "), "{}", stdout(&out));
    let out = d.run(&["check"]);
    assert_eq!(code(&out), Some(0), "{out:?}");
    assert!(stdout(&out).starts_with("ok: 0 entries"), "{}", stdout(&out));
}

#[test]
fn bad_command_lines_are_usage_errors() {
    let d = Dir::new("usage");
    for args in [
        &["put", "k"][..],
        &["get"],
        &["del", "a", "b"],
        &["--pool", "lots", "get", "k"],
        &["--memory", "tape", "get", "k"],
        &["--durability", "maybe", "put", "k", "v"],
        &["--db"],
        &["scan", "--limit", "x"],
        &["scan", "--bogus"],
        &["--hex", "get", "zz"],
        &["load", "a", "b"],
    ] {
        let out = d.run(args);
        assert_eq!(code(&out), Some(2), "{args:?}: {out:?}");
        assert!(stderr(&out).starts_with("snowfall: "), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn scan_ranges_both_ways_and_limits() {
    let d = Dir::new("scan");
    let lines: String = (0..100).map(|i| format!("k{i:03}\tv{i}\n")).collect();
    assert_eq!(code(&d.run_with_input(&["load"], lines.as_bytes())), Some(0));
    let out = d.run(&["scan", "--from", "k010", "--to", "k013"]);
    assert_eq!(stdout(&out), "k010\tv10\nk011\tv11\nk012\tv12\n");
    let out = d.run(&["scan", "--reverse", "--limit", "2"]);
    assert_eq!(stdout(&out), "k099\tv99\nk098\tv98\n");
    let out = d.run(&["scan", "--from", "k050", "--reverse", "--limit", "1"]);
    assert_eq!(stdout(&out), "k099\tv99\n");
    assert_eq!(stdout(&d.run(&["scan"])), lines);
}

#[test]
fn scan_output_loads_back_byte_for_byte() {
    let d = Dir::new("escape");
    // Keys and values with every awkward byte, set through --hex.
    let awkward: Vec<Vec<u8>> = vec![
        b"tab\there".to_vec(),
        b"new\nline".to_vec(),
        b"back\\slash".to_vec(),
        vec![0, 1, 2, 0x7f, 0x1b],
        vec![0xff, 0xfe, b'x', 0xc3],
        "caf\u{e9} \u{2603}".as_bytes().to_vec(),
        b"\\x41 is not A".to_vec(),
        Vec::new(),
    ];
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    for (i, v) in awkward.iter().enumerate() {
        let key = [v.clone(), vec![b'#', b'0' + i as u8]].concat();
        assert_eq!(code(&d.run(&["--hex", "put", &hex(&key), &hex(v)])), Some(0));
    }
    let scanned = d.run(&["scan"]);
    assert_eq!(code(&scanned), Some(0));
    assert_eq!(scanned.stdout.iter().filter(|&&b| b == b'\n').count(), awkward.len(), "one line per entry");
    let e = Dir::new("escape-copy");
    let out = e.run_with_input(&["load"], &scanned.stdout);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    assert_eq!(e.run(&["--hex", "scan"]).stdout, d.run(&["--hex", "scan"]).stdout);
    assert_eq!(e.run(&["scan"]).stdout, scanned.stdout);
    // A malformed line stops the load with a usage error naming it; what
    // came before is committed.
    let f = Dir::new("escape-bad");
    let out = f.run_with_input(&["load"], b"a\t1\nno tab here\nc\t3\n");
    assert_eq!(code(&out), Some(2));
    assert!(stderr(&out).contains("line 2: no tab"), "{}", stderr(&out));
    assert_eq!(stdout(&f.run(&["scan"])), "a\t1\n");
    let out = f.run_with_input(&["load"], b"bad\\q\tx\n");
    assert!(code(&out) == Some(2) && stderr(&out).contains("bad escape"), "{}", stderr(&out));
}

#[test]
fn a_closed_pipe_ends_scan_quietly() {
    let d = Dir::new("pipe");
    let lines: String = (0..200_000).map(|i| format!("key{i:07}\t{i}\n")).collect();
    assert_eq!(code(&d.run_with_input(&["--durability", "none", "load"], lines.as_bytes())), Some(0));
    let mut child = d.cmd(&["scan"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    assert_eq!(first, "key0000000\t0\n");
    drop(reader);
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), Some(0), "killed by a signal or failed: {out:?}");
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
}

#[test]
fn ctrl_c_during_load_commits_what_was_loaded() {
    let d = Dir::new("sigint");
    let mut child = d.cmd(&["load"]).stdin(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let lines: String = (0..50_000).map(|i| format!("key{i:07}\t{i}\n")).collect();
    // Written from another thread: the pipe holds less than all of it, and
    // the interrupt may come before the load has read everything.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(lines.as_bytes());
        let _ = stdin.flush();
        // Returned, so the pipe stays open (the load waits for more) until
        // the thread is joined after the load has exited.
        stdin
    });
    std::thread::sleep(Duration::from_millis(INTERRUPT_AFTER_MS));
    let kill = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    drop(writer.join().unwrap());
    assert_eq!(code(&out), Some(130), "{}", stderr(&out));
    // However far it got, what it reports is exactly what is stored: the
    // first `n` lines, in order.
    let err = stderr(&out);
    let n: usize = err
        .split("interrupted: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {err}"));
    assert!(err.contains(&format!("interrupted: {n} entries loaded and committed")), "{err}");
    assert!(n <= 50_000, "{err}");
    eprintln!("load interrupted after {n} of 50000 lines");
    let check = d.run(&["check"]);
    assert_eq!(code(&check), Some(0), "{check:?}");
    assert!(stdout(&check).starts_with(&format!("ok: {n} entries")), "{}", stdout(&check));
    if n > 0 {
        let last = d.run(&["get", &format!("key{:07}", n - 1)]);
        assert_eq!(stdout(&last), format!("{}\n", n - 1));
    }
    if n < 50_000 {
        assert_eq!(code(&d.run(&["get", &format!("key{n:07}")])), Some(1));
    }
}

/// When `ctrl_c_during_load_commits_what_was_loaded` interrupts the load
/// (on a quiet machine, after all of it; on a busy one, part way).
const INTERRUPT_AFTER_MS: u64 = 500;

#[test]
fn a_second_process_gets_database_in_use() {
    let d = Dir::new("in-use");
    assert_eq!(code(&d.run(&["put", "k", "v"])), Some(0));
    // A load waiting on its input holds the database open. It may start
    // while one of the polling `get`s holds it, and then exits "in use"
    // itself: start it again.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut holder, out) = 'started: loop {
        let mut holder = d.cmd(&["load"]).stdin(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        loop {
            assert!(Instant::now() < deadline, "the load never held the database");
            if let Some(status) = holder.try_wait().unwrap() {
                assert_eq!(status.code(), Some(3), "the load ended, but not for \"in use\"");
                continue 'started;
            }
            let out = d.run(&["get", "k"]);
            if code(&out) == Some(3) {
                break 'started (holder, out);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    drop(holder.stdin.take());
    assert_eq!(holder.wait().unwrap().code(), Some(0));
    assert_eq!(code(&out), Some(3), "{out:?}");
    assert!(stderr(&out).contains("database is in use by another process"), "{}", stderr(&out));
    assert_eq!(stdout(&d.run(&["get", "k"])), "v\n");
}

#[test]
fn foreign_empty_and_corrupt_files_are_database_errors() {
    let d = Dir::new("bad");
    std::fs::write(d.db(), vec![0x42; 8192]).unwrap();
    let out = d.run(&["get", "k"]);
    assert_eq!(code(&out), Some(3), "{out:?}");
    assert!(stderr(&out).contains("not a SnowfallDB database"), "{}", stderr(&out));
    std::fs::write(d.db(), b"").unwrap();
    let out = d.run(&["scan"]);
    assert_eq!(code(&out), Some(3), "{out:?}");
    assert!(stderr(&out).contains("empty"), "{}", stderr(&out));
    // A flipped bit in a page of a real database: `check` names it.
    let e = Dir::new("bad-page");
    let lines: String = (0..20_000).map(|i| format!("key{i:07}\t{}\n", "v".repeat(50))).collect();
    assert_eq!(code(&e.run_with_input(&["load"], lines.as_bytes())), Some(0));
    let mut bytes = std::fs::read(e.db()).unwrap();
    let page = bytes.len() / 4096 / 2;
    bytes[page * 4096 + 3000] ^= 0x10;
    std::fs::write(e.db(), &bytes).unwrap();
    let out = e.run(&["check"]);
    assert_eq!(code(&out), Some(3), "{out:?}");
    assert!(stderr(&out).contains(&format!("page {page}")), "{}", stderr(&out));
}

#[test]
fn every_bench_workload_runs_and_reports() {
    let d = Dir::new("bench");
    let out = d.run(&["bench", "--keys", "20000", "--seconds", "1", "--threads", "2", "--value", "100"]);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("20000 keys, 100-byte values, 2 threads"), "{text}");
    for w in ["load", "rndread", "mixed"] {
        let line = text.lines().find(|l| l.starts_with(w)).unwrap_or_else(|| panic!("no {w} line:\n{text}"));
        let ops: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert!(ops > 0, "{line}");
    }
    assert!(!std::path::Path::new(&d.db()).exists(), "the bench database was not removed");
    let out = d.run(&["bench", "rndread", "--keys", "5000", "--seconds", "1", "--csv"]);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    let csv = stdout(&out);
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().starts_with("workload,threads,keys,value_bytes,durability,ops,seconds,ops_per_sec"));
    let row: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!((row[0], row[2], row.len()), ("rndread", "5000", 13), "{csv}");
    assert_eq!(code(&d.run(&["bench", "--keys", "x"])), Some(2));
    assert_eq!(code(&d.run(&["bench", "nosuch"])), Some(2));
}
