//! Random bytes as a tree unit (a log record's body, which recovery decodes
//! after its checksum matched): no panic and no unbounded allocation,
//! whatever the bytes; and every unit that decodes, encoded again, decodes
//! to the same unit, unless a page's change follows its own image (the
//! encoder leaves those out: the image holds them).
#![no_main]

use libfuzzer_sys::fuzz_target;
use snowfall_btree::journal::{Change, Decoded, Op, Unit};

fuzz_target!(|data: &[u8]| {
    let Ok(unit) = Decoded::decode(data) else { return };
    let imaged_then_changed = unit.changes.iter().enumerate().any(|(i, (page, op))| {
        matches!(op, Op::Image(_)) && unit.changes.iter().skip(i + 1).any(|(p, _)| p == page)
    });
    if imaged_then_changed {
        return;
    }
    let changes: Vec<Change<'_>> = unit.changes.iter().map(|&(page, op)| Change { page, op }).collect();
    let mut out = Vec::new();
    Unit { write: unit.write, changes: &changes, freed: &unit.freed }.encode(&mut out);
    assert_eq!(Decoded::decode(&out).as_ref(), Ok(&unit), "re-encoded as {out:?}");
});
