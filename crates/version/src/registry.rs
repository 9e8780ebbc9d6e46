//! The open snapshots: how many at each timestamp, and which of them have
//! been expired to bound the store.

use alloc::collections::BTreeMap;

#[derive(Default)]
pub(crate) struct Registry {
    /// Open snapshots by timestamp (expired ones too, until they end).
    open: BTreeMap<u64, usize>,
}

impl Registry {
    pub(crate) fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    pub(crate) fn start(&mut self, ts: u64) {
        *self.open.entry(ts).or_default() += 1;
    }

    /// A snapshot at `ts` ends.
    pub(crate) fn end(&mut self, ts: u64) {
        if let Some(n) = self.open.get_mut(&ts) {
            *n -= 1;
            if *n == 0 {
                self.open.remove(&ts);
            }
        }
    }

    /// The oldest timestamp a snapshot not expired (at or above
    /// `expired_below`) reads at.
    pub(crate) fn oldest_live(&self, expired_below: u64) -> Option<u64> {
        self.open.range(expired_below..).next().map(|(&ts, _)| ts)
    }
}
