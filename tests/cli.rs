//! The command line's contract: version, help, and usage errors (exit 2).

mod common;

use common::{run, stderr, stdout};

#[test]
fn version_prints_the_package_version() {
    for flag in ["--version", "-V"] {
        let out = run(&[flag]);
        assert!(out.status.success(), "{flag}: {out:?}");
        assert_eq!(stdout(&out), format!("snowfall {}\n", env!("CARGO_PKG_VERSION")));
    }
}

#[test]
fn help_lists_the_commands_and_exit_codes() {
    for flag in ["--help", "-h", "help"] {
        let out = run(&[flag]);
        assert!(out.status.success(), "{flag}: {out:?}");
        let text = stdout(&out);
        for needle in [
            "Usage: snowfall [OPTIONS] <COMMAND>",
            "scan [--from K]",
            "selftest",
            "debug <WHAT>",
            "SNOWFALL_LOG",
            "101 panic",
            // What issue 12 asked to be said plainly.
            "--to K (excluded: K itself is never",
            "must not end in .wal",
            "The key-value commands log nothing unless it is set.",
            "A failure is one line on standard error",
            "--max-size SIZE",
            "--accept-log-loss",
            "open the database\nread-only",
        ] {
            assert!(text.contains(needle), "help lacks {needle:?}:\n{text}");
        }
    }
}

#[test]
fn unknown_or_missing_commands_are_usage_errors() {
    for args in [&["frobnicate"][..], &[], &["selftest", "extra"], &["debug"], &["debug", "nonsense"]] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(stderr(&out).starts_with("snowfall: "), "{args:?}: {}", stderr(&out));
        assert!(out.stdout.is_empty(), "{args:?} printed to stdout");
    }
}

#[test]
fn a_bad_log_level_is_reported_and_the_default_used() {
    let out = std::process::Command::new(common::snowfall_bin())
        .arg("--version")
        .env("SNOWFALL_LOG", "loud")
        .output()
        .expect("start the snowfall binary");
    assert!(out.status.success());
    let err = stderr(&out);
    assert!(err.contains("WARN") && err.contains("SNOWFALL_LOG=loud is not a level"), "{err}");
}
