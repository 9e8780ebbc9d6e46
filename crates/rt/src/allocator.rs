//! The global allocator: dlmalloc over rustix's `mmap`. It has one global
//! lock, which is fine for the shim (argument parsing, thread start-up); the
//! engine keeps allocation off its hot paths.

#[global_allocator]
static GLOBAL: rustix_dlmalloc::GlobalDlmalloc = rustix_dlmalloc::GlobalDlmalloc;
