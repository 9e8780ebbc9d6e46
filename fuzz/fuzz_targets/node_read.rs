//! Random bytes as a node, through every read path, both as a plain slice
//! (a reader under a latch) and as racy atomics (an optimistic reader): no
//! panic, no out-of-bounds access, no endless loop, whatever the bytes.
#![no_main]

use std::sync::atomic::AtomicU8;

use libfuzzer_sys::fuzz_target;
use snowfall_node::read::read_everything;
use snowfall_node::AtomicBytes;

fuzz_target!(|data: &[u8]| {
    read_everything(data);
    let atomics: Vec<AtomicU8> = data.iter().map(|&b| AtomicU8::new(b)).collect();
    read_everything(&AtomicBytes(&atomics));
});
