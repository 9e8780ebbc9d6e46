//! The small commands: one operation each.

use alloc::borrow::Cow;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use rustix::io::Errno;
use snowfall_buffer::{DeviceError, IoOp};
use snowfall_db::{MAX_KEY, MAX_VALUE};

use snowfall_rt::{errln, outln};

use super::out::written;
use super::{Global, NOT_FOUND, Open, close, db_error, escape, positional};
use crate::cli::{SUCCESS, USAGE};

/// `put KEY VALUE`; VALUE `-` reads the value from standard input, bytes
/// as they are.
pub fn put(g: &Global, args: &[&[u8]]) -> Result<i32, i32> {
    let a = positional("put", args, &["KEY", "VALUE"])?;
    let key = g.bytes("KEY", a.first().copied().unwrap_or_default())?;
    let value = match a.get(1).copied().unwrap_or_default() {
        // A key too long for any value: the engine refuses it (below)
        // without the input being read.
        b"-" if key.len() > MAX_KEY => Cow::Borrowed(&[][..]),
        b"-" => Cow::Owned(stdin_value()?),
        arg => g.bytes("VALUE", arg)?,
    };
    let db = g.open(Open::Create)?;
    let result = db.tree(&g.tree).and_then(|tree| tree.insert(&key, &value)).map(|_| SUCCESS).map_err(db_error);
    close(db, result)
}

/// Bytes read from standard input per `read(2)`.
const STDIN_CHUNK: usize = 64 << 10;

/// The whole of standard input, as a value. Reading stops one byte past
/// the most the engine takes (so a larger input is refused without reading
/// it all, and nothing is written).
fn stdin_value() -> Result<Vec<u8>, i32> {
    let max = MAX_VALUE;
    let mut value = Vec::new();
    let mut buf = alloc::vec![0u8; STDIN_CHUNK];
    while value.len() <= max {
        let n = match snowfall_rt::io::read_stdin(&mut buf) {
            Ok(0) => return Ok(value),
            Ok(n) => n,
            Err(Errno::INTR) => continue,
            Err(errno) => {
                let e = DeviceError::Os { op: IoOp::Read, offset: value.len() as u64, errno };
                errln!("snowfall: put: reading the value from standard input: {e}");
                return Err(USAGE);
            }
        };
        if value.try_reserve(n).is_err() {
            errln!("snowfall: put: out of memory reading the value ({} bytes so far) from standard input", value.len());
            return Err(USAGE);
        }
        value.extend_from_slice(buf.get(..n).unwrap_or_default());
    }
    // Bad input, as the engine's own "value too large": one line, nothing written.
    errln!("snowfall: put: the value on standard input is too large: at most {max} bytes fit");
    Err(USAGE)
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
    let result = (|| {
        let Some(value) = db.existing_tree(&g.tree).and_then(|tree| tree.get(&key)).map_err(db_error)? else {
            errln!("snowfall: key not found");
            return Err(NOT_FOUND);
        };
        if raw {
            return written(snowfall_rt::io::write_all(snowfall_rt::io::STDOUT, &value));
        }
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
        ("resident pages", format!("{}", s.resident_pages)),
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
            "ok: {} entries, {} pages and {} log records verified",
            r.entries,
            r.pages_verified,
            r.log_records_verified
        )),
        Err(e) => Err(db_error(e)),
    };
    close(db, result)
}
