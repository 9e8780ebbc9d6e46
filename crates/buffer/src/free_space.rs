//! Free page ids kept as runs of consecutive pages. A freed page merges
//! with its free neighbours; a single page is taken from the shortest run
//! (the lowest such), so that long runs stay whole for allocations of many
//! consecutive pages (extents), which take the shortest run that holds them
//! (best fit).

use alloc::collections::{BTreeMap, BTreeSet};

use crate::page::PageId;

/// Free page ids, as runs of consecutive pages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FreeSpace {
    /// start -> pages.
    by_start: BTreeMap<u64, u64>,
    /// (pages, start): the same runs, shortest first.
    by_len: BTreeSet<(u64, u64)>,
    /// Pages in all runs.
    pages: u64,
}

impl FreeSpace {
    /// Free space holding `ids` (any order; repeats count once).
    pub fn from_ids(ids: &[PageId]) -> FreeSpace {
        let mut free = FreeSpace::default();
        for &id in ids {
            free.insert(id);
        }
        free
    }

    /// Free pages.
    pub fn len(&self) -> u64 {
        self.pages
    }

    /// Whether no page is free.
    pub fn is_empty(&self) -> bool {
        self.pages == 0
    }

    /// Whether `page` is free.
    pub fn contains(&self, page: PageId) -> bool {
        self.run_holding(page.0).is_some()
    }

    /// Frees `page`; false (and nothing changes) if it was free already.
    pub fn insert(&mut self, page: PageId) -> bool {
        self.insert_run(page.0, 1)
    }

    /// Frees pages `start .. start + pages`, merging with free neighbours;
    /// false (and nothing changes) if any of them was free already, or the
    /// run passes the largest id.
    pub fn insert_run(&mut self, start: u64, pages: u64) -> bool {
        let Some(end) = start.checked_add(pages) else { return false };
        if pages == 0 {
            return true;
        }
        let left = self.by_start.range(..=start).next_back().map(|(&s, &n)| (s, n));
        if left.is_some_and(|(s, n)| s + n > start) || self.by_start.range(start..end).next().is_some() {
            return false;
        }
        let (mut first, mut len) = (start, pages);
        if let Some((s, n)) = left.filter(|&(s, n)| s + n == start) {
            self.unlink(s, n);
            (first, len) = (s, n + pages);
        }
        if let Some(n) = self.by_start.get(&end).copied() {
            self.unlink(end, n);
            len += n;
        }
        self.link(first, len);
        true
    }

    /// Takes `page` out (it is in use now); false if it was not free.
    pub fn remove(&mut self, page: PageId) -> bool {
        let Some((s, n)) = self.run_holding(page.0) else { return false };
        self.unlink(s, n);
        if page.0 > s {
            self.link(s, page.0 - s);
        }
        if page.0 + 1 < s + n {
            self.link(page.0 + 1, s + n - page.0 - 1);
        }
        true
    }

    /// Takes pages `start .. start + pages` out (in use now, as far as they
    /// were free); returns how many were free.
    pub fn remove_run(&mut self, start: u64, pages: u64) -> u64 {
        let end = start.saturating_add(pages);
        if end == start {
            return 0;
        }
        let mut removed = 0;
        // The run reaching into the range from below, then those inside it.
        let first = self.run_holding(start).map_or(start, |(s, _)| s);
        let overlapping: alloc::vec::Vec<(u64, u64)> = self.by_start.range(first..end).map(|(&s, &n)| (s, n)).collect();
        for (s, n) in overlapping {
            self.unlink(s, n);
            if s < start {
                self.link(s, start - s);
            }
            if s + n > end {
                self.link(end, s + n - end);
            }
            removed += (s + n).min(end) - s.max(start);
        }
        removed
    }

    /// Takes one page: the first of the shortest run.
    pub fn take_one(&mut self) -> Option<PageId> {
        self.take_run(1).map(PageId)
    }

    /// Takes `pages` consecutive pages (at least 1) from the shortest run
    /// that holds them; returns the first.
    pub fn take_run(&mut self, pages: u64) -> Option<u64> {
        let pages = pages.max(1);
        let &(len, start) = self.by_len.range((pages, 0)..).next()?;
        self.unlink(start, len);
        if len > pages {
            self.link(start + pages, len - pages);
        }
        Some(start)
    }

    /// The runs, ascending: (first page id, pages).
    pub fn runs(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.by_start.iter().map(|(&start, &pages)| (start, pages))
    }

    /// The free ids, ascending.
    pub fn ids(&self) -> impl Iterator<Item = PageId> + '_ {
        self.runs().flat_map(|(start, pages)| (start..start + pages).map(PageId))
    }

    /// The run holding `id`, if it is free.
    fn run_holding(&self, id: u64) -> Option<(u64, u64)> {
        self.by_start.range(..=id).next_back().map(|(&s, &n)| (s, n)).filter(|&(s, n)| id < s + n)
    }

    fn link(&mut self, start: u64, pages: u64) {
        self.by_start.insert(start, pages);
        self.by_len.insert((pages, start));
        self.pages += pages;
    }

    fn unlink(&mut self, start: u64, pages: u64) {
        self.by_start.remove(&start);
        self.by_len.remove(&(pages, start));
        self.pages -= pages;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::SplitMix64;
    use alloc::vec::Vec;

    fn runs(free: &FreeSpace) -> Vec<(u64, u64)> {
        free.by_start.iter().map(|(&s, &n)| (s, n)).collect()
    }

    #[test]
    fn frees_merge_and_single_pages_come_from_the_shortest_run() {
        let mut free = FreeSpace::from_ids(&[PageId(10), PageId(11), PageId(12), PageId(20), PageId(30), PageId(31)]);
        assert_eq!(runs(&free), [(10, 3), (20, 1), (30, 2)]);
        assert!(free.insert(PageId(13)) && free.insert(PageId(19)));
        assert!(!free.insert(PageId(11)), "a free page freed again");
        assert_eq!(runs(&free), [(10, 4), (19, 2), (30, 2)]);
        // Joins both neighbours.
        assert!(free.insert(PageId(14)) && free.insert(PageId(15)) && free.insert(PageId(16)));
        assert!(free.insert(PageId(17)) && free.insert(PageId(18)));
        assert_eq!(runs(&free), [(10, 11), (30, 2)]);
        assert_eq!(free.ids().count(), 13);
        // One page: the shortest run's first; many: best fit.
        assert_eq!(free.take_one(), Some(PageId(30)));
        assert_eq!(free.take_run(5), Some(10));
        assert_eq!(runs(&free), [(15, 6), (31, 1)]);
        assert_eq!(free.take_run(7), None);
        assert_eq!(free.ids().map(|p| p.0).collect::<Vec<_>>(), [15, 16, 17, 18, 19, 20, 31]);
    }

    /// Random frees and takes against a set of ids: the same pages free,
    /// runs always maximal, takes always free pages.
    #[test]
    fn random_frees_and_takes_match_a_set_of_ids() {
        for seed in 0..50 {
            let mut r = SplitMix64(seed);
            let mut free = FreeSpace::default();
            let mut model = BTreeSet::new();
            for _ in 0..2000 {
                match r.below(8) {
                    7 => {
                        let (start, pages) = (r.below(300), r.below(20));
                        let was: u64 = (start..start + pages).filter(|id| model.remove(id)).count() as u64;
                        assert_eq!(free.remove_run(start, pages), was, "seed {seed}: remove {start} +{pages}");
                    }
                    0 | 1 => {
                        let id = r.below(300);
                        assert_eq!(free.insert(PageId(id)), model.insert(id), "seed {seed}");
                    }
                    4 => {
                        let id = r.below(300);
                        assert_eq!(free.contains(PageId(id)), model.contains(&id), "seed {seed}");
                        assert_eq!(free.remove(PageId(id)), model.remove(&id), "seed {seed}");
                    }
                    5 => {
                        let (start, pages) = (r.below(300), r.below(6));
                        let overlaps = (start..start + pages).any(|id| model.contains(&id));
                        assert_eq!(free.insert_run(start, pages), !overlaps, "seed {seed}: run {start} +{pages}");
                        if !overlaps {
                            model.extend(start..start + pages);
                        }
                    }
                    2 => {
                        let got = free.take_one();
                        if let Some(p) = got {
                            assert!(model.remove(&p.0), "seed {seed}: took {p:?}, not free");
                        } else {
                            assert!(model.is_empty());
                        }
                    }
                    _ => {
                        let n = 1 + r.below(8);
                        if let Some(start) = free.take_run(n) {
                            for id in start..start + n {
                                assert!(model.remove(&id), "seed {seed}: run at {start} of {n}: {id} not free");
                            }
                        }
                    }
                }
                assert_eq!((free.ids().count(), free.len()), (model.len(), model.len() as u64));
                let runs = runs(&free);
                assert!(
                    runs.windows(2).all(|w| matches!(w, [a, b] if a.0 + a.1 < b.0)),
                    "seed {seed}: runs not maximal"
                );
                assert_eq!(free.by_len.len(), runs.len());
            }
            assert!(free.ids().map(|p| p.0).eq(model.iter().copied()), "seed {seed}");
        }
    }
}
