//! `load [FILE]`: `key<TAB>value` lines (as `scan` writes them) from FILE
//! or standard input.
//!
//! Whatever ends the load, what it inserted is made durable (one log sync)
//! before it exits, and standard error gets one line saying how it ended:
//! the count loaded (status 0); Ctrl-C (SIGINT, noticed after each read:
//! status 130); or the first line that cannot load, named with its number
//! and what is wrong (malformed, longer than any valid line, a key or value
//! over the engine's limits: status 2; a database error: status 3), with the
//! count of entries before it and whether they were committed. A progress
//! line each second goes to standard error only when it is a terminal.
//!
//! Time and memory are linear in the input and bounded per line: each byte
//! is searched for the newline once, and the unfinished line carried from
//! one read to the next never exceeds the longest valid line: a longer one
//! is refused as soon as that many of its bytes have been read.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use rustix::fd::{AsFd, OwnedFd};
use rustix::io::Errno;
use snowfall_buffer::{DeviceError, IoOp};
use snowfall_db::{Durability, MAX_ENTRY, MAX_KEY, Tree};
use snowfall_rt::errln;
use snowfall_sys::clock::Instant;
use snowfall_sys::signal::{SIGINT, catch, raised};

use super::{DB_ERROR, Global, INTERRUPTED, Open, escape, status_of};
use crate::cli::{SUCCESS, USAGE, lossy, usage};

/// Bytes read per `read(2)`.
const CHUNK: usize = 256 << 10;

/// The most bytes of key and value one entry holds: a key is at most
/// `MAX_KEY` bytes and the value at most `MAX_ENTRY` minus the key.
const ENTRY_BYTES_MAX: usize = if MAX_KEY > MAX_ENTRY { MAX_KEY } else { MAX_ENTRY };

/// The longest valid line in text form, without its newline: the tab, and
/// at most 4 characters per byte (`\xNN`; `\\`, `\t` and `\n` take 2, any
/// other byte 1).
const TEXT_LINE_BYTES_MAX: usize = 4 * ENTRY_BYTES_MAX + 1;

/// The longest valid line in hex form (`--hex`): exactly 2 digits per byte,
/// and the tab.
const HEX_LINE_BYTES_MAX: usize = 2 * ENTRY_BYTES_MAX + 1;

const _: () = assert!(TEXT_LINE_BYTES_MAX < CHUNK && HEX_LINE_BYTES_MAX < TEXT_LINE_BYTES_MAX);

/// What a failed commit leaves: the engine stops writes on a failed log
/// write or sync, and recovery on the next open replays a prefix of the log.
const RECOVERS: &str = "reopening the database recovers those that reached the log";

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

/// Why the load stopped before the end of its input.
enum Stop {
    /// SIGINT.
    Interrupted,
    /// A line could not be loaded.
    Failed {
        /// What is wrong, starting with `line N`.
        message: String,
        /// The exit status it calls for.
        status: i32,
    },
}

/// Inserts lines into the tree, counting them.
struct Loader<'a> {
    tree: &'a Tree<'a>,
    hex: bool,
    /// Lines seen, the current one included.
    line: u64,
    /// Entries inserted.
    loaded: u64,
}

impl Loader<'_> {
    /// Loads one line (without its newline).
    fn load(&mut self, line: &[u8]) -> Result<(), Stop> {
        self.line += 1;
        let fail = |what: &dyn core::fmt::Display, status| Stop::Failed {
            message: format!("line {}: {what}", self.line),
            status,
        };
        let (key, value) = parse(line, self.hex).map_err(|what| fail(&what, USAGE))?;
        // A key or value over the engine's limits is bad input (status 2),
        // refused before anything is written; so is a large value (lines
        // are for entries that fit a leaf: `put KEY -` takes the others).
        if key.len() <= MAX_KEY && key.len() + value.len() > MAX_ENTRY {
            let max = MAX_ENTRY - key.len();
            let what = format!(
                "value of {} bytes is too large for load: with this key at most {max} bytes fit (use put KEY - for larger values)",
                value.len()
            );
            return Err(fail(&what, USAGE));
        }
        self.tree.insert_with(&key, &value, Durability::None).map_err(|e| fail(&e, status_of(&e)))?;
        self.loaded += 1;
        Ok(())
    }

    /// The failure for a line longer than `max` bytes.
    fn too_long(&self, max: usize) -> Stop {
        Stop::Failed {
            message: format!("line {} is longer than the longest valid line ({max} bytes)", self.line + 1),
            status: USAGE,
        }
    }
}

/// Runs `load`.
pub fn run(g: &Global, args: &[&[u8]]) -> Result<i32, i32> {
    let (input, name) = match args {
        [] => (Input::Stdin, String::from("standard input")),
        [path] => {
            // Before the database is opened: a wrong FILE creates nothing.
            let file = rustix::fs::open(
                *path,
                rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .and_then(|file| match rustix::fs::fstat(&file) {
                // Refused here rather than by the first read, which would
                // come after the database is opened (and created).
                Ok(st) if rustix::fs::FileType::from_raw_mode(st.st_mode).is_dir() => Err(Errno::ISDIR),
                _ => Ok(file),
            })
            .map_err(|errno| {
                errln!("snowfall: load: {}: {}", lossy(path), DeviceError::Os { op: IoOp::Open, offset: 0, errno });
                USAGE
            })?;
            (Input::File(file), lossy(path).to_string())
        }
        _ => return Err(usage("usage: snowfall load [FILE]".into())),
    };
    if let Err(e) = catch(SIGINT) {
        log::warn!("cannot catch SIGINT ({e}): Ctrl-C will end the load without committing");
    }
    let db = g.open(Open::Create)?;
    let start = Instant::now();
    let tree = db.tree(&g.tree).map_err(super::db_error)?;
    let mut loader = Loader { tree: &tree, hex: g.hex, line: 0, loaded: 0 };
    let stop = feed(&input, &name, &mut loader, start).err();
    let loaded = entries(loader.loaded);
    // What was loaded is made durable, whatever stopped the load. The
    // message is about the first thing that went wrong, and whether the
    // entries before it were committed; a failure to commit makes the
    // status 3 whatever the first failure was.
    let committed = db.sync();
    let secs = start.elapsed().as_secs_f64();
    match (stop, committed) {
        (None, Ok(())) => match db.close() {
            Ok(()) => {
                errln!("snowfall: loaded {loaded} in {secs:.2} s");
                Ok(SUCCESS)
            }
            Err(e) => {
                errln!("snowfall: load: {loaded} loaded and committed, but closing the database failed: {e}");
                Err(DB_ERROR)
            }
        },
        (None, Err(e)) => {
            errln!("snowfall: load: committing the {loaded} read failed: {e}; {RECOVERS}");
            Err(DB_ERROR)
        }
        (Some(Stop::Interrupted), Ok(())) => {
            errln!("snowfall: interrupted: {loaded} loaded and committed");
            Err(INTERRUPTED)
        }
        (Some(Stop::Interrupted), Err(e)) => {
            errln!("snowfall: interrupted: committing the {loaded} loaded failed: {e}; {RECOVERS}");
            Err(DB_ERROR)
        }
        (Some(Stop::Failed { message, status }), Ok(())) => {
            errln!("snowfall: load: {message}; {loaded} before it loaded and committed");
            Err(status)
        }
        (Some(Stop::Failed { message, status }), Err(e)) => {
            // After a database error the sync fails as `Stopped` by that
            // same error: said once.
            let why = match e {
                snowfall_db::Error::Stopped { .. } if status == DB_ERROR => String::from("writes are stopped"),
                e => e.to_string(),
            };
            errln!("snowfall: load: {message}; committing the {loaded} before it failed too ({why}): {RECOVERS}");
            Err(DB_ERROR)
        }
    }
}

/// Reads `input` to its end, loading each line; `Ok` at the end of the input.
fn feed(input: &Input, name: &str, loader: &mut Loader<'_>, start: Instant) -> Result<(), Stop> {
    let line_bytes_max = if loader.hex { HEX_LINE_BYTES_MAX } else { TEXT_LINE_BYTES_MAX };
    let progress = crate::tty::stderr_is_terminal();
    let mut progress_at = 1;
    // The start of a line whose newline has not been read yet, at most
    // `line_bytes_max` bytes. Each byte is searched for a newline once, as
    // it arrives: `partial` holds only bytes already searched.
    let mut partial: Vec<u8> = Vec::with_capacity(line_bytes_max);
    let mut buf = alloc::vec![0u8; CHUNK];
    // Bytes read so far, for a read error's message.
    let mut offset = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(n) => n,
            Err(Errno::INTR) if !raised(SIGINT) => continue,
            Err(Errno::INTR) => 0,
            Err(errno) => {
                let e = DeviceError::Os { op: IoOp::Read, offset, errno };
                let message = format!("line {}: reading {name}: {e}", loader.line + 1);
                return Err(Stop::Failed { message, status: USAGE });
            }
        };
        if raised(SIGINT) {
            return Err(Stop::Interrupted);
        }
        offset += n as u64;
        if n == 0 {
            // The end of the input; the last line needs no newline.
            return if partial.is_empty() { Ok(()) } else { loader.load(&partial) };
        }
        let mut rest = buf.get(..n).unwrap_or_default();
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            let (piece, after) = (rest.get(..i).unwrap_or_default(), rest.get(i + 1..).unwrap_or_default());
            if partial.len() + piece.len() > line_bytes_max {
                return Err(loader.too_long(line_bytes_max));
            }
            if partial.is_empty() {
                loader.load(piece)?;
            } else {
                partial.extend_from_slice(piece);
                loader.load(&partial)?;
                partial.clear();
            }
            rest = after;
        }
        if partial.len() + rest.len() > line_bytes_max {
            return Err(loader.too_long(line_bytes_max));
        }
        partial.extend_from_slice(rest);
        let secs = start.elapsed().as_secs();
        if progress && secs >= progress_at {
            progress_at = secs + 1;
            let loaded = loader.loaded;
            errln!("snowfall: loading: {}, {} per second", entries(loaded), loaded / secs.max(1));
        }
    }
}

/// `n entries`, or `1 entry`.
fn entries(n: u64) -> String {
    if n == 1 { String::from("1 entry") } else { format!("{n} entries") }
}

/// Splits and decodes one `key<TAB>value` line.
fn parse(line: &[u8], hex: bool) -> Result<(Vec<u8>, Vec<u8>), String> {
    let tab = line.iter().position(|&b| b == b'\t').ok_or_else(|| String::from("no tab between key and value"))?;
    let (key, value) = (line.get(..tab).unwrap_or_default(), line.get(tab + 1..).unwrap_or_default());
    // Both are at most a line long (bounded by `MAX_LINE`).
    let (mut k, mut v) = (Vec::with_capacity(key.len()), Vec::with_capacity(value.len()));
    escape::unescape_into(key, hex, &mut k).map_err(|e| format!("key: {e}"))?;
    escape::unescape_into(value, hex, &mut v).map_err(|e| format!("value: {e}"))?;
    Ok((k, v))
}
