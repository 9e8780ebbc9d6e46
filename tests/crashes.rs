//! How the static binary dies: panics exit 101 with their message; faults
//! that fault recovery must not swallow kill the process with their signal.

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
