//! The `log` logger of the static binary (env_logger needs std).
//!
//! Registered by the `.init_array` function before `origin_main`. The level
//! comes from `SNOWFALL_LOG` (`off`, `error`, `warn`, `info`, `debug`,
//! `trace`; default `info`). Each record is formatted on the stack and
//! issued as one `write(2)` of at most [`LINE_MAX`](crate::io::LINE_MAX) bytes (below `PIPE_BUF`),
//! so records from different threads never interleave; longer records are
//! cut and marked `[truncated]`.
//!
//! Format: `[seconds.micros LEVEL tid target] message`, seconds since start.

use core::fmt::Write;
use core::sync::atomic::{AtomicI32, Ordering};

use log::{LevelFilter, Log, Metadata, Record};

use crate::io::{LineBuf, STDERR};

/// The environment variable that sets the level.
pub const LEVEL_VAR: &str = "SNOWFALL_LOG";
/// The level when `SNOWFALL_LOG` is unset.
pub const DEFAULT_LEVEL: LevelFilter = LevelFilter::Info;

/// The binary's logger.
pub struct Logger {
    fd: AtomicI32,
}

/// The one instance, registered with `log` at start-up.
pub static LOGGER: Logger = Logger { fd: AtomicI32::new(STDERR) };

/// Parses a `SNOWFALL_LOG` value (case-insensitive).
pub fn parse_level(value: &[u8]) -> Option<LevelFilter> {
    let levels = [
        ("off", LevelFilter::Off),
        ("error", LevelFilter::Error),
        ("warn", LevelFilter::Warn),
        ("info", LevelFilter::Info),
        ("debug", LevelFilter::Debug),
        ("trace", LevelFilter::Trace),
    ];
    levels.iter().find(|(name, _)| value.eq_ignore_ascii_case(name.as_bytes())).map(|&(_, level)| level)
}

/// Registers [`LOGGER`] and sets the level from the environment.
pub(crate) fn init() {
    let requested = crate::env::var(LEVEL_VAR);
    let level = requested.and_then(parse_level);
    log::set_max_level(level.unwrap_or(DEFAULT_LEVEL));
    // Fails only if a logger is already set, which start-up never does.
    let _ = log::set_logger(&LOGGER);
    if let (Some(bad), None) = (requested, level) {
        log::warn!(
            "{LEVEL_VAR}={} is not a level (off, error, warn, info, debug, trace); using {DEFAULT_LEVEL}",
            core::str::from_utf8(bad).unwrap_or("<not UTF-8>")
        );
    }
}

impl Logger {
    /// Sends records to `fd` instead; returns the previous descriptor.
    pub fn redirect(&self, fd: i32) -> i32 {
        self.fd.swap(fd, Ordering::AcqRel)
    }

    /// Whether `log::logger()` is this logger (the `.init_array` function ran).
    pub fn is_registered() -> bool {
        core::ptr::addr_eq(log::logger(), &LOGGER)
    }

    /// Formats `record` as the single line this logger writes.
    pub fn format(record: &Record<'_>) -> LineBuf {
        let mut line = LineBuf::new();
        let micros = crate::env::start_time().elapsed().as_micros();
        let tid = origin::thread::current_id().as_raw_nonzero();
        let _ = write!(
            line,
            "[{:>4}.{:06} {:<5} {tid} {}] {}",
            micros / 1_000_000,
            micros % 1_000_000,
            record.level(),
            record.target(),
            record.args()
        );
        line
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            Logger::format(record).write_line_to(self.fd.load(Ordering::Acquire));
        }
    }

    fn flush(&self) {}
}
