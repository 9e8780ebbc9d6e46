//! `load [FILE]`: `key<TAB>value` lines (as `scan` writes them) from FILE
//! or standard input, a progress line on standard error each second. On
//! SIGINT it stops at the next line, makes what it loaded durable, and
//! exits with status 130; a malformed line stops it the same way with a
//! usage error naming the line.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use rustix::fd::{AsFd, OwnedFd};
use rustix::io::Errno;
use snowfall_db::Durability;
use snowfall_rt::errln;
use snowfall_sys::signal::{SIGINT, catch, raised};

use super::{Global, INTERRUPTED, db_error, escape};
use crate::cli::{SUCCESS, lossy, usage};
use crate::oom::OutOfMemory;

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
    // One line's key and value, decoded (reused from line to line).
    let (mut key, mut value) = (Vec::new(), Vec::new());
    let mut stop: Option<i32> = None;
    // What stopped the load if memory ran out, and at which line.
    let mut out_of_memory: Option<(OutOfMemory, u64)> = None;
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
        // A line longer than the memory left is not an abort.
        if let Err(e) = crate::oom::reserve(&mut pending, n, "a line of input") {
            out_of_memory = Some((e, line_no + 1));
            stop = Some(crate::oom::STATUS);
            break;
        }
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
            match parse(line, g.hex, &mut key, &mut value) {
                Ok(()) => match tree.insert_with(&key, &value, Durability::None) {
                    Ok(_) => loaded += 1,
                    Err(e) => {
                        errln!("snowfall: load: line {line_no}: {e}");
                        stop = Some(super::DB_ERROR);
                    }
                },
                Err(Malformed::Text(what)) => {
                    usage(format!("load: line {line_no}: {what}"));
                    stop = Some(crate::cli::USAGE);
                }
                Err(Malformed::Memory(e)) => {
                    out_of_memory = Some((e, line_no));
                    stop = Some(crate::oom::STATUS);
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
        // One line, as every out-of-memory report.
        Some(status) if let Some((e, line)) = out_of_memory => {
            errln!("snowfall: {e} (line {line}); the {loaded} entries before it are loaded and committed");
            Err(status)
        }
        Some(status) => {
            errln!("snowfall: stopped: {loaded} entries before line {line_no} loaded and committed");
            Err(status)
        }
    }
}

/// Why a line was not loaded.
enum Malformed {
    /// It is not `key<TAB>value` in text (or hex) form.
    Text(String),
    /// Its key or value does not fit in memory.
    Memory(OutOfMemory),
}

/// Splits and decodes one `key<TAB>value` line into `key` and `value`.
fn parse(line: &[u8], hex: bool, key: &mut Vec<u8>, value: &mut Vec<u8>) -> Result<(), Malformed> {
    let tab = line
        .iter()
        .position(|&b| b == b'\t')
        .ok_or_else(|| Malformed::Text(String::from("no tab between key and value")))?;
    let (key_text, value_text) = (line.get(..tab).unwrap_or_default(), line.get(tab + 1..).unwrap_or_default());
    for (name, what, text, out) in [("key", "a key", key_text, key), ("value", "a value", value_text, value)] {
        out.clear();
        // Decoding never needs more than the text's length.
        crate::oom::reserve(out, text.len(), what).map_err(Malformed::Memory)?;
        escape::unescape_into(text, hex, out).map_err(|e| Malformed::Text(format!("{name}: {e}")))?;
    }
    Ok(())
}
