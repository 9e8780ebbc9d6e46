//! The open snapshots: how many at each timestamp, and which of them have
//! been expired to bound the store.

use alloc::vec::Vec;

/// Open snapshots by timestamp, oldest first, expired ones too until they
/// end. A vector rather than a map: snapshots begin at the newest
/// timestamp (a push at the end, or a count raised), few timestamps are
/// open at once, and a vector keeps its memory when it empties (a map
/// would free and allocate a node each time the last snapshot ends and
/// another begins, which read-only transactions do all the time).
#[derive(Default)]
pub(crate) struct Registry {
    open: Vec<(u64, usize)>,
}

impl Registry {
    pub(crate) fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// A snapshot at `ts` begins (`ts` at least every open one's).
    pub(crate) fn start(&mut self, ts: u64) {
        match self.open.binary_search_by_key(&ts, |&(t, _)| t) {
            Ok(i) => {
                if let Some((_, n)) = self.open.get_mut(i) {
                    *n += 1;
                }
            }
            Err(i) => self.open.insert(i, (ts, 1)),
        }
    }

    /// A snapshot at `ts` ends.
    pub(crate) fn end(&mut self, ts: u64) {
        if let Ok(i) = self.open.binary_search_by_key(&ts, |&(t, _)| t)
            && let Some((_, n)) = self.open.get_mut(i)
        {
            *n -= 1;
            if *n == 0 {
                self.open.remove(i);
            }
        }
    }

    /// The oldest timestamp a snapshot not expired (at or above
    /// `expired_below`) reads at.
    pub(crate) fn oldest_live(&self, expired_below: u64) -> Option<u64> {
        let i = self.open.partition_point(|&(t, _)| t < expired_below);
        self.open.get(i).map(|&(ts, _)| ts)
    }
}
