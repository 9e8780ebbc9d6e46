//! Shared helpers for the tests that run the static `snowfall` binary.
#![allow(dead_code, reason = "each test file uses a different subset")]
#![allow(unreachable_pub, reason = "a module shared by test binaries, not an API")]
#![allow(clippy::expect_used, reason = "test helpers: failing to start the binary fails the test")]

use std::path::PathBuf;
use std::process::{Command, Output};

/// The binary under test: `SNOWFALL_BIN` if set (CI points it at the
/// release and mustang builds), otherwise the one cargo built for these tests.
pub fn snowfall_bin() -> PathBuf {
    match std::env::var_os("SNOWFALL_BIN") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_BIN_EXE_snowfall")),
    }
}

/// Runs the binary with `args` and a clean log level.
pub fn run(args: &[&str]) -> Output {
    Command::new(snowfall_bin()).args(args).env_remove("SNOWFALL_LOG").output().expect("start the snowfall binary")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `strace`, for the tests that inject system-call failures with it, if it
/// is installed and may trace here. Otherwise the test is skipped (after
/// saying why on stderr), except in CI (`CI=true`), where it fails: CI
/// installs strace (`.ci/run`), so a missing one is a broken CI machine.
pub fn strace() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|dir| dir.join("strace")).find(|p| p.is_file()));
    let why = match &path {
        None => String::from("strace is not installed (apt-get install strace)"),
        Some(strace) => {
            // ptrace may be forbidden (a container without CAP_SYS_PTRACE).
            let probe = Command::new(strace)
                .args(["-f", "-qq", "-o", "/dev/null"])
                .arg(snowfall_bin())
                .arg("--version")
                .output()
                .expect("start strace");
            if probe.status.success() {
                return path;
            }
            format!("strace cannot trace here: {}", stderr(&probe).trim())
        }
    };
    assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true, but {why}: the fault-injection tests must run");
    // Straight to stderr, past the test harness's capture of `eprintln!`:
    // a skipped test must say so in the normal output.
    let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("skipped: {why}\n").as_bytes());
    None
}

/// A fresh directory for one test's files, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("snowfall-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the test directory");
        TempDir(dir)
    }

    /// The database path in it.
    pub fn db(&self) -> String {
        self.0.join("test.db").to_str().expect("a UTF-8 temporary directory").to_owned()
    }

    /// The binary with `--db` set to [`TempDir::db`], then `args`.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(snowfall_bin());
        c.arg("--db").arg(self.db()).args(args).env_remove("SNOWFALL_LOG");
        c
    }

    /// Removes the database and its log.
    pub fn clear(&self) {
        let _ = std::fs::remove_file(self.db());
        let _ = std::fs::remove_file(format!("{}.wal", self.db()));
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `command` to its end, or kills it and fails the test once `limit`
/// has passed (for a command that would run for ever if the behaviour under
/// test regressed). Its output must fit in the pipes (64 KiB each): nothing
/// reads them until it has exited.
pub fn output_within(mut command: Command, limit: std::time::Duration) -> Output {
    use std::process::Stdio;
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start the command");
    let deadline = std::time::Instant::now() + limit;
    while child.try_wait().expect("wait for the command").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after {limit:?}: {command:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().expect("collect the output")
}
