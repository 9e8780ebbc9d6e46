//! Nothing of its own: this crate exists so that Cargo (and crate2nix after
//! it) resolves core, alloc and compiler_builtins from the toolchain's
//! sources into one lock file and one Cargo.nix.
#![no_std]
