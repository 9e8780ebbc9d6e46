//! The binary is fully static and libc-free: an ET_EXEC with no program
//! interpreter, no dynamic section, no undefined symbols and no glibc symbol.

mod common;

use object::elf;
use object::read::elf::{ElfFile64, FileHeader, ProgramHeader};
use object::{Endianness, Object, ObjectSection, ObjectSymbol};

#[test]
fn the_binary_is_static_and_libc_free() {
    let path = common::snowfall_bin();
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let file = ElfFile64::<Endianness>::parse(&*data).expect("an ELF64 file");
    let endian = file.endian();

    assert_eq!(file.elf_header().e_type(endian), elf::ET_EXEC, "{}: not a non-PIE executable", path.display());
    for ph in file.elf_program_headers() {
        let kind = ph.p_type(endian);
        assert_ne!(kind, elf::PT_INTERP, "{}: has a program interpreter", path.display());
        assert_ne!(kind, elf::PT_DYNAMIC, "{}: has a dynamic segment", path.display());
    }
    for section in file.sections() {
        let name = section.name().unwrap_or_default();
        assert!(
            !matches!(name, ".interp" | ".dynamic" | ".dynsym" | ".dynstr" | ".gnu.version" | ".gnu.version_r"),
            "{}: has section {name}",
            path.display()
        );
    }
    let mut symbols = 0;
    for sym in file.symbols().chain(file.dynamic_symbols()) {
        symbols += 1;
        let name = sym.name().unwrap_or_default();
        // origin refers to `_DYNAMIC` weakly to find its own dynamic section
        // when it runs as a static PIE; linked without one, the reference
        // resolves to 0, which is what "no dynamic section" means.
        let resolved_absent = name == "_DYNAMIC" && sym.is_local() && sym.address() == 0;
        assert!(
            !sym.is_undefined() || name.is_empty() || resolved_absent,
            "{}: undefined symbol {name}",
            path.display()
        );
        assert!(
            !name.contains("GLIBC") && !name.starts_with("__libc_") && name != "_dl_relocate_static_pie",
            "{}: glibc symbol {name}",
            path.display()
        );
    }
    // An empty symbol table would make the checks above vacuous.
    assert!(symbols > 100, "{}: only {symbols} symbols (stripped?)", path.display());
    assert!(file.symbols().any(|s| s.name() == Ok("origin_main")), "origin_main not found");
}
