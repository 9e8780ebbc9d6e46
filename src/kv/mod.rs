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

use crate::cli::{USAGE, lossy, usage};

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
    /// The virtual reservation (`None`: the engine chooses from the file).
    pub max_size: Option<u64>,
    /// The log's size, for a database this command creates.
    pub log_size: Option<u64>,
    /// Open even if the log lost durable records.
    pub accept_log_loss: bool,
}

/// How a command opens the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Open {
    /// For reading only: nothing is written (works on a full disk, on
    /// read-only media, beside other readers).
    Read,
    /// For writing; a missing database is an error.
    Write,
    /// For writing, creating the database if it is missing.
    Create,
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
            max_size: None,
            log_size: None,
            accept_log_loss: false,
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
        let global = [&b"--db"[..], b"--tree", b"--pool", b"--memory", b"--durability", b"--max-size", b"--log-size"];
        if name == b"--hex" {
            g.hex = true;
            continue;
        }
        if name == b"--accept-log-loss" {
            g.accept_log_loss = true;
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
                // The log of PATH is PATH.wal: `--db x.db.wal` would make a
                // second database next to x.db's log, with a log x.db.wal.wal.
                if let Some(db) = text.strip_suffix(".wal") {
                    let own = if db.is_empty() { String::new() } else { format!(" ('{db}')") };
                    return Err(format!(
                        "--db '{text}': a path ending in .wal names a database's log (the log of PATH is \
                         PATH.wal); give the database's own path{own}"
                    ));
                }
                g.db = text.into();
                g.db_given = true;
            }
            b"--tree" => g.tree = text.into(),
            b"--pool" | b"--max-size" | b"--log-size" => {
                let bytes = size::parse_size(text)
                    .ok_or_else(|| format!("{}: '{text}' is not a size like 64M or 2G", lossy(name)))?;
                match name {
                    b"--pool" => g.pool = bytes,
                    b"--max-size" => g.max_size = Some(bytes),
                    _ => g.log_size = Some(bytes),
                }
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
    /// Opens the database as `how` says. Opened for writing on a full disk
    /// (or with write-protected files), the engine opens it read-only
    /// instead, and the command's first write says so.
    pub fn open(&self, how: Open) -> Result<Database, i32> {
        let mut builder = Database::builder(&self.db)
            .pool_bytes(self.pool)
            .memory(self.memory)
            .durability(self.durability)
            .background(Arc::new(Threads));
        if let Some(bytes) = self.max_size {
            builder = builder.max_bytes(bytes);
        }
        if let Some(bytes) = self.log_size {
            builder = builder.log_bytes(bytes);
        }
        if self.accept_log_loss {
            builder = builder.accept_log_loss();
        }
        let opened = match how {
            Open::Read => builder.open_read_only(),
            Open::Write => builder.open(),
            Open::Create => builder.create(),
        };
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

/// The exit status for database error `e`: [`NOT_FOUND`] for a tree that
/// is not there (as for a key), [`USAGE`] for a key or value larger than the
/// engine takes (bad input: nothing was written), [`DB_ERROR`] otherwise.
pub fn status_of(e: &snowfall_db::Error) -> i32 {
    use snowfall_db::Error;
    use snowfall_db::TreeError;
    match e {
        Error::NoSuchTree { .. } => NOT_FOUND,
        Error::Tree(TreeError::KeyTooLarge { .. } | TreeError::ValueTooLarge { .. }) => USAGE,
        _ => DB_ERROR,
    }
}

/// Reports database error `e` on one line; returns its [`status_of`].
pub fn db_error(e: snowfall_db::Error) -> i32 {
    errln!("snowfall: {e}");
    status_of(&e)
}

/// Closes `db` after a command that ended with `result`. A command that
/// failed has reported its error, the one line on stderr: a failure to close
/// after it is not reported again (the engine logs it if `SNOWFALL_LOG` asks).
/// After success, a failure to close is the command's error.
pub fn close(db: Database, result: Result<i32, i32>) -> Result<i32, i32> {
    match result {
        Ok(status) => db.close().map(|()| status).map_err(db_error),
        Err(status) => {
            drop(db);
            Err(status)
        }
    }
}

/// Runs key-value command `command` with its arguments `args`.
pub fn run(g: &Global, command: &[u8], args: &[&[u8]]) -> i32 {
    // A command's result is its output and exit status, and a failure is one
    // line on stderr. Log records (the engine's warnings, such as a file
    // system refusing O_DIRECT, and its errors, which the command reports
    // itself) appear only if `SNOWFALL_LOG` asks for them.
    if snowfall_rt::env::var(snowfall_rt::logger::LEVEL_VAR).is_none() {
        log::set_max_level(log::LevelFilter::Off);
    }
    // A closed pipe is then an EPIPE the commands handle, not a death.
    if let Err(e) = snowfall_sys::signal::ignore(snowfall_sys::signal::SIGPIPE) {
        log::warn!("cannot ignore SIGPIPE ({e}): a closed pipe will end the command by the signal");
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
