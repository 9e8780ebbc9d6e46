//! Link the `snowfall` binary fully static with no C runtime and no libc:
//! origin provides `_start`, rustix makes system calls directly.
//!
//! These arguments apply to the binary only (`rustc-link-arg-bins`): put in
//! `.cargo/config.toml` rustflags they would also reach build scripts and
//! proc-macros, which need the system's C runtime.
fn main() {
    // `--wrap`: our calls to memcpy/memmove go to snowfall-rt's versions,
    // which are faster than origin's for short copies (crates/rt/src/mem.rs).
    for arg in ["-nostartfiles", "-nostdlib", "-static", "-no-pie", "-Wl,--wrap=memcpy", "-Wl,--wrap=memmove"] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
