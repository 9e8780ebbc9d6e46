//! The std façade: opened by any `AsRef<Path>`, background threads on std
//! threads by default, errors through `Box<dyn Error>`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::error::Error as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use snowfalldb::{Database, Durability, Error};

/// A fresh directory for one test (removed when dropped).
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("snowfalldb-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn paths_of_every_kind_open_the_same_database() {
    let dir = Dir::new("paths");
    let path: PathBuf = dir.0.join("data.db");
    let db = Database::builder(&path).pool_bytes(16 << 20).create().unwrap();
    db.tree("t").unwrap().insert(b"k", b"v").unwrap();
    db.close().unwrap();
    assert!(path.exists() && dir.0.join("data.db.wal").exists());
    // &Path, PathBuf, &str and String name the same files.
    let as_str = path.to_str().unwrap().to_owned();
    let builders = [
        Database::builder(path.as_path()),
        Database::builder(path.clone()),
        Database::builder(as_str.as_str()),
        Database::builder(as_str.clone()),
    ];
    for (i, builder) in builders.into_iter().enumerate() {
        // One at a time: a database is open in one place at once.
        let db = if i == 3 { builder.open_read_only() } else { builder.open() }.unwrap();
        assert_eq!(db.tree("t").unwrap().get(b"k").unwrap(), Some(b"v".to_vec()));
        db.close().unwrap();
    }
}

#[test]
fn group_writes_are_synced_by_a_background_thread_by_default() {
    let dir = Dir::new("background");
    let interval = Duration::from_millis(20);
    let db = Database::builder(dir.0.join("g.db")).group_interval(interval).create().unwrap();
    let t = db.tree("t").unwrap();
    // A `Group` write returns before it is durable; nothing else runs on
    // this thread, so only the background flusher can make it durable.
    t.insert_with(b"k", b"v", Durability::Group).unwrap();
    let written = db.log().appended();
    let start = Instant::now();
    while db.log().durable() < written {
        assert!(start.elapsed() < Duration::from_secs(10), "the background flusher never synced the write");
        std::thread::sleep(interval / 4);
    }
    db.close().unwrap();
}

#[test]
fn a_path_that_is_not_utf8_is_an_error_and_creates_nothing() {
    use std::os::unix::ffi::OsStrExt;
    let dir = Dir::new("not-utf8");
    let path = dir.0.join(std::ffi::OsStr::from_bytes(b"bad-\xff.db"));
    let e = Database::builder(&path).create().unwrap_err();
    assert!(matches!(e, Error::Config { .. }), "{e:?}");
    assert!(e.to_string().contains("UTF-8"), "{e}");
    assert_eq!(std::fs::read_dir(&dir.0).unwrap().count(), 0);
}

#[test]
fn errors_go_through_box_dyn_error() {
    fn open_missing(path: &Path) -> Result<Database, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Database::builder(path).open()?)
    }
    let dir = Dir::new("errors");
    let e = open_missing(&dir.0.join("missing.db")).unwrap_err();
    // The engine's error, whole: downcast back, and its message says what.
    let engine = e.downcast_ref::<Error>().expect("a snowfalldb::Error");
    assert!(!engine.to_string().is_empty());
    let _ = engine.source();
}

/// A value streamed in with `std::io::copy`, read back with `Read` and
/// `Seek`.
#[test]
fn values_stream_through_std_io() {
    use snowfalldb::TreeExt;
    use std::io::{Read, Seek, SeekFrom};
    let dir = Dir::new("io");
    let db = Database::builder(dir.0.join("db")).create().unwrap();
    let t = db.tree("t").unwrap();
    let value: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut w = t.value_writer(b"k").unwrap();
    std::io::copy(&mut &value[..], &mut w).unwrap();
    assert!(!w.commit(snowfalldb::Durability::Sync).unwrap());
    let mut r = t.value_reader(b"k").unwrap().unwrap();
    let mut all = Vec::new();
    r.read_to_end(&mut all).unwrap();
    assert!(all == value);
    assert_eq!(r.seek(SeekFrom::End(-10)).unwrap(), value.len() as u64 - 10);
    let mut tail = Vec::new();
    r.read_to_end(&mut tail).unwrap();
    assert_eq!(tail, value[value.len() - 10..]);
    assert!(r.seek(SeekFrom::Current(-(value.len() as i64) - 1)).is_err());
    assert!(t.value_reader(b"absent").unwrap().is_none());
}
