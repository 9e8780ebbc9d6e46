//! Running out of memory. Every `mmap` the binary makes (origin's for the
//! main thread's TLS, the alternate signal stack, the allocator's, the
//! buffer pool's reservations, thread stacks) fails in turn with `ENOMEM`
//! under strace's fault injection, for `put`, `get`, `scan`, `load` and a
//! small `bench`; and sizes from the command line too large for any
//! machine. The binary never panics (101) and never dies by a signal: it
//! succeeds (status 0: the failure was survivable, such as a thread without
//! an alternate signal stack) or exits 3 with one line on stderr that says
//! what failed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{TempDir, output_within, run, stderr, stdout, strace};

/// One command under test.
struct Case {
    name: &'static str,
    args: &'static [&'static str],
    stdin: &'static [u8],
    /// What a successful run must have done.
    check: fn(&TempDir, &Output),
}

/// Sanity bound on the `mmap` calls of one small command (a dozen or two):
/// more means something allocates per key or per line.
const MMAP_CALLS_MAX: usize = 100;

/// Runs `command` with `stdin` as its input.
fn output(mut command: Command, stdin: &[u8]) -> Output {
    let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // A run that fails early (an injected failure at start-up) may end
    // before it reads its input: a closed pipe then is not the test's
    // failure; how the binary ended is checked by the caller.
    match child.stdin.take().unwrap().write_all(stdin) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => panic!("writing the input: {e}"),
    }
    child.wait_with_output().unwrap()
}

/// A database holding `a` = `b`, and nothing else.
fn fresh(dir: &TempDir) {
    dir.clear();
    let out = dir.cmd(&["put", "a", "b"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

/// `case` under strace, failing the `n`th `mmap` of each thread with `ENOMEM`
/// (`None`: counting them instead, into `summary`).
fn traced(strace: &Path, dir: &TempDir, case: &Case, n: Option<usize>, summary: &Path) -> Output {
    let mut c = Command::new(strace);
    c.args(["-f", "-qq"]);
    match n {
        Some(n) => c.args(["-o", "/dev/null", "-e", &format!("inject=mmap:error=ENOMEM:when={n}")]),
        None => c.args(["-c", "-e", "trace=mmap", "-o"]).arg(summary),
    };
    let target = dir.cmd(case.args);
    c.arg(target.get_program()).args(target.get_args()).env_remove("SNOWFALL_LOG");
    output(c, case.stdin)
}

/// The `calls` column of the `mmap` row of `strace -c`'s summary.
fn mmap_calls(summary: &Path) -> usize {
    let text = std::fs::read_to_string(summary).unwrap();
    let row = text.lines().find(|l| l.split_whitespace().last() == Some("mmap")).unwrap_or_else(|| panic!("{text}"));
    row.split_whitespace().nth(3).and_then(|calls| calls.parse().ok()).unwrap_or_else(|| panic!("{row}"))
}

/// Fails each `mmap` of `case` in turn and checks how the binary ends.
fn every_failed_mmap(case: &Case) {
    let Some(strace) = strace() else { return };
    let dir = TempDir::new(&format!("oom-{}", case.name));
    let summary = dir.0.join("strace-summary");
    fresh(&dir);
    let counted = traced(&strace, &dir, case, None, &summary);
    assert_eq!(counted.status.code(), Some(0), "{}: without injection: {counted:?}", case.name);
    (case.check)(&dir, &counted);
    // All threads' calls: an upper bound for any one thread's (strace
    // counts `when=N` per thread).
    let calls = mmap_calls(&summary);
    assert!((1..=MMAP_CALLS_MAX).contains(&calls), "{}: {calls} mmap calls", case.name);
    let mut failed = 0;
    for n in 1..=calls + 1 {
        fresh(&dir);
        let out = traced(&strace, &dir, case, Some(n), &summary);
        let what = format!("{} with mmap number {n} failing", case.name);
        let err = stderr(&out);
        // One injection can hit several threads; the survivable hits are
        // logged as warnings (`[time LEVEL ...]` records).
        let (logs, lines): (Vec<&str>, Vec<&str>) = err.lines().partition(|l| l.starts_with('['));
        for log in &logs {
            assert!(log.contains(" WARN ") || log.contains(" ERROR "), "{what}: {err}");
        }
        match out.status.code() {
            Some(0) => (case.check)(&dir, &out),
            Some(3) => {
                failed += 1;
                assert_eq!(lines.len(), 1, "{what}: not one line: {err}");
                let line = lines[0];
                assert!(
                    line.starts_with("snowfall: ")
                        && (line.contains("out of memory") || line.starts_with("snowfall: cannot start: ")),
                    "{what}: {err}"
                );
            }
            _ => panic!("{what}: neither 0 nor 3 (101 is a panic; no code is a signal): {out:?}"),
        }
    }
    // The last run had nothing left to fail; the others did fail.
    assert!(failed > 0 && failed <= calls, "{}: {failed} of {calls} runs failed", case.name);
}

fn get(dir: &TempDir, key: &str) -> String {
    stdout(&dir.cmd(&["get", key]).output().unwrap())
}

#[test]
fn put_under_every_failed_mmap_succeeds_or_says_so() {
    every_failed_mmap(&Case {
        name: "put",
        args: &["put", "k", "v"],
        stdin: b"",
        check: |dir, _| assert_eq!(get(dir, "k"), "v\n"),
    });
}

#[test]
fn get_under_every_failed_mmap_succeeds_or_says_so() {
    every_failed_mmap(&Case {
        name: "get",
        args: &["get", "a"],
        stdin: b"",
        check: |_, out| assert_eq!(stdout(out), "b\n"),
    });
}

#[test]
fn scan_under_every_failed_mmap_succeeds_or_says_so() {
    every_failed_mmap(&Case {
        name: "scan",
        args: &["scan"],
        stdin: b"",
        check: |_, out| assert_eq!(stdout(out), "a\tb\n"),
    });
}

#[test]
fn load_under_every_failed_mmap_succeeds_or_says_so() {
    every_failed_mmap(&Case {
        name: "load",
        args: &["load"],
        stdin: b"k1\tv1\nk2\tv2\n",
        check: |dir, _| assert_eq!((get(dir, "k1"), get(dir, "k2")), ("v1\n".into(), "v2\n".into())),
    });
}

#[test]
fn bench_under_every_failed_mmap_succeeds_or_says_so() {
    every_failed_mmap(&Case {
        name: "bench",
        args: &["bench", "load", "--keys", "2000", "--threads", "2"],
        stdin: b"",
        check: |_, out| assert!(stdout(out).starts_with("2000 keys"), "{}", stdout(out)),
    });
}

#[test]
fn bench_keys_beyond_any_memory_are_an_error_not_a_panic() {
    // 10^15 keys: one 8-byte latency sample per 8 inserts is 10^15 bytes,
    // more than the 128 TiB of address space a process has.
    for threads in ["1", "2"] {
        let dir = TempDir::new(&format!("oom-bench-keys-{threads}"));
        // Were the samples not reserved up front, it would run for ever.
        let bench = dir.cmd(&["bench", "load", "--keys", "1000000000000000", "--threads", threads]);
        let out = output_within(bench, Duration::from_secs(60));
        assert_eq!(out.status.code(), Some(3), "{out:?}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("snowfall: out of memory: cannot allocate ") && err.contains("latency samples"),
            "{err}"
        );
        assert!(!Path::new(&dir.db()).exists(), "the bench database was not removed");
    }
}

#[test]
fn an_allocation_that_fails_is_reported_as_out_of_memory() {
    // `debug out-of-memory` asks for 2^47 bytes, infallibly.
    let out = run(&["debug", "out-of-memory"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(stderr(&out), "snowfall: out of memory: an allocation of 140737488355328 bytes failed\n");
}

#[test]
fn a_panic_after_a_handled_allocation_failure_is_still_a_panic() {
    let out = run(&["debug", "panic-after-failed-allocation"]);
    assert_eq!(out.status.code(), Some(101), "{out:?}");
    assert!(stderr(&out).contains("panicked at"), "{}", stderr(&out));
}
