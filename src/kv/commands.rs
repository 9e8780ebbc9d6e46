//! The small commands: one operation each.

use alloc::format;

use snowfall_rt::{errln, outln};

use super::out::written;
use super::{Global, NOT_FOUND, db_error, escape, positional};
use crate::cli::SUCCESS;

/// `put KEY VALUE`
pub fn put(g: &Global, args: &[&[u8]]) -> Result<i32, i32> {
    let a = positional("put", args, &["KEY", "VALUE"])?;
    let (key, value) = (
        g.bytes("KEY", a.first().copied().unwrap_or_default())?,
        g.bytes("VALUE", a.get(1).copied().unwrap_or_default())?,
    );
    let db = g.open(true)?;
    let tree = db.tree(&g.tree).map_err(db_error)?;
    tree.insert(&key, &value).map_err(db_error)?;
    db.close().map_err(db_error)?;
    Ok(SUCCESS)
}

/// `get KEY`: the value alone (hex with `--hex`).
pub fn get(g: &Global, args: &[&[u8]]) -> Result<i32, i32> {
    let a = positional("get", args, &["KEY"])?;
    let key = g.bytes("KEY", a.first().copied().unwrap_or_default())?;
    let db = g.open(false)?;
    let tree = db.existing_tree(&g.tree).map_err(db_error)?;
    let Some(value) = tree.get(&key).map_err(db_error)? else {
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
}

/// `del KEY`
pub fn del(g: &Global, args: &[&[u8]]) -> Result<i32, i32> {
    let a = positional("del", args, &["KEY"])?;
    let key = g.bytes("KEY", a.first().copied().unwrap_or_default())?;
    let db = g.open(false)?;
    let tree = db.existing_tree(&g.tree).map_err(db_error)?;
    let existed = tree.remove(&key).map_err(db_error)?;
    db.close().map_err(db_error)?;
    if existed {
        Ok(SUCCESS)
    } else {
        errln!("snowfall: key not found");
        Err(NOT_FOUND)
    }
}

/// `trees`: one name per line.
pub fn trees(g: &Global, args: &[&[u8]]) -> Result<i32, i32> {
    positional("trees", args, &[])?;
    let db = g.open(false)?;
    for name in db.tree_names() {
        written(outln!("{name}"))?;
    }
    Ok(SUCCESS)
}

/// `drop-tree NAME`
pub fn drop_tree(g: &Global, args: &[&[u8]]) -> Result<i32, i32> {
    let a = positional("drop-tree", args, &["NAME"])?;
    let name = core::str::from_utf8(a.first().copied().unwrap_or_default())
        .map_err(|_| crate::cli::usage("drop-tree: the name must be UTF-8".into()))?;
    let mut db = g.open(false)?;
    db.drop_tree(name).map_err(db_error)?;
    db.close().map_err(db_error)?;
    Ok(SUCCESS)
}

/// `stat`: sizes, counts and buffer statistics, `name: value` lines.
pub fn stat(g: &Global, args: &[&[u8]]) -> Result<i32, i32> {
    positional("stat", args, &[])?;
    let db = g.open(false)?;
    let s = db.stats();
    let file = |path: &str| rustix::fs::stat(path).map(|st| st.st_size).unwrap_or(0);
    let page = snowfall_buffer::PAGE_SIZE as u64;
    let lines = [
        ("file", g.db.clone()),
        ("file bytes", format!("{}", file(&g.db))),
        ("log bytes", format!("{}", file(&format!("{}.wal", g.db)))),
        ("trees", format!("{}", s.trees)),
        ("pages allocated", format!("{} ({} bytes)", s.allocated_pages, s.allocated_pages * page)),
        ("pages free", format!("{}", s.free_pages)),
        ("pool pages", format!("{} ({} bytes)", s.pool_pages, s.pool_pages * page)),
        ("resident pages", format!("{}", s.resident_pages)),
        ("page hits", format!("{}", s.hits)),
        ("page faults", format!("{}", s.faults)),
        ("evictions", format!("{}", s.evictions)),
        ("write-backs", format!("{}", s.write_backs)),
        ("log in use", format!("{} of {} bytes", s.log_bytes_used, s.log_bytes_capacity)),
        ("recovery", format!("{} records redone, {} batches undone", s.records_redone, s.batches_undone)),
    ];
    for (name, value) in lines {
        written(outln!("{name}: {value}"))?;
    }
    Ok(SUCCESS)
}

/// `check`: the integrity check; status 3 if it fails.
pub fn check(g: &Global, args: &[&[u8]]) -> Result<i32, i32> {
    positional("check", args, &[])?;
    let db = g.open(false)?;
    match db.check_integrity() {
        Ok(r) => written(outln!(
            "ok: {} entries, {} pages and {} log records verified",
            r.entries,
            r.pages_verified,
            r.log_records_verified
        )),
        Err(e) => Err(db_error(e)),
    }
}
