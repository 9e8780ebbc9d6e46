//! `Database::check_integrity`: the structure of every tree, that every
//! page is accounted for once, every stored page's checksum and id, and
//! every log record's checksum from the checkpoint on.

use alloc::boxed::Box;
use alloc::format;

use snowfall_buffer::{Page, PageId};
use snowfall_wal::Scan;

use crate::db::Database;
use crate::error::Error;
use crate::superblock::SUPERBLOCK_PAGES;

/// What [`Database::check_integrity`] checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Integrity {
    /// Entries in all trees.
    pub entries: u64,
    /// Pages read back from the file and verified.
    pub pages_verified: u64,
    /// Values stored out of line (each checked against its checksum).
    pub large_values: u64,
    /// Pages those values take.
    pub large_value_pages: u64,
    /// Log records read back and verified.
    pub log_records_verified: u64,
}

impl Database {
    /// Checks the whole database: takes a checkpoint (so the file holds
    /// every page), checks every tree's structure (key order, fences,
    /// child links, one depth) and that every page is in exactly one tree,
    /// free, or holding the free list; then reads every page in use back
    /// from the file and verifies its checksum and id, and reads the log
    /// from the checkpoint on, verifying every block and record checksum.
    /// Read-only, the pages recovery changed are written out to memory
    /// instead, and verified from there; the others from the file.
    /// Meant for a quiet database: a concurrent writer can make it report
    /// a page it was writing at that moment.
    pub fn check_integrity(&self) -> Result<Integrity, Error> {
        let db = &*self.inner;
        let bad = |what: alloc::string::String| Error::Integrity { file: db.file.clone(), what };
        if db.read_only.is_some() {
            db.bm.flush()?;
        } else {
            self.checkpoint()?;
        }
        let accounting = self.accounting().map_err(bad)?;
        let entries = accounting.entries;
        let (next, free) = db.bm.allocation();
        let mut page = Box::new(Page::zeroed());
        let mut pages_verified = 0;
        for p in (SUPERBLOCK_PAGES..next).map(PageId) {
            let value = accounting.owner.get(p.0 as usize) == Some(&crate::db::OWNER_VALUE);
            if free.contains(p) || value {
                continue;
            }
            db.bm.device().read_page(p, page.bytes_mut()).map_err(|e| bad(format!("{p} cannot be read: {e}")))?;
            page.verify(p).map_err(|e| bad(format!("{e}")))?;
            pages_verified += 1;
        }
        // Large values: raw bytes, checked whole against their reference.
        let mut bytes = alloc::vec::Vec::new();
        let mut large_value_pages = 0;
        for r in &accounting.references {
            if !db.read_value(r, &mut bytes)? {
                return Err(bad(format!(
                    "the large value stored from {} on does not match its checksum",
                    r.first_page()
                )));
            }
            let pages = r.extents.iter().map(|e| e.1).sum::<u64>();
            pages_verified += pages;
            large_value_pages += pages;
        }
        let sb = db.state.lock().sb.clone();
        let mut scan = Scan::new(db.log.device(), db.log.ring(), sb.scan, sb.checkpoint_epoch);
        let mut log_records_verified = 0;
        while scan.next_record().map_err(|e| bad(format!("log: {e}")))?.is_some() {
            log_records_verified += 1;
        }
        let large_values = accounting.references.len() as u64;
        Ok(Integrity { entries, pages_verified, large_values, large_value_pages, log_records_verified })
    }
}
