//! Command-line parsing and dispatch.

use snowfall_rt::{errln, outln};

/// Exit status: success.
pub const SUCCESS: i32 = 0;
/// Exit status: a check or command failed.
pub const FAILURE: i32 = 1;
/// Exit status: the command line was wrong.
pub const USAGE: i32 = 2;

const VERSION: &str = env!("CARGO_PKG_VERSION");

const HELP: &str = "\
SnowfallDB: an embeddable, ordered key-value storage engine.

Usage: snowfall [OPTIONS] <COMMAND> [ARGS]

Key-value commands:
  put KEY VALUE    Set KEY to VALUE (creates the database and tree if needed).
                   VALUE - reads the value from standard input, bytes as
                   they are (a value that is a lone '-': --hex 2d).
  get [--raw] KEY  Print the value of KEY alone and a newline (status 1 if
                   there is none or the tree does not exist); --raw writes
                   exactly the value's bytes (no newline, no hex).
  del KEY          Remove KEY (status 1 if it was not there or the tree does
                   not exist).
  scan [--from K] [--to K] [--reverse] [--limit N]
                   Print KEY<TAB>VALUE lines in key order, from --from K
                   (included) up to --to K (excluded: K itself is never
                   printed). Backslash, tab, newline, control bytes and
                   invalid UTF-8 are escaped (\\\\, \\t, \\n, \\xNN). Status 1 if
                   the tree does not exist, as for a missing key; a range
                   with no keys prints nothing (status 0).
  load [FILE]      Insert KEY<TAB>VALUE lines (scan's format) from FILE or
                   standard input. It stops at the first line that cannot
                   load (status 2, or 3 for a database error), naming it,
                   with the lines before it committed; Ctrl-C stops it the
                   same way (status 130). Progress each second if standard
                   error is a terminal.
  trees            List the trees.
  drop-tree NAME   Drop a tree and free its pages (status 1 if there is none).
  stat             Sizes, counts and buffer statistics.
  check            Verify every tree, page checksum and log record.
  bench [load] [rndread] [mixed] [bank] [txn] [snapread] [--zipf]
        [--keys N] [--value SIZE] [--threads T] [--seconds S] [--seed X]
        [--csv] [--keep]
                   Benchmark on a fresh database (--db, default
                   snowfall-bench.db, removed after unless --keep): random-
                   order inserts; ordered load then uniform random lookups;
                   half lookups, half updates; transactions: transfers
                   between accounts, read-write transactions of 4-16 ops,
                   read-only ones of 16 lookups (--zipf: Zipfian keys).
                   Reports ops/s, MB/s, p50/p99 latency, page faults,
                   evictions, peak RSS, aborts/s. Defaults: load, rndread
                   and mixed, 1000000 keys, 8-byte values, 2 threads, 3 s,
                   durability none unless --durability is given.

Options (anywhere before --):
  --db PATH        The database file (default snowfall.db). Its log is
                   PATH.wal, so PATH itself must not end in .wal.
  --tree NAME      The tree (default \"default\").
  --pool SIZE      Memory for cached pages, like 64M or 2G (default 64M).
  --memory auto|madvise|exmap
                   The memory backend (default auto: exmap if available).
  --durability sync|group|none
                   When writes are acknowledged (default sync: on disk).
  --hex            Keys and values as hex digits, in arguments and output.
  --max-size SIZE  The most the database may grow to while open (its reserved
                   address space; default: 64G or twice the file, less where
                   ulimit -v or strict overcommit allow less).
  --log-size SIZE  The log's size, for a database this command creates
                   (default 256M, at least 16M; its space is reserved).
  --accept-log-loss
                   Open even if the log lost records it had made durable (cut
                   short, or damaged before its end): the writes from the
                   damage on are lost. For salvage; run check after.
  -h, --help       Print this help.
  -V, --version    Print the version.

Other commands:
  selftest       Check the runtime inside this static binary: the .init_array
                 logger, the auxiliary vector, threads parking on futexes, and
                 fault recovery (SIGSEGV and SIGBUS, several threads, nested
                 guards). Exit status 0 only if every check passed.
  debug <WHAT>   Misbehave on purpose, for the test-suite. WHAT is one of:
                   panic              panic on the main thread (exit 101)
                   thread-panic       panic on another thread (exit 101)
                   out-of-memory      an allocation too large for any
                                      machine (exit 3, out of memory)
                   panic-after-failed-allocation
                                      a failed allocation handled, then
                                      a panic (exit 101)
                   segv-unguarded     fault in a registered range outside a
                                      guard (killed by SIGSEGV)
                   segv-unregistered  fault in a guard outside every
                                      registered range (killed by SIGSEGV)
                   sigbus-unguarded   SIGBUS outside a guard (killed by SIGBUS)
  qemu-guest     Run as /init of the QEMU test machine (tests/qemu/run.sh):
                 load the modules in /modules, run the buffer manager's
                 scenarios on every memory backend present (exmap too, if
                 loaded), print SNOWFALL-QEMU: PASS or FAIL, power off.
                 Refuses to run unless it is PID 1.
  help           Print this help.

Environment:
  SNOWFALL_LOG   Log level: off, error, warn, info (default), debug, trace.
                 The key-value commands log nothing unless it is set.
  SNOWFALL_EXMAP With qemu-guest: `required` makes a missing /dev/exmap a failure.

Reading commands (get, scan, trees, stat, check) open the database
read-only: they write nothing, so they work on a full disk and on read-only
media. Writing commands on a full disk (or write-protected files) fail with
one line saying so, and change nothing.

Exit status: 0 success, 1 key or tree not found (or a failed selftest),
2 usage error or bad input (a malformed or over-long load line, a key or
value over the size limits, a FILE that cannot be read), 3 database error
(corrupt, I/O, in use, disk full, read-only), out of memory or a failed
start, 101 panic, 130 load interrupted.
A failure is one line on standard error (a usage error adds a pointer to
--help).";

/// What `origin_main` received, for the self-test to compare with what the
/// `.init_array` function recorded.
#[derive(Clone, Copy)]
pub struct Startup {
    /// `argv` as passed to `origin_main`.
    pub argv: *const *const u8,
}

/// Runs the command line `args` (`args[0]` is the program name); returns
/// the exit status.
pub fn run(args: &[&[u8]], startup: Startup) -> i32 {
    let (global, rest) = match crate::kv::parse_global(args.get(1..).unwrap_or_default()) {
        Ok(parsed) => parsed,
        Err(message) => return usage(message),
    };
    let Some((&command, rest)) = rest.split_first() else {
        errln!("snowfall: missing command\n\n{HELP}");
        return USAGE;
    };
    if crate::kv::COMMANDS.contains(&command) {
        return crate::kv::run(&global, command, rest);
    }
    match command {
        b"-V" | b"--version" => print(|| outln!("snowfall {VERSION}")),
        b"-h" | b"--help" | b"help" => print(|| outln!("{HELP}")),
        b"selftest" => match rest {
            [] => crate::selftest::run(startup),
            [extra, ..] => usage(alloc::format!("selftest takes no arguments, got '{}'", lossy(extra))),
        },
        b"qemu-guest" => match rest {
            [] => crate::guest::run(),
            _ => usage(alloc::string::String::from("qemu-guest takes no arguments")),
        },
        b"debug" => match rest {
            [what] => crate::debug::run(what),
            _ => usage(alloc::string::String::from("debug takes exactly one argument; see --help")),
        },
        other => usage(alloc::format!("unknown command '{}'", lossy(other))),
    }
}

fn print(f: impl FnOnce() -> Result<(), snowfall_sys::Errno>) -> i32 {
    match f() {
        Ok(()) => SUCCESS,
        Err(e) => {
            errln!("snowfall: cannot write to stdout: {e}");
            FAILURE
        }
    }
}

/// Reports a usage error; returns [`USAGE`].
pub fn usage(message: alloc::string::String) -> i32 {
    errln!("snowfall: {message}\nTry 'snowfall --help'.");
    USAGE
}

/// Bytes as text for messages.
pub fn lossy(bytes: &[u8]) -> &str {
    core::str::from_utf8(bytes).unwrap_or("<not UTF-8>")
}
