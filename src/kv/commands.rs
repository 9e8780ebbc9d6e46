//! The small commands: one operation each.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use rustix::io::Errno;
use snowfall_buffer::{DeviceError, IoOp};

use snowfall_rt::{errln, outln};

use super::out::written;
use super::{Global, NOT_FOUND, Open, close, db_error, escape, positional};
use crate::cli::{SUCCESS, USAGE};

/// `put KEY VALUE`; VALUE `-` streams the value from standard input, bytes
/// as they are, of any size the engine takes (never held in memory whole).
pub fn put(g: &Global, args: &[&[u8]]) -> Result<i32, i32> {
    let a = positional("put", args, &["KEY", "VALUE"])?;
    let key = g.bytes("KEY", a.first().copied().unwrap_or_default())?;
    let value = a.get(1).copied().unwrap_or_default();
    if value == b"-" {
        let db = g.open(Open::Create)?;
        let result = db.tree(&g.tree).map_err(db_error).and_then(|tree| put_stdin(g, &tree, &key));
        return close(db, result);
    }
    let value = g.bytes("VALUE", value)?;
    let db = g.open(Open::Create)?;
    let result = db.tree(&g.tree).and_then(|tree| tree.insert(&key, &value)).map(|_| SUCCESS).map_err(db_error);
    close(db, result)
}

/// Bytes read from standard input per `read(2)`, and written to standard
/// output per `write(2)` by `get --raw`.
const STDIN_CHUNK: usize = 1 << 20;

/// Streams standard input into `key`'s new value. A key the engine refuses
/// is refused before the input is read; an input larger than the engine
/// takes is refused one chunk past the limit; either way, or if reading
/// fails, nothing is stored.
fn put_stdin(g: &Global, tree: &snowfall_db::Tree<'_>, key: &[u8]) -> Result<i32, i32> {
    let mut writer = tree.writer(key).map_err(db_error)?;
    let mut buf = crate::oom::with_capacity(STDIN_CHUNK, "the input buffer").map_err(|e| e.report())?;
    buf.resize(STDIN_CHUNK, 0);
    loop {
        let n = match snowfall_rt::io::read_stdin(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(Errno::INTR) => continue,
            Err(errno) => {
                let e = DeviceError::Os { op: IoOp::Read, offset: writer.len(), errno };
                errln!("snowfall: put: reading the value from standard input: {e}");
                return Err(USAGE);
            }
        };
        writer.write(buf.get(..n).unwrap_or_default()).map_err(db_error)?;
    }
    writer.commit(g.durability).map(|_| SUCCESS).map_err(db_error)
}

/// `get [--raw] KEY`: the value alone and a newline (hex with `--hex`), or
/// with `--raw` exactly the value's bytes; status 1 if the key or the tree
/// is not there.
pub fn get(g: &Global, args: &[&[u8]]) -> Result<i32, i32> {
    let raw = args.contains(&&b"--raw"[..]);
    let args: Vec<&[u8]> = args.iter().copied().filter(|a| *a != b"--raw").collect();
    let a = positional("get", &args, &["[--raw] KEY"])?;
    let key = g.bytes("KEY", a.first().copied().unwrap_or_default())?;
    let db = g.open(Open::Read)?;
    if raw {
        let result = db.existing_tree(&g.tree).map_err(db_error).and_then(|tree| get_raw(&tree, &key));
        return close(db, result);
    }
    let result = (|| {
        let Some(value) = db.existing_tree(&g.tree).and_then(|tree| tree.get(&key)).map_err(db_error)? else {
            errln!("snowfall: key not found");
            return Err(NOT_FOUND);
        };
        let mut line = crate::oom::with_capacity(2 * value.len() + 1, "the value").map_err(|e| e.report())?;
        if g.hex {
            escape::escape(&value, true, &mut line);
        } else {
            line.extend_from_slice(&value);
        }
        line.push(b'\n');
        written(snowfall_rt::io::write_all(snowfall_rt::io::STDOUT, &line))
    })();
    close(db, result)
}

/// Streams `key`'s value to standard output, a chunk at a time (its
/// checksum is checked at the end: a damaged value ends in an error after
/// the bytes before it were written).
fn get_raw(tree: &snowfall_db::Tree<'_>, key: &[u8]) -> Result<i32, i32> {
    let Some(mut reader) = tree.reader(key).map_err(db_error)? else {
        errln!("snowfall: key not found");
        return Err(NOT_FOUND);
    };
    let mut buf = crate::oom::with_capacity(STDIN_CHUNK, "the output buffer").map_err(|e| e.report())?;
    buf.resize(STDIN_CHUNK.min(usize::try_from(reader.len()).unwrap_or(STDIN_CHUNK)), 0);
    loop {
        let n = reader.read(&mut buf).map_err(db_error)?;
        if n == 0 {
            return Ok(SUCCESS);
        }
        // A closed pipe ends the output (as `written` says: not an error).
        if let Err(e) = snowfall_rt::io::write_all(snowfall_rt::io::STDOUT, buf.get(..n).unwrap_or_default()) {
            return written(Err(e));
        }
    }
}

/// `del KEY`: status 1 if the key or the tree is not there.
pub fn del(g: &Global, args: &[&[u8]]) -> Result<i32, i32> {
    let a = positional("del", args, &["KEY"])?;
    let key = g.bytes("KEY", a.first().copied().unwrap_or_default())?;
    let db = g.open(Open::Write)?;
    let result = match db.existing_tree(&g.tree).and_then(|tree| tree.remove(&key)) {
        Ok(true) => Ok(SUCCESS),
        Ok(false) => {
            errln!("snowfall: key not found");
            Err(NOT_FOUND)
        }
        Err(e) => Err(db_error(e)),
    };
    close(db, result)
}

/// `trees`: one name per line.
pub fn trees(g: &Global, args: &[&[u8]]) -> Result<i32, i32> {
    positional("trees", args, &[])?;
    let db = g.open(Open::Read)?;
    let result = db.tree_names().iter().try_for_each(|name| written(outln!("{name}")).map(drop)).map(|()| SUCCESS);
    close(db, result)
}

/// `drop-tree NAME`: status 1 if there is no such tree.
pub fn drop_tree(g: &Global, args: &[&[u8]]) -> Result<i32, i32> {
    let a = positional("drop-tree", args, &["NAME"])?;
    let name = core::str::from_utf8(a.first().copied().unwrap_or_default())
        .map_err(|_| crate::cli::usage("drop-tree: the name must be UTF-8".into()))?;
    let mut db = g.open(Open::Write)?;
    let result = db.drop_tree(name).map(|()| SUCCESS).map_err(db_error);
    close(db, result)
}

/// The database's lifetime write counts and what they make per log record
/// (write amplification: a write of one key is one record).
fn lifetime(l: &snowfall_db::Lifetime) -> String {
    let total = l.data_bytes_written.saturating_add(l.log_bytes_written);
    let per = total.checked_div(l.records_logged).unwrap_or(0);
    format!(
        "{} bytes to the file, {} to the log, for {} log records: {per} bytes per record (as of the last checkpoint)",
        l.data_bytes_written, l.log_bytes_written, l.records_logged
    )
}

/// `stat`: sizes, counts and buffer statistics, `name: value` lines. The
/// database is opened read-only, so the counters (hits, faults, bytes read)
/// are those of this open alone: its recovery and nothing else. It writes
/// nothing; the bytes a workload writes are `bench`'s to report.
pub fn stat(g: &Global, args: &[&[u8]]) -> Result<i32, i32> {
    positional("stat", args, &[])?;
    let db = g.open(Open::Read)?;
    let s = db.stats();
    let file = |path: &str| rustix::fs::stat(path).map(|st| st.st_size).unwrap_or(0);
    let page = snowfall_buffer::PAGE_SIZE as u64;
    let lines = [
        ("file", g.db.clone()),
        ("file bytes", format!("{}", file(&g.db))),
        ("log bytes", format!("{}", file(&format!("{}.wal", g.db)))),
        ("trees", format!("{}", s.trees)),
        ("pages allocated", format!("{} ({} bytes)", s.allocated_pages, s.allocated_pages * page)),
        ("pages free", format!("{} (in {} runs)", s.free_pages, s.free_runs)),
        ("pool pages", format!("{} ({} bytes)", s.pool_pages, s.pool_pages * page)),
        ("log in use", format!("{} of {} bytes", s.log_bytes_used, s.log_bytes_capacity)),
        ("log since checkpoint", format!("{} bytes (what recovery replays)", s.log_bytes_to_replay)),
        ("written since creation", lifetime(&s.lifetime)),
        ("recovery", format!("{} records redone, {} batches undone", s.records_redone, s.batches_undone)),
        ("counters", String::from("of this read-only open (its recovery), not of the database's past")),
        ("resident pages", format!("{} ({} of cached large values)", s.resident_pages, s.extent_pages)),
        ("page hits", format!("{}", s.hits)),
        ("page faults", format!("{}", s.faults)),
        ("evictions", format!("{}", s.evictions)),
        ("write-backs", format!("{}", s.write_backs)),
        ("bytes read", format!("{} from the file, {} from the log", s.data_bytes_read, s.log_bytes_read)),
    ];
    let result = lines.iter().try_for_each(|(name, value)| written(outln!("{name}: {value}")).map(drop));
    close(db, result.map(|()| SUCCESS))
}

/// `check`: the integrity check; status 3 if it fails.
pub fn check(g: &Global, args: &[&[u8]]) -> Result<i32, i32> {
    positional("check", args, &[])?;
    let db = g.open(Open::Read)?;
    let result = match db.check_integrity() {
        Ok(r) => written(outln!(
            "ok: {} entries, {} of them large ({} pages), {} pages and {} log records verified",
            r.entries,
            r.large_values,
            r.large_value_pages,
            r.pages_verified,
            r.log_records_verified
        )),
        Err(e) => Err(db_error(e)),
    };
    close(db, result)
}
