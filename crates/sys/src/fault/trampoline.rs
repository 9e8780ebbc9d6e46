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
//! `snowfall_sys_guarded_copy(dst, src, frame, len)` is the same guard with a
//! `rep movsb` as its body: the copy out of pool memory that optimistic
//! readers make all the time, without the indirect call and the closure
//! (about 1 ns over an unguarded copy instead of 3; docs/BENCHMARKS.md). Both
//! share the entry and exit sequences (assembler macros) and the landing pad.
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

core::arch::global_asm!(
    r#"
    .pushsection .text.snowfall_sys_guard,"ax",@progbits

    // Enter a guard whose frame is in rdx: save the callee-saved registers
    // and the stack pointer, then push the frame on this thread's guard
    // stack. Leaves rbx = frame; clobbers rax and r8 only (rdi, rsi, rcx
    // still hold the caller's arguments).
    .macro SNOWFALL_GUARD_ENTER
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
    mov r8, qword ptr fs:[rax]
    mov qword ptr [rbx + 56], r8
    mov qword ptr fs:[rax], rbx
    .endm

    // Leave the guard normally: pop the frame, restore rbx, return 0.
    .macro SNOWFALL_GUARD_LEAVE
    mov r8, qword ptr [rbx + 56]
    mov rax, qword ptr [rip + snowfall_sys_guard_top@GOTTPOFF]
    mov qword ptr fs:[rax], r8
    mov rbx, qword ptr [rbx]
    xor eax, eax
    add rsp, 8
    .cfi_adjust_cfa_offset -8
    ret
    .endm

    // u32 snowfall_sys_guard_call(body, arg, frame): body(arg) in a guard.
    .p2align 4
    .globl snowfall_sys_guard_call
    .hidden snowfall_sys_guard_call
    .type snowfall_sys_guard_call,@function
snowfall_sys_guard_call:
    .cfi_startproc
    SNOWFALL_GUARD_ENTER
    mov rax, rdi
    mov rdi, rsi
    call rax
    SNOWFALL_GUARD_LEAVE
    .cfi_endproc
    .size snowfall_sys_guard_call, . - snowfall_sys_guard_call

    // u32 snowfall_sys_guarded_copy(dst, src, frame, len): the most common
    // guard, a copy out of pool memory, without the indirect call.
    .p2align 4
    .globl snowfall_sys_guarded_copy
    .hidden snowfall_sys_guarded_copy
    .type snowfall_sys_guarded_copy,@function
snowfall_sys_guarded_copy:
    .cfi_startproc
    SNOWFALL_GUARD_ENTER
    rep movsb
    SNOWFALL_GUARD_LEAVE
    .cfi_endproc
    .size snowfall_sys_guarded_copy, . - snowfall_sys_guarded_copy

    // Resumed at by the fault handler with rbx = frame, rsp = frame.rsp:
    // pop the frame, restore the callee-saved registers, return 1.
    .p2align 4
    .globl snowfall_sys_guard_landing
    .hidden snowfall_sys_guard_landing
    .type snowfall_sys_guard_landing,@function
snowfall_sys_guard_landing:
    mov r8, qword ptr [rbx + 56]
    mov rax, qword ptr [rip + snowfall_sys_guard_top@GOTTPOFF]
    mov qword ptr fs:[rax], r8
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

    // GuardFrame* snowfall_sys_guard_current(void)
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
    /// Copies `len` bytes from `src` to `dst` (`rep movsb`) as a guard; 0 if
    /// it completed, 1 if a fault was recovered.
    pub(super) fn snowfall_sys_guarded_copy(dst: *mut u8, src: *const u8, frame: *mut GuardFrame, len: usize) -> u32;
    /// The innermost guard frame of the calling thread, or null.
    pub(super) fn snowfall_sys_guard_current() -> *mut GuardFrame;
    /// The landing pad; never called, only resumed at by the fault handler.
    pub(super) fn snowfall_sys_guard_landing();
}
