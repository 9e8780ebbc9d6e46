//! Running out of memory. Allocations whose size comes from input (the
//! arguments, `get`'s output, `bench`'s `--keys`; `load` holds at most one
//! line, which its own bound keeps small) are
//! fallible: when the allocator returns null they become an
//! [`OutOfMemory`] error that the command reports in one line on stderr
//! and exit status 3. Fixed-size allocations stay infallible: if one of
//! those fails, the panic handler reports it the same way
//! (`snowfall_rt`'s `panic.rs`).

use alloc::vec::Vec;
use core::fmt;

use snowfall_rt::errln;

/// Exit status for out of memory (the database-error status).
pub const STATUS: i32 = snowfall_rt::EXIT_OUT_OF_MEMORY;
const _: () = assert!(STATUS == crate::kv::DB_ERROR);

/// An allocation sized from input failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfMemory {
    /// What it was for.
    pub what: &'static str,
    /// The bytes it needed.
    pub bytes: usize,
}

impl fmt::Display for OutOfMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "out of memory: cannot allocate {} bytes for {}", self.bytes, self.what)
    }
}

impl OutOfMemory {
    /// Reports the error on stderr (one line); returns [`STATUS`].
    pub fn report(self) -> i32 {
        errln!("snowfall: {self}");
        STATUS
    }
}

/// Makes room in `v` for `additional` more elements, or says how many
/// bytes it would have needed.
pub fn reserve<T>(v: &mut Vec<T>, additional: usize, what: &'static str) -> Result<(), OutOfMemory> {
    v.try_reserve(additional).map_err(|_| OutOfMemory {
        what,
        bytes: v.len().saturating_add(additional).saturating_mul(core::mem::size_of::<T>()),
    })
}

/// An empty vector with room for exactly `capacity` elements.
pub fn with_capacity<T>(capacity: usize, what: &'static str) -> Result<Vec<T>, OutOfMemory> {
    let mut v = Vec::new();
    v.try_reserve_exact(capacity)
        .map_err(|_| OutOfMemory { what, bytes: capacity.saturating_mul(core::mem::size_of::<T>()) })?;
    Ok(v)
}
