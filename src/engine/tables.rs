//! The kernel's table sections and the layout of their entries: the one
//! place a table layout is defined (x86-64, Linux 6.1 to 6.12).
//!
//! A table section (alternatives, the BUG table, exception table, jump
//! labels, static calls, retpoline/return sites, exports, ...) is a list of
//! fixed-size entries, each pointing at the code it is about and sometimes
//! at a second place (a replacement, a fixup, a name). The engine splits
//! such sections into one span per entry and keeps an entry with the code
//! it describes. Entry sizes come from the kernel's structure definitions
//! quoted beside each entry below, chosen by the kernel version
//! ([`use_kernel`]); they are never inferred from an object (some sizes
//! divide by both the 6.1 and the 6.12 entry size of a table).

use crate::engine::elf::Section;
use std::cell::Cell;
use std::fmt;

/// A kernel version, as far as table layouts care: major and minor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KernelVersion {
    /// `VERSION` of the kernel's Makefile.
    pub major: u32,
    /// `PATCHLEVEL` of the kernel's Makefile.
    pub minor: u32,
}

impl KernelVersion {
    /// The oldest kernel whose layouts this module knows.
    pub const OLDEST: KernelVersion = KernelVersion { major: 6, minor: 1 };
    /// The newest kernel whose layouts were checked against its source.
    pub const NEWEST: KernelVersion = KernelVersion {
        major: 6,
        minor: 12,
    };

    /// Parses a kernel release or version: `6.12`, `6.12.115`,
    /// `6.1.0-37-amd64`, `6.12.0-rc3+`.
    pub fn parse(s: &str) -> Option<KernelVersion> {
        let mut parts = s.trim().split(['.', '-', '+']);
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some(KernelVersion { major, minor })
    }

    /// Whether the layouts of this version are known.
    pub fn is_supported(self) -> bool {
        (Self::OLDEST..=Self::NEWEST).contains(&self)
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// A kernel version whose table layouts are unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnsupportedKernel(pub KernelVersion);

impl fmt::Display for UnsupportedKernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Linux {} is not supported (table layouts are known for {} to {})",
            self.0,
            KernelVersion::OLDEST,
            KernelVersion::NEWEST
        )
    }
}

impl std::error::Error for UnsupportedKernel {}

/// How an alternative entry names its CPU feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureField {
    /// Not an alternative.
    None,
    /// Linux 6.1-6.2: `u16 cpuid` at 8, bit 15 set when the replacement
    /// applies without the feature.
    Cpuid16,
    /// Linux 6.3 and later: `u32 ft_flags` at 8, the feature in the low 16
    /// bits, flags in the high 16 (bit 0: not; bit 1: direct call).
    FtFlags32,
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
    /// Offset of a one-byte length of the code the entry is about.
    pub len: Option<u64>,
    /// How the entry names a CPU feature (alternatives).
    pub feature: FeatureField,
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
        len: None,
        feature: FeatureField::None,
        content_size: entry_size,
    }
}

const fn ksymtab(prefix: &'static str) -> Table {
    Table {
        prefix: true,
        ..t(prefix, 12, Some(0), Some(4), None)
    }
}

/// `alt` and the tables every supported version lays out the same way.
/// Linux 6.1 and 6.12 agree on these structures (checked against both
/// sources).
macro_rules! tables_with {
    ($alt:expr) => {
        [
            $alt,
            // struct bug_entry { s32 bug_addr_disp, file_disp; u16 line, flags; }
            t("__bug_table", 12, Some(0), Some(4), None),
            // struct exception_table_entry { int insn, fixup, data; }
            t("__ex_table", 12, Some(0), Some(4), None),
            // struct paravirt_patch_site { u8 *instr; u8 type, len; }, each
            // entry aligned to 8 by the assembler, so the last one is 10
            // bytes long (gone since Linux 6.8)
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
            // s32 addresses of direct calls (call depth tracking, 6.2 on)
            t(".call_sites", 4, Some(0), None, None),
            // s32 addresses of kCFI preambles (6.2 on)
            t(".cfi_sites", 4, Some(0), None, None),
            // struct kernel_symbol { int value_offset, name_offset,
            // namespace_offset; } (until 6.4; then .export_symbol, which
            // only modpost reads)
            ksymtab("___ksymtab+"),
            ksymtab("___ksymtab_gpl+"),
            // s32 addresses of the immediates of runtime constants (6.11
            // on, vmlinux only; asm/runtime-const.h): runtime_ptr_<sym>
            // (8-byte movabs immediate), runtime_shift_<sym> (1-byte shrl)
            Table {
                prefix: true,
                ..t("runtime_ptr_", 4, Some(0), None, None)
            },
            Table {
                prefix: true,
                ..t("runtime_shift_", 4, Some(0), None, None)
            },
        ]
    };
}

/// The `.altinstructions` layout: entries of `entry_size` bytes, the
/// feature word at 8, the original's length at `len` and the
/// replacement's at `len + 1`.
const fn alt_table(entry_size: u64, len: u64, feature: FeatureField) -> Table {
    Table {
        other_len: Some(len + 1),
        len: Some(len),
        feature,
        ..t(
            ".altinstructions",
            entry_size,
            Some(0),
            Some(4),
            Some(".altinstr_replacement"),
        )
    }
}

/// Linux 6.1-6.2.
/// struct alt_instr { s32 instr_offset, repl_offset; u16 cpuid; u8 instrlen,
/// replacementlen; } __packed
const TABLES_6_1: &[Table] = &tables_with!(alt_table(12, 10, FeatureField::Cpuid16));

/// Linux 6.3-6.12.
/// struct alt_instr { s32 instr_offset, repl_offset; u32 ft_flags; u8
/// instrlen, replacementlen; } __packed
const TABLES_6_3: &[Table] = &tables_with!(alt_table(14, 12, FeatureField::FtFlags32));

thread_local! {
    static ACTIVE: Cell<(Option<KernelVersion>, &'static [Table])> =
        const { Cell::new((None, TABLES_6_1)) };
}

/// The tables of `v`.
pub fn tables_of(v: KernelVersion) -> Result<&'static [Table], UnsupportedKernel> {
    if !v.is_supported() {
        return Err(UnsupportedKernel(v));
    }
    Ok(if v < (KernelVersion { major: 6, minor: 3 }) {
        TABLES_6_1
    } else {
        TABLES_6_3
    })
}

/// Selects the layouts of kernel `v` for this thread's later calls.
/// Until then the layouts are Linux 6.1's and [`kernel`] is `None`: a
/// caller reading a kernel's objects must then refuse those whose layout
/// depends on the version ([`VERSIONED_TABLES`]).
pub fn use_kernel(v: KernelVersion) -> Result<(), UnsupportedKernel> {
    let t = tables_of(v)?;
    ACTIVE.with(|a| a.set((Some(v), t)));
    Ok(())
}

/// The kernel version whose layouts are in use, once one was selected.
pub fn kernel() -> Option<KernelVersion> {
    ACTIVE.with(|a| a.get().0)
}

/// The tables whose entry layout differs between supported versions.
pub const VERSIONED_TABLES: &[&str] = &[".altinstructions"];

/// The table layouts in use (see [`use_kernel`]).
pub fn tables() -> &'static [Table] {
    ACTIVE.with(|a| a.get().1)
}

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
    tables().iter().find(|t| {
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
    tables().iter().any(|t| t.other_sect == Some(name))
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
    fn versions_parse_and_choose_layouts() {
        let v = |s| KernelVersion::parse(s).unwrap();
        assert_eq!(
            v("6.12.115"),
            KernelVersion {
                major: 6,
                minor: 12
            }
        );
        assert_eq!(v("6.1.0-37-amd64"), KernelVersion { major: 6, minor: 1 });
        assert_eq!(v("6.12.0-rc3+").minor, 12);
        assert!(KernelVersion::parse("six").is_none());
        let alt = |s| {
            tables_of(v(s))
                .unwrap()
                .iter()
                .find(|t| t.name == ".altinstructions")
                .map(|t| (t.entry_size, t.len, t.other_len))
        };
        assert_eq!(alt("6.1.190"), Some((12, Some(10), Some(11))));
        assert_eq!(alt("6.2"), Some((12, Some(10), Some(11))));
        assert_eq!(alt("6.3"), Some((14, Some(12), Some(13))));
        assert_eq!(alt("6.12.117"), Some((14, Some(12), Some(13))));
        assert!(tables_of(v("5.15")).is_err());
        assert!(tables_of(v("6.13")).is_err());
    }

    #[test]
    fn version_parsing_never_panics() {
        let alphabet = ["", "6", ".", "-", "+", "12", "x", "99999999999", " ", "\n"];
        for a in alphabet {
            for b in alphabet {
                for c in alphabet {
                    for d in alphabet {
                        let s = format!("{a}{b}{c}{d}");
                        if let Some(v) = KernelVersion::parse(&s) {
                            let _ = tables_of(v);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn selection_is_per_thread_and_changes_the_lookup() {
        std::thread::spawn(|| {
            assert_eq!(kernel(), None);
            assert_eq!(table(".altinstructions").unwrap().entry_size, 12);
            use_kernel(KernelVersion {
                major: 6,
                minor: 12,
            })
            .unwrap();
            assert_eq!(table(".altinstructions").unwrap().entry_size, 14);
            let alt = table(".altinstructions").unwrap();
            assert!(alt.fits(28) && !alt.fits(24));
            assert_eq!(table(".call_sites").map(|t| t.entry_size), Some(4));
        })
        .join()
        .unwrap();
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
