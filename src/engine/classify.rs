//! Section kinds: what each section of an object is for Ksplice (the
//! entry layouts of the kernel's tables are in [`super::tables`]).
//!
//! Every section of an input object gets a [`Kind`] that decides how the
//! transforms treat it: text is matched and patched, read-only data is
//! matched, writable data may not change, tables are split into entries,
//! and ignored sections (init code, debug info, notes) are left out.

use crate::engine::elf::Section;
use crate::engine::tables::{is_table_other, table};

/// What a section is, for Ksplice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Executable code.
    Text,
    /// Read-only data.
    Rodata,
    /// A merged string section: one span per string.
    String,
    /// Writable data (`.data`, `.bss`).
    Data,
    /// An export table entry (`___ksymtab+sym`).
    Export,
    /// The BUG/WARN table.
    BugTable,
    /// A table the kernel or module loader processes (alternatives, jump
    /// labels, ...): its entries are kept alongside the code they refer to.
    Special,
    /// Left out: init/exit code and data, debug info, notes, per-cpu data.
    Ignored,
    /// Ksplice metadata (`.ksplice_*`).
    Ksplice,
    /// Patch-author hooks (`.ksplice_call_*`).
    KspliceCall,
    /// Symbols the core extracts at load (`.ksplice_extract`).
    KspliceExtract,
}

fn starts(name: &str, prefixes: &[&str]) -> bool {
    prefixes.iter().any(|p| name.starts_with(p))
}

/// Classifies a section by name, falling back on its flags for names this
/// table does not know.
pub fn kind(sec: &Section) -> Kind {
    let name = sec.name.as_str();
    if name.starts_with(".ksplice_call") {
        return Kind::KspliceCall;
    }
    if name.starts_with(".ksplice_extract") {
        return Kind::KspliceExtract;
    }
    if name.starts_with(".ksplice") {
        return Kind::Ksplice;
    }
    if starts(
        name,
        &[
            ".init",
            ".exitcall",
            ".initcall",
            ".con_initcall",
            ".security_initcall",
            ".x86_cpu_dev.init",
            ".debug",
            ".eh_frame",
            ".note",
            ".comment",
            ".discard",
            ".data..percpu",
            ".data.percpu",
            ".orc_unwind",
            ".orc_header",
            ".modinfo",
            "__param",
            "__modver",
            "__patchable_function_entries",
            "__mcount_loc",
            "___kcrctab",
            "__kcrctab",
            "__dyndbg",
            ".printk_index",
            ".pci_fixup_",
            ".builtin_fw",
            ".vdso",
            ".vsyscall",
            ".tbss",
            ".tdata",
            ".llvm",
            ".BTF",
            // Linux 6.5+: exports for modpost only (see engine::exports)
            ".export_symbol",
        ],
    ) {
        return Kind::Ignored;
    }
    if name.starts_with(".exit.text") {
        return Kind::Text;
    }
    if name.starts_with(".exit.data") {
        return Kind::Data;
    }
    if name == "__bug_table" {
        return Kind::BugTable;
    }
    if name.starts_with("___ksymtab") {
        return Kind::Export;
    }
    if name == "__ksymtab_strings" {
        return Kind::String;
    }
    if table(name).is_some() || is_table_other(name) {
        return Kind::Special;
    }
    if sec.sh_type == object::elf::SHT_GROUP {
        return Kind::Special;
    }
    if !sec.is_alloc() {
        return Kind::Ignored;
    }
    if sec.is_exec() {
        return Kind::Text;
    }
    let merge_strings = u64::from(object::elf::SHF_MERGE | object::elf::SHF_STRINGS);
    if sec.flags & merge_strings == merge_strings && sec.entsize == 1 {
        return Kind::String;
    }
    if sec.is_write() || sec.sh_type == object::elf::SHT_NOBITS {
        return Kind::Data;
    }
    Kind::Rodata
}

#[cfg(test)]
mod tests {
    use super::*;
    use object::elf;

    fn sec(name: &str, flags: u32, entsize: u64) -> Section {
        let mut s = Section::new_progbits(name, u64::from(flags), 1);
        s.entsize = entsize;
        s
    }

    #[test]
    fn kinds_follow_names_and_flags() {
        let ax = elf::SHF_ALLOC | elf::SHF_EXECINSTR;
        let wa = elf::SHF_ALLOC | elf::SHF_WRITE;
        let ams = elf::SHF_ALLOC | elf::SHF_MERGE | elf::SHF_STRINGS;
        assert_eq!(kind(&sec(".text.foo", ax, 0)), Kind::Text);
        assert_eq!(kind(&sec(".noinstr.text", ax, 0)), Kind::Text);
        assert_eq!(kind(&sec(".init.text", ax, 0)), Kind::Ignored);
        assert_eq!(kind(&sec(".rodata.str1.1", ams, 1)), Kind::String);
        assert_eq!(kind(&sec(".rodata.foo", elf::SHF_ALLOC, 0)), Kind::Rodata);
        assert_eq!(kind(&sec(".data.foo", wa, 0)), Kind::Data);
        assert_eq!(kind(&sec("__bug_table", wa, 0)), Kind::BugTable);
        assert_eq!(
            kind(&sec("___ksymtab_gpl+foo", elf::SHF_ALLOC, 0)),
            Kind::Export
        );
        assert_eq!(
            kind(&sec(".altinstructions", elf::SHF_ALLOC, 0)),
            Kind::Special
        );
        assert_eq!(kind(&sec(".altinstr_replacement", ax, 0)), Kind::Special);
        for rc in ["runtime_ptr_USER_PTR_MAX", "runtime_shift_d_hash_shift"] {
            assert_eq!(kind(&sec(rc, elf::SHF_ALLOC, 0)), Kind::Special, "{rc}");
        }
        assert_eq!(kind(&sec(".discard.addressable", wa, 0)), Kind::Ignored);
        assert_eq!(kind(&sec(".comment", 0, 1)), Kind::Ignored);
        assert_eq!(
            kind(&sec(".ksplice_call_pre_apply", wa, 0)),
            Kind::KspliceCall
        );
    }
}
