//! `load [FILE]`: `key<TAB>value` lines (as `scan` writes them) from FILE
//! or standard input, a progress line on standard error each second. On
//! SIGINT it stops at the next line, makes what it loaded durable, and
//! exits with status 130; a malformed line stops it the same way with a
//! usage error naming the line.

use alloc::format;
use alloc::vec::Vec;

use rustix::fd::{AsFd, OwnedFd};
use rustix::io::Errno;
use snowfall_db::Durability;
use snowfall_rt::errln;
use snowfall_sys::signal::{SIGINT, catch, raised};

use super::{Global, INTERRUPTED, db_error, escape};
use crate::cli::{SUCCESS, lossy, usage};

/// Bytes read per `read(2)`.
const CHUNK: usize = 256 << 10;

/// Where lines come from.
enum Input {
    Stdin,
    File(OwnedFd),
}

impl Input {
    fn read(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        match self {
            Input::Stdin => snowfall_rt::io::read_stdin(buf),
            Input::File(f) => rustix::io::read(f.as_fd(), buf),
        }
    }
}

/// Runs `load`.
pub fn run(g: &Global, args: &[&[u8]]) -> Result<i32, i32> {
    let input = match args {
        [] => Input::Stdin,
        [path] => {
            let file = rustix::fs::open(
                *path,
                rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .map_err(|e| {
                errln!("snowfall: {}: {e}", lossy(path));
                super::DB_ERROR
            })?;
            Input::File(file)
        }
        _ => return Err(usage("usage: snowfall load [FILE]".into())),
    };
    if let Err(e) = catch(SIGINT) {
        errln!("snowfall: cannot catch SIGINT: {e}");
    }
    let db = g.open(true)?;
    let tree = db.tree(&g.tree).map_err(db_error)?;
    let start = snowfall_sys::clock::Instant::now();
    let mut progress_at = 1;
    let (mut loaded, mut line_no) = (0u64, 0u64);
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = alloc::vec![0u8; CHUNK];
    let mut stop: Option<i32> = None;
    let mut eof = false;
    while stop.is_none() && !eof {
        let n = match input.read(&mut buf) {
            Ok(n) => n,
            Err(Errno::INTR) if !raised(SIGINT) => continue,
            Err(Errno::INTR) => 0,
            Err(e) => {
                errln!("snowfall: reading input: {e}");
                stop = Some(super::DB_ERROR);
                0
            }
        };
        if raised(SIGINT) {
            stop = Some(INTERRUPTED);
            break;
        }
        eof = n == 0;
        pending.extend_from_slice(buf.get(..n).unwrap_or_default());
        // Whole lines; at the end of input, the last line needs no newline.
        let mut consumed = 0;
        while stop.is_none() {
            let rest = pending.get(consumed..).unwrap_or_default();
            let (line, next) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (rest.get(..i).unwrap_or_default(), consumed + i + 1),
                None if eof && !rest.is_empty() => (rest, pending.len()),
                None => break,
            };
            line_no += 1;
            match parse(line, g.hex) {
                Ok((k, v)) => match tree.insert_with(&k, &v, Durability::None) {
                    Ok(_) => loaded += 1,
                    Err(e) => {
                        errln!("snowfall: load: line {line_no}: {e}");
                        stop = Some(super::DB_ERROR);
                    }
                },
                Err(what) => {
                    usage(format!("load: line {line_no}: {what}"));
                    stop = Some(crate::cli::USAGE);
                }
            }
            consumed = next;
        }
        pending.drain(..consumed.min(pending.len()));
        let secs = start.elapsed().as_secs();
        if secs >= progress_at {
            progress_at = secs + 1;
            errln!("snowfall: loading: {loaded} entries, {} per second", loaded / secs.max(1));
        }
    }
    // What was loaded is durable, whatever stopped the load.
    db.sync().map_err(db_error)?;
    db.close().map_err(db_error)?;
    let secs = start.elapsed().as_secs_f64();
    match stop {
        None => {
            errln!("snowfall: loaded {loaded} entries in {secs:.2} s");
            Ok(SUCCESS)
        }
        Some(INTERRUPTED) => {
            errln!("snowfall: interrupted: {loaded} entries loaded and committed");
            Err(INTERRUPTED)
        }
        Some(status) => {
            errln!("snowfall: stopped: {loaded} entries before line {line_no} loaded and committed");
            Err(status)
        }
    }
}

/// Splits and decodes one `key<TAB>value` line.
fn parse(line: &[u8], hex: bool) -> Result<(Vec<u8>, Vec<u8>), alloc::string::String> {
    let tab = line
        .iter()
        .position(|&b| b == b'\t')
        .ok_or_else(|| alloc::string::String::from("no tab between key and value"))?;
    let (key, value) = (line.get(..tab).unwrap_or_default(), line.get(tab + 1..).unwrap_or_default());
    let key = escape::unescape(key, hex).map_err(|e| format!("key: {e}"))?;
    let value = escape::unescape(value, hex).map_err(|e| format!("value: {e}"))?;
    Ok((key, value))
}
