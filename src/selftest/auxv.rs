//! Self-check of the auxiliary vector the start-up code parsed from the
//! exec-time stack, against the kernel's own copy in `/proc/self/auxv`.

use alloc::string::String;

use snowfall_sys::PAGE_SIZE;
use snowfall_sys::auxv::Auxv;

use super::{Outcome, ensure, read_file};

const PROC_AUXV: &str = "/proc/self/auxv";

pub fn matches_procfs() -> Outcome {
    let ours = snowfall_rt::env::auxv().ok_or_else(|| String::from("start-up could not parse the auxiliary vector"))?;
    let kernel = Auxv::from_bytes(&read_file(PROC_AUXV)?).map_err(|e| alloc::format!("{PROC_AUXV}: {e}"))?;
    ensure(ours.entries() == kernel.entries(), || {
        alloc::format!("start-up parsed {:?}, the kernel says {:?}", ours.entries(), kernel.entries())
    })?;
    ensure(ours.page_size == PAGE_SIZE, || alloc::format!("AT_PAGESZ is {}, expected {PAGE_SIZE}", ours.page_size))?;
    ensure(ours.random != 0 && ours.vdso != 0, || String::from("AT_RANDOM or AT_SYSINFO_EHDR missing"))?;
    Ok(alloc::format!(
        "{} entries equal; AT_PAGESZ {}, AT_MINSIGSTKSZ {}, AT_HWCAP {:#x}, AT_HWCAP2 {:#x}",
        ours.entries().len(),
        ours.page_size,
        ours.min_signal_stack,
        ours.hwcap,
        ours.hwcap2
    ))
}
