//! The emulation itself, through a real mount: what a power loss keeps and
//! loses (file data, sizes, names, directories), torn sectors, a clean
//! unmount, and what SnowfallDB needs of it (`O_DIRECT`, `flock`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use common::Scratch;
use snowfall_power_loss_fs::{PowerLoss, Report};

fn fsync_dir(dir: &Path) {
    File::open(dir).unwrap().sync_all().unwrap();
}

fn create(path: &Path) -> File {
    File::options().read(true).write(true).create_new(true).open(path).unwrap()
}

fn read(path: &Path) -> Option<Vec<u8>> {
    match std::fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => panic!("{}: {e}", path.display()),
    }
}

#[test]
fn unsynced_writes_are_lost_and_synced_ones_kept() {
    let s = Scratch::new("data");
    std::fs::write(s.backing().join("f"), b"durable before the mount").unwrap();
    let Some(m) = s.mount() else { return };
    let f = File::options().write(true).open(s.mnt().join("f")).unwrap();
    f.write_all_at(b"SYNCED", 0).unwrap();
    f.sync_data().unwrap();
    f.write_all_at(b"LOST", 8).unwrap(); // never synced
    assert_eq!(read(&s.mnt().join("f")).unwrap(), b"SYNCEDe LOSTre the mount", "visible before the power loss");
    drop(f);
    let report = m.power_loss(PowerLoss::Drop).unwrap();
    assert_eq!(read(&s.backing().join("f")).unwrap(), b"SYNCEDe before the mount");
    assert_eq!(report, Report { files_unsynced: 1, bytes_unsynced: 4096, ..Report::default() });
}

#[test]
fn a_sync_through_another_handle_makes_the_writes_durable() {
    let s = Scratch::new("handles");
    std::fs::write(s.backing().join("f"), b"").unwrap();
    let Some(m) = s.mount() else { return };
    let mut writer = File::options().write(true).open(s.mnt().join("f")).unwrap();
    writer.write_all(b"written by one handle").unwrap();
    File::open(s.mnt().join("f")).unwrap().sync_all().unwrap();
    drop(writer);
    m.power_loss(PowerLoss::Drop).unwrap();
    assert_eq!(read(&s.backing().join("f")).unwrap(), b"written by one handle");
}

#[test]
fn unsynced_size_changes_are_lost_and_synced_ones_kept() {
    let s = Scratch::new("sizes");
    std::fs::write(s.backing().join("shrunk"), [7u8; 10_000]).unwrap();
    std::fs::write(s.backing().join("grown"), [7u8; 100]).unwrap();
    std::fs::write(s.backing().join("cut-then-lost"), [7u8; 100]).unwrap();
    let Some(m) = s.mount() else { return };
    let shrunk = File::options().write(true).open(s.mnt().join("shrunk")).unwrap();
    shrunk.set_len(10).unwrap();
    shrunk.set_len(20).unwrap(); // the cut bytes come back as zeros
    shrunk.sync_all().unwrap();
    let grown = File::options().write(true).open(s.mnt().join("grown")).unwrap();
    grown.set_len(5000).unwrap();
    grown.sync_data().unwrap();
    File::options().write(true).open(s.mnt().join("cut-then-lost")).unwrap().set_len(0).unwrap();
    drop((shrunk, grown));
    m.power_loss(PowerLoss::Drop).unwrap();
    let mut want = vec![7u8; 10];
    want.resize(20, 0);
    assert_eq!(read(&s.backing().join("shrunk")).unwrap(), want);
    let mut want = vec![7u8; 100];
    want.resize(5000, 0);
    assert_eq!(read(&s.backing().join("grown")).unwrap(), want);
    assert_eq!(read(&s.backing().join("cut-then-lost")).unwrap(), [7u8; 100]);
}

#[test]
fn a_file_created_without_a_directory_fsync_is_gone_even_if_the_file_was_fsynced() {
    let s = Scratch::new("create-no-dirsync");
    let Some(m) = s.mount() else { return };
    let f = create(&s.mnt().join("new"));
    f.write_all_at(b"data", 0).unwrap();
    f.sync_all().unwrap();
    drop(f);
    let report = m.power_loss(PowerLoss::Drop).unwrap();
    assert_eq!(read(&s.backing().join("new")), None);
    assert_eq!(report.dirs_unsynced, 1);
    assert_eq!(std::fs::read_dir(s.backing()).unwrap().count(), 0, "nothing else either");
}

#[test]
fn a_file_created_and_its_directory_fsynced_is_kept() {
    let s = Scratch::new("create-dirsync");
    let Some(m) = s.mount() else { return };
    let f = create(&s.mnt().join("new"));
    f.write_all_at(b"data", 0).unwrap();
    f.sync_all().unwrap();
    fsync_dir(&s.mnt());
    drop(f);
    m.power_loss(PowerLoss::Drop).unwrap();
    assert_eq!(read(&s.backing().join("new")).unwrap(), b"data");
}

#[test]
fn a_directory_fsync_without_a_file_fsync_keeps_the_name_but_not_the_data() {
    let s = Scratch::new("dirsync-only");
    let Some(m) = s.mount() else { return };
    let f = create(&s.mnt().join("new"));
    fsync_dir(&s.mnt());
    f.write_all_at(b"data", 0).unwrap();
    drop(f);
    m.power_loss(PowerLoss::Drop).unwrap();
    assert_eq!(read(&s.backing().join("new")).unwrap(), b"");
}

#[test]
fn renames_and_unlinks_are_durable_only_after_a_directory_fsync() {
    let s = Scratch::new("rename");
    for name in ["a", "b", "c", "d"] {
        std::fs::write(s.backing().join(name), name).unwrap();
    }
    let Some(m) = s.mount() else { return };
    let mnt = s.mnt();
    // Synced: a -> a2 (a move), b removed, c and d swapped.
    std::fs::rename(mnt.join("a"), mnt.join("a2")).unwrap();
    std::fs::remove_file(mnt.join("b")).unwrap();
    std::fs::rename(mnt.join("c"), mnt.join("tmp")).unwrap();
    std::fs::rename(mnt.join("d"), mnt.join("c")).unwrap();
    std::fs::rename(mnt.join("tmp"), mnt.join("d")).unwrap();
    fsync_dir(&mnt);
    // Not synced: a2 -> a3, d removed.
    std::fs::rename(mnt.join("a2"), mnt.join("a3")).unwrap();
    std::fs::remove_file(mnt.join("d")).unwrap();
    // Across directories: refused, as between file systems.
    std::fs::create_dir(mnt.join("sub")).unwrap();
    let across = std::fs::rename(mnt.join("a3"), mnt.join("sub").join("a3")).unwrap_err();
    assert_eq!(across.raw_os_error(), Some(nix::errno::Errno::EXDEV as i32));
    m.power_loss(PowerLoss::Drop).unwrap();
    let mut names: Vec<String> =
        std::fs::read_dir(s.backing()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["a2", "c", "d"]);
    assert_eq!(read(&s.backing().join("a2")).unwrap(), b"a");
    assert_eq!(read(&s.backing().join("c")).unwrap(), b"d");
    assert_eq!(read(&s.backing().join("d")).unwrap(), b"c");
}

#[test]
fn a_new_directory_needs_its_parent_fsynced_too() {
    let s = Scratch::new("subdir");
    let Some(m) = s.mount() else { return };
    let mnt = s.mnt();
    std::fs::create_dir(mnt.join("kept")).unwrap();
    std::fs::create_dir(mnt.join("orphan")).unwrap();
    for dir in ["kept", "orphan"] {
        let f = create(&mnt.join(dir).join("f"));
        f.write_all_at(dir.as_bytes(), 0).unwrap();
        f.sync_all().unwrap();
        fsync_dir(&mnt.join(dir));
    }
    fsync_dir(&mnt); // names both directories ...
    std::fs::remove_file(mnt.join("orphan").join("f")).unwrap();
    std::fs::remove_dir(mnt.join("orphan")).unwrap();
    fsync_dir(&mnt); // ... and then drops one
    std::fs::create_dir(mnt.join("unsynced-parent")).unwrap();
    let f = create(&mnt.join("unsynced-parent").join("f"));
    f.sync_all().unwrap();
    fsync_dir(&mnt.join("unsynced-parent"));
    drop(f);
    m.power_loss(PowerLoss::Drop).unwrap();
    assert_eq!(read(&s.backing().join("kept").join("f")).unwrap(), b"kept");
    assert!(!s.backing().join("orphan").exists());
    assert!(!s.backing().join("unsynced-parent").exists());
    assert_eq!(std::fs::read_dir(s.backing()).unwrap().count(), 1);
}

#[test]
fn a_torn_power_loss_keeps_whole_sectors_of_the_newest_data_or_none() {
    let s = Scratch::new("torn");
    std::fs::write(s.backing().join("f"), vec![1u8; 64 << 10]).unwrap();
    let Some(m) = s.mount() else { return };
    let f = File::options().write(true).open(s.mnt().join("f")).unwrap();
    f.write_all_at(&[2u8; 64 << 10], 0).unwrap();
    drop(f);
    let report = m.power_loss(PowerLoss::Torn { seed: 12 }).unwrap();
    let after = read(&s.backing().join("f")).unwrap();
    assert_eq!(after.len(), 64 << 10);
    let new = after.chunks(512).filter(|c| c.iter().all(|&b| b == 2)).count();
    let old = after.chunks(512).filter(|c| c.iter().all(|&b| b == 1)).count();
    assert_eq!(new + old, 128, "every sector is whole, old or new");
    assert_eq!(new as u64, report.sectors_kept);
    assert!(new > 0 && old > 0, "{new} new and {old} old sectors");
}

#[test]
fn a_clean_unmount_keeps_everything_and_a_remount_shows_it() {
    let s = Scratch::new("unmount");
    let Some(m) = s.mount() else { return };
    std::fs::create_dir(s.mnt().join("d")).unwrap();
    std::fs::write(s.mnt().join("d").join("f"), b"never synced").unwrap();
    m.unmount().unwrap();
    assert_eq!(read(&s.backing().join("d").join("f")).unwrap(), b"never synced");
    let Some(m) = s.mount() else { return };
    assert_eq!(read(&s.mnt().join("d").join("f")).unwrap(), b"never synced");
    m.power_loss(PowerLoss::Drop).unwrap();
}

#[test]
fn o_direct_and_flock_work_as_snowfall_uses_them() {
    let s = Scratch::new("direct");
    let Some(m) = s.mount() else { return };
    let path = s.mnt().join("db");
    let direct = nix::fcntl::OFlag::O_DIRECT.bits();
    let f = File::options().read(true).write(true).create(true).custom_flags(direct).open(&path).unwrap();
    f.try_lock().unwrap();
    let other = File::options().read(true).write(true).custom_flags(direct).open(&path).unwrap();
    assert!(other.try_lock().is_err(), "a second open description must not get the lock");
    // An aligned O_DIRECT page write and read back.
    #[repr(align(4096))]
    struct Page([u8; 4096]);
    let page = Page([9; 4096]);
    f.write_all_at(&page.0, 4096).unwrap();
    let mut back = Page([0; 4096]);
    other.read_exact_at(&mut back.0, 4096).unwrap();
    assert_eq!(back.0, page.0);
    drop((f, other));
    m.power_loss(PowerLoss::Drop).unwrap();
}
