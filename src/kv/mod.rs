//! The key-value commands: `put`, `get`, `del`, `scan`, `load`, `trees`,
//! `drop-tree`, `stat`, `check`, and the options they share.

mod bench;
mod commands;
pub mod escape;
mod load;
pub mod out;
mod scan;
pub mod size;

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;

use snowfall_db::{Database, Durability, MemoryKind, Spawn};
use snowfall_rt::errln;

use crate::cli::{lossy, usage};

/// Exit status: the key was not found.
pub const NOT_FOUND: i32 = 1;
/// Exit status: a database error (corrupt, I/O, in use).
pub const DB_ERROR: i32 = 3;
/// Exit status: `load` was interrupted (what it loaded is committed).
pub const INTERRUPTED: i32 = 130;

/// The commands this module runs.
pub const COMMANDS: [&[u8]; 10] =
    [b"put", b"get", b"del", b"scan", b"load", b"trees", b"drop-tree", b"stat", b"check", b"bench"];

/// The options every key-value command takes.
#[derive(Clone)]
pub struct Global {
    /// The database file.
    pub db: String,
    /// Whether `--db` was given.
    pub db_given: bool,
    /// The tree.
    pub tree: String,
    /// Buffer pool bytes.
    pub pool: u64,
    /// Memory backend.
    pub memory: MemoryKind,
    /// Durability of writes.
    pub durability: Durability,
    /// Whether `--durability` was given.
    pub durability_given: bool,
    /// Keys and values in hex.
    pub hex: bool,
}

impl Default for Global {
    fn default() -> Global {
        Global {
            db: "snowfall.db".into(),
            db_given: false,
            tree: "default".into(),
            pool: 64 << 20,
            memory: MemoryKind::Auto,
            durability: Durability::Sync,
            durability_given: false,
            hex: false,
        }
    }
}

/// Splits the global options out of `args` (anywhere before `--`); returns
/// them and the rest (the command and its own arguments).
pub fn parse_global<'a>(args: &[&'a [u8]]) -> Result<(Global, Vec<&'a [u8]>), String> {
    let mut g = Global::default();
    let mut rest = Vec::new();
    let mut it = args.iter().copied();
    while let Some(arg) = it.next() {
        if arg == b"--" {
            rest.push(arg);
            rest.extend(it.by_ref());
            break;
        }
        let (name, inline) = match arg.iter().position(|&b| b == b'=') {
            Some(i) if arg.starts_with(b"--") => (arg.get(..i).unwrap_or_default(), arg.get(i + 1..)),
            _ => (arg, None),
        };
        let global = [&b"--db"[..], b"--tree", b"--pool", b"--memory", b"--durability"];
        if name == b"--hex" {
            g.hex = true;
            continue;
        }
        if !global.contains(&name) {
            rest.push(arg);
            continue;
        }
        let value = match inline {
            Some(v) => v,
            None => it.next().ok_or_else(|| format!("{} needs a value", lossy(name)))?,
        };
        let text = core::str::from_utf8(value).map_err(|_| format!("{} must be UTF-8", lossy(name)))?;
        match name {
            b"--db" => {
                g.db = text.into();
                g.db_given = true;
            }
            b"--tree" => g.tree = text.into(),
            b"--pool" => {
                g.pool =
                    size::parse_size(text).ok_or_else(|| format!("--pool: '{text}' is not a size like 64M or 2G"))?;
            }
            b"--memory" => {
                g.memory = match text {
                    "auto" => MemoryKind::Auto,
                    "madvise" => MemoryKind::Madvise,
                    "exmap" => MemoryKind::Exmap,
                    _ => return Err(format!("--memory: '{text}' is not auto, madvise or exmap")),
                };
            }
            _ => {
                g.durability_given = true;
                g.durability = match text {
                    "sync" => Durability::Sync,
                    "group" => Durability::Group,
                    "none" => Durability::None,
                    _ => return Err(format!("--durability: '{text}' is not sync, group or none")),
                };
            }
        }
    }
    Ok((g, rest))
}

/// Background threads for the database, on origin.
struct Threads;

impl Spawn for Threads {
    fn spawn(&self, task: Box<dyn FnOnce() + Send>) -> Result<(), &'static str> {
        snowfall_rt::thread::spawn(task).map(drop).map_err(|e| e.reason())
    }
}

impl Global {
    /// Opens the database: `create` makes it if missing (writing commands);
    /// otherwise a missing file is an error.
    pub fn open(&self, create: bool) -> Result<Database, i32> {
        let builder = Database::builder(&self.db)
            .pool_bytes(self.pool)
            .memory(self.memory)
            .durability(self.durability)
            .background(Arc::new(Threads));
        let opened = if create { builder.create() } else { builder.open() };
        opened.map_err(db_error)
    }

    /// The key or value argument `arg`, decoded if `--hex` (without
    /// copying it otherwise).
    pub fn bytes<'a>(&self, what: &str, arg: &'a [u8]) -> Result<Cow<'a, [u8]>, i32> {
        if !self.hex {
            return Ok(Cow::Borrowed(arg));
        }
        let mut bytes = crate::oom::with_capacity(arg.len() / 2, "a hex argument").map_err(|e| e.report())?;
        escape::unescape_into(arg, true, &mut bytes).map_err(|e| usage(format!("{what}: {e}")))?;
        Ok(Cow::Owned(bytes))
    }
}

/// Reports a database error; returns [`DB_ERROR`].
pub fn db_error(e: snowfall_db::Error) -> i32 {
    errln!("snowfall: {e}");
    DB_ERROR
}

/// Runs key-value command `command` with its arguments `args`.
pub fn run(g: &Global, command: &[u8], args: &[&[u8]]) -> i32 {
    // Quiet unless asked: a command's output is its result.
    if snowfall_rt::env::var("SNOWFALL_LOG").is_none() {
        log::set_max_level(log::LevelFilter::Warn);
    }
    let result = match command {
        b"put" => commands::put(g, args),
        b"get" => commands::get(g, args),
        b"del" => commands::del(g, args),
        b"scan" => scan::run(g, args),
        b"load" => load::run(g, args),
        b"trees" => commands::trees(g, args),
        b"drop-tree" => commands::drop_tree(g, args),
        b"stat" => commands::stat(g, args),
        b"check" => commands::check(g, args),
        b"bench" => bench::run(g, args),
        other => Err(usage(format!("unknown command '{}'", lossy(other)))),
    };
    result.unwrap_or_else(|status| status)
}

/// Exactly `n` positional arguments, or a usage error naming `command`.
pub fn positional<'a>(command: &str, args: &[&'a [u8]], names: &[&str]) -> Result<Vec<&'a [u8]>, i32> {
    let args: Vec<&[u8]> = args.iter().copied().filter(|a| *a != b"--").collect();
    if args.len() == names.len() {
        return Ok(args);
    }
    let wanted = names.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(" ");
    Err(usage(format!("usage: snowfall {command} {wanted}")))
}
