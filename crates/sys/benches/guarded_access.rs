//! The cost of a guarded access that does not fault, against the same
//! access unguarded: what every optimistic read of pool memory pays for
//! surviving evictions under exmap. Results: docs/BENCHMARKS.md.
//!
//! Run: `cargo bench -p snowfall-sys --bench guarded_access`.
#![allow(missing_docs, unsafe_code)]
#![allow(clippy::expect_used, reason = "a benchmark that cannot set up should stop")]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rustix::mm::{MapFlags, ProtFlags, mmap_anonymous};
use snowfall_sys::fault::{self, Registration};

const REGION_BYTES: usize = 1 << 20;

fn guarded_access(c: &mut Criterion) {
    fault::install().expect("install the fault handler");
    // SAFETY: a fresh private mapping; never unmapped while the benchmark runs.
    let region = unsafe {
        mmap_anonymous(core::ptr::null_mut(), REGION_BYTES, ProtFlags::READ | ProtFlags::WRITE, MapFlags::PRIVATE)
    }
    .expect("map the region")
    .cast::<u8>();
    // SAFETY: touch every page so no measurement includes a first-touch fault.
    unsafe { core::ptr::write_bytes(region, 7, REGION_BYTES) };
    // SAFETY: the mapping lives for the whole process.
    let reg = unsafe { Registration::new(region, REGION_BYTES) }.expect("register the region");

    let mut group = c.benchmark_group("read");
    for len in [8usize, 64, 4096] {
        let mut buf = vec![0u8; len];
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::new("unguarded", len), &len, |b, _| {
            // SAFETY: the source lies in the readable mapping.
            b.iter(|| unsafe { fault::racy_read_into(black_box(region.add(64)), black_box(&mut buf)) })
        });
        group.bench_with_input(BenchmarkId::new("guarded", len), &len, |b, _| {
            // SAFETY: the source lies in the registered, readable mapping.
            b.iter(|| unsafe { fault::read_into(black_box(region.add(64)), black_box(&mut buf)) })
        });
        group.bench_with_input(BenchmarkId::new("guarded_bounds_checked", len), &len, |b, _| {
            b.iter(|| reg.read(black_box(64), black_box(&mut buf)))
        });
    }
    group.finish();

    // The fault path: a guarded read of an inaccessible page in a registered
    // range (kernel fault, our handler, rt_sigreturn, landing pad).
    // SAFETY: a fresh inaccessible mapping, never unmapped while the benchmark runs.
    let hole = unsafe { mmap_anonymous(core::ptr::null_mut(), 4096, ProtFlags::empty(), MapFlags::PRIVATE) }
        .expect("map the inaccessible page")
        .cast::<u8>();
    // SAFETY: as above.
    let _hole_reg = unsafe { Registration::new(hole, 4096) }.expect("register the page");
    c.bench_function("recovered_fault", |b| {
        let mut byte = [0u8; 1];
        // SAFETY: the source lies in the registered, inaccessible page.
        b.iter(|| unsafe { fault::read_into(black_box(hole.add(8)), &mut byte) }.expect_err("must fault"))
    });

    c.bench_function("empty_guard", |b| {
        // SAFETY: a leaf that returns a constant.
        b.iter(|| unsafe { fault::catch(|| black_box(1u64)) })
    });
}

criterion_group!(benches, guarded_access);
criterion_main!(benches);
