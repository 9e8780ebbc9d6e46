//! Dropping a tree: it leaves the catalog and all its pages become free,
//! atomically for crashes.
//!
//! A tree may have more pages than one log record holds, so a drop is a
//! sequence of `DROP_TREE` records, each with the tree's name and root and
//! a chunk of its page ids; the last one is marked. Recovery applies a drop
//! only at its last record (the catalog entry goes, every listed page
//! becomes free); a sequence cut by a crash is ignored, and the tree is
//! intact, since its pages are freed only after the last record. Like a
//! batch, a drop in progress holds the checkpoint's scan point back to its
//! first record. The catalog lock is held throughout, so a checkpoint comes
//! before or after the whole drop; and `&mut Database` guarantees that no
//! handle to the tree is in use.
//!
//! ```text
//! | name len u8 | name | root u64 | last u8 (0 or 1) | count u32 | ids: count x u64 |
//! ```

use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use snowfall_buffer::PageId;

use crate::db::Database;
use crate::error::Error;
use crate::journal::DROP_TREE;

/// Page ids per record (8 KiB of ids: a large tree takes many records).
const IDS_PER_RECORD: usize = 1024;

/// One `DROP_TREE` record, decoded.
pub(crate) struct DropRecord<'a> {
    pub(crate) name: &'a str,
    pub(crate) root: PageId,
    pub(crate) last: bool,
    pub(crate) pages: Vec<PageId>,
}

impl<'a> DropRecord<'a> {
    fn encode(name: &str, root: PageId, last: bool, pages: &[PageId], out: &mut Vec<u8>) {
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&root.0.to_le_bytes());
        out.push(u8::from(last));
        out.extend_from_slice(&(pages.len() as u32).to_le_bytes());
        for p in pages {
            out.extend_from_slice(&p.0.to_le_bytes());
        }
    }

    /// Decodes a record body; `None` if it does not parse.
    pub(crate) fn decode(body: &'a [u8]) -> Option<DropRecord<'a>> {
        let len = usize::from(*body.first()?);
        let name = core::str::from_utf8(body.get(1..1 + len)?).ok()?;
        let rest = body.get(1 + len..)?;
        let u64_at = |at: usize| rest.get(at..at + 8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes);
        let root = PageId(u64_at(0)?);
        let last = match rest.get(8)? {
            0 => false,
            1 => true,
            _ => return None,
        };
        let count = u32::from_le_bytes(rest.get(9..13)?.try_into().ok()?) as usize;
        if rest.len() != 13 + 8 * count {
            return None;
        }
        let pages = (0..count).map(|i| u64_at(13 + 8 * i).map(PageId)).collect::<Option<Vec<_>>>()?;
        Some(DropRecord { name, root, last, pages })
    }
}

impl Database {
    /// Drops the tree `name`: removes it from the catalog and frees all its
    /// pages, durably (the log is synced before this returns) and
    /// atomically for crashes. `&mut self`: no handle to any tree may be
    /// in use meanwhile.
    pub fn drop_tree(&mut self, name: &str) -> Result<(), Error> {
        let db = &*self.inner;
        db.admit()?;
        let mut state = db.state.lock();
        let root = state
            .catalog
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, r)| *r)
            .ok_or_else(|| Error::NoSuchTree { name: String::from(name) })?;
        let tree = db.tree_at(root);
        let mut pages = tree.page_ids().map_err(|what| Error::Integrity { file: db.file.clone(), what })?;
        // The pages of its large values go too (listed page by page, as
        // the tree's: a drop is rare, and redo frees each id it lists).
        tree.scan(core::ops::Bound::Unbounded, snowfall_btree::Direction::Forward, |_, stored| {
            if stored.reference {
                for (start, n) in crate::values::extents_of(stored.bytes) {
                    pages.extend((start..start + n).map(PageId));
                }
            }
            true
        })?;
        let id = db.next_batch.fetch_add(1, Ordering::Relaxed);
        let chunks: Vec<&[PageId]> = pages.chunks(IDS_PER_RECORD).collect();
        let mut lsn = 0;
        for (i, chunk) in chunks.iter().enumerate() {
            let last = i + 1 == chunks.len();
            let appended = db.log.append(DROP_TREE, |out, place| {
                DropRecord::encode(name, root, last, chunk, out);
                if i == 0 {
                    db.batches.lock().push((id, place.start));
                }
                if last {
                    // The log now knows these pages are being freed.
                    db.bm.logged(core::iter::empty(), &pages);
                }
            });
            match appended {
                Ok(at) => lsn = at.end,
                Err(e) => {
                    db.batches.lock().retain(|&(b, _)| b != id);
                    return Err(db.failed(Error::Log(e)));
                }
            }
        }
        state.catalog.retain(|(n, _)| n != name);
        db.batches.lock().retain(|&(b, _)| b != id);
        drop(state);
        db.log.sync_to(lsn).map_err(|e| db.failed(Error::Log(e)))?;
        db.bm.free_pages(&pages)?;
        Ok(())
    }
}
