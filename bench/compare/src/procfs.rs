//! What this process has done so far, from `/proc/self` (every thread's),
//! and the latency histogram every measurement records into.

/// Bytes read from and sent towards the disk (`read_bytes`, `write_bytes`
/// of `/proc/self/io`: direct I/O as issued, buffered writes as pages are
/// dirtied, buffered reads as they miss the page cache).
pub fn io() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    let field =
        |name: &str| s.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    (field("read_bytes:"), field("write_bytes:"))
}

/// User plus system CPU time, seconds.
pub fn cpu_seconds() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // After the command name in parentheses: state is field 3, utime 14, stime 15.
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest.split_whitespace().skip(11).take(2).map(|v| v.parse().unwrap_or(0)).collect();
    // Clock ticks: 100 per second on Linux.
    f.iter().sum::<u64>() as f64 / 100.0
}

/// A kB field of `/proc/self/status` (`"VmHWM:"`, `"VmRSS:"`), in bytes.
pub fn status(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

/// The most memory this process has had resident.
pub fn peak_rss() -> u64 {
    status("VmHWM:")
}

/// Nanoseconds from 1 to 10 minutes at 3 significant digits (record with
/// `saturating_record`: a value past it counts as 10 minutes).
pub fn histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, 600_000_000_000, 3).unwrap()
}
