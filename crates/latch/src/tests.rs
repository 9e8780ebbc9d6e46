//! Seeded, bounded stress tests of the latch with real threads and futexes.
//! (Exhaustive interleavings of small cases: tests/loom.rs.)

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;
use std::vec::Vec;

use crate::word::{LOCKED, MAX_READERS, PARKED, UNLOCKED};
use crate::{Evicted, Flag, LatchWord, Mutex};

#[test]
fn exclusive_holds_exclude_each_other() {
    const THREADS: usize = 4;
    const ROUNDS: u64 = 20_000;
    let counter = Arc::new(Mutex::new(0u64));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let counter = counter.clone();
            thread::spawn(move || {
                for _ in 0..ROUNDS {
                    // A non-atomic read-modify-write: lost updates would show.
                    let mut g = counter.lock();
                    let v = *g;
                    std::hint::black_box(());
                    *g = v + 1;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(*counter.lock(), THREADS as u64 * ROUNDS);
}

/// Two values a writer keeps equal; readers must never see them differ.
struct Pair {
    latch: LatchWord,
    a: AtomicU64,
    b: AtomicU64,
}

#[test]
fn shared_and_optimistic_readers_never_see_a_half_write() {
    let pair = Arc::new(Pair { latch: LatchWord::new(), a: AtomicU64::new(0), b: AtomicU64::new(0) });
    let stop = Arc::new(AtomicBool::new(false));
    let validated = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..2)
        .map(|_| {
            let (pair, stop) = (pair.clone(), stop.clone());
            thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    pair.latch.lock_exclusive().unwrap();
                    i += 1;
                    pair.a.store(i, Ordering::Relaxed);
                    pair.b.store(i, Ordering::Relaxed);
                    pair.latch.unlock_exclusive(Flag::Keep);
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let (pair, validated) = (pair.clone(), validated.clone());
            thread::spawn(move || {
                for _ in 0..50_000 {
                    if r == 0 {
                        pair.latch.lock_shared().unwrap();
                        assert_eq!(pair.a.load(Ordering::Relaxed), pair.b.load(Ordering::Relaxed));
                        pair.latch.unlock_shared();
                    } else {
                        let snap = pair.latch.optimistic().unwrap();
                        let (a, b) = (pair.a.load(Ordering::Relaxed), pair.b.load(Ordering::Relaxed));
                        if pair.latch.validate(snap) {
                            assert_eq!(a, b, "a validated optimistic read saw a half-done write");
                            validated.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    for r in readers {
        r.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    assert!(validated.load(Ordering::Relaxed) > 0, "no optimistic read ever validated");
}

#[test]
fn a_write_invalidates_an_earlier_snapshot_and_upgrades_need_an_unchanged_version() {
    let l = LatchWord::new();
    let snap = l.optimistic().unwrap();
    assert!(l.validate(snap));
    assert!(l.try_upgrade(snap));
    assert!(!l.validate(snap), "a held exclusive latch invalidates");
    l.unlock_exclusive(Flag::Keep);
    assert!(!l.validate(snap), "a released exclusive latch has a new version");
    assert!(!l.try_upgrade(snap));
    // Shared holds do not change the version.
    let snap = l.optimistic().unwrap();
    l.lock_shared().unwrap();
    assert!(l.validate(snap));
    assert!(!l.try_upgrade(snap), "no upgrade past a reader");
    assert!(l.try_upgrade_shared());
    l.unlock_exclusive(Flag::Set);
    assert!(l.load().flag());
}

#[test]
fn a_snapshot_becomes_a_shared_hold_only_if_no_writer_came() {
    let l = LatchWord::new();
    let snap = l.optimistic().unwrap();
    // Readers that come and go (or stay) do not matter.
    l.lock_shared().unwrap();
    l.unlock_shared();
    l.lock_shared().unwrap();
    assert!(l.try_share(snap));
    assert_eq!(l.load().readers(), 2);
    l.unlock_shared();
    l.unlock_shared();
    // A writer holding it, or one that came and went, does.
    assert!(l.try_upgrade(snap));
    assert!(!l.try_share(snap), "held exclusively");
    l.unlock_exclusive(Flag::Keep);
    assert!(!l.try_share(snap), "a writer came in between");
    assert_eq!(l.load().state(), UNLOCKED);
}

#[test]
fn the_reader_count_is_bounded() {
    let l = LatchWord::new();
    for _ in 0..MAX_READERS {
        assert_eq!(l.try_lock_shared(), Ok(true));
    }
    assert_eq!(l.try_lock_shared(), Ok(false));
    assert_eq!(l.try_lock_exclusive(), Ok(false));
    for _ in 0..MAX_READERS {
        l.unlock_shared();
    }
    assert_eq!(l.load().state(), UNLOCKED);
    assert_eq!(l.try_lock_exclusive(), Ok(true));
}

#[test]
fn evicted_words_refuse_latches_until_loaded() {
    let l = LatchWord::evicted();
    assert_eq!(l.optimistic(), Err(Evicted));
    assert_eq!(l.lock_shared(), Err(Evicted));
    assert_eq!(l.lock_exclusive(), Err(Evicted));
    assert!(l.try_lock_evicted());
    assert_eq!(l.load().state(), LOCKED);
    l.unlock_exclusive(Flag::Set);
    let loaded = l.load();
    assert!(loaded.flag() && loaded.version() == 1);
    assert!(l.try_mark(loaded));
    assert!(l.try_lock_exclusive().unwrap(), "a marked word can be latched");
    l.unlock_evicted();
    let gone = l.load();
    assert_eq!((gone.state(), gone.version(), gone.flag()), (crate::word::EVICTED, 2, false));
}

#[test]
fn blocked_threads_park_and_all_get_the_latch() {
    const WAITERS: usize = 3;
    let l = Arc::new(LatchWord::new());
    let got = Arc::new(AtomicUsize::new(0));
    l.lock_exclusive().unwrap();
    let waiters: Vec<_> = (0..WAITERS)
        .map(|i| {
            let (l, got) = (l.clone(), got.clone());
            thread::spawn(move || {
                if i % 2 == 0 {
                    l.lock_exclusive().unwrap();
                    got.fetch_add(1, Ordering::SeqCst);
                    l.unlock_exclusive(Flag::Keep);
                } else {
                    l.lock_shared().unwrap();
                    got.fetch_add(1, Ordering::SeqCst);
                    l.unlock_shared();
                }
            })
        })
        .collect();
    // Spinning and yielding take microseconds; after that the waiters park
    // and say so in the word.
    let mut parked = false;
    for _ in 0..2000 {
        if l.load().0 & PARKED != 0 {
            parked = true;
            break;
        }
        thread::sleep(Duration::from_millis(1));
    }
    assert!(parked, "no waiter parked");
    assert_eq!(got.load(Ordering::SeqCst), 0);
    l.unlock_exclusive(Flag::Keep);
    for w in waiters {
        w.join().unwrap();
    }
    assert_eq!(got.load(Ordering::SeqCst), WAITERS);
    assert_eq!(l.load().0 & PARKED, 0, "the last release clears the parked bit");
}

#[test]
fn a_failed_try_lock_leaves_the_holders_lock_alone() {
    let m = Mutex::new(1u32);
    let held = m.lock();
    // It used to build (and drop) a guard even when it failed, releasing
    // the holder's lock.
    assert!(m.try_lock().is_none());
    assert!(m.try_lock().is_none(), "the failed attempt released the lock");
    drop(held);
    let mut again = m.try_lock().expect("free again");
    *again += 1;
    drop(again);
    assert_eq!(*m.lock(), 2);
}
