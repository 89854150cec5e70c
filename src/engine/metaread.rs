//! Reading Ksplice metadata back from an object: the inverse of
//! [`crate::engine::meta`], used by tests and diagnostics.

use crate::engine::elf::{Object, SecId, SymSection};
use crate::engine::meta::{HOWTO_SIZE, RELOC_SIZE, SECTION_SIZE, SYMBOL_SIZE, SYSTEM_MAP_SIZE};

/// Where a pointer field points: a section and offset, or an undefined symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Section name and offset.
    Section(String, u64),
    /// An undefined symbol.
    Undefined(String),
    /// No relocation: a NULL pointer.
    Null,
}

/// A decoded `ksplice_symbol`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KSymbol {
    /// `name` (None when NULL).
    pub name: Option<String>,
    /// `label`.
    pub label: String,
}

/// A decoded `ksplice_reloc_howto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KHowto {
    /// `type`.
    pub kind: u32,
    /// `pcrel`.
    pub pcrel: u32,
    /// `size`.
    pub size: u32,
    /// `dst_mask`.
    pub dst_mask: u64,
    /// `signed_addend`.
    pub signed: u32,
}

/// A decoded `ksplice_reloc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KReloc {
    /// The metadata section it came from.
    pub in_section: String,
    /// `blank_addr`.
    pub blank: Target,
    /// `symbol`, decoded when it points to a record.
    pub symbol: Option<KSymbol>,
    /// `symbol` when it is an undefined (deferred) symbol.
    pub deferred: Option<String>,
    /// `howto`.
    pub howto: Option<KHowto>,
    /// `insn_addend`.
    pub insn_addend: i64,
    /// `target_addend`.
    pub target_addend: i64,
}

/// A decoded `ksplice_section`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KSection {
    /// The metadata section it came from.
    pub in_section: String,
    /// `symbol`.
    pub symbol: Option<KSymbol>,
    /// `address`.
    pub address: Target,
    /// `size`.
    pub size: u64,
    /// `flags`.
    pub flags: u32,
}

/// A decoded `ksplice_system_map`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KSystemMap {
    /// `label`.
    pub label: String,
    /// The candidate addresses.
    pub candidates: Vec<u64>,
}

/// Reader over one object.
pub struct Reader<'a> {
    obj: &'a Object,
}

impl<'a> Reader<'a> {
    /// A reader for `obj`.
    pub fn new(obj: &'a Object) -> Reader<'a> {
        Reader { obj }
    }

    /// The pointer stored at `sect+off`.
    pub fn pointer(&self, sect: SecId, off: u64) -> Target {
        let s = &self.obj.sections[sect];
        match s.relocs.iter().find(|r| r.offset == off) {
            None => Target::Null,
            Some(r) => {
                let sym = &self.obj.symbols[r.sym];
                match sym.section {
                    SymSection::Section(t) => Target::Section(
                        self.obj.sections[t].name.clone(),
                        sym.value.wrapping_add(r.addend as u64),
                    ),
                    _ => Target::Undefined(sym.name.clone()),
                }
            }
        }
    }

    fn string(&self, t: &Target) -> Option<String> {
        let Target::Section(name, off) = t else {
            return None;
        };
        let s = self.obj.section_by_name(name)?;
        let data = &self.obj.sections[s].data;
        let off = usize::try_from(*off).ok()?;
        let rest = data.get(off..)?;
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        Some(String::from_utf8_lossy(&rest[..end]).into_owned())
    }

    fn symbol_at(&self, t: &Target) -> Option<KSymbol> {
        let Target::Section(name, off) = t else {
            return None;
        };
        if name != ".ksplice_symbols" {
            return None;
        }
        let s = self.obj.section_by_name(name)?;
        Some(KSymbol {
            name: self.string(&self.pointer(s, *off)),
            label: self.string(&self.pointer(s, off.checked_add(8)?))?,
        })
    }

    fn howto_at(&self, t: &Target) -> Option<KHowto> {
        let Target::Section(name, off) = t else {
            return None;
        };
        let s = self.obj.section_by_name(name)?;
        let sec = &self.obj.sections[s];
        if off.checked_add(HOWTO_SIZE)? > sec.size() {
            return None;
        }
        Some(KHowto {
            kind: sec.read_uint(*off, 4)? as u32,
            pcrel: sec.read_uint(off + 4, 4)? as u32,
            size: sec.read_uint(off + 8, 4)? as u32,
            dst_mask: sec.read_uint(off + 16, 8)?,
            signed: sec.read_uint(off + 28, 4)? as u32,
        })
    }

    /// Every `ksplice_reloc` of every `.ksplice_relocs*` section.
    pub fn relocs(&self) -> Vec<KReloc> {
        let mut out = Vec::new();
        for (i, s) in self.obj.sections_with_ids() {
            if !s.name.starts_with(".ksplice_relocs") {
                continue;
            }
            let mut off = 0;
            while off + RELOC_SIZE <= s.size() {
                let sym = self.pointer(i, off + 8);
                out.push(KReloc {
                    in_section: s.name.clone(),
                    blank: self.pointer(i, off),
                    symbol: self.symbol_at(&sym),
                    deferred: match &sym {
                        Target::Undefined(n) => Some(n.clone()),
                        _ => None,
                    },
                    howto: self.howto_at(&self.pointer(i, off + 16)),
                    insn_addend: s.read_uint(off + 24, 8).unwrap_or(0) as i64,
                    target_addend: s.read_uint(off + 32, 8).unwrap_or(0) as i64,
                });
                off += RELOC_SIZE;
            }
        }
        out
    }

    /// Every `ksplice_section` of every `.ksplice_sections*` section.
    pub fn sections(&self) -> Vec<KSection> {
        let mut out = Vec::new();
        for (i, s) in self.obj.sections_with_ids() {
            if !s.name.starts_with(".ksplice_sections") {
                continue;
            }
            let mut off = 0;
            while off + SECTION_SIZE <= s.size() {
                out.push(KSection {
                    in_section: s.name.clone(),
                    symbol: self.symbol_at(&self.pointer(i, off)),
                    address: self.pointer(i, off + 8),
                    size: s.read_uint(off + 16, 8).unwrap_or(0),
                    flags: s.read_uint(off + 24, 4).unwrap_or(0) as u32,
                });
                off += SECTION_SIZE;
            }
        }
        out
    }

    /// Every `ksplice_symbol` record.
    pub fn symbols(&self) -> Vec<KSymbol> {
        let Some(s) = self.obj.section_by_name(".ksplice_symbols") else {
            return Vec::new();
        };
        let size = self.obj.sections[s].size();
        (0..size / SYMBOL_SIZE)
            .filter_map(|k| {
                self.symbol_at(&Target::Section(".ksplice_symbols".into(), k * SYMBOL_SIZE))
            })
            .collect()
    }

    /// Every `ksplice_system_map` record with its candidates.
    pub fn system_map(&self) -> Vec<KSystemMap> {
        let Some(s) = self.obj.section_by_name(".ksplice_system_map") else {
            return Vec::new();
        };
        let sec = &self.obj.sections[s];
        let mut out = Vec::new();
        let mut off = 0;
        while off + SYSTEM_MAP_SIZE <= sec.size() {
            let label = self.string(&self.pointer(s, off)).unwrap_or_default();
            let n = sec.read_uint(off + 8, 8).unwrap_or(0);
            let mut candidates = Vec::new();
            if let Target::Section(name, at) = self.pointer(s, off + 16)
                && let Some(a) = self.obj.section_by_name(&name)
            {
                for k in 0..n.min(1 << 16) {
                    if let Some(v) = at
                        .checked_add(8 * k)
                        .and_then(|p| self.obj.sections[a].read_uint(p, 8))
                    {
                        candidates.push(v);
                    }
                }
            }
            out.push(KSystemMap { label, candidates });
            off += SYSTEM_MAP_SIZE;
        }
        out
    }
}
