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
