//! Exhaustive interleavings (loom) of small latch scenarios, under the C11
//! memory model loom simulates. Run:
//! `RUSTFLAGS="--cfg loom" cargo test -p snowfall-latch --release --test loom`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, reason = "tests: a panic is a failure")]
#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;
use snowfall_latch::{Flag, LatchWord};

/// Two exclusive writers doing non-atomic increments: loom reports any
/// overlapping access to the cell as a data race.
#[test]
fn exclusive_holds_are_mutually_exclusive() {
    loom::model(|| {
        let latch = Arc::new(LatchWord::new());
        let cell = Arc::new(UnsafeCell::new(0u32));
        let spawn = |latch: Arc<LatchWord>, cell: Arc<UnsafeCell<u32>>| {
            thread::spawn(move || {
                latch.lock_exclusive().unwrap();
                cell.with_mut(|v| unsafe { *v += 1 });
                latch.unlock_exclusive(Flag::Keep);
            })
        };
        let t = spawn(latch.clone(), cell.clone());
        spawn(latch.clone(), cell.clone()).join().unwrap();
        t.join().unwrap();
        latch.lock_shared().unwrap();
        assert_eq!(cell.with(|v| unsafe { *v }), 2);
        latch.unlock_shared();
    });
}

/// A writer keeps two relaxed atomics equal under the exclusive latch; an
/// optimistic reader that validates must see them equal, whatever the
/// interleaving and reordering.
#[test]
fn validated_optimistic_reads_are_consistent() {
    loom::model(|| {
        let latch = Arc::new(LatchWord::new());
        let a = Arc::new(AtomicUsize::new(0));
        let b = Arc::new(AtomicUsize::new(0));
        let writer = {
            let (latch, a, b) = (latch.clone(), a.clone(), b.clone());
            thread::spawn(move || {
                latch.lock_exclusive().unwrap();
                a.store(1, Ordering::Relaxed);
                b.store(1, Ordering::Relaxed);
                latch.unlock_exclusive(Flag::Keep);
            })
        };
        if let Ok(snap) = latch.optimistic() {
            let (x, y) = (a.load(Ordering::Relaxed), b.load(Ordering::Relaxed));
            if latch.validate(snap) {
                assert_eq!(x, y, "validated read saw half a write");
            }
        }
        writer.join().unwrap();
    });
}

/// A thread blocked behind a shared holder parks and is woken by the
/// release: loom fails the model if any interleaving deadlocks (a lost
/// wake-up).
#[test]
fn a_parked_writer_is_always_woken() {
    loom::model(|| {
        let latch = Arc::new(LatchWord::new());
        latch.lock_shared().unwrap();
        let writer = {
            let latch = latch.clone();
            thread::spawn(move || {
                latch.lock_exclusive().unwrap();
                latch.unlock_exclusive(Flag::Set);
            })
        };
        latch.unlock_shared();
        writer.join().unwrap();
        assert!(latch.load().flag());
    });
}

/// Two writers contend; one parks behind the other; both finish.
#[test]
fn contending_writers_both_finish() {
    loom::model(|| {
        let latch = Arc::new(LatchWord::new());
        let done = Arc::new(AtomicUsize::new(0));
        let spawn = |latch: Arc<LatchWord>, done: Arc<AtomicUsize>| {
            thread::spawn(move || {
                latch.lock_exclusive().unwrap();
                done.fetch_add(1, Ordering::Relaxed);
                latch.unlock_exclusive(Flag::Keep);
            })
        };
        let t1 = spawn(latch.clone(), done.clone());
        let t2 = spawn(latch.clone(), done.clone());
        t1.join().unwrap();
        t2.join().unwrap();
        assert_eq!(done.load(Ordering::Relaxed), 2);
        assert_eq!(latch.load().version(), 2);
    });
}

/// An upgrade from an optimistic read succeeds only if no writer came in
/// between; exactly one of two upgraders wins per version.
#[test]
fn at_most_one_upgrade_per_version() {
    loom::model(|| {
        let latch = Arc::new(LatchWord::new());
        let wins = Arc::new(AtomicUsize::new(0));
        let snap = latch.optimistic().unwrap();
        let spawn = |latch: Arc<LatchWord>, wins: Arc<AtomicUsize>| {
            thread::spawn(move || {
                if latch.try_upgrade(snap) {
                    wins.fetch_add(1, Ordering::Relaxed);
                    latch.unlock_exclusive(Flag::Keep);
                }
            })
        };
        let t1 = spawn(latch.clone(), wins.clone());
        let t2 = spawn(latch.clone(), wins.clone());
        t1.join().unwrap();
        t2.join().unwrap();
        assert_eq!(wins.load(Ordering::Relaxed), 1);
    });
}

/// A reader that turns its optimistic snapshot into a shared hold
/// (`try_share`) reads, under that hold, exactly the data of the snapshot:
/// a writer either came in between (and the hold is refused) or waits for
/// the hold to end. The cell is not atomic: loom reports a reader and the
/// writer overlapping as a data race.
#[test]
fn a_shared_hold_from_a_snapshot_excludes_writers_since() {
    loom::model(|| {
        let latch = Arc::new(LatchWord::new());
        let cell = Arc::new(UnsafeCell::new(0u32));
        let snap = latch.optimistic().unwrap();
        let writer = {
            let (latch, cell) = (latch.clone(), cell.clone());
            thread::spawn(move || {
                latch.lock_exclusive().unwrap();
                cell.with_mut(|v| unsafe { *v = 1 });
                latch.unlock_exclusive(Flag::Keep);
            })
        };
        if latch.try_share(snap) {
            assert_eq!(cell.with(|v| unsafe { *v }), 0, "the hold saw a write after its snapshot");
            latch.unlock_shared();
        }
        writer.join().unwrap();
    });
}
