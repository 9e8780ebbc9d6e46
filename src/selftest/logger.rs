//! Self-checks of the `.init_array` logger: it is registered before
//! `origin_main`, formats records as documented, filters by level, writes
//! each record whole (threads never interleave) and caps records below
//! `PIPE_BUF`.

use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use log::LevelFilter;
use rustix::fd::{AsRawFd, OwnedFd};
use rustix::io::Errno;
use snowfall_rt::io::LINE_MAX;
use snowfall_rt::logger::{LOGGER, Logger};
use snowfall_sys::clock::{Instant, sleep};

use super::{Outcome, ensure, sys};
use crate::cli::Startup;

/// Routes log records into a pipe at `level` until dropped.
struct Capture {
    read: OwnedFd,
    write: Option<OwnedFd>,
    previous_fd: i32,
    previous_level: LevelFilter,
}

impl Capture {
    fn start(level: LevelFilter) -> Result<Capture, String> {
        let (read, write) = sys("pipe", rustix::pipe::pipe())?;
        sys("set the pipe non-blocking", rustix::fs::fcntl_setfl(&read, rustix::fs::OFlags::NONBLOCK))?;
        let previous_fd = LOGGER.redirect(write.as_raw_fd());
        let previous_level = log::max_level();
        log::set_max_level(level);
        Ok(Capture { read, write: Some(write), previous_fd, previous_level })
    }

    /// Reads until `lines` complete lines arrived (or 30 s passed).
    fn read_lines(&mut self, lines: usize) -> Result<Vec<String>, String> {
        let deadline = Instant::now().saturating_add(Duration::from_secs(30));
        let mut bytes = Vec::new();
        let mut chunk = [0u8; 8192];
        while bytes.iter().filter(|&&b| b == b'\n').count() < lines {
            match rustix::io::read(&self.read, &mut chunk) {
                Ok(0) => break,
                Ok(n) => bytes.extend_from_slice(chunk.get(..n).unwrap_or_default()),
                Err(Errno::AGAIN) if Instant::now() < deadline => sleep(Duration::from_millis(1)),
                Err(Errno::AGAIN) => return Err(alloc::format!("timed out waiting for {lines} log lines")),
                Err(Errno::INTR) => {}
                Err(e) => return Err(alloc::format!("read the log pipe: {e}")),
            }
        }
        let text = String::from_utf8(bytes).map_err(|_| String::from("log output is not UTF-8"))?;
        Ok(text.split_inclusive('\n').map(String::from).collect())
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        LOGGER.redirect(self.previous_fd);
        log::set_max_level(self.previous_level);
        drop(self.write.take());
    }
}

pub fn registered_before_main(startup: Startup) -> Outcome {
    ensure(snowfall_rt::env::recorded(), || String::from("the .init_array function never ran"))?;
    ensure(Logger::is_registered(), || String::from("log::logger() is not the snowfall logger"))?;
    ensure(snowfall_rt::env::argv_ptr() == startup.argv, || {
        alloc::format!(".init_array saw argv {:p}, origin_main got {:p}", snowfall_rt::env::argv_ptr(), startup.argv)
    })?;
    Ok(alloc::format!("ran before origin_main with the same argv; level {}", log::max_level()))
}

pub fn record_format() -> Outcome {
    let mut cap = Capture::start(LevelFilter::Trace)?;
    log::info!(target: "selftest", "record number {}", 42);
    log::trace!(target: "selftest", "a trace record");
    log::set_max_level(LevelFilter::Warn);
    log::info!(target: "selftest", "filtered out");
    log::warn!(target: "selftest", "a warning");
    let lines = cap.read_lines(3)?;
    drop(cap);
    let tid = snowfall_rt::thread::current_os_id();
    let expect = [
        alloc::format!(" INFO  {tid} selftest] record number 42\n"),
        alloc::format!(" TRACE {tid} selftest] a trace record\n"),
        alloc::format!(" WARN  {tid} selftest] a warning\n"),
    ];
    ensure(lines.len() == expect.len(), || alloc::format!("expected 3 lines, got {lines:?}"))?;
    for (line, tail) in lines.iter().zip(&expect) {
        // `[secs.micros LEVEL tid target] message`
        let stamp = line.strip_prefix('[').and_then(|l| l.trim_start().split_once(' ')).map(|(s, _)| s);
        let stamp_ok = stamp.and_then(|s| s.split_once('.')).is_some_and(|(secs, micros)| {
            secs.bytes().all(|b| b.is_ascii_digit()) && micros.len() == 6 && micros.bytes().all(|b| b.is_ascii_digit())
        });
        ensure(stamp_ok && line.ends_with(tail.as_str()), || alloc::format!("line {line:?} does not end in {tail:?}"))?;
    }
    Ok(String::from("[secs.micros LEVEL tid target] message; info/trace shown at trace, info hidden at warn"))
}

pub fn records_do_not_interleave() -> Outcome {
    const THREADS: usize = 2;
    const RECORDS: usize = 200;
    const PAYLOAD: usize = 3000;
    let mut cap = Capture::start(LevelFilter::Info)?;
    let writers: Vec<_> = (0..THREADS)
        .map(|t| {
            snowfall_rt::thread::spawn(move || {
                let fill = char::from(b'a' + t as u8);
                let payload: String = core::iter::repeat_n(fill, PAYLOAD).collect();
                for _ in 0..RECORDS {
                    log::info!(target: "selftest", "{payload}");
                }
            })
        })
        .collect::<Result<_, _>>()
        .map_err(|e| alloc::format!("spawn: {e}"))?;
    // On failure the writers are detached (and die with the process).
    let lines = cap.read_lines(THREADS * RECORDS)?;
    for w in writers {
        w.join();
    }
    drop(cap);
    ensure(lines.len() == THREADS * RECORDS, || {
        alloc::format!("{} lines, expected {}", lines.len(), THREADS * RECORDS)
    })?;
    let mut per_thread = [0usize; THREADS];
    for line in &lines {
        let payload = line.split_once("] ").map(|(_, p)| p.trim_end_matches('\n')).unwrap_or_default();
        let first = payload.as_bytes().first().copied().unwrap_or(0);
        let whole = payload.len() == PAYLOAD && payload.bytes().all(|b| b == first);
        ensure(whole, || alloc::format!("a record was torn or mixed: {:?}...", line.get(..80)))?;
        if let Some(n) = per_thread.get_mut(usize::from(first.wrapping_sub(b'a'))) {
            *n += 1;
        }
    }
    ensure(per_thread.iter().all(|&n| n == RECORDS), || alloc::format!("records per thread: {per_thread:?}"))?;
    Ok(alloc::format!("{THREADS} threads x {RECORDS} records of {PAYLOAD} bytes, all whole"))
}

pub fn long_records_are_truncated() -> Outcome {
    let mut cap = Capture::start(LevelFilter::Info)?;
    let long: String = core::iter::repeat_n('x', 10_000).collect();
    log::info!(target: "selftest", "{long}");
    let lines = cap.read_lines(1)?;
    drop(cap);
    let line = lines.first().map(String::as_str).unwrap_or_default();
    ensure(line.len() <= LINE_MAX && line.ends_with(" [truncated]\n"), || {
        alloc::format!(
            "a 10000-byte record became a {}-byte line ending {:?}",
            line.len(),
            line.get(line.len().saturating_sub(20)..)
        )
    })?;
    Ok(alloc::format!("a 10000-byte record became one {}-byte line marked [truncated]", line.len()))
}
