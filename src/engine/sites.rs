//! Boot-time rewrite sites: the places of an object's code that the running
//! kernel may have rewritten after it was built (x86-64, Linux 6.1 to 6.12).
//!
//! Run-pre matching compares the build with the running kernel byte for
//! byte; at these sites the two legitimately differ, and the loader applies
//! the rule of the site's kind instead (kmodsrc/sites.c). A site is found
//! the way the kernel's own tools find it:
//!
//! * from a table the compiler or assembler emitted into the object:
//!   `.altinstructions`, `.parainstructions`, `__jump_table`, `.smp_locks`,
//!   and the `runtime_ptr_<sym>`/`runtime_shift_<sym>` tables of runtime
//!   constants (Linux 6.11 on);
//! * from a relocation, the way objtool builds its tables (which exist
//!   only in vmlinux.o when objtool runs at link time): a call to
//!   `__fentry__`, a jump to `__x86_return_thunk`, a call or jump to a
//!   retpoline thunk or a static-call trampoline, a jump to code of the same
//!   object that the assembler may have relaxed in the running build;
//! * from the code itself: an `endbr64` at a function's entry (the
//!   section's start, or past the call padding of 6.2+), which the kernel
//!   seals when nothing takes the function's address.

use crate::engine::classify::Kind;
use crate::engine::elf::{Reloc, SecId, SymSection};
use crate::engine::meta::SiteKind;
use crate::engine::span::Analysis;
use crate::engine::tables;

/// One rewrite site of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// The section holding the site.
    pub sect: SecId,
    /// Offset of the site's first byte.
    pub offset: u64,
    /// What the kernel may have done there.
    pub kind: SiteKind,
    /// Bytes the site covers.
    pub len: u8,
    /// Alternatives: the replacement; jump labels: the jump target.
    pub aux: Option<(SecId, u64)>,
    /// Bytes at `aux` (the replacement's length).
    pub aux_len: u8,
    /// Alternatives: the CPU feature word (bit 15: when absent);
    /// paravirt: the operation's slot.
    pub feature: u16,
    /// The table entry the site comes from (section, entry start).
    pub entry: Option<(SecId, u64)>,
}

/// `endbr64`.
pub const ENDBR64: [u8; 4] = [0xf3, 0x0f, 0x1e, 0xfa];

/// Every rewrite site of the text of `a`, sorted by section and offset.
pub fn find_sites(a: &Analysis) -> Vec<Site> {
    let mut out = Vec::new();
    for (sect, sec) in a.obj.sections_with_ids() {
        if a.kinds[sect] == Kind::Text {
            for at in function_entries(a, sect) {
                if sec
                    .data
                    .get(at as usize..)
                    .is_some_and(|d| d.starts_with(&ENDBR64))
                {
                    out.push(site(sect, at, SiteKind::Endbr, 4));
                }
            }
            for r in &sec.relocs {
                out.extend(reloc_site(a, sect, r));
            }
        }
        out.extend(table_sites(a, sect));
    }
    out.sort_by_key(|s| (s.sect, s.offset, s.kind as u16));
    out
}

/// Where functions start in a text section: its start and every function
/// symbol (after 6.2's call padding, a function starts 16 bytes in).
fn function_entries(a: &Analysis, sect: SecId) -> Vec<u64> {
    let mut at: Vec<u64> = a
        .symbols_in(sect)
        .iter()
        .map(|&i| &a.obj[i])
        .filter(|s| s.kind == object::elf::STT_FUNC)
        .map(|s| s.value)
        .chain([0])
        .collect();
    at.sort_unstable();
    at.dedup();
    at
}

fn site(sect: SecId, offset: u64, kind: SiteKind, len: u8) -> Site {
    Site {
        sect,
        offset,
        kind,
        len,
        aux: None,
        aux_len: 0,
        feature: 0,
        entry: None,
    }
}

/// The opcode before a 32-bit PC-relative field at `off`: 5-byte call or
/// jump (`e8`/`e9`), or 6-byte conditional jump (`0f 8x`).
fn branch_before(data: &[u8], off: u64) -> Option<(u64, u8)> {
    let off = usize::try_from(off).ok()?;
    match data.get(off.checked_sub(1)?)? {
        0xe8 | 0xe9 => Some((off as u64 - 1, 5)),
        0x80..=0x8f if data.get(off.checked_sub(2)?) == Some(&0x0f) => Some((off as u64 - 2, 6)),
        _ => None,
    }
}

/// The site a relocation of code reveals, if any.
fn reloc_site(a: &Analysis, sect: SecId, r: &Reloc) -> Option<Site> {
    // R_X86_64_PC32 and R_X86_64_PLT32.
    if !matches!(r.r_type, 2 | 4) {
        return None;
    }
    let data = &a.obj.sections[sect].data;
    let (at, len) = branch_before(data, r.offset)?;
    let opcode = data[at as usize];
    let sym = a.obj.get_symbol(r.sym)?;
    let name = sym.name.as_str();
    let kind = if name == "__fentry__" && opcode == 0xe8 {
        SiteKind::Fentry
    } else if name == "__x86_return_thunk" && opcode == 0xe9 {
        SiteKind::Return
    } else if name.starts_with("__x86_indirect_thunk_") {
        SiteKind::Retpoline
    } else if name.starts_with("__SCT__") && len == 5 {
        SiteKind::StaticCall
    } else if opcode != 0xe8 && relaxable_target(a, sect, r) {
        SiteKind::Relaxable
    } else {
        return None;
    };
    Some(site(sect, at, kind, len))
}

/// Whether a jump's target is code of this object outside the jump's own
/// section: with one section per function the assembler must use a 32-bit
/// displacement, where the running build (one `.text`) may have used 8 bits.
fn relaxable_target(a: &Analysis, sect: SecId, r: &Reloc) -> bool {
    let Some(sym) = a.obj.get_symbol(r.sym) else {
        return false;
    };
    match sym.section {
        SymSection::Section(t) => t != sect && a.kinds[t] == Kind::Text,
        _ => false,
    }
}

/// The sites described by the entries of a table section.
fn table_sites(a: &Analysis, sect: SecId) -> Vec<Site> {
    let sec = &a.obj.sections[sect];
    let Some(t) = tables::table(&sec.name) else {
        return Vec::new();
    };
    let kind = match sec.name.as_str() {
        ".altinstructions" => SiteKind::Alternative,
        ".parainstructions" => SiteKind::Paravirt,
        "__jump_table" => SiteKind::JumpLabel,
        ".smp_locks" => SiteKind::SmpLock,
        name if runtime_const(name).is_some() => SiteKind::RuntimeConst,
        _ => return Vec::new(),
    };
    let mut out = Vec::new();
    let mut start = 0;
    while start + t.content_size <= sec.size() {
        if let Some(s) = entry_site(a, sect, start, kind) {
            out.push(s);
        }
        start += t.entry_size;
    }
    out
}

/// Where the field at `sect+off` points, when it points into text.
fn points_at(a: &Analysis, sect: SecId, off: u64) -> Option<(SecId, u64)> {
    let r = a.reloc_at(sect, off)?;
    let (t, toff) = a.reloc_target(sect, r)?;
    (a.kinds[t] == Kind::Text || tables::is_table_other(&a.obj.sections[t].name))
        .then_some((t, toff))
}

/// The site of one table entry (layouts: see [`tables::tables`]).
fn entry_site(a: &Analysis, sect: SecId, start: u64, kind: SiteKind) -> Option<Site> {
    let sec = &a.obj.sections[sect];
    let (code, off) = points_at(a, sect, start)?;
    let mut s = site(code, off, kind, 0);
    s.entry = Some((sect, start));
    match kind {
        SiteKind::Alternative => {
            let t = tables::table(&sec.name)?;
            if is_direct_call(t, sec, start) {
                return direct_call_site(a, s, sec.read_uint(start + t.len?, 1)? as u8);
            }
            s.feature = alt_feature(t, sec, start)?;
            s.len = sec.read_uint(start + t.len?, 1)? as u8;
            s.aux_len = sec.read_uint(start + t.other_len?, 1)? as u8;
            s.aux = points_at(a, sect, start + 4);
            if s.aux_len > 0 && s.aux.is_none() {
                return None;
            }
        }
        SiteKind::Paravirt => {
            s.feature = sec.read_uint(start + 8, 1)? as u16;
            s.len = sec.read_uint(start + 9, 1)? as u8;
        }
        SiteKind::JumpLabel => {
            s.len = jump_label_len(&a.obj.sections[code].data, off)?;
            s.aux = points_at(a, sect, start + 4);
            s.aux?;
        }
        SiteKind::RuntimeConst => {
            s.len = runtime_const(&sec.name)?.1;
            if !runtime_const_insn(&a.obj.sections[code].data, off, s.len) {
                return None;
            }
        }
        _ => s.len = 1,
    }
    (s.len > 0).then_some(s)
}

/// `ALT_FLAG_DIRECT_CALL` in the flags of a 6.3+ alternative.
const ALT_FLAG_DIRECT_CALL: u64 = 2;

/// Whether the alternative entry at `start` is one of 6.3+'s paravirt
/// calls (`ALT_CALL_ALWAYS`): an indirect call through a `pv_ops` slot
/// that boot turns into a direct call to the slot's function, or nops.
fn is_direct_call(t: &tables::Table, sec: &crate::engine::elf::Section, start: u64) -> bool {
    t.feature == tables::FeatureField::FtFlags32
        && sec
            .read_uint(start + 8, 4)
            .is_some_and(|ft| (ft >> 16) & ALT_FLAG_DIRECT_CALL != 0)
}

/// A direct-call alternative as the paravirt site it is: the original
/// must be `call *pv_ops+8*slot(%rip)` (`ff 15`, 6 bytes), and the site
/// carries the slot as its feature, like 6.1's `.parainstructions`.
fn direct_call_site(a: &Analysis, mut s: Site, len: u8) -> Option<Site> {
    let data = &a.obj.sections[s.sect].data;
    let at = usize::try_from(s.offset).ok()?;
    if len != 6 || data.get(at..at + 2) != Some(&[0xff, 0x15][..]) {
        return None;
    }
    let r = a.reloc_at(s.sect, s.offset + 2)?;
    if a.obj.get_symbol(r.sym)?.name != "pv_ops" || !matches!(r.r_type, 2 | 4) {
        return None;
    }
    let off = r.addend.checked_add(4)?;
    if off < 0 || off % 8 != 0 {
        return None;
    }
    s.kind = SiteKind::Paravirt;
    s.feature = u16::try_from(off / 8).ok()?;
    s.len = len;
    Some(s)
}

/// ALT_NOT on Linux 6.1: bit 15 of the feature word.
const ALT_WHEN_ABSENT: u16 = 0x8000;

/// An alternative's feature word as the site records carry it: the CPU
/// feature, with [`ALT_WHEN_ABSENT`] when the replacement applies without
/// it. `None` for an entry the records cannot express (6.3+ flags other
/// than "not", such as paravirt's direct calls).
fn alt_feature(t: &tables::Table, sec: &crate::engine::elf::Section, start: u64) -> Option<u16> {
    match t.feature {
        tables::FeatureField::Cpuid16 => Some(sec.read_uint(start + 8, 2)? as u16),
        tables::FeatureField::FtFlags32 => {
            let ft = sec.read_uint(start + 8, 4)?;
            let (cpuid, flags) = ((ft & 0xffff) as u16, ft >> 16);
            match flags {
                0 if cpuid & ALT_WHEN_ABSENT == 0 => Some(cpuid),
                1 if cpuid & ALT_WHEN_ABSENT == 0 => Some(cpuid | ALT_WHEN_ABSENT),
                _ => None,
            }
        }
        tables::FeatureField::None => None,
    }
}

/// The length of the instruction at a jump label's site: a 5-byte nop or
/// jump, or a 2-byte nop or jump.
fn jump_label_len(data: &[u8], off: u64) -> Option<u8> {
    let b = data.get(usize::try_from(off).ok()?..)?;
    match b {
        [0x0f, 0x1f, 0x44, 0x00, 0x00, ..] | [0xe9, ..] => Some(5),
        [0x66, 0x90, ..] | [0xeb, ..] => Some(2),
        _ => None,
    }
}

/// The tables of runtime constants (`asm/runtime-const.h`, vmlinux only):
/// each entry points at the immediate of an instruction that boot sets
/// from the variable the section is named after, and the immediate's size:
/// `runtime_ptr_<sym>` (`movabs`, the variable's value), `runtime_shift_<sym>`
/// (`shrl`, its low byte).
pub const RUNTIME_CONST_TABLES: [(&str, u8); 2] = [("runtime_ptr_", 8), ("runtime_shift_", 1)];

/// For a table of runtime constants: the variable it is named after and
/// the size of the immediates its entries point at.
pub fn runtime_const(section: &str) -> Option<(&str, u8)> {
    RUNTIME_CONST_TABLES
        .iter()
        .find_map(|&(prefix, len)| Some((section.strip_prefix(prefix)?, len)))
}

/// Whether the `len` bytes at `off` are the immediate of the kernel's
/// runtime-constant instructions: `movabs $imm64, %reg` (REX.W `b8+r`) for
/// 8 bytes, `shrl $imm8, %reg32` (`c1 /5`, maybe after a REX prefix) for 1.
fn runtime_const_insn(data: &[u8], off: u64, len: u8) -> bool {
    let Ok(off) = usize::try_from(off) else {
        return false;
    };
    let (Some(op), Some(_)) = (
        off.checked_sub(2).and_then(|b| data.get(b..off)),
        data.get(off..off + usize::from(len)),
    ) else {
        return false;
    };
    matches!(
        (len, op),
        (8, [0x48 | 0x49, 0xb8..=0xbf]) | (1, [0xc1, 0xe8..=0xef])
    )
}
