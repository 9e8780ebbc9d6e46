//! An interrupted system call is not an I/O error. strace makes the first
//! five calls (per thread) of each system call the engine uses for file
//! I/O fail with `EINTR`, during `put` and `load`: both succeed, and what
//! they wrote is there afterwards and passes `check`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{TempDir, stderr, stdout, strace};

/// Every system call the database makes on its two files (rustix calls
/// `open`, not `openat`, on x86_64).
const SYSCALLS: [&str; 8] = ["fdatasync", "pwrite64", "pwritev", "pread64", "preadv", "open", "flock", "fstat"];

/// Runs `args` on `dir`'s database under strace, the first five calls of
/// `syscall` in each thread failing with `EINTR`; returns the output and how
/// many calls were failed.
fn interrupted(strace: &Path, dir: &TempDir, syscall: &str, args: &[&str], stdin: &[u8]) -> (Output, usize) {
    let log = dir.0.join(format!("strace-{syscall}"));
    let target = dir.cmd(args);
    let mut c = Command::new(strace);
    c.args(["-f", "-qq", "-e", &format!("trace={syscall}"), "-e", &format!("inject={syscall}:error=EINTR:when=1..5")])
        .arg("-o")
        .arg(&log)
        .arg(target.get_program())
        .args(target.get_args())
        .env_remove("SNOWFALL_LOG");
    let mut child = c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    let injected = std::fs::read_to_string(&log).unwrap().lines().filter(|l| l.ends_with("(INJECTED)")).count();
    (out, injected)
}

fn ok(dir: &TempDir, args: &[&str]) -> String {
    let out = dir.cmd(args).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
    stdout(&out)
}

/// Runs `args` with each system call interrupted in turn, on a database
/// holding `a` = `b`; `check` then looks at what it wrote.
fn each_syscall_interrupted(name: &str, args: &[&str], stdin: &[u8], check: impl Fn(&TempDir)) {
    let Some(strace) = strace() else { return };
    let dir = TempDir::new(&format!("eintr-{name}"));
    for syscall in SYSCALLS {
        dir.clear();
        ok(&dir, &["put", "a", "b"]);
        let (out, injected) = interrupted(&strace, &dir, syscall, args, stdin);
        assert_eq!(out.status.code(), Some(0), "{name} with {syscall} interrupted: {}", stderr(&out));
        // Otherwise the test shows nothing: the command must make the call.
        assert!(injected > 0, "{name} never called {syscall}");
        assert_eq!(ok(&dir, &["get", "a"]), "b\n", "{name} with {syscall} interrupted");
        check(&dir);
        assert!(ok(&dir, &["check"]).starts_with("ok: "), "{name} with {syscall} interrupted");
    }
}

#[test]
fn put_survives_interrupted_file_io() {
    each_syscall_interrupted("put", &["put", "k", "v"], b"", |dir| assert_eq!(ok(dir, &["get", "k"]), "v\n"));
}

#[test]
fn load_survives_interrupted_file_io() {
    let lines: String = (0..1000).map(|i| format!("key{i:04}\tvalue {i}\n")).collect();
    each_syscall_interrupted("load", &["load"], lines.as_bytes(), |dir| {
        assert_eq!(ok(dir, &["get", "key0999"]), "value 999\n");
        assert_eq!(ok(dir, &["scan"]).lines().count(), 1001);
    });
}
