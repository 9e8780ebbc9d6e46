//! `scan [--from K] [--to K] [--reverse] [--limit N]`: `key<TAB>value`
//! lines in key order (`--from` inclusive, `--to` exclusive), escaped as
//! `escape.rs` says. A tree that does not exist is status 1 (as a key is
//! for `get`); a range with no keys in it prints nothing, status 0.

use alloc::borrow::Cow;
use alloc::format;
use core::ops::Bound;

use super::out::{Out, written};
use super::{Global, Open, db_error, escape};
use crate::cli::{SUCCESS, lossy, usage};

/// Runs `scan`.
pub fn run(g: &Global, args: &[&[u8]]) -> Result<i32, i32> {
    let (mut from, mut to, mut reverse, mut limit) = (None, None, false, u64::MAX);
    let mut it = args.iter().copied();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| usage(format!("scan: {name} needs a value")));
        match arg {
            b"--from" => from = Some(g.bytes("--from", value("--from")?)?),
            b"--to" => to = Some(g.bytes("--to", value("--to")?)?),
            b"--reverse" => reverse = true,
            b"--limit" => {
                let v = value("--limit")?;
                limit = core::str::from_utf8(v)
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| usage(format!("scan: --limit '{}' is not a number", lossy(v))))?;
            }
            other => return Err(usage(format!("scan: unknown argument '{}'", lossy(other)))),
        }
    }
    let db = g.open(Open::Read)?;
    let result = print(g, &db, from, to, reverse, limit);
    super::close(db, result)
}

/// Prints the entries of `g.tree` from `from` to `to` (exclusive).
fn print(
    g: &Global,
    db: &snowfall_db::Database,
    from: Option<Cow<'_, [u8]>>,
    to: Option<Cow<'_, [u8]>>,
    reverse: bool,
    limit: u64,
) -> Result<i32, i32> {
    // A missing tree is status 1, as a missing key is for `get`.
    let tree = db.existing_tree(&g.tree).map_err(db_error)?;
    let low = from.map_or(Bound::Unbounded, Bound::Included);
    let high = to.map_or(Bound::Unbounded, Bound::Excluded);
    let range = tree.range::<[u8]>((low.as_ref().map(|k| &**k), high.as_ref().map(|k| &**k)));
    let mut out = Out::new();
    let mut emit = |entry: Result<snowfall_db::Entry, snowfall_db::Error>| -> Result<(), i32> {
        let (k, v) = entry.map_err(db_error)?;
        let buf = out.buf();
        escape::escape(&k, g.hex, buf);
        buf.push(b'\t');
        escape::escape(&v, g.hex, buf);
        buf.push(b'\n');
        // A closed pipe ends the scan here; `written` below says how.
        out.maybe_flush().map_err(|e| written(Err(e)).unwrap_or_else(|status| status))
    };
    let printed = if reverse {
        range.rev().take(limit as usize).try_for_each(&mut emit)
    } else {
        range.take(limit as usize).try_for_each(&mut emit)
    };
    match printed {
        Ok(()) => written(out.flush()),
        // The reader went away (`| head`): that ends the scan, successfully.
        Err(SUCCESS) => Ok(SUCCESS),
        Err(status) => Err(status),
    }
}
