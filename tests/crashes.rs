//! How the static binary dies: panics exit 101 with their message; a
//! start-up that origin cannot complete exits 3 saying so; faults that
//! fault recovery must not swallow kill the process with their signal.

mod common;

use std::os::unix::process::ExitStatusExt;

use common::{run, stderr};

#[test]
fn a_panic_prints_its_message_and_exits_101() {
    let out = run(&["debug", "panic"]);
    assert_eq!(out.status.code(), Some(101), "{out:?}");
    let err = stderr(&out);
    assert!(err.contains("panicked at") && err.contains("deliberate panic requested"), "{err}");
}

#[test]
fn a_panic_on_another_thread_exits_101() {
    let out = run(&["debug", "thread-panic"]);
    assert_eq!(out.status.code(), Some(101), "{out:?}");
    assert!(stderr(&out).contains("deliberate panic on a spawned thread"), "{}", stderr(&out));
}

#[test]
fn an_unguarded_fault_in_a_registered_range_dies_by_sigsegv() {
    let out = run(&["debug", "segv-unguarded"]);
    assert_eq!(out.status.signal(), Some(11), "{out:?}");
}

#[test]
fn a_guarded_fault_outside_every_range_dies_by_sigsegv() {
    let out = run(&["debug", "segv-unregistered"]);
    assert_eq!(out.status.signal(), Some(11), "{out:?}");
}

#[test]
fn an_unguarded_sigbus_dies_by_sigbus() {
    let out = run(&["debug", "sigbus-unguarded"]);
    assert_eq!(out.status.signal(), Some(7), "{out:?}");
}

#[test]
fn an_unlimited_stack_is_a_failed_start_not_a_panic() {
    // origin 0.26's start-up reads the stack limit before any of our code
    // runs and unwraps it as a number: with `ulimit -s unlimited` it
    // panics, which the panic handler reports as a failed start.
    let out = std::process::Command::new("sh")
        .args(["-c", "ulimit -s unlimited || exit 99; exec \"$0\" --version"])
        .arg(common::snowfall_bin())
        .output()
        .expect("start sh");
    if out.status.code() == Some(99) {
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"skipped: the stack limit cannot be raised to unlimited here\n",
        );
        return;
    }
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("snowfall: cannot start: origin's start-up failed at "), "{err}");
}
