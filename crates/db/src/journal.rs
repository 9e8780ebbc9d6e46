//! The database's log records, and the tree's journal that writes them.
//!
//! ```text
//! kind 1, unit:        | tree unit (snowfall_btree::journal) |
//! kind 2, commit:      | batch u64 |
//! kind 3, create tree: | name len u8 | name | tree unit (the root's image) |
//! kind 4, drop tree:   | name len u8 | name | root u64 | last u8 | count u32 | ids | (drop_tree.rs)
//! ```
//!
//! Appending a unit also tells the buffer manager, atomically with the
//! append (under the log's lock), which allocations and frees the log now
//! knows of, and registers a batch's first record, so that a checkpoint's
//! snapshot (taken under the same lock) is exactly the state at its redo
//! point.

use alloc::vec::Vec;

use snowfall_btree::journal::{Change, Journal, Op, Unit};
use snowfall_buffer::{BufferManager, ExclusiveGuard, Extent};
use snowfall_wal::LogError;

use crate::db::Inner;
use crate::double_write::DoubleWrite;
use crate::error::Error;
use crate::values::extents_of;

/// A tree unit.
pub(crate) const UNIT: u8 = 1;
/// A batch commits.
pub(crate) const COMMIT: u8 = 2;
/// A tree is created.
pub(crate) const CREATE_TREE: u8 = 3;
/// A tree is dropped (one of a sequence; see `drop_tree.rs`).
pub(crate) const DROP_TREE: u8 = 4;

impl Journal for Inner {
    fn log(&self, unit: &Unit<'_>) -> Result<u64, LogError> {
        let batch = unit.write.map_or(0, |w| w.batch);
        let result = self.log.append(UNIT, |out, place| {
            unit.encode(out);
            self.bm.logged(unit.changes.iter().map(|c| c.page), unit.freed);
            let (referenced, released) = extents(unit);
            self.bm.logged_extents(&referenced, &released, place.start, batch);
            mark_images(&self.bm, unit, place.start);
            if batch != 0 {
                let mut batches = self.batches.lock();
                if !batches.iter().any(|&(b, _)| b == batch) {
                    batches.push((batch, place.start));
                }
            }
        });
        match result {
            Ok(at) => Ok(at.end),
            Err(e) => {
                // The tree holds a change the log refused: nothing may
                // write after this.
                self.stop(&Error::Log(e));
                Err(e)
            }
        }
    }
}

/// The extents a unit's inserted references refer to, and those of the
/// reference its write released.
pub(crate) fn extents(unit: &Unit<'_>) -> (Vec<Extent>, Vec<Extent>) {
    let mut referenced = Vec::new();
    for c in unit.changes {
        if let Op::Insert { value, reference: true, .. } = c.op {
            referenced.extend(extents_of(value));
        }
    }
    let released = unit.write.and_then(|w| w.released).map(extents_of).unwrap_or_default();
    (referenced, released)
}

/// A page logged whole in a record starting at `start` is rebuilt by redo
/// from there on without being read: writing it back needs no copy until
/// the floor passes `start` (`double_write.rs`).
pub(crate) fn mark_images(bm: &BufferManager, unit: &Unit<'_>, start: u64) {
    for c in unit.changes {
        if c.op.is_image() {
            DoubleWrite::mark(bm, c.page, start);
        }
    }
}

impl Inner {
    /// Logs the creation of tree `name` with its (new, empty) root.
    pub(crate) fn log_create(&self, name: &str, root: &ExclusiveGuard<'_>) -> Result<u64, LogError> {
        let change = Change::image(root.id(), root.page().body());
        let unit = Unit { write: None, changes: &[change], freed: &[] };
        self.log
            .append(CREATE_TREE, |out, place| {
                out.push(name.len() as u8);
                out.extend_from_slice(name.as_bytes());
                unit.encode(out);
                self.bm.logged(core::iter::once(root.id()), &[]);
                mark_images(&self.bm, &unit, place.start);
            })
            .map(|at| at.end)
    }

    /// Logs that batch `id` commits; returns the record's LSN.
    pub(crate) fn commit(&self, id: u64) -> Result<u64, Error> {
        self.log
            .append(COMMIT, |out, place| {
                out.extend_from_slice(&id.to_le_bytes());
                self.bm.batch_committed(id, place.start);
            })
            .map(|at| at.end)
            .map_err(Error::Log)
    }
}
