//! Whether writes must keep versions: a flag, and per-thread-shard counts
//! of writes in flight that read it unset.
//!
//! A writer counts itself in, then reads the flag (both `SeqCst`); a
//! snapshot's start sets the flag, then waits for every count to reach zero
//! (`SeqCst` too). Of the two orders, either the writer sees the flag (and
//! keeps versions), or the starter sees the writer's count and waits for
//! its write to finish before taking its timestamp (so the write lies
//! before the snapshot). The counts are sharded by thread so that writers
//! on different cores do not share a cache line.

use snowfall_latch::Backoff;

use crate::sync::{AtomicBool, AtomicU64, Ordering};

const SHARDS: usize = 16;

#[repr(align(128))]
struct Shard(AtomicU64);

pub(crate) struct Gate {
    on: AtomicBool,
    shards: [Shard; SHARDS],
}

impl Gate {
    pub(crate) fn new() -> Gate {
        Gate { on: AtomicBool::new(false), shards: core::array::from_fn(|_| Shard(AtomicU64::new(0))) }
    }

    fn shard(&self) -> &AtomicU64 {
        let tp = snowfall_sys::thread::thread_pointer() as u64;
        let i = (tp.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60) as usize;
        &self.shards.get(i % SHARDS).unwrap_or(&self.shards[0]).0
    }

    /// Counts a write in; `Some(shard)` if it may go without versions
    /// (give the shard back to [`leave`](Self::leave) when it is done),
    /// `None` if it must keep them.
    pub(crate) fn enter(&self) -> Option<&AtomicU64> {
        let shard = self.shard();
        shard.fetch_add(1, Ordering::SeqCst);
        if self.on.load(Ordering::SeqCst) {
            shard.fetch_sub(1, Ordering::Release);
            return None;
        }
        Some(shard)
    }

    pub(crate) fn leave(shard: &AtomicU64) {
        shard.fetch_sub(1, Ordering::Release);
    }

    /// Sets the flag and waits for the writes that missed it.
    pub(crate) fn close(&self) {
        self.on.store(true, Ordering::SeqCst);
        for shard in &self.shards {
            let mut backoff = Backoff::new();
            while shard.0.load(Ordering::SeqCst) != 0 {
                backoff.pause();
            }
        }
    }

    /// Clears the flag (no snapshot is open or starting).
    pub(crate) fn open(&self) {
        self.on.store(false, Ordering::SeqCst);
    }
}
