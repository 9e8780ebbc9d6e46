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

Usage: snowfall <COMMAND>

Commands:
  selftest       Check the runtime inside this static binary: the .init_array
                 logger, the auxiliary vector, threads parking on futexes, and
                 fault recovery (SIGSEGV and SIGBUS, several threads, nested
                 guards). Exit status 0 only if every check passed.
  debug <WHAT>   Misbehave on purpose, for the test-suite. WHAT is one of:
                   panic              panic on the main thread (exit 101)
                   thread-panic       panic on another thread (exit 101)
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

Options:
  -h, --help     Print this help.
  -V, --version  Print the version.

Environment:
  SNOWFALL_LOG   Log level: off, error, warn, info (default), debug, trace.
  SNOWFALL_EXMAP With qemu-guest: `required` makes a missing /dev/exmap a failure.

Exit status: 0 success, 1 failure, 2 usage error, 101 panic.";

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
    let Some(&command) = args.get(1) else {
        errln!("snowfall: missing command\n\n{HELP}");
        return USAGE;
    };
    let rest = args.get(2..).unwrap_or_default();
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
