//! The guard trampoline, its landing pad and the per-thread guard stack, in
//! assembly.
//!
//! `snowfall_sys_guard_call(body, arg, frame)` saves the callee-saved
//! registers and the stack pointer in `frame`, pushes `frame` on the
//! thread's guard stack (a thread-local pointer), calls `body(arg)`, pops the
//! frame and returns 0. If the fault handler finds a recoverable fault while
//! `frame` is the innermost guard, it rewrites the interrupted context so
//! that `rt_sigreturn` resumes at `snowfall_sys_guard_landing` with `rbx =
//! frame` and `rsp = frame.rsp`; the landing pad pops the frame, restores the
//! callee-saved registers and returns 1 from `snowfall_sys_guard_call`.
//!
//! Because the save and the call happen inside one assembly routine, Rust
//! sees an ordinary function that returns once: there is no
//! `returns_twice` problem as with `setjmp`. The frames of `body` that the
//! landing abandons are never unwound: see the contract on
//! [`super::catch`].
//!
//! The thread-local uses the initial-exec TLS model (`@GOTTPOFF`), which works
//! in executables (static or PIE, with or without libc) and in shared objects
//! loaded at program start.
//!
//! # Safety
//!
//! The assembly follows the System V x86_64 ABI at its entry and exits:
//! callee-saved registers (`rbx`, `rbp`, `r12`-`r15`) and `rsp` are restored
//! on both paths, the stack is 16-byte aligned at the inner call, and the
//! direction flag is untouched. `frame` must point to a [`GuardFrame`] that
//! outlives the call.
#![allow(unsafe_code)]

use core::ffi::c_void;
use core::mem::offset_of;

use static_assertions::const_assert_eq;

/// What the trampoline saves, and what the handler fills in on a fault. The
/// field offsets are used by the assembly below.
#[repr(C)]
#[derive(Debug)]
pub(super) struct GuardFrame {
    rbx: u64,
    rbp: u64,
    r12: u64,
    r13: u64,
    r14: u64,
    r15: u64,
    /// The stack pointer the landing pad resumes with.
    pub(super) rsp: u64,
    /// The enclosing guard of this thread, or null.
    prev: *mut GuardFrame,
    /// Written by the handler: the faulting address.
    pub(super) fault_addr: usize,
    /// Written by the handler: the signal number.
    pub(super) fault_signal: u32,
}
const_assert_eq!(offset_of!(GuardFrame, rbx), 0);
const_assert_eq!(offset_of!(GuardFrame, rbp), 8);
const_assert_eq!(offset_of!(GuardFrame, r12), 16);
const_assert_eq!(offset_of!(GuardFrame, r15), 40);
const_assert_eq!(offset_of!(GuardFrame, rsp), 48);
const_assert_eq!(offset_of!(GuardFrame, prev), 56);

impl GuardFrame {
    pub(super) const fn new() -> GuardFrame {
        GuardFrame {
            rbx: 0,
            rbp: 0,
            r12: 0,
            r13: 0,
            r14: 0,
            r15: 0,
            rsp: 0,
            prev: core::ptr::null_mut(),
            fault_addr: 0,
            fault_signal: 0,
        }
    }
}

core::arch::global_asm!(
    r#"
    .pushsection .text.snowfall_sys_guard,"ax",@progbits

    .p2align 4
    .globl snowfall_sys_guard_call
    .hidden snowfall_sys_guard_call
    .type snowfall_sys_guard_call,@function
snowfall_sys_guard_call:
    .cfi_startproc
    mov qword ptr [rdx], rbx
    mov qword ptr [rdx + 8], rbp
    mov qword ptr [rdx + 16], r12
    mov qword ptr [rdx + 24], r13
    mov qword ptr [rdx + 32], r14
    mov qword ptr [rdx + 40], r15
    sub rsp, 8
    .cfi_adjust_cfa_offset 8
    mov qword ptr [rdx + 48], rsp
    mov rbx, rdx
    mov rax, qword ptr [rip + snowfall_sys_guard_top@GOTTPOFF]
    mov rcx, qword ptr fs:[rax]
    mov qword ptr [rbx + 56], rcx
    mov qword ptr fs:[rax], rbx
    mov rax, rdi
    mov rdi, rsi
    call rax
    mov rcx, qword ptr [rbx + 56]
    mov rax, qword ptr [rip + snowfall_sys_guard_top@GOTTPOFF]
    mov qword ptr fs:[rax], rcx
    mov rbx, qword ptr [rbx]
    xor eax, eax
    add rsp, 8
    .cfi_adjust_cfa_offset -8
    ret
    .cfi_endproc
    .size snowfall_sys_guard_call, . - snowfall_sys_guard_call

    .p2align 4
    .globl snowfall_sys_guard_landing
    .hidden snowfall_sys_guard_landing
    .type snowfall_sys_guard_landing,@function
snowfall_sys_guard_landing:
    mov rcx, qword ptr [rbx + 56]
    mov rax, qword ptr [rip + snowfall_sys_guard_top@GOTTPOFF]
    mov qword ptr fs:[rax], rcx
    mov rbp, qword ptr [rbx + 8]
    mov r12, qword ptr [rbx + 16]
    mov r13, qword ptr [rbx + 24]
    mov r14, qword ptr [rbx + 32]
    mov r15, qword ptr [rbx + 40]
    mov rbx, qword ptr [rbx]
    mov eax, 1
    add rsp, 8
    ret
    .size snowfall_sys_guard_landing, . - snowfall_sys_guard_landing

    .p2align 4
    .globl snowfall_sys_guard_current
    .hidden snowfall_sys_guard_current
    .type snowfall_sys_guard_current,@function
snowfall_sys_guard_current:
    mov rax, qword ptr [rip + snowfall_sys_guard_top@GOTTPOFF]
    mov rax, qword ptr fs:[rax]
    ret
    .size snowfall_sys_guard_current, . - snowfall_sys_guard_current

    .section .tbss,"awT",@nobits
    .p2align 3
    .type snowfall_sys_guard_top,@object
snowfall_sys_guard_top:
    .zero 8
    .size snowfall_sys_guard_top, 8

    .popsection
"#
);

unsafe extern "C" {
    /// Runs `body(arg)` as a guard; 0 if it returned, 1 if a fault was recovered.
    pub(super) fn snowfall_sys_guard_call(
        body: unsafe extern "C" fn(*mut c_void),
        arg: *mut c_void,
        frame: *mut GuardFrame,
    ) -> u32;
    /// The innermost guard frame of the calling thread, or null.
    pub(super) fn snowfall_sys_guard_current() -> *mut GuardFrame;
    /// The landing pad; never called, only resumed at by the fault handler.
    pub(super) fn snowfall_sys_guard_landing();
}
