//! The binary on a full disk and on a read-only file system, as a user
//! meets them: a small tmpfs mounted for the test (root only; CI runs as
//! root, and a CI run that cannot mount fails rather than skips).
//!
//! - A database whose log does not fit is not created, and leaves nothing.
//! - A load that fills the disk stops with one line saying how much was
//!   committed; every reading command then works (it opens read-only and
//!   writes nothing), every writing command fails with one line saying the
//!   disk is full, and neither changes a byte of the files; once there is
//!   room again, writes go on and everything committed is there.
//! - On a file system remounted read-only, the same.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{snowfall_bin, stderr, stdout};

/// A tmpfs of `size` mounted on a fresh directory, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// `None` (after saying why) where mounting is not possible, unless in
    /// CI, where that is a failure.
    fn mount(name: &str, size: &str) -> Option<Tmpfs> {
        let dir = std::env::temp_dir().join(format!("snowfall-full-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mounted =
            Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(&dir).output();
        match mounted {
            Ok(out) if out.status.success() => Some(Tmpfs(dir)),
            other => {
                let _ = std::fs::remove_dir(&dir);
                let why = match other {
                    Ok(out) => stderr(&out),
                    Err(e) => e.to_string(),
                };
                assert!(std::env::var_os("CI").is_none(), "CI must be able to mount a tmpfs (root): {why}");
                eprintln!("SKIPPED: cannot mount a tmpfs (not root?): {why}");
                None
            }
        }
    }

    fn remount(&self, options: &str) {
        let out = Command::new("mount").args(["-o", &format!("remount,{options}")]).arg(&self.0).output().unwrap();
        assert!(out.status.success(), "remount {options}: {}", stderr(&out));
    }

    fn db(&self) -> String {
        self.0.join("test.db").to_str().unwrap().to_owned()
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(snowfall_bin()).arg("--db").arg(self.db()).args(args).env_remove("SNOWFALL_LOG").output().unwrap()
    }

    fn files(&self) -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
            .collect();
        files.sort();
        files
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).output();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Exit status 0 with nothing on stderr.
fn clean(out: &Output, what: &str) {
    assert_eq!(out.status.code(), Some(0), "{what}: {}", stderr(out));
    assert_eq!(stderr(out), "", "{what}");
}

/// Exit status `code` with exactly one line on stderr, which it returns.
fn one_line(out: &Output, code: i32, what: &str) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "{what}: {err}");
    assert_eq!(err.lines().count(), 1, "{what}: {err}");
    err
}

fn lines(from: u64, to: u64) -> Vec<u8> {
    (from..to).flat_map(|i| format!("key{i:08}\tvalue-{i:08}-with-some-padding-to-fill-pages\n").into_bytes()).collect()
}

fn load(fs: &Tmpfs, input: &Path) -> Output {
    fs.run(&["--log-size", "16M", "load", input.to_str().unwrap()])
}

#[test]
fn a_database_whose_log_does_not_fit_is_not_created() {
    let Some(fs) = Tmpfs::mount("nolog", "8m") else { return };
    let err = one_line(&fs.run(&["--log-size", "16M", "put", "k", "v"]), 3, "put");
    assert!(err.contains("no space left"), "{err}");
    assert!(fs.files().is_empty(), "files left behind: {:?}", fs.files().iter().map(|f| &f.0).collect::<Vec<_>>());
}

#[test]
fn a_full_disk_keeps_every_committed_write_readable_and_refuses_writes_cleanly() {
    // 16 MiB of log ring, 4 MiB of double-write area, 4 MiB for the data.
    let Some(fs) = Tmpfs::mount("full", "24m") else { return };
    let input = std::env::temp_dir().join(format!("snowfall-full-input-{}", std::process::id()));
    std::fs::write(&input, lines(0, 1000)).unwrap();
    clean_load(&fs, &input);
    // More than the 4 MiB left after the log can hold.
    std::fs::write(&input, lines(1000, 400_000)).unwrap();
    let out = load(&fs, &input);
    let err = one_line(&out, 3, "load onto a full disk");
    assert!(err.contains("no space left"), "{err}");
    let committed: u64 = err
        .split("; ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("how many were committed? {err}"));
    assert!(committed > 10_000, "{err}");
    let before = fs.files();

    // Reading needs no space: every committed write is there.
    let get = fs.run(&["get", "key00000500"]);
    clean(&get, "get");
    assert_eq!(stdout(&get), "value-00000500-with-some-padding-to-fill-pages\n");
    let last = format!("key{:08}", 1000 + committed - 1);
    clean(&fs.run(&["get", &last]), "get of the last committed key");
    let scan = fs.run(&["scan", "--from", "key00001000", "--limit", "3"]);
    clean(&scan, "scan");
    assert_eq!(stdout(&scan).lines().count(), 3);
    let check = fs.run(&["check"]);
    clean(&check, "check");
    assert!(stdout(&check).starts_with(&format!("ok: {} entries", 1000 + committed)), "{}", stdout(&check));
    clean(&fs.run(&["stat"]), "stat");
    clean(&fs.run(&["trees"]), "trees");

    assert!(fs.files() == before, "reading changed the files");

    // Writing fails with one line saying why. (Its attempt at recovery may
    // write back pages where the files have room: recovery's own writes,
    // which change no contents.)
    for args in [&["put", "new", "v"][..], &["del", "key00000001"], &["drop-tree", "default"]] {
        let err = one_line(&fs.run(args), 3, args[0]);
        assert!(err.contains("disk is full"), "{}: {err}", args[0]);
    }
    let check = fs.run(&["check"]);
    clean(&check, "check after refused writes");
    assert!(stdout(&check).starts_with(&format!("ok: {} entries", 1000 + committed)), "{}", stdout(&check));
    clean(&fs.run(&["get", "key00000001"]), "get of a key a refused del named");

    // Room again: writes go on, nothing was lost.
    fs.remount("size=64m");
    clean(&fs.run(&["put", "new", "v"]), "put after freeing space");
    let check = fs.run(&["check"]);
    clean(&check, "check after freeing space");
    assert!(stdout(&check).starts_with(&format!("ok: {} entries", 1000 + committed + 1)), "{}", stdout(&check));
    let _ = std::fs::remove_file(&input);
}

fn clean_load(fs: &Tmpfs, input: &Path) {
    let out = load(fs, input);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn a_read_only_file_system_is_readable_and_refuses_writes_in_one_line() {
    let Some(fs) = Tmpfs::mount("ro", "32m") else { return };
    clean(&fs.run(&["--log-size", "16M", "put", "k", "v"]), "put");
    fs.remount("ro");
    let get = fs.run(&["get", "k"]);
    clean(&get, "get");
    assert_eq!(stdout(&get), "v\n");
    clean(&fs.run(&["check"]), "check");
    let err = one_line(&fs.run(&["put", "k2", "v"]), 3, "put");
    assert!(err.contains("read-only"), "{err}");
    fs.remount("rw");
}
