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

    /// Like `run_with_input`, for a command that may stop reading before
    /// the end: the input is written from another thread, and a pipe the
    /// command closed ends the writing quietly.
    fn run_feeding(&self, args: &[&str], input: Vec<u8>) -> Output {
        let mut child =
            self.cmd(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        out
    }

    /// The files in the test's directory, sorted.
    fn files(&self) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(&self.0).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        names
    }

    /// Runs `args` under `bash` with a file-size limit (`ulimit -f`, in KiB)
    /// and SIGXFSZ ignored, so that writes past `limit_kib` fail with
    /// `EFBIG`: a device error on demand.
    fn run_with_file_limit(&self, limit_kib: u64, log: Option<&str>, args: &[&str]) -> Output {
        let mut c = Command::new("bash");
        c.arg("-c")
            .arg(format!("trap '' XFSZ; ulimit -f {limit_kib} && exec \"$0\" \"$@\""))
            .arg(snowfall_bin())
            .arg("--db")
            .arg(self.db())
            .args(args)
            .env_remove("SNOWFALL_LOG");
        if let Some(level) = log {
            c.env("SNOWFALL_LOG", level);
        }
        c.output().unwrap()
    }
}

/// The lines on stderr.
fn stderr_lines(out: &Output) -> usize {
    stderr(out).lines().count()
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
    assert_eq!(code(&out), Some(1), "{out:?}");
    assert_eq!(stderr(&out), "snowfall: no tree named \"other\"\n");
    let out = d.run(&["stat"]);
    let text = stdout(&out);
    assert!(text.contains("trees: 1\n") && text.contains("page faults: "), "{text}");
    // The counters are this read-only open's, and say so; it read the
    // superblocks and scanned the log.
    assert!(text.contains("counters: of this read-only open"), "{text}");
    let read = text.lines().find_map(|l| l.strip_prefix("bytes read: ")).unwrap_or_else(|| panic!("{text}"));
    let numbers: Vec<u64> = read.split(' ').filter_map(|w| w.parse().ok()).collect();
    assert!(numbers.len() == 2 && numbers[0] >= 8192 && numbers[1] >= 4096, "{read}");
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
    assert_eq!(
        stderr(&out),
        "snowfall: load: line 2: no tab between key and value; 1 entry before it loaded and committed\n"
    );
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
    let entries = if n == 1 { "1 entry".to_owned() } else { format!("{n} entries") };
    // One line: no progress lines, stderr being a pipe.
    assert_eq!(err, format!("snowfall: interrupted: {entries} loaded and committed\n"));
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
    let header: Vec<&str> = text.lines().nth(1).unwrap().split("  ").map(str::trim).filter(|c| !c.is_empty()).collect();
    for column in ["MB/s", "p99.9 us", "data B/op", "log B/op", "read B/op"] {
        assert!(header.contains(&column), "no {column} column:\n{text}");
    }
    let at = |name: &str| header.iter().position(|&c| c == name).unwrap();
    for w in ["load", "rndread", "mixed"] {
        let line = text.lines().find(|l| l.starts_with(w)).unwrap_or_else(|| panic!("no {w} line:\n{text}"));
        let fields: Vec<&str> = line.split_whitespace().collect();
        let ops: u64 = fields[1].parse().unwrap();
        assert!(ops > 0, "{line}");
        assert_eq!(fields.len(), header.len(), "{text}");
        let p99: f64 = fields[at("p99 us")].parse().unwrap();
        let p999: f64 = fields[at("p99.9 us")].parse().unwrap();
        assert!(p999 >= p99, "{line}");
        // Every insert and update is logged: the log is written (at least a
        // record's bytes per write); lookups alone write nothing.
        let log: f64 = fields[at("log B/op")].parse().unwrap();
        match w {
            "load" => assert!(log >= 16.0, "{line}"),
            "mixed" => assert!(log > 0.0, "{line}"),
            _ => assert_eq!(log, 0.0, "{line}"),
        }
    }
    assert!(!std::path::Path::new(&d.db()).exists(), "the bench database was not removed");
    let out = d.run(&["bench", "rndread", "--keys", "5000", "--seconds", "1", "--csv"]);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    let csv = stdout(&out);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "workload,threads,keys,value_bytes,durability,ops,seconds,ops_per_sec,p50_us,p99_us,p999_us,faults,evictions,\
         data_bytes_per_op,log_bytes_per_op,read_bytes_per_op,peak_rss_mib,p999_outside_checkpoints_us,\
         p999_during_checkpoints_us,share_during_checkpoints,mb_per_sec,aborts_per_sec"
    );
    let row: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!((row[0], row[2], row.len()), ("rndread", "5000", 22), "{csv}");
    // Lookups of a database in the pool write nothing to either file.
    assert_eq!((row[13], row[14]), ("0.0", "0.0"), "{csv}");
    // MB/s: an 8-byte key and an 8-byte value per operation.
    let (per_sec, mb): (f64, f64) = (row[7].parse().unwrap(), row[20].parse().unwrap());
    assert!((mb - per_sec * 16.0 / 1e6).abs() <= 0.01, "{csv}");
    assert_eq!(code(&d.run(&["bench", "--keys", "x"])), Some(2));
    assert_eq!(code(&d.run(&["bench", "nosuch"])), Some(2));
    // Value sizes take units; one too large for an entry is refused.
    let out = d.run(&["bench", "load", "--keys", "1000", "--value", "512", "--csv"]);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().nth(1).unwrap().split(',').nth(3), Some("512"));
    // A value that does not fit a leaf is stored out of line.
    let out = d.run(&["bench", "load", "rndread", "--keys", "200", "--value", "16K", "--seconds", "1", "--csv"]);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().nth(1).unwrap().split(',').nth(3), Some("16384"));
    for bad in ["1x", "5G", "-1"] {
        assert_eq!(code(&d.run(&["bench", "load", "--value", bad])), Some(2), "--value {bad}");
    }
}

/// The transactional workloads run, check what they read (`bank` its
/// total through a snapshot), and report aborts; with Zipfian keys on a
/// few accounts, conflicts happen and are retried.
#[test]
fn transactional_bench_workloads_run_and_report_aborts() {
    let d = Dir::new("bench-tx");
    for zipf in [false, true] {
        let mut args = vec!["bench", "bank", "txn", "snapread", "--keys", "64", "--seconds", "1", "--csv"];
        if zipf {
            args.push("--zipf");
        }
        let out = d.run(&args);
        assert_eq!(code(&out), Some(0), "{}", stderr(&out));
        let csv = stdout(&out);
        for w in ["bank", "txn", "snapread"] {
            let row: Vec<&str> =
                csv.lines().find(|l| l.starts_with(w)).unwrap_or_else(|| panic!("{csv}")).split(',').collect();
            let ops: u64 = row[5].parse().unwrap();
            assert!(ops > 0, "{csv}");
            let aborts: f64 = row[21].parse().unwrap();
            if w == "snapread" {
                assert_eq!(aborts, 0.0, "read-only transactions never conflict: {csv}");
            }
        }
        // Two threads on 64 accounts: transfers collide.
        let bank: Vec<&str> = csv.lines().find(|l| l.starts_with("bank")).unwrap().split(',').collect();
        assert!(bank[21].parse::<f64>().unwrap() > 0.0, "no conflict on 64 accounts: {csv}");
    }
}

#[test]
fn put_reads_a_value_from_standard_input_and_get_raw_writes_it_back() {
    let d = Dir::new("stdin-raw");
    // Every byte value, newlines and NULs among them, no newline at the end.
    let value: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 256) as u8).collect();
    let out = d.run_with_input(&["put", "k", "-"], &value);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    let out = d.run(&["get", "--raw", "k"]);
    assert_eq!((code(&out), &out.stdout), (Some(0), &value));
    // Without --raw: the value and a newline, as before.
    let out = d.run(&["put", "t", "text"]);
    assert_eq!(code(&out), Some(0));
    assert_eq!(d.run(&["get", "t"]).stdout, b"text\n");
    assert_eq!(d.run(&["get", "t", "--raw"]).stdout, b"text");
    // --hex decodes the key; --raw still writes the bytes themselves.
    assert_eq!(d.run(&["--hex", "get", "--raw", "6b"]).stdout, value);
    // Empty input: an empty value.
    assert_eq!(code(&d.run_with_input(&["put", "e", "-"], b"")), Some(0));
    let out = d.run(&["get", "--raw", "e"]);
    assert_eq!((code(&out), out.stdout.len()), (Some(0), 0));
    // The largest value that fits in the leaf beside the key, one byte
    // more (stored out of line), and 8 MiB.
    for len in [1023, 1024, 8 << 20] {
        let value: Vec<u8> = (0..len).map(|i| (i * 13 % 251) as u8).collect();
        let out = d.run_feeding(&["put", "f", "-"], value.clone());
        assert_eq!(code(&out), Some(0), "{out:?}");
        assert!(d.run(&["get", "--raw", "f"]).stdout == value, "a value of {len} bytes");
    }
    let check = d.run(&["check"]);
    assert_eq!(code(&check), Some(0));
    // k, t, e and f: f's 8 MiB value is out of line.
    assert!(stdout(&check).starts_with("ok: 4 entries, 1 of them large (2048 pages)"), "{}", stdout(&check));
    // A key too long is the engine's key error, whatever the input.
    let long_key = "k".repeat(1025);
    let out = d.run_feeding(&["put", long_key.as_str(), "-"], vec![b'z'; 100]);
    assert_eq!((code(&out), stderr_lines(&out)), (Some(2), 1), "{out:?}");
    assert!(stderr(&out).contains("key of 1025 bytes"), "{}", stderr(&out));
    // A missing key is status 1 with --raw too, and writes nothing.
    let out = d.run(&["get", "--raw", "nosuch"]);
    assert_eq!((code(&out), out.stdout.len()), (Some(1), 0));
}

#[test]
fn a_db_path_ending_in_wal_is_refused_and_creates_nothing() {
    let d = Dir::new("wal-path");
    let wal = d.0.join("x.db.wal");
    for args in [&["put", "k", "v"][..], &["get", "k"], &["load"], &["bench", "--keys", "10"]] {
        let out =
            Command::new(snowfall_bin()).arg("--db").arg(&wal).args(args).env_remove("SNOWFALL_LOG").output().unwrap();
        assert_eq!(code(&out), Some(2), "{args:?}: {out:?}");
        let err = stderr(&out);
        assert!(err.starts_with("snowfall: --db '") && err.contains("names a database's log"), "{err}");
        assert!(err.contains("x.db')"), "names the database: {err}");
        assert_eq!(d.files(), Vec::<String>::new(), "{args:?} left files behind");
    }
}

#[test]
fn a_missing_tree_is_not_found_like_a_missing_key() {
    let d = Dir::new("no-tree");
    assert_eq!(code(&d.run(&["put", "k", "v"])), Some(0));
    let files = d.files();
    for args in
        [&["get", "k"][..], &["del", "k"], &["scan"], &["scan", "--from", "a", "--to", "z"], &["drop-tree", "other"]]
    {
        let args: Vec<&str> = ["--tree", "other"].iter().chain(args).copied().collect();
        let out = d.run(&args);
        assert_eq!(code(&out), Some(1), "{args:?}: {out:?}");
        assert_eq!(stderr(&out), "snowfall: no tree named \"other\"\n", "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    // Nothing was created: still one tree, the same files.
    assert_eq!(stdout(&d.run(&["trees"])), "default\n");
    assert_eq!(d.files(), files);
    // An existing tree's empty range is a successful scan of nothing.
    let out = d.run(&["scan", "--from", "x"]);
    assert_eq!((code(&out), out.stdout.len(), out.stderr.len()), (Some(0), 0, 0), "{out:?}");
    // `--to` is exclusive: its own key is not printed.
    assert_eq!(stdout(&d.run(&["scan", "--to", "k"])), "");
    assert_eq!(stdout(&d.run(&["scan", "--from", "k", "--to", "k\u{1}"])), "k\tv\n");
}

#[test]
fn over_long_keys_and_values_are_bad_input() {
    let d = Dir::new("too-large");
    assert_eq!(code(&d.run(&["put", "k", "v"])), Some(0));
    let long_key = "k".repeat(1025);
    let long_value = "v".repeat(1024);
    for args in [
        &["put", long_key.as_str(), "v"][..],
        &["get", long_key.as_str()],
        &["del", long_key.as_str()],
        &["scan", "--from", long_key.as_str()],
    ] {
        let out = d.run(args);
        assert_eq!(code(&out), Some(2), "{}: {out:?}", args[0]);
        assert_eq!(stderr_lines(&out), 1, "{}", stderr(&out));
        assert!(stderr(&out).contains("limit") || stderr(&out).contains("too large"), "{}", stderr(&out));
    }
    // Nothing was written.
    assert_eq!(stdout(&d.run(&["scan"])), "k\tv\n");
    // In `load`: the line is named, the ones before it committed.
    for (bad, what) in
        [(format!("{long_key}\tv"), "key of 1025 bytes"), (format!("k\t{long_value}"), "value of 1024 bytes")]
    {
        let e = Dir::new("too-large-load");
        let out = e.run_with_input(&["load"], format!("a\t1\nb\t2\n{bad}\nc\t3\n").as_bytes());
        assert_eq!(code(&out), Some(2), "{out:?}");
        let err = stderr(&out);
        assert!(err.starts_with(&format!("snowfall: load: line 3: {what}")), "{err}");
        assert!(err.ends_with("; 2 entries before it loaded and committed\n"), "{err}");
        assert_eq!(stderr_lines(&out), 1, "{err}");
        assert_eq!(stdout(&e.run(&["scan"])), "a\t1\nb\t2\n");
    }
}

#[test]
fn load_refuses_an_over_long_line_at_once() {
    // The longest valid line: a 1-byte key and a 1,023-byte value, every
    // byte escaped (`\x01`, 4 characters), and the tab: 4,097 bytes.
    let d = Dir::new("long-line");
    let escaped = "\\x01".repeat(1023);
    let longest = format!("\\x01\t{escaped}");
    assert_eq!(longest.len(), 4097);
    let out = d.run_with_input(&["load"], format!("{longest}\n").as_bytes());
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    assert_eq!(d.run(&["--hex", "get", "01"]).stdout, format!("{}\n", "01".repeat(1023)).into_bytes());
    // One byte more is refused for its length (not parsed).
    let out = d.run_with_input(&["load"], format!("a\t1\n{longest}x\n").as_bytes());
    assert_eq!(code(&out), Some(2), "{out:?}");
    assert_eq!(
        stderr(&out),
        "snowfall: load: line 2 is longer than the longest valid line (4097 bytes); 1 entry before it loaded and committed\n"
    );
    // In hex form the longest line is 2,049 bytes.
    let hex = format!("01\t{}", "01".repeat(1023));
    let out = d.run_with_input(&["--hex", "load"], format!("{hex}\n{hex}0\n").as_bytes());
    assert_eq!(code(&out), Some(2), "{out:?}");
    assert!(stderr(&out).starts_with("snowfall: load: line 2 is longer than the longest valid line (2049 bytes)"));
    // 64 MiB with no newline after two good lines: refused after reading
    // about a chunk of it, in bounded memory, and the two lines committed.
    let e = Dir::new("long-line-64m");
    let mut input = b"a\t1\nb\t2\n".to_vec();
    input.resize(input.len() + (64 << 20), b'a');
    let started = Instant::now();
    let out = e.run_feeding(&["load"], input);
    let took = started.elapsed();
    assert_eq!(code(&out), Some(2), "{out:?}");
    assert_eq!(
        stderr(&out),
        "snowfall: load: line 3 is longer than the longest valid line (4097 bytes); 2 entries before it loaded and committed\n"
    );
    assert_eq!(stdout(&e.run(&["scan"])), "a\t1\nb\t2\n");
    eprintln!("64 MiB without a newline refused in {took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn load_names_an_unreadable_file_and_creates_nothing() {
    let d = Dir::new("load-file");
    let out = d.run(&["load", "/nonexistent/input"]);
    assert_eq!(code(&out), Some(2), "{out:?}");
    assert_eq!(
        stderr(&out),
        "snowfall: load: /nonexistent/input: cannot open: no such file or directory (os error 2)\n"
    );
    assert_eq!(d.files(), Vec::<String>::new());
    let dir = std::env::temp_dir();
    let out = d.run(&["load", dir.to_str().unwrap()]);
    assert_eq!(code(&out), Some(2), "{out:?}");
    assert!(stderr(&out).ends_with(": cannot open: is a directory (os error 21)\n"), "{}", stderr(&out));
    assert_eq!(stderr_lines(&out), 1);
    assert_eq!(d.files(), Vec::<String>::new());
}

#[test]
fn a_database_error_is_one_line_and_log_records_are_opt_in() {
    // Writes past a file-size limit fail (EFBIG) and stop the database:
    // the engine logs "stopping writes" and "closing failed" as errors,
    // which appear only if SNOWFALL_LOG asks for them. The log is its whole
    // ring from creation, so the limit cuts into it: its next block lies
    // past the first 8 KiB.
    let d = Dir::new("efbig");
    assert_eq!(code(&d.run(&["put", "k", "v"])), Some(0));
    let log_kib = 8;
    let out = d.run_with_file_limit(log_kib, None, &["put", "k2", "v"]);
    assert_eq!(code(&out), Some(3), "{out:?}");
    assert_eq!(stderr_lines(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).starts_with("snowfall: ") && !stderr(&out).contains(" ERROR "), "{}", stderr(&out));
    let out = d.run_with_file_limit(log_kib, Some("error"), &["put", "k2", "v"]);
    assert_eq!(code(&out), Some(3), "{out:?}");
    assert!(stderr(&out).contains(" ERROR ") && stderr_lines(&out) > 1, "{}", stderr(&out));
    assert_eq!(stdout(&d.run(&["scan"])), "k\tv\n");

    // A load that fails the same way part way: one line, naming the line,
    // saying that committing the entries before it failed too. Reopening
    // recovers a prefix of them.
    let e = Dir::new("efbig-load");
    assert_eq!(code(&e.run(&["put", "k", "v"])), Some(0));
    let input: String = (0..100_000).map(|i| format!("key{i:07}\t{}\n", "v".repeat(50))).collect();
    let path = e.0.join("input");
    std::fs::write(&path, input).unwrap();
    let out = e.run_with_file_limit(1024, None, &["load", path.to_str().unwrap()]);
    assert_eq!(code(&out), Some(3), "{out:?}");
    let err = stderr(&out);
    assert_eq!(stderr_lines(&out), 1, "{err}");
    let line: usize = err
        .strip_prefix("snowfall: load: line ")
        .and_then(|rest| rest.split(':').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no line number in {err}"));
    assert!(err.contains(&format!("; committing the {} entries before it failed too", line - 1)), "{err}");
    let check = e.run(&["check"]);
    assert_eq!(code(&check), Some(0), "{check:?}");
    let entries: usize = stdout(&check).split(' ').nth(1).unwrap().parse().unwrap();
    assert!(entries <= line, "{entries} entries after recovery, line {line} failed");
    eprintln!("load failed at line {line}; {entries} entries recovered");
}

#[test]
fn load_shows_progress_only_on_a_terminal() {
    // Input that takes over a second, so that a progress line is due.
    let d = Dir::new("progress");
    let slow = format!(
        "(printf 'a\\t1\\n'; sleep 1.5; printf 'b\\t2\\n') | '{}' --db '{}' load",
        snowfall_bin().display(),
        d.db()
    );
    let out = Command::new("sh").arg("-c").arg(&slow).env_remove("SNOWFALL_LOG").output().unwrap();
    assert_eq!(code(&out), Some(0), "{out:?}");
    let err = stderr(&out);
    assert!(err.starts_with("snowfall: loaded 2 entries in ") && stderr_lines(&out) == 1, "{err}");
    // Under `script`, standard error is a terminal.
    let e = Dir::new("progress-tty");
    let slow = slow.replace(&d.db(), &e.db());
    let Ok(out) = Command::new("script").args(["-qec", &slow, "/dev/null"]).env_remove("SNOWFALL_LOG").output() else {
        eprintln!("no `script` (util-linux) here: the terminal case is not tested");
        return;
    };
    assert_eq!(code(&out), Some(0), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("snowfall: loading: 2 entries, "), "{text}");
    assert!(text.contains("snowfall: loaded 2 entries in "), "{text}");
}

#[test]
fn a_truncated_log_is_refused_naming_it_and_salvage_opens_it() {
    let d = Dir::new("cut-log");
    assert_eq!(code(&d.run(&["put", "k", "v"])), Some(0));
    let wal = format!("{}.wal", d.db());
    let full = std::fs::metadata(&wal).unwrap().len();
    let whole = std::fs::read(&wal).unwrap();
    for len in [4096, 4097, 1 << 20, full - 1] {
        std::fs::OpenOptions::new().write(true).open(&wal).unwrap().set_len(len).unwrap();
        for args in [&["get", "k"][..], &["check"], &["put", "k2", "v2"]] {
            let out = d.run(args);
            assert_eq!(code(&out), Some(3), "{args:?} with the log cut to {len}: {out:?}");
            assert_eq!(stderr_lines(&out), 1, "{}", stderr(&out));
            assert!(stderr(&out).contains(&format!("{wal} is truncated")), "{}", stderr(&out));
        }
        std::fs::write(&wal, &whole).unwrap();
    }
    // Accepting the loss opens it (and a writing command mends the log).
    std::fs::OpenOptions::new().write(true).open(&wal).unwrap().set_len(8192).unwrap();
    assert_eq!(stdout(&d.run(&["--accept-log-loss", "get", "k"])), "v\n");
    assert_eq!(code(&d.run(&["--accept-log-loss", "put", "k2", "v2"])), Some(0));
    assert_eq!(std::fs::metadata(&wal).unwrap().len(), full);
    assert_eq!(stdout(&d.run(&["scan"])), "k\tv\nk2\tv2\n");
}

#[test]
fn the_binary_runs_within_a_small_address_space_limit() {
    // The reserved address space is chosen to fit `ulimit -v` (it was a
    // fixed 64 GiB, which no limit below that allowed).
    let d = Dir::new("ulimit-v");
    let limited = |args: &[&str]| {
        Command::new("bash")
            .arg("-c")
            .arg("ulimit -v 512000 && exec \"$0\" \"$@\"")
            .arg(snowfall_bin())
            .arg("--db")
            .arg(d.db())
            .args(args)
            .env_remove("SNOWFALL_LOG")
            .output()
            .unwrap()
    };
    let out = limited(&["put", "k", "v"]);
    assert_eq!(code(&out), Some(0), "{out:?}");
    assert_eq!(stdout(&limited(&["get", "k"])), "v\n");
    // An explicit size the limit cannot hold is one line, status 3.
    let out = limited(&["--max-size", "64G", "get", "k"]);
    assert_eq!(code(&out), Some(3), "{out:?}");
    assert_eq!(stderr_lines(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot reserve"), "{}", stderr(&out));
    // Threads and a benchmark's database fit too (bench removes its --db).
    let out = limited(&["--pool", "16M", "bench", "load", "--keys", "20000", "--seconds", "1"]);
    assert_eq!(code(&out), Some(0), "{out:?}");
}

/// SIGKILL while `put KEY -` stores a 100 MiB value (kills land after the
/// input is read: while the value is written to its extent, synced, logged):
/// afterwards the key holds the old value or the new one, whole, `check`
/// passes (every page used once or free: no extent leaked), and the next
/// round goes on from there.
#[test]
fn sigkill_during_put_of_a_100_mib_value_leaves_old_or_new() {
    let d = Dir::new("kill-put");
    let value = |round: u8| -> Vec<u8> { (0..100usize << 20).map(|i| (i as u8).wrapping_mul(31) ^ round).collect() };
    let first = value(0);
    // How long a whole put takes after its input is in (the kills spread
    // over that time and a little past it).
    let mut child = d.cmd(&["put", "big", "-"]).stdin(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(&first).unwrap();
    let input_in = Instant::now();
    assert!(child.wait().unwrap().success());
    let whole = input_in.elapsed();
    let mut current = first;
    let (mut old_kept, mut new_stored) = (0, 0);
    for round in 1..=6u8 {
        let new = value(round);
        let mut child = d.cmd(&["put", "big", "-"]).stdin(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = new.clone();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        // The input is in: the kill lands in the write, the sync or the log.
        writer.join().unwrap();
        std::thread::sleep(whole * u32::from(round) / 5);
        let _ = child.kill();
        let _ = child.wait();
        let got = d.run(&["get", "--raw", "big"]);
        assert_eq!(code(&got), Some(0), "round {round}: {}", stderr(&got));
        if got.stdout == new {
            new_stored += 1;
            current = new;
        } else {
            assert!(got.stdout == current, "round {round}: neither the old value nor the new one");
            old_kept += 1;
        }
        let check = d.run(&["check"]);
        assert_eq!(code(&check), Some(0), "round {round}: {check:?}");
    }
    eprintln!("kills during put ({whole:?} each): {old_kept} kept the old value, {new_stored} stored the new one");
}
