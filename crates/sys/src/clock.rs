//! A monotonic clock (`CLOCK_MONOTONIC`) for timeouts, backoff and
//! statistics. rustix reads it through the vDSO when it knows where the vDSO
//! is and falls back to the system call otherwise.

use core::time::Duration;

use rustix::time::{ClockId, clock_gettime};

/// A point on the monotonic clock, in nanoseconds since an unspecified start
/// (boot, on Linux).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant {
    nanos: u64,
}

impl Instant {
    /// The clock's start: earlier than every reading.
    pub const ZERO: Instant = Instant { nanos: 0 };

    /// The current time.
    pub fn now() -> Instant {
        let ts = clock_gettime(ClockId::Monotonic);
        // CLOCK_MONOTONIC is never negative and fits u64 nanoseconds for 584 years of uptime.
        let nanos = (ts.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec as u64);
        Instant { nanos }
    }

    /// Nanoseconds since the clock's start.
    pub fn as_nanos(self) -> u64 {
        self.nanos
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.nanos.saturating_sub(earlier.nanos))
    }

    /// Time since `self`.
    pub fn elapsed(self) -> Duration {
        Instant::now().saturating_duration_since(self)
    }

    /// `self + d`, saturating.
    pub fn saturating_add(self, d: Duration) -> Instant {
        let d = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Instant { nanos: self.nanos.saturating_add(d) }
    }
}

/// Sleeps the calling thread for at least `d` (restarting after signals).
pub fn sleep(d: Duration) {
    let deadline = Instant::now().saturating_add(d);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        let ts = rustix::time::Timespec {
            tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        // Interrupted sleeps loop with the remaining time.
        let _ = rustix::thread::nanosleep(&ts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_is_monotonic_and_sleep_waits() {
        let a = Instant::now();
        sleep(Duration::from_millis(5));
        let b = Instant::now();
        assert!(b > a);
        assert!(b.saturating_duration_since(a) >= Duration::from_millis(5));
        assert_eq!(a.saturating_duration_since(b), Duration::ZERO);
    }
}
