//! The kernel's table sections and the layout of their entries: the one
//! place a table layout is defined (Linux 6.1, x86-64).
//!
//! A table section (alternatives, the BUG table, exception table, jump
//! labels, static calls, retpoline/return sites, exports, ...) is a list of
//! fixed-size entries, each pointing at the code it is about and sometimes
//! at a second place (a replacement, a fixup, a name). The engine splits
//! such sections into one span per entry and keeps an entry with the code
//! it describes. Entry sizes come from the kernel's structure definitions
//! quoted beside each entry below; they are never inferred from an object.

use crate::engine::elf::Section;

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
    /// Bytes of an entry before its alignment padding, when entries are
    /// aligned apart: the last entry of a section then ends there.
    pub content_size: u64,
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
        content_size: entry_size,
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
    // struct paravirt_patch_site { u8 *instr; u8 type, len; }, each entry
    // aligned to 8 by the assembler, so the last one is 10 bytes long
    Table {
        content_size: 10,
        ..t(".parainstructions", 16, Some(0), None, None)
    },
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
        content_size: 12,
    },
    Table {
        name: "___ksymtab_gpl+",
        prefix: true,
        entry_size: 12,
        addr_offset: Some(0),
        other_offset: Some(4),
        other_sect: None,
        other_len: None,
        content_size: 12,
    },
];

impl Table {
    /// Whether a section of `size` bytes holds whole entries (the last one
    /// possibly without its alignment padding).
    pub fn fits(&self, size: u64) -> bool {
        let rest = size % self.entry_size;
        rest == 0 || (size > self.entry_size - self.content_size && rest == self.content_size)
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ksymtab_tables_match_by_prefix() {
        assert_eq!(table("___ksymtab+printk").map(|t| t.entry_size), Some(12));
        assert!(table("___ksymtab").is_none());
        assert_eq!(table("__jump_table").map(|t| t.entry_size), Some(16));
    }

    #[test]
    fn the_last_paravirt_entry_has_no_padding() {
        let p = table(".parainstructions").unwrap();
        assert!(p.fits(10) && p.fits(26) && p.fits(32));
        assert!(!p.fits(12) && !p.fits(16 + 4));
        let alt = table(".altinstructions").unwrap();
        assert!(alt.fits(24) && !alt.fits(10));
    }
}
