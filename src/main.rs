//! `snowfall`: the SnowfallDB command line, a fully static binary with no
//! libc, started by origin (`snowfall_rt` is the runtime shim).
#![no_std]
#![no_main]
#![deny(unsafe_code)]
#![allow(unreachable_pub, reason = "a binary has no public API: `pub` marks what its modules share")]

extern crate alloc;

mod cli;
mod debug;
mod guest;
mod kv;
mod mapping;
mod oom;
mod selftest;
mod tty;

use alloc::vec::Vec;

/// The program's entry, called by origin after the `.init_array` functions.
#[allow(unsafe_code, reason = "the entry point origin calls by name")]
#[unsafe(no_mangle)]
unsafe fn origin_main(argc: usize, argv: *mut *mut u8, _envp: *mut *mut u8) -> i32 {
    // The first allocation of the process, sized by the command line.
    let mut args: Vec<&[u8]> = match oom::with_capacity(argc, "the argument list") {
        Ok(args) => args,
        Err(e) => return e.report(),
    };
    args.extend(snowfall_rt::env::args().map(|a| a.to_bytes()));
    if args.len() != argc {
        snowfall_rt::errln!("snowfall: start-up recorded {} arguments, origin passed {argc}", args.len());
        return cli::FAILURE;
    }
    cli::run(&args, cli::Startup { argv: argv.cast_const().cast() })
}
