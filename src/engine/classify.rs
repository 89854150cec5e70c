//! Section kinds and the entry layout of Linux 6.1 x86-64 table sections.
//!
//! Every section of an input object gets a [`Kind`] that decides how the
//! transforms treat it: text is matched and patched, read-only data is
//! matched, writable data may not change, tables are split into entries,
//! and ignored sections (init code, debug info, notes) are left out.

use crate::engine::elf::Section;

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

/// Layout of one entry of a table section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    /// Section name (or prefix, see [`Table::prefix`]).
    pub name: &'static str,
    /// True when `name` is a prefix (`___ksymtab+` sections, one per export).
    pub prefix: bool,
    /// Size of one entry.
    pub entry_size: u64,
    /// Offset of the field that points at the code the entry is about.
    pub addr_offset: Option<u64>,
    /// Offset of a second pointer (replacement, fixup, name), if any.
    pub other_offset: Option<u64>,
    /// The section the second pointer refers into, when it is a dedicated one.
    pub other_sect: Option<&'static str>,
    /// Offset of a one-byte length of what the second pointer points to; a
    /// zero length makes that pointer meaningless (it then points at
    /// whatever follows, often another entry's piece).
    pub other_len: Option<u64>,
}

const fn t(
    name: &'static str,
    entry_size: u64,
    addr: Option<u64>,
    other: Option<u64>,
    other_sect: Option<&'static str>,
) -> Table {
    Table {
        name,
        prefix: false,
        entry_size,
        addr_offset: addr,
        other_offset: other,
        other_sect,
        other_len: None,
    }
}

/// Table sections of Linux 6.1 on x86-64 (entry sizes from the kernel's
/// structure definitions; all pointers are 32-bit and relative to the field,
/// except `.parainstructions`).
pub const TABLES: &[Table] = &[
    // struct alt_instr { s32 instr_offset, repl_offset; u16 cpuid; u8 instrlen, replacementlen; } __packed
    Table {
        other_len: Some(11),
        ..t(
            ".altinstructions",
            12,
            Some(0),
            Some(4),
            Some(".altinstr_replacement"),
        )
    },
    // struct bug_entry { s32 bug_addr_disp, file_disp; u16 line, flags; }
    t("__bug_table", 12, Some(0), Some(4), None),
    // struct exception_table_entry { int insn, fixup, data; }
    t("__ex_table", 12, Some(0), Some(4), None),
    // struct paravirt_patch_site { u8 *instr; u8 type, len; }
    t(".parainstructions", 16, Some(0), None, None),
    // s32 lock prefix addresses
    t(".smp_locks", 4, Some(0), None, None),
    // struct jump_entry { s32 code, target; long key; }
    t("__jump_table", 16, Some(0), Some(4), None),
    // struct static_call_site { s32 addr, key; }
    t(".static_call_sites", 8, Some(0), None, None),
    t(".retpoline_sites", 4, Some(0), None, None),
    t(".return_sites", 4, Some(0), None, None),
    t(".ibt_endbr_seal", 4, Some(0), None, None),
    // struct kernel_symbol { int value_offset, name_offset, namespace_offset; }
    Table {
        name: "___ksymtab+",
        prefix: true,
        entry_size: 12,
        addr_offset: Some(0),
        other_offset: Some(4),
        other_sect: None,
        other_len: None,
    },
    Table {
        name: "___ksymtab_gpl+",
        prefix: true,
        entry_size: 12,
        addr_offset: Some(0),
        other_offset: Some(4),
        other_sect: None,
        other_len: None,
    },
];

impl Table {
    /// True when the entry at `start` of `sec` has a second pointer that
    /// points to nothing (a zero-length piece).
    pub fn other_is_empty(&self, sec: &Section, start: u64) -> bool {
        self.other_len
            .is_some_and(|off| sec.read_uint(start + off, 1) == Some(0))
    }
}

/// The table layout for a section name, if it is a table.
pub fn table(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| {
        if t.prefix {
            name.starts_with(t.name)
        } else {
            name == t.name
        }
    })
}

/// True when `name` is the "other" section of some table (for example
/// `.altinstr_replacement`).
pub fn is_table_other(name: &str) -> bool {
    TABLES.iter().any(|t| t.other_sect == Some(name))
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
        assert_eq!(kind(&sec(".discard.addressable", wa, 0)), Kind::Ignored);
        assert_eq!(kind(&sec(".comment", 0, 1)), Kind::Ignored);
        assert_eq!(
            kind(&sec(".ksplice_call_pre_apply", wa, 0)),
            Kind::KspliceCall
        );
    }

    #[test]
    fn ksymtab_tables_match_by_prefix() {
        assert_eq!(table("___ksymtab+printk").map(|t| t.entry_size), Some(12));
        assert!(table("___ksymtab").is_none());
        assert_eq!(table("__jump_table").map(|t| t.entry_size), Some(16));
    }
}
