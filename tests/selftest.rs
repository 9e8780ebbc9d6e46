//! `snowfall selftest` passes inside the static binary: logger, auxv,
//! threads and futexes, fault recovery.

mod common;

use common::{run, stderr, stdout};

#[test]
fn selftest_passes_every_check() {
    let out = run(&["selftest"]);
    let text = stdout(&out);
    assert!(out.status.success(), "selftest failed:\n{text}\nstderr:\n{}", stderr(&out));
    let ok = text.lines().filter(|l| l.starts_with("ok    ")).count();
    assert!(ok >= 13, "only {ok} checks reported ok:\n{text}");
    assert!(!text.contains("FAIL"), "{text}");
    assert!(text.contains("SIGSEGV") && text.contains("SIGBUS"), "{text}");
}

#[test]
fn selftest_passes_with_trace_logging() {
    let out = std::process::Command::new(common::snowfall_bin())
        .arg("selftest")
        .env("SNOWFALL_LOG", "trace")
        .output()
        .expect("start the snowfall binary");
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
}
