//! Waiting and waking on 32-bit words (`futex(2)`), the parking primitive the
//! latches build on. Process-private futexes only: the engine never shares
//! its latch words with another process.

use core::sync::atomic::AtomicU32;
use core::time::Duration;

use rustix::io::Errno;
use rustix::thread::futex;

/// Why [`wait`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Woke {
    /// Woken by [`wake`] (or spuriously: callers re-check their condition).
    Woken,
    /// The word did not hold the expected value, so the thread never slept.
    ValueChanged,
    /// The timeout elapsed.
    TimedOut,
    /// A signal handler ran; the caller re-checks and waits again.
    Interrupted,
}

/// Sleeps while `*word == expected`, at most `timeout` if one is given.
/// Returns an error only for misuse the kernel rejects (never for the four
/// ordinary outcomes in [`Woke`]).
pub fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> Result<Woke, Errno> {
    let ts = timeout.map(|d| rustix::time::Timespec {
        tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(d.subsec_nanos()),
    });
    match futex::wait(word, futex::Flags::PRIVATE, expected, ts.as_ref()) {
        Ok(()) => Ok(Woke::Woken),
        Err(Errno::AGAIN) => Ok(Woke::ValueChanged),
        Err(Errno::TIMEDOUT) => Ok(Woke::TimedOut),
        Err(Errno::INTR) => Ok(Woke::Interrupted),
        Err(e) => Err(e),
    }
}

/// Wakes at most `count` threads waiting on `word`; returns how many woke.
pub fn wake(word: &AtomicU32, count: u32) -> usize {
    // The kernel reads the count as a signed int: clamp so `u32::MAX` does
    // not become -1 (which wakes a single waiter).
    let count = count.min(i32::MAX as u32);
    // FUTEX_WAKE on a valid, aligned word fails for no reason we can act on.
    futex::wake(word, futex::Flags::PRIVATE, count).unwrap_or(0)
}

/// Wakes every thread waiting on `word`; returns how many woke.
pub fn wake_all(word: &AtomicU32) -> usize {
    wake(word, u32::MAX)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use core::sync::atomic::Ordering;
    use std::sync::Arc;

    #[test]
    fn wait_on_a_changed_value_returns_without_sleeping() {
        let w = AtomicU32::new(1);
        assert_eq!(wait(&w, 0, None), Ok(Woke::ValueChanged));
    }

    #[test]
    fn wait_times_out() {
        let w = AtomicU32::new(0);
        let t0 = crate::clock::Instant::now();
        assert_eq!(wait(&w, 0, Some(Duration::from_millis(20))), Ok(Woke::TimedOut));
        assert!(t0.elapsed() >= Duration::from_millis(20));
    }

    /// Whether thread `tid` of this process is asleep (state `S`), read from procfs.
    fn is_sleeping(tid: i32) -> bool {
        let stat = std::fs::read_to_string(std::format!("/proc/self/task/{tid}/stat")).unwrap_or_default();
        // The state follows the parenthesised command name.
        stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('S'))
    }

    #[test]
    fn wake_all_wakes_every_waiter_in_one_call() {
        // u32::MAX must not turn into -1 (one waiter) on its way to the kernel.
        const WAITERS: usize = 3;
        let w = Arc::new(AtomicU32::new(0));
        let (tx, rx) = std::sync::mpsc::channel();
        let threads: std::vec::Vec<_> = (0..WAITERS)
            .map(|_| {
                let (w, tx) = (w.clone(), tx.clone());
                std::thread::spawn(move || {
                    tx.send(rustix::thread::gettid().as_raw_nonzero().get()).unwrap();
                    let mut woken = 0;
                    while w.load(Ordering::SeqCst) == 0 {
                        if wait(&w, 0, Some(Duration::from_secs(30))) == Ok(Woke::Woken) {
                            woken += 1;
                        }
                    }
                    woken
                })
            })
            .collect();
        let tids: std::vec::Vec<i32> = (0..WAITERS).map(|_| rx.recv().unwrap()).collect();
        // Once a waiter has reported its id its only blocking call is the
        // futex wait, so "sleeping" means "parked on the futex".
        let t0 = crate::clock::Instant::now();
        while !tids.iter().all(|&t| is_sleeping(t)) {
            assert!(t0.elapsed() < Duration::from_secs(20), "waiters never parked");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        w.store(1, Ordering::SeqCst);
        assert_eq!(wake_all(&w), WAITERS);
        for t in threads {
            assert_eq!(t.join().unwrap(), 1, "each waiter is woken exactly once");
        }
    }
}
