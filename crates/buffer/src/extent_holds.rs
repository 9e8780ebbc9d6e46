//! Extents held for the layer above's versions: a snapshot may still read a
//! large value that a commit has since replaced, through the reference the
//! version store kept. The release of such an extent is logged and
//! quarantined as any other (`extents.rs`); while an [`ExtentHold`] on it
//! lives, it also stays there. When the last hold on it goes, its
//! quarantine's epoch is stamped anew (at the next allocation), so readers
//! that took the reference under a pin before are waited for, as after any
//! release. Holds, unlike pins, belong to versions, not readers: an expired
//! snapshot's versions go with their holds, however long the snapshot
//! itself lives.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;

use snowfall_latch::Mutex;

use crate::extents::Extent;
use crate::manager::BufferManager;

/// Which extents are held, and which were let go since the last look.
#[derive(Debug, Default)]
pub(crate) struct Holds {
    state: Mutex<HoldState>,
}

#[derive(Debug, Default)]
pub(crate) struct HoldState {
    /// Holds per extent (by its first page).
    held: BTreeMap<u64, u32>,
    /// Extents whose last hold went: their quarantine epoch is stamped anew.
    let_go: Vec<u64>,
}

impl HoldState {
    pub(crate) fn is_held(&self, start: u64) -> bool {
        self.held.contains_key(&start)
    }

    /// The extents let go since the last call.
    pub(crate) fn take_let_go(&mut self) -> Vec<u64> {
        core::mem::take(&mut self.let_go)
    }
}

impl Holds {
    pub(crate) fn state(&self) -> snowfall_latch::MutexGuard<'_, HoldState> {
        self.state.lock()
    }
}

/// Keeps extents from reuse while it lives (see the module docs).
#[derive(Debug)]
pub struct ExtentHold {
    holds: Arc<Holds>,
    extents: Vec<Extent>,
}

impl ExtentHold {
    /// Pages it holds.
    pub fn pages(&self) -> u64 {
        self.extents.iter().map(|&(_, pages)| pages).sum()
    }
}

impl Drop for ExtentHold {
    fn drop(&mut self) {
        let mut s = self.holds.state();
        for &(start, _) in &self.extents {
            if let Some(n) = s.held.get_mut(&start) {
                *n -= 1;
                if *n == 0 {
                    s.held.remove(&start);
                    s.let_go.push(start);
                }
            }
        }
    }
}

impl BufferManager {
    /// Holds `extents` out of reuse until the hold is dropped; take it
    /// before their release is logged.
    pub fn hold_extents(&self, extents: Vec<Extent>) -> ExtentHold {
        let mut s = self.holds.state();
        for &(start, _) in &extents {
            *s.held.entry(start).or_default() += 1;
        }
        drop(s);
        ExtentHold { holds: self.holds.clone(), extents }
    }
}
