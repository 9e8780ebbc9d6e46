//! The ELF auxiliary vector as a typed struct.
//!
//! The kernel places `(type, value)` pairs after the NULL that ends `envp`,
//! ending with `AT_NULL`. The program's startup code (the shim) parses them
//! once and hands the values to the engine, so engine crates never ask
//! rustix's `param` module, whose answers depend on features unified across
//! the whole build (with origin's `use-explicitly-provided-auxv` it returns 0
//! in test binaries nobody initialised).
//!
//! # Safety
//!
//! [`Auxv::from_envp`] reads the process's initial stack; its caller vouches
//! that the pointer is the `envp` the kernel passed at exec.
#![allow(unsafe_code)]

use core::fmt;

use linux_raw_sys::auxvec as at;
use linux_raw_sys::general::MINSIGSTKSZ;

use crate::PAGE_SIZE;

/// The most entries kept; Linux 6.x passes about 20-30.
pub const MAX_ENTRIES: usize = 64;

/// The auxiliary vector: the raw pairs, plus typed values for the ones the
/// engine uses (with defaults where an old kernel omits them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Auxv {
    entries: [(usize, usize); MAX_ENTRIES],
    len: usize,
    /// `AT_PAGESZ`: the base page size (4096 on x86_64 if absent).
    pub page_size: usize,
    /// `AT_HWCAP`: CPU feature bits.
    pub hwcap: usize,
    /// `AT_HWCAP2`: more CPU feature bits.
    pub hwcap2: usize,
    /// `AT_MINSIGSTKSZ`: the smallest signal stack the CPU's state needs
    /// (`MINSIGSTKSZ` if absent).
    pub min_signal_stack: usize,
    /// `AT_RANDOM`: address of 16 random bytes (0 if absent).
    pub random: usize,
    /// `AT_CLKTCK`: clock ticks per second of `times(2)`.
    pub clock_ticks: usize,
    /// `AT_SYSINFO_EHDR`: address of the vDSO's ELF header (0 if absent).
    pub vdso: usize,
    /// `AT_SECURE`: whether the program runs set-user-ID or similar.
    pub secure: bool,
}

/// Why an auxiliary vector could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuxvError {
    /// More than [`MAX_ENTRIES`] entries before `AT_NULL`.
    TooManyEntries,
    /// The bytes do not hold whole `(type, value)` pairs.
    Truncated {
        /// Length of the input in bytes.
        len: usize,
    },
    /// No `AT_NULL` entry ends the vector.
    Unterminated,
}

impl fmt::Display for AuxvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuxvError::TooManyEntries => write!(f, "auxiliary vector has more than {MAX_ENTRIES} entries"),
            AuxvError::Truncated { len } => {
                write!(f, "auxiliary vector of {len} bytes is not a whole number of 16-byte entries")
            }
            AuxvError::Unterminated => write!(f, "auxiliary vector has no AT_NULL terminator"),
        }
    }
}

const WORD: usize = core::mem::size_of::<usize>();

impl Auxv {
    /// Builds the struct from `(type, value)` pairs; stops at `AT_NULL`.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (usize, usize)>) -> Result<Auxv, AuxvError> {
        let mut auxv = Auxv {
            entries: [(0, 0); MAX_ENTRIES],
            len: 0,
            page_size: PAGE_SIZE,
            hwcap: 0,
            hwcap2: 0,
            min_signal_stack: MINSIGSTKSZ as usize,
            random: 0,
            clock_ticks: 100,
            vdso: 0,
            secure: false,
        };
        for (key, value) in pairs {
            if key == at::AT_NULL as usize {
                return Ok(auxv);
            }
            let slot = auxv.entries.get_mut(auxv.len).ok_or(AuxvError::TooManyEntries)?;
            *slot = (key, value);
            auxv.len += 1;
            match u32::try_from(key).unwrap_or(u32::MAX) {
                at::AT_PAGESZ => auxv.page_size = value,
                at::AT_HWCAP => auxv.hwcap = value,
                at::AT_HWCAP2 => auxv.hwcap2 = value,
                at::AT_MINSIGSTKSZ => auxv.min_signal_stack = value,
                at::AT_RANDOM => auxv.random = value,
                at::AT_CLKTCK => auxv.clock_ticks = value,
                at::AT_SYSINFO_EHDR => auxv.vdso = value,
                at::AT_SECURE => auxv.secure = value != 0,
                _ => {}
            }
        }
        Err(AuxvError::Unterminated)
    }

    /// Parses the byte form the kernel exposes as `/proc/self/auxv`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Auxv, AuxvError> {
        if !bytes.len().is_multiple_of(2 * WORD) {
            return Err(AuxvError::Truncated { len: bytes.len() });
        }
        #[expect(clippy::host_endian_bytes, reason = "the kernel writes the auxiliary vector in the host's byte order")]
        let word = |c: &[u8]| {
            let mut w = [0u8; WORD];
            w.copy_from_slice(c);
            usize::from_ne_bytes(w)
        };
        Auxv::from_pairs(bytes.chunks_exact(2 * WORD).map(|pair| {
            let (k, v) = pair.split_at(WORD);
            (word(k), word(v))
        }))
    }

    /// Reads the vector the kernel placed after `envp`.
    ///
    /// # Safety
    ///
    /// `envp` must be the environment pointer the kernel passed to the
    /// program at exec (or a copy of that array still followed by the
    /// kernel's auxiliary vector): a NULL-terminated array of pointers,
    /// directly followed by `(type, value)` words ending in `AT_NULL`.
    pub unsafe fn from_envp(envp: *const *const u8) -> Result<Auxv, AuxvError> {
        let mut p = envp;
        // SAFETY: per the contract `envp` is NULL-terminated; we stop at the NULL.
        unsafe {
            while !(*p).is_null() {
                p = p.add(1);
            }
        }
        // SAFETY: per the contract the pairs follow the NULL and end in
        // AT_NULL; `from_pairs` stops there and the iterator reads no further.
        let mut words = unsafe { p.add(1) }.cast::<usize>();
        Auxv::from_pairs(core::iter::from_fn(move || {
            // SAFETY: as above: every pair up to and including AT_NULL is readable.
            let pair = unsafe { (*words, *words.add(1)) };
            // SAFETY: advancing within the vector; never read past AT_NULL.
            words = unsafe { words.add(2) };
            Some(pair)
        }))
    }

    /// Every entry before `AT_NULL`, in the kernel's order.
    pub fn entries(&self) -> &[(usize, usize)] {
        self.entries.get(..self.len).unwrap_or(&[])
    }

    /// The value of entry `key` (an `AT_*` constant), if present.
    pub fn get(&self, key: u32) -> Option<usize> {
        self.entries().iter().find(|&&(k, _)| k == key as usize).map(|&(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn parses_pairs_and_stops_at_null() {
        let a = Auxv::from_pairs([(6, 4096), (51, 3376), (0, 0), (6, 1)]).unwrap();
        assert_eq!(a.entries(), &[(6, 4096), (51, 3376)]);
        assert_eq!(a.page_size, 4096);
        assert_eq!(a.min_signal_stack, 3376);
        assert_eq!(a.get(at::AT_HWCAP), None);
    }

    #[test]
    fn rejects_bad_input_with_typed_errors() {
        assert_eq!(Auxv::from_pairs([(6, 4096)]), Err(AuxvError::Unterminated));
        assert_eq!(Auxv::from_bytes(&[0; 17]), Err(AuxvError::Truncated { len: 17 }));
        let many = (1..=MAX_ENTRIES + 1).map(|i| (100 + i, i)).chain([(0, 0)]);
        assert_eq!(Auxv::from_pairs(many), Err(AuxvError::TooManyEntries));
    }

    #[test]
    fn envp_walk_reads_the_vector_after_the_environment() {
        // The layout the kernel builds at exec: envp pointers, NULL, then the
        // pairs. Here the pairs are this process's own, from procfs; the
        // static binary's self-test checks the real exec-time stack.
        let bytes = std::fs::read("/proc/self/auxv").unwrap();
        let from_proc = Auxv::from_bytes(&bytes).unwrap();
        let env = [c"A=1".as_ptr() as usize, c"B=2".as_ptr() as usize, 0];
        let mut stack: std::vec::Vec<usize> = env.to_vec();
        stack.extend(from_proc.entries().iter().flat_map(|&(k, v)| [k, v]));
        stack.extend([0, 0]);
        // SAFETY: `stack` has the exec-time layout: NULL-terminated pointers
        // followed by pairs ending in AT_NULL.
        let from_envp = unsafe { Auxv::from_envp(stack.as_ptr().cast()) }.unwrap();
        assert_eq!(from_envp, from_proc);
        assert_eq!(from_envp.page_size, 4096);
        assert!(from_envp.random != 0 && from_envp.vdso != 0 && from_envp.min_signal_stack >= 2048);
    }
}
