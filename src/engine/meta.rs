//! The metadata writer: Ksplice records in `.ksplice_*` sections.
//!
//! Layouts are those of Ksplice 0.9.9 on x86-64 (see docs/FORMAT.md). Every
//! pointer field is left zero in the section contents and carried by an
//! `R_X86_64_64` relocation, so the kernel's module loader fills it in.

use crate::engine::elf::howto::Howto;
use crate::engine::elf::{Object, Reloc, SecId, Section, SymId, SymSection};
use crate::engine::span::{HashMap, HashSet};
use object::elf;

/// Size of `struct ksplice_symbol` (name, label, candidate_vals, value).
pub const SYMBOL_SIZE: u64 = 32;
/// Size of `struct ksplice_reloc` (blank_addr, symbol, howto, insn_addend, target_addend).
pub const RELOC_SIZE: u64 = 40;
/// Size of `struct ksplice_reloc_howto`.
pub const HOWTO_SIZE: u64 = 32;
/// Size of `struct ksplice_section` (symbol, address, size, flags, match_map, unmatched).
pub const SECTION_SIZE: u64 = 48;
/// Size of `struct ksplice_patch` (oldaddr, repladdr, type, size, contents, vaddr, saved).
pub const PATCH_SIZE: u64 = 48;
/// Size of `struct ksplice_system_map` (label, nr_candidates, candidates).
pub const SYSTEM_MAP_SIZE: u64 = 24;

/// Size of `struct ksplice_site` (addr, aux, kind, len, aux_len, feature, seq).
pub const SITE_SIZE: u64 = 24;
/// Room one jump label of the new code takes in `.ksplice_label_space`:
/// the kernel's `struct jump_entry` on x86_64 (two 32-bit offsets and a
/// 64-bit key offset).
pub const JUMP_ENTRY_SIZE: u64 = 16;

/// The value written into every relocated field the kernel must fill.
pub const CANARY: u64 = 0x7777_7777_7777_7777;

/// `ksplice_section.flags`: executable code.
pub const SECTION_TEXT: u32 = 0x1;
/// `ksplice_section.flags`: read-only data.
pub const SECTION_RODATA: u32 = 0x2;
/// `ksplice_section.flags`: writable data.
pub const SECTION_DATA: u32 = 0x4;
/// `ksplice_section.flags`: a string.
pub const SECTION_STRING: u32 = 0x8;
/// `ksplice_section.flags` (old code): writable data the update rewrites in
/// place; run-pre matching must find the running bytes equal to these.
pub const SECTION_REWRITTEN: u32 = 0x10;

/// `enum ksplice_reloc_howto_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum HowtoType {
    /// An ordinary relocation.
    Reloc = 0,
    /// A relocation of a patch record.
    RelocPatch = 1,
    /// A `__DATE__` placeholder string.
    Date = 2,
    /// A `__TIME__` placeholder string.
    Time = 3,
    /// A `__bug_table` entry pointing at the instruction.
    Bug = 4,
    /// An `__ex_table` entry pointing at the instruction.
    Extable = 5,
    /// A symbol's address (an entry point of a matched section).
    Symbol = 6,
}

/// `enum ksplice_patch_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum PatchType {
    /// Replace a function by a jump.
    Text = 0,
    /// Overwrite data in place.
    Data = 1,
    /// Change an export.
    Export = 2,
    /// Rewrite the line number of a `__bug_table` entry: written where the
    /// entry was matched, skipped otherwise (best-effort, never a no_match).
    BugLine = 3,
}

/// `enum ksplice_site_kind`: what the running kernel may have done at a
/// boot-time rewrite site (see `engine::sites`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u16)]
pub enum SiteKind {
    /// An alternative: original or replacement, per the CPU's features.
    Alternative = 0,
    /// A paravirt call: indirect, direct, or patched out.
    Paravirt = 1,
    /// A call or jump through a retpoline thunk.
    Retpoline = 2,
    /// A jump to the return thunk.
    Return = 3,
    /// A jump label: a nop or a jump to its target.
    JumpLabel = 4,
    /// A call or jump through a static-call trampoline.
    StaticCall = 5,
    /// The call to `__fentry__`: ftrace's nop or call.
    Fentry = 6,
    /// An `endbr64` at a function entry, perhaps sealed.
    Endbr = 7,
    /// A `lock` prefix (switched for a `ds` prefix on one CPU).
    SmpLock = 8,
    /// A 32-bit jump the running build may have as an 8-bit one.
    Relaxable = 9,
    /// The immediate of a runtime constant (Linux 6.11 on, vmlinux): 8
    /// bytes of `movabs` (`runtime_ptr_<sym>`) or 1 byte of `shrl`
    /// (`runtime_shift_<sym>`), which boot set from the variable `<sym>`.
    RuntimeConst = 10,
}

/// What a `ksplice_reloc.symbol` field points to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SymRef {
    /// A `ksplice_symbol` record at this offset of `.ksplice_symbols`.
    Record(u64),
    /// An undefined `KSPLICE_SYMBOL_<name>` symbol, resolved at finalize.
    Deferred(String),
}

/// Prefix of the undefined symbols that stand for kernel symbols until finalize.
pub const DEFERRED_PREFIX: &str = "KSPLICE_SYMBOL_";

/// Builds metadata records into an [`Object`], deduplicating strings,
/// symbols (by label) and howtos.
#[derive(Debug, Default)]
pub struct Meta {
    strings: HashMap<String, u64>,
    symbols: HashMap<String, u64>,
    howtos: HashMap<(u32, u32, u32), u64>,
    sysmap_done: HashSet<String>,
    sections: HashMap<String, SecId>,
    sections_indexed: bool,
    /// Section symbol of each section, and undefined symbols by name: built
    /// on first use, brought up to date with the symbols appended since.
    symbol_index: Option<SymbolIndex>,
}

/// The first section symbol of each section and the first undefined symbol
/// of each name among the first `seen` symbols of the object.
#[derive(Debug, Default)]
struct SymbolIndex {
    sections: HashMap<SecId, SymId>,
    undefined: HashMap<String, SymId>,
    seen: usize,
}

impl Meta {
    /// A writer with no records yet.
    pub fn new() -> Meta {
        Meta::default()
    }

    /// Learns the strings and symbols `obj` already has, so that finalize
    /// reuses the records keep-new-code wrote.
    pub fn load_existing(&mut self, obj: &Object) {
        if let Some(s) = obj.section_by_name(".ksplice_str") {
            let data = &obj.sections[s].data;
            let mut start = 0;
            while start < data.len() {
                let end = data[start..]
                    .iter()
                    .position(|&b| b == 0)
                    .map_or(data.len(), |p| start + p);
                let text = String::from_utf8_lossy(&data[start..end]).into_owned();
                self.strings.entry(text).or_insert(start as u64);
                start = end + 1;
            }
            self.sections.insert(".ksplice_str".into(), s);
        }
        let Some(sym_sect) = obj.section_by_name(".ksplice_symbols") else {
            return;
        };
        let Some(str_sect) = obj.section_by_name(".ksplice_str") else {
            return;
        };
        self.sections.insert(".ksplice_symbols".into(), sym_sect);
        for r in &obj.sections[sym_sect].relocs {
            // The label pointer is the second field of each record.
            if r.offset % SYMBOL_SIZE != 8 {
                continue;
            }
            let target = obj.get_symbol(r.sym);
            if target.map(|t| t.section) != Some(SymSection::Section(str_sect)) {
                continue;
            }
            let off = target.map_or(0, |t| t.value).wrapping_add(r.addend as u64) as usize;
            let data = &obj.sections[str_sect].data;
            if off >= data.len() {
                continue;
            }
            let end = data[off..]
                .iter()
                .position(|&b| b == 0)
                .map_or(data.len(), |p| off + p);
            let label = String::from_utf8_lossy(&data[off..end]).into_owned();
            self.symbols.entry(label).or_insert(r.offset - 8);
        }
    }

    /// The metadata section `name`, created (allocated, writable, 8-aligned) if needed.
    pub fn section(&mut self, obj: &mut Object, name: &str) -> SecId {
        if !self.sections_indexed {
            // Index the object's own sections once (first of each name).
            for (i, s) in obj.sections_with_ids() {
                self.sections.entry(s.name.clone()).or_insert(i);
            }
            self.sections_indexed = true;
        }
        if let Some(&i) = self.sections.get(name) {
            return i;
        }
        let i = obj.push_section(Section::new_progbits(
            name,
            u64::from(elf::SHF_ALLOC | elf::SHF_WRITE),
            8,
        ));
        self.sections.insert(name.to_string(), i);
        i
    }

    /// Appends `len` zero bytes aligned to `align` to `sect`; returns their offset.
    pub fn grow(obj: &mut Object, sect: SecId, len: u64, align: u64) -> u64 {
        let s = &mut obj.sections[sect];
        let align = align.max(1);
        let start = s.data.len().div_ceil(align as usize) * align as usize;
        s.data.resize(start + len as usize, 0);
        s.align = s.align.max(align);
        start as u64
    }

    /// Adds an `R_X86_64_64` pointer at `sect+off` to `sym+addend`.
    pub fn ptr(obj: &mut Object, sect: SecId, off: u64, sym: SymId, addend: i64) {
        obj.sections[sect].relocs.push(Reloc {
            offset: off,
            r_type: elf::R_X86_64_64,
            sym,
            addend,
        });
    }

    /// Brings the symbol index up to date with `obj` (symbols are only ever
    /// appended, by this writer or by the caller) and returns it.
    fn index(&mut self, obj: &Object) -> &mut SymbolIndex {
        let idx = self.symbol_index.get_or_insert_with(SymbolIndex::default);
        // From the first unseen symbol directly: the index is brought up to
        // date after every symbol added, so walking from the start each
        // time would make writing the metadata quadratic.
        let unseen = obj.symbols.get(idx.seen..).unwrap_or_default();
        for (n, s) in unseen.iter().enumerate() {
            let i = SymId::new(idx.seen + n);
            match s.section {
                SymSection::Section(k) if s.is_section() => {
                    idx.sections.entry(k).or_insert(i);
                }
                SymSection::Undefined => {
                    idx.undefined.entry(s.name.clone()).or_insert(i);
                }
                _ => {}
            }
        }
        idx.seen = obj.symbols.len();
        idx
    }

    /// The section symbol of `sect` (created if needed), in constant time:
    /// the first section symbol of `sect`, as [`Object::section_symbol`].
    pub fn section_symbol(&mut self, obj: &mut Object, sect: SecId) -> SymId {
        if let Some(&i) = self.index(obj).sections.get(&sect) {
            return i;
        }
        // The index covers every symbol: there is none to find.
        let i = obj.add_section_symbol(sect);
        self.index(obj);
        i
    }

    /// The undefined symbol `name` (created if needed), in constant time:
    /// the first undefined symbol of that name, as [`Object::undefined_symbol`].
    pub fn undefined_symbol(&mut self, obj: &mut Object, name: &str) -> SymId {
        if let Some(&i) = self.index(obj).undefined.get(name) {
            return i;
        }
        let i = obj.add_undefined_symbol(name);
        self.index(obj);
        i
    }

    /// Adds a pointer at `sect+off` to the start of section `target` plus `addend`.
    pub fn ptr_to_section(
        &mut self,
        obj: &mut Object,
        sect: SecId,
        off: u64,
        target: SecId,
        addend: i64,
    ) {
        let sym = self.section_symbol(obj, target);
        Meta::ptr(obj, sect, off, sym, addend);
    }

    /// Stores `text` in `.ksplice_str` (once) and points `sect+off` at it.
    pub fn string_ptr(&mut self, obj: &mut Object, sect: SecId, off: u64, text: &str) {
        let str_sect = self.section(obj, ".ksplice_str");
        obj.sections[str_sect].align = 1;
        let at = match self.strings.get(text) {
            Some(&o) => o,
            None => {
                let o = obj.sections[str_sect].data.len() as u64;
                obj.sections[str_sect]
                    .data
                    .extend_from_slice(text.as_bytes());
                obj.sections[str_sect].data.push(0);
                self.strings.insert(text.to_string(), o);
                o
            }
        };
        self.ptr_to_section(obj, sect, off, str_sect, at as i64);
    }

    /// The `ksplice_symbol` record for `label` (created once), with `name`
    /// for System.map and export lookup. `candidates` yields its System.map
    /// candidate addresses when a record with a name is first written.
    pub fn symbol(
        &mut self,
        obj: &mut Object,
        label: &str,
        name: Option<&str>,
        candidates: impl FnOnce() -> Vec<u64>,
    ) -> u64 {
        if let Some(&o) = self.symbols.get(label) {
            return o;
        }
        let sect = self.section(obj, ".ksplice_symbols");
        let off = Meta::grow(obj, sect, SYMBOL_SIZE, 8);
        self.symbols.insert(label.to_string(), off);
        self.string_ptr(obj, sect, off + 8, label);
        if let Some(name) = name {
            self.string_ptr(obj, sect, off, name);
            self.system_map(obj, label, candidates());
        }
        off
    }

    /// Writes a `ksplice_system_map` record for `label` if it has candidates.
    fn system_map(&mut self, obj: &mut Object, label: &str, candidates: Vec<u64>) {
        if candidates.is_empty() || !self.sysmap_done.insert(label.to_string()) {
            return;
        }
        let map = self.section(obj, ".ksplice_system_map");
        let off = Meta::grow(obj, map, SYSTEM_MAP_SIZE, 8);
        self.string_ptr(obj, map, off, label);
        let arr = self.section(obj, ".ksplice_array");
        let at = Meta::grow(obj, arr, 8 * candidates.len() as u64, 8);
        for (k, c) in candidates.iter().enumerate() {
            obj.sections[arr].write_uint(at + 8 * k as u64, 8, *c);
        }
        obj.sections[map].write_uint(off + 8, 8, candidates.len() as u64);
        self.ptr_to_section(obj, map, off + 16, arr, at as i64);
    }

    /// The howto record for `kind` and relocation properties (once per distinct value).
    pub fn howto(&mut self, obj: &mut Object, kind: HowtoType, h: Option<Howto>, size: u32) -> u64 {
        let key = (kind as u32, h.map_or(u32::MAX, |h| h.r_type), size);
        if let Some(&o) = self.howtos.get(&key) {
            return o;
        }
        let sect = self.section(obj, ".ksplice_reloc_howtos");
        let off = Meta::grow(obj, sect, HOWTO_SIZE, 8);
        let s = &mut obj.sections[sect];
        s.write_uint(off, 4, kind as u64);
        match h {
            Some(h) => {
                s.write_uint(off + 4, 4, u64::from(h.pcrel));
                s.write_uint(off + 8, 4, u64::from(h.size));
                s.write_uint(off + 16, 8, h.dst_mask);
                s.write_uint(off + 24, 4, u64::from(h.rightshift));
                s.write_uint(off + 28, 4, u64::from(h.signed));
            }
            None => {
                s.write_uint(off + 8, 4, u64::from(size));
            }
        }
        self.howtos.insert(key, off);
        off
    }

    /// Appends a `ksplice_reloc` to `.ksplice_relocs<for_name>`.
    #[allow(clippy::too_many_arguments)]
    pub fn reloc(
        &mut self,
        obj: &mut Object,
        for_name: &str,
        blank: (SecId, u64),
        symbol: SymRef,
        howto: u64,
        insn_addend: i64,
        target_addend: i64,
    ) {
        let sect = self.section(obj, &format!(".ksplice_relocs{for_name}"));
        let off = Meta::grow(obj, sect, RELOC_SIZE, 8);
        self.ptr_to_section(obj, sect, off, blank.0, blank.1 as i64);
        match symbol {
            SymRef::Record(o) => {
                let syms = self.section(obj, ".ksplice_symbols");
                self.ptr_to_section(obj, sect, off + 8, syms, o as i64);
            }
            SymRef::Deferred(name) => {
                let u = self.undefined_symbol(obj, &format!("{DEFERRED_PREFIX}{name}"));
                Meta::ptr(obj, sect, off + 8, u, 0);
            }
        }
        let howtos = self.section(obj, ".ksplice_reloc_howtos");
        self.ptr_to_section(obj, sect, off + 16, howtos, howto as i64);
        obj.sections[sect].write_uint(off + 24, 8, insn_addend as u64);
        obj.sections[sect].write_uint(off + 32, 8, target_addend as u64);
    }

    /// Appends a `ksplice_site` to `.ksplice_sites`: `addr` and `aux` are
    /// (section, offset) places in `obj`. Returns where the record is.
    #[allow(clippy::too_many_arguments)]
    pub fn site(
        &mut self,
        obj: &mut Object,
        addr: (SecId, u64),
        aux: Option<(SecId, u64)>,
        kind: SiteKind,
        len: u8,
        aux_len: u8,
        feature: u16,
    ) -> (SecId, u64) {
        let sect = self.section(obj, ".ksplice_sites");
        let off = Meta::grow(obj, sect, SITE_SIZE, 8);
        self.ptr_to_section(obj, sect, off, addr.0, addr.1 as i64);
        if let Some((t, o)) = aux {
            self.ptr_to_section(obj, sect, off + 8, t, o as i64);
        }
        let s = &mut obj.sections[sect];
        s.write_uint(off + 16, 2, kind as u64);
        s.write_uint(off + 18, 1, u64::from(len));
        s.write_uint(off + 19, 1, u64::from(aux_len));
        s.write_uint(off + 20, 2, u64::from(feature));
        s.write_uint(off + 22, 2, (off / SITE_SIZE) & 0xffff);
        (sect, off)
    }

    /// Appends a `ksplice_section` to `.ksplice_sections<for_name>`.
    pub fn ksection(
        &mut self,
        obj: &mut Object,
        for_name: &str,
        symbol: u64,
        address: (SecId, u64),
        size: u64,
        flags: u32,
    ) {
        let sect = self.section(obj, &format!(".ksplice_sections{for_name}"));
        let off = Meta::grow(obj, sect, SECTION_SIZE, 8);
        let syms = self.section(obj, ".ksplice_symbols");
        self.ptr_to_section(obj, sect, off, syms, symbol as i64);
        self.ptr_to_section(obj, sect, off + 8, address.0, address.1 as i64);
        obj.sections[sect].write_uint(off + 16, 8, size);
        obj.sections[sect].write_uint(off + 24, 4, u64::from(flags));
    }
}

/// Writes the canary into a relocated field, keeping the bits outside `dst_mask`.
pub fn write_canary(sec: &mut Section, offset: u64, h: &Howto) -> Option<()> {
    let size = h.size as usize;
    let x = sec.read_uint(offset, size)?;
    let v = (x & !h.dst_mask) | (CANARY & h.dst_mask);
    sec.write_uint(offset, size, v)
}
