//! Self-checks of threads on origin parking on futexes.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use core::time::Duration;

use snowfall_rt::thread::{JoinHandle, current_os_id, spawn};
use snowfall_sys::clock::{Instant, sleep};
use snowfall_sys::futex::{self, Woke};

use super::{Outcome, ensure, read_file};

/// How long any single wait in these checks may take before it counts as a hang.
const HANG: Duration = Duration::from_secs(30);

/// Whether thread `tid` of this process is asleep (state `S` in procfs).
fn is_sleeping(tid: i32) -> bool {
    let stat = read_file(&alloc::format!("/proc/self/task/{tid}/stat")).unwrap_or_default();
    // The state letter follows the parenthesised command name.
    let after_name = stat.iter().rposition(|&b| b == b')').and_then(|i| stat.get(i + 2));
    after_name == Some(&b'S')
}

fn join_all<T>(handles: Vec<JoinHandle<T>>) -> Vec<T> {
    handles.into_iter().map(JoinHandle::join).collect()
}

pub fn park_and_wake_all() -> Outcome {
    const WAITERS: usize = 4;
    struct Shared {
        gate: AtomicU32,
        tids: [AtomicI32; WAITERS],
    }
    let shared = Arc::new(Shared { gate: AtomicU32::new(0), tids: Default::default() });
    let handles = (0..WAITERS)
        .map(|i| {
            let shared = shared.clone();
            spawn(move || -> Result<u32, String> {
                if let Some(slot) = shared.tids.get(i) {
                    slot.store(current_os_id(), Ordering::Release);
                }
                let mut woken = 0;
                while shared.gate.load(Ordering::Acquire) == 0 {
                    match futex::wait(&shared.gate, 0, Some(HANG)) {
                        Ok(Woke::Woken) => woken += 1,
                        Ok(Woke::TimedOut) => return Err(String::from("a waiter was never woken")),
                        Ok(_) => {}
                        Err(e) => return Err(alloc::format!("futex wait: {e}")),
                    }
                }
                Ok(woken)
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| alloc::format!("spawn: {e}"))?;
    // Once a waiter has published its id its only blocking call is the
    // futex wait, so "asleep" means "parked on the futex".
    let deadline = Instant::now().saturating_add(HANG);
    let all_parked = loop {
        let tids: Vec<i32> = shared.tids.iter().map(|t| t.load(Ordering::Acquire)).collect();
        if tids.iter().all(|&t| t != 0 && is_sleeping(t)) {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        sleep(Duration::from_millis(1));
    };
    shared.gate.store(1, Ordering::Release);
    let woken_by_one_call = futex::wake_all(&shared.gate);
    let results = join_all(handles);
    ensure(all_parked, || String::from("the waiters never all parked"))?;
    let per_thread = results.into_iter().collect::<Result<Vec<u32>, String>>()?;
    ensure(woken_by_one_call == WAITERS, || {
        alloc::format!("one wake_all woke {woken_by_one_call} of {WAITERS} parked threads")
    })?;
    ensure(per_thread.iter().all(|&n| n >= 1), || alloc::format!("wake-ups per thread: {per_thread:?}"))?;
    Ok(alloc::format!("{WAITERS} threads parked (state S in procfs), one wake_all woke {woken_by_one_call}"))
}

pub fn ping_pong() -> Outcome {
    const ROUNDS: u32 = 10_000;
    let turn = Arc::new(AtomicU32::new(0));
    let t0 = Instant::now();
    let handles = (0..2u32)
        .map(|me| {
            let turn = turn.clone();
            spawn(move || -> Result<u32, String> {
                let other = 1 - me;
                let mut parked = 0;
                for _ in 0..ROUNDS {
                    while turn.load(Ordering::Acquire) != me {
                        match futex::wait(&turn, other, Some(HANG)) {
                            Ok(Woke::Woken) => parked += 1,
                            Ok(Woke::TimedOut) => return Err(String::from("a handoff was lost")),
                            Ok(_) => {}
                            Err(e) => return Err(alloc::format!("futex wait: {e}")),
                        }
                    }
                    turn.store(other, Ordering::Release);
                    futex::wake(&turn, 1);
                }
                Ok(parked)
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| alloc::format!("spawn: {e}"))?;
    let parked = join_all(handles).into_iter().collect::<Result<Vec<u32>, String>>()?;
    let elapsed = t0.elapsed();
    Ok(alloc::format!(
        "{} handoffs in {} ms, {} of them after parking",
        2 * ROUNDS,
        elapsed.as_millis(),
        parked.iter().sum::<u32>()
    ))
}

pub fn wait_times_out() -> Outcome {
    let word = AtomicU32::new(0);
    let wanted = Duration::from_millis(20);
    let t0 = Instant::now();
    let outcome = futex::wait(&word, 0, Some(wanted)).map_err(|e| alloc::format!("futex wait: {e}"))?;
    let waited = t0.elapsed();
    ensure(outcome == Woke::TimedOut && waited >= wanted, || {
        alloc::format!("wait returned {outcome:?} after {} us", waited.as_micros())
    })?;
    Ok(alloc::format!("a 20 ms wait returned TimedOut after {} us", waited.as_micros()))
}
