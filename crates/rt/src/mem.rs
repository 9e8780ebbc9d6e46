//! `memcpy` and `memmove` for the static binary, tuned for small copies.
//!
//! With no libc, origin supplies these symbols, using compiler_builtins'
//! x86_64 code: three `rep movs` per call, whose start-up costs dominate the
//! many short copies the engine makes (keys, values, slots): `perf` put
//! `memcpy` at about 30 % of an insert workload's CPU. The binary's build
//! script links with `--wrap=memcpy --wrap=memmove`, so every call from our
//! code (and from every other crate, origin's own object excepted) reaches
//! `__wrap_memcpy` / `__wrap_memmove` here instead. Up to 64 bytes they
//! copy with a few unaligned loads and stores (all loads before any store,
//! so the same code serves `memmove`); longer copies use one `rep movsb`
//! (fast on CPUs with ERMS), except an overlapping `memmove` to a higher
//! address, which goes backwards 16 bytes at a time.
//!
//! # Safety
//!
//! These functions have the C contracts: `dest` and `src` valid for `n`
//! bytes, not overlapping for `memcpy`. They must not call `memcpy` or
//! `memmove` themselves (the compiler could turn a copy loop into such a
//! call, recursing forever), so they use only fixed-size unaligned
//! reads/writes and inline assembly.
#![allow(unsafe_code)]

use core::arch::asm;
use core::ptr::{read_unaligned, write_unaligned};

/// Copies `n <= 64` bytes; every load happens before any store, so the
/// ranges may overlap.
///
/// # Safety
///
/// `src` readable and `dest` writable for `n` bytes, `n <= 64`.
#[inline(always)]
unsafe fn copy_small(dest: *mut u8, src: *const u8, n: usize) {
    // SAFETY: (all arms) every offset read or written is below `n`, and
    // the caller vouches for `n` bytes at both pointers.
    unsafe {
        if n >= 32 {
            let a = read_unaligned(src.cast::<[u64; 2]>());
            let b = read_unaligned(src.add(16).cast::<[u64; 2]>());
            let c = read_unaligned(src.add(n - 32).cast::<[u64; 2]>());
            let d = read_unaligned(src.add(n - 16).cast::<[u64; 2]>());
            write_unaligned(dest.cast::<[u64; 2]>(), a);
            write_unaligned(dest.add(16).cast::<[u64; 2]>(), b);
            write_unaligned(dest.add(n - 32).cast::<[u64; 2]>(), c);
            write_unaligned(dest.add(n - 16).cast::<[u64; 2]>(), d);
        } else if n >= 16 {
            let a = read_unaligned(src.cast::<[u64; 2]>());
            let b = read_unaligned(src.add(n - 16).cast::<[u64; 2]>());
            write_unaligned(dest.cast::<[u64; 2]>(), a);
            write_unaligned(dest.add(n - 16).cast::<[u64; 2]>(), b);
        } else if n >= 8 {
            let a = read_unaligned(src.cast::<u64>());
            let b = read_unaligned(src.add(n - 8).cast::<u64>());
            write_unaligned(dest.cast::<u64>(), a);
            write_unaligned(dest.add(n - 8).cast::<u64>(), b);
        } else if n >= 4 {
            let a = read_unaligned(src.cast::<u32>());
            let b = read_unaligned(src.add(n - 4).cast::<u32>());
            write_unaligned(dest.cast::<u32>(), a);
            write_unaligned(dest.add(n - 4).cast::<u32>(), b);
        } else if n > 0 {
            let (a, b, c) = (*src, *src.add(n / 2), *src.add(n - 1));
            *dest = a;
            *dest.add(n / 2) = b;
            *dest.add(n - 1) = c;
        }
    }
}

/// Copies `n` bytes forwards with `rep movsb`.
///
/// # Safety
///
/// As `memcpy`; forwards is also right for a `memmove` whose `dest` is
/// below `src`.
#[inline(always)]
unsafe fn rep_movsb(dest: *mut u8, src: *const u8, n: usize) {
    // SAFETY: the caller vouches for both ranges; the direction flag is
    // clear (the ABI guarantees it at calls).
    unsafe {
        asm!("rep movsb", inout("rcx") n => _, inout("rdi") dest => _, inout("rsi") src => _, options(nostack, preserves_flags));
    }
}

/// `memcpy`, reached through the linker's `--wrap=memcpy`.
///
/// # Safety
///
/// The C contract: both ranges valid for `n` bytes, not overlapping.
#[unsafe(no_mangle)]
unsafe extern "C" fn __wrap_memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: forwarded contract.
    unsafe {
        if n <= 64 {
            copy_small(dest, src, n);
        } else {
            rep_movsb(dest, src, n);
        }
    }
    dest
}

/// `memmove`, reached through the linker's `--wrap=memmove`.
///
/// # Safety
///
/// The C contract: both ranges valid for `n` bytes; they may overlap.
#[unsafe(no_mangle)]
unsafe extern "C" fn __wrap_memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: forwarded contract; `copy_small` loads before it stores.
    unsafe {
        if n <= 64 {
            copy_small(dest, src, n);
        } else if dest.addr().wrapping_sub(src.addr()) >= n {
            // `dest` below `src`, or far enough above: forwards is safe.
            rep_movsb(dest, src, n);
        } else {
            // `dest` overlaps above `src` (a node's slots shifting up for an
            // insert): copy backwards, 16 bytes at a time from the end. A
            // backwards `rep movsb` would do it a byte at a time (no fast
            // string path runs backwards): it was 18 % of an insert
            // workload's CPU. Each chunk is loaded before it is stored and
            // later loads are lower than every store so far; the first 16
            // bytes are loaded before anything is stored and stored last,
            // covering the part below the last whole chunk.
            asm!(
                "movdqu {head}, [{src}]",
                "2:",
                "sub {n}, 16",
                "movdqu {chunk}, [{src} + {n}]",
                "movdqu [{dst} + {n}], {chunk}",
                "cmp {n}, 16",
                "ja 2b",
                "movdqu [{dst}], {head}",
                src = in(reg) src,
                dst = in(reg) dest,
                n = inout(reg) n => _,
                head = out(xmm_reg) _,
                chunk = out(xmm_reg) _,
                options(nostack)
            );
        }
    }
    dest
}
