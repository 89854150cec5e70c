//! The object model: an x86-64 ELF relocatable object held in memory.
//!
//! Reading ([`Object::parse`]) and writing ([`Object::to_bytes`]) go through
//! the `object` crate's low-level ELF reader and writer; in between, the
//! transforms edit plain vectors of sections, symbols and relocations.
//! Symbol and relocation tables, string tables and `.rela` sections are not
//! part of the model: they are rebuilt on output.
//!
//! Sections and symbols are named by typed ids ([`SecId`], [`SymId`]), their
//! positions in [`Object::sections`] and [`Object::symbols`]; removing some
//! ([`Object::compact`]) renumbers every reference through one [`IdMap`].

mod id;
pub use id::{Id, IdMap, IdVec, SecId, SymId};
mod read;
pub use read::{AR_MAGIC, AR_THIN_MAGIC, archive_members};
mod write;

pub mod howto;

use object::elf;

/// Where a symbol is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SymSection {
    /// Undefined (`SHN_UNDEF`).
    Undefined,
    /// Absolute (`SHN_ABS`).
    Absolute,
    /// Common (`SHN_COMMON`).
    Common,
    /// Defined in this section.
    Section(SecId),
}

impl SymSection {
    /// True for undefined, absolute and common symbols ("constant" sections).
    pub fn is_const(self) -> bool {
        !matches!(self, SymSection::Section(_))
    }

    /// The defining section, if any.
    pub fn id(self) -> Option<SecId> {
        match self {
            SymSection::Section(id) => Some(id),
            _ => None,
        }
    }
}

/// A symbol of the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    /// Name (empty for section symbols, which are named by their section).
    pub name: String,
    /// Value: the offset inside its section for a relocatable object.
    pub value: u64,
    /// Size in bytes.
    pub size: u64,
    /// `STT_*` type.
    pub kind: u8,
    /// `STB_*` binding.
    pub bind: u8,
    /// `st_other` (visibility).
    pub other: u8,
    /// Defining section.
    pub section: SymSection,
}

impl Symbol {
    /// Global or weak binding.
    pub fn is_global(&self) -> bool {
        self.bind == elf::STB_GLOBAL || self.bind == elf::STB_WEAK
    }
    /// Weak binding.
    pub fn is_weak(&self) -> bool {
        self.bind == elf::STB_WEAK
    }
    /// A section symbol.
    pub fn is_section(&self) -> bool {
        self.kind == elf::STT_SECTION
    }
    /// A file symbol.
    pub fn is_file(&self) -> bool {
        self.kind == elf::STT_FILE
    }
    /// Undefined.
    pub fn is_undefined(&self) -> bool {
        self.section == SymSection::Undefined
    }
}

/// A relocation (always RELA on x86-64).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reloc {
    /// Offset of the relocated field in its section.
    pub offset: u64,
    /// `R_X86_64_*` type.
    pub r_type: u32,
    /// The symbol the relocation refers to.
    pub sym: SymId,
    /// Explicit addend.
    pub addend: i64,
}

/// A section with its contents and relocations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Section name.
    pub name: String,
    /// `SHT_*` type.
    pub sh_type: u32,
    /// `SHF_*` flags.
    pub flags: u64,
    /// Alignment (a power of two, at least 1).
    pub align: u64,
    /// Entry size for merge/table sections.
    pub entsize: u64,
    /// Contents (empty for `SHT_NOBITS`).
    pub data: Vec<u8>,
    /// Size for `SHT_NOBITS` sections (otherwise `data.len()`).
    pub nobits_size: u64,
    /// Relocations applying to this section, sorted by offset.
    pub relocs: Vec<Reloc>,
    /// `sh_info` for sections whose info is not an index the model rebuilds.
    pub info: u32,
    /// For `SHT_GROUP`: the group flags word and member sections.
    pub group: Option<Group>,
    /// For `SHF_LINK_ORDER` sections: the linked section.
    pub link_order: Option<SecId>,
}

/// Contents of an `SHT_GROUP` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The flags word (`GRP_COMDAT`).
    pub flags: u32,
    /// Member sections.
    pub members: Vec<SecId>,
    /// The signature symbol.
    pub signature: SymId,
}

impl Section {
    /// A new empty `SHT_PROGBITS` section, allocated, for metadata.
    pub fn new_progbits(name: &str, flags: u64, align: u64) -> Section {
        Section {
            name: name.to_string(),
            sh_type: elf::SHT_PROGBITS,
            flags,
            align,
            entsize: 0,
            data: Vec::new(),
            nobits_size: 0,
            relocs: Vec::new(),
            info: 0,
            group: None,
            link_order: None,
        }
    }

    /// Size in bytes (the memory size for `SHT_NOBITS`).
    pub fn size(&self) -> u64 {
        if self.sh_type == elf::SHT_NOBITS {
            self.nobits_size
        } else {
            self.data.len() as u64
        }
    }

    /// True when the section occupies memory at run time.
    pub fn is_alloc(&self) -> bool {
        self.flags & u64::from(elf::SHF_ALLOC) != 0
    }

    /// True for executable sections.
    pub fn is_exec(&self) -> bool {
        self.flags & u64::from(elf::SHF_EXECINSTR) != 0
    }

    /// True for writable sections.
    pub fn is_write(&self) -> bool {
        self.flags & u64::from(elf::SHF_WRITE) != 0
    }

    /// Reads a little-endian unsigned value of `size` bytes at `offset`.
    pub fn read_uint(&self, offset: u64, size: usize) -> Option<u64> {
        let start = usize::try_from(offset).ok()?;
        let bytes = self.data.get(start..start.checked_add(size)?)?;
        let mut v = 0u64;
        for (i, b) in bytes.iter().enumerate().take(8) {
            v |= u64::from(*b) << (8 * i);
        }
        Some(v)
    }

    /// Writes a little-endian value of `size` bytes at `offset`.
    pub fn write_uint(&mut self, offset: u64, size: usize, value: u64) -> Option<()> {
        let start = usize::try_from(offset).ok()?;
        let bytes = self.data.get_mut(start..start.checked_add(size)?)?;
        for (i, b) in bytes.iter_mut().enumerate().take(8) {
            *b = (value >> (8 * i)) as u8;
        }
        Some(())
    }
}

/// A relocatable x86-64 ELF object.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Object {
    /// Sections (without symbol, string and relocation tables).
    pub sections: Vec<Section>,
    /// Symbols; index 0 is not special (the null symbol is implicit).
    pub symbols: Vec<Symbol>,
    /// `e_flags` of the input.
    pub e_flags: u32,
}

impl Object {
    /// Parses an x86-64 ELF relocatable object.
    pub fn parse(data: &[u8]) -> crate::engine::error::ObjResult<Object> {
        read::parse(data)
    }

    /// Serialises the object as ELF.
    pub fn to_bytes(&self) -> crate::engine::error::ObjResult<Vec<u8>> {
        write::write(self)
    }

    /// The section `id` (panics when `id` is not of this object; use
    /// [`Object::get_section`] for ids read from input).
    pub fn section(&self, id: SecId) -> &Section {
        &self.sections[id.index()]
    }

    /// The section `id`, mutably.
    pub fn section_mut(&mut self, id: SecId) -> &mut Section {
        &mut self.sections[id.index()]
    }

    /// The section `id`, `None` when there is none.
    pub fn get_section(&self, id: SecId) -> Option<&Section> {
        self.sections.get(id.index())
    }

    /// The symbol `id` (panics when `id` is not of this object; use
    /// [`Object::get_symbol`] for ids read from input).
    pub fn symbol(&self, id: SymId) -> &Symbol {
        &self.symbols[id.index()]
    }

    /// The symbol `id`, mutably.
    pub fn symbol_mut(&mut self, id: SymId) -> &mut Symbol {
        &mut self.symbols[id.index()]
    }

    /// The symbol `id`, `None` when there is none.
    pub fn get_symbol(&self, id: SymId) -> Option<&Symbol> {
        self.symbols.get(id.index())
    }

    /// The ids of all sections, in order.
    pub fn section_ids(&self) -> impl Iterator<Item = SecId> + use<> {
        (0..self.sections.len()).map(SecId::new)
    }

    /// The ids of all symbols, in order.
    pub fn symbol_ids(&self) -> impl Iterator<Item = SymId> + use<> {
        (0..self.symbols.len()).map(SymId::new)
    }

    /// The sections with their ids.
    pub fn sections_with_ids(&self) -> impl Iterator<Item = (SecId, &Section)> {
        self.sections
            .iter()
            .enumerate()
            .map(|(i, s)| (SecId::new(i), s))
    }

    /// The symbols with their ids.
    pub fn symbols_with_ids(&self) -> impl Iterator<Item = (SymId, &Symbol)> {
        self.symbols
            .iter()
            .enumerate()
            .map(|(i, s)| (SymId::new(i), s))
    }

    /// Appends a section and returns its id.
    pub fn push_section(&mut self, s: Section) -> SecId {
        self.sections.push(s);
        SecId::new(self.sections.len() - 1)
    }

    /// Appends a symbol and returns its id.
    pub fn push_symbol(&mut self, s: Symbol) -> SymId {
        self.symbols.push(s);
        SymId::new(self.symbols.len() - 1)
    }

    /// Finds a section by exact name.
    pub fn section_by_name(&self, name: &str) -> Option<SecId> {
        self.sections
            .iter()
            .position(|s| s.name == name)
            .map(SecId::new)
    }

    /// Returns the id of a section symbol for `sect`, creating one if needed.
    pub fn section_symbol(&mut self, sect: SecId) -> SymId {
        if let Some(i) = self
            .symbols
            .iter()
            .position(|s| s.is_section() && s.section == SymSection::Section(sect))
        {
            return SymId::new(i);
        }
        self.add_section_symbol(sect)
    }

    /// Appends a section symbol for `sect` (the caller knows there is none)
    /// and returns its id.
    pub fn add_section_symbol(&mut self, sect: SecId) -> SymId {
        self.push_symbol(Symbol {
            name: String::new(),
            value: 0,
            size: 0,
            kind: elf::STT_SECTION,
            bind: elf::STB_LOCAL,
            other: 0,
            section: SymSection::Section(sect),
        })
    }

    /// Returns the id of an undefined global symbol `name`, creating one if needed.
    pub fn undefined_symbol(&mut self, name: &str) -> SymId {
        if let Some(i) = self
            .symbols
            .iter()
            .position(|s| s.is_undefined() && s.name == name)
        {
            return SymId::new(i);
        }
        self.add_undefined_symbol(name)
    }

    /// Appends an undefined global symbol `name` (the caller knows there is
    /// none) and returns its id.
    pub fn add_undefined_symbol(&mut self, name: &str) -> SymId {
        self.push_symbol(Symbol {
            name: name.to_string(),
            value: 0,
            size: 0,
            kind: elf::STT_NOTYPE,
            bind: elf::STB_GLOBAL,
            other: 0,
            section: SymSection::Undefined,
        })
    }

    /// Display name of a symbol: its own name, or its section's for a section symbol.
    pub fn symbol_name(&self, sym: SymId) -> &str {
        let Some(s) = self.get_symbol(sym) else {
            return "";
        };
        if s.is_section()
            && let SymSection::Section(i) = s.section
            && let Some(sec) = self.get_section(i)
        {
            return &sec.name;
        }
        &s.name
    }
}

impl std::ops::Index<SecId> for Object {
    type Output = Section;
    fn index(&self, id: SecId) -> &Section {
        self.section(id)
    }
}

impl std::ops::IndexMut<SecId> for Object {
    fn index_mut(&mut self, id: SecId) -> &mut Section {
        self.section_mut(id)
    }
}

impl std::ops::Index<SymId> for Object {
    type Output = Symbol;
    fn index(&self, id: SymId) -> &Symbol {
        self.symbol(id)
    }
}

impl std::ops::IndexMut<SymId> for Object {
    fn index_mut(&mut self, id: SymId) -> &mut Symbol {
        self.symbol_mut(id)
    }
}

impl Object {
    /// Removes the sections `secs` drops and the symbols `syms` drops, with
    /// the symbols defined in removed sections, and renumbers every
    /// reference: relocations to removed symbols go, groups lose removed
    /// members (and the group itself goes with its signature), and a
    /// link-order link to a removed section goes. Both maps are
    /// compactions ([`IdMap::compact`]) of this object's ids.
    pub fn compact(&mut self, secs: &IdMap<SecId>, syms: &IdMap<SymId>) {
        // Symbols of removed sections go too: the final symbol map.
        let keep_sym = self
            .symbols_with_ids()
            .map(|(i, s)| syms.contains(i) && s.section.id().is_none_or(|k| secs.contains(k)));
        let syms: IdMap<SymId> = IdMap::compact(keep_sym.collect::<Vec<_>>());
        self.symbols = syms.retain(std::mem::take(&mut self.symbols));
        for s in &mut self.symbols {
            if let SymSection::Section(k) = s.section
                && let Some(n) = secs.get(k)
            {
                s.section = SymSection::Section(n);
            }
        }
        self.sections = secs.retain(std::mem::take(&mut self.sections));
        for s in &mut self.sections {
            s.relocs.retain_mut(|r| match syms.get(r.sym) {
                Some(n) => {
                    r.sym = n;
                    true
                }
                None => false,
            });
            if let Some(g) = &mut s.group {
                g.members = g.members.iter().filter_map(|&m| secs.get(m)).collect();
                match syms.get(g.signature) {
                    Some(sig) => g.signature = sig,
                    None => s.group = None,
                }
            }
            s.link_order = s.link_order.and_then(|l| secs.get(l));
        }
    }

    /// Removes the sections for which `drop` is true, with the symbols
    /// defined in them and the relocations that refer to those symbols.
    /// Returns the number of sections removed.
    pub fn remove_sections(&mut self, drop: impl Fn(&Section) -> bool) -> usize {
        let keep: Vec<bool> = self.sections.iter().map(|s| !drop(s)).collect();
        let n = keep.iter().filter(|&&k| !k).count();
        if n > 0 {
            let syms = IdMap::compact(vec![true; self.symbols.len()]);
            self.compact(&IdMap::compact(keep), &syms);
        }
        n
    }

    /// Removes undefined symbols no relocation or group refers to, so that
    /// the module tools (modpost, the module loader) see no stale imports.
    pub fn drop_unused_undefined(&mut self) {
        let mut used = vec![false; self.symbols.len()];
        for s in &self.sections {
            let refs = s.relocs.iter().map(|r| r.sym);
            for sym in refs.chain(s.group.as_ref().map(|g| g.signature)) {
                if let Some(u) = used.get_mut(sym.index()) {
                    *u = true;
                }
            }
        }
        let keep = self
            .symbols
            .iter()
            .zip(&used)
            .map(|(s, &u)| u || !s.is_undefined());
        let syms = IdMap::compact(keep.collect::<Vec<_>>());
        if !syms.is_identity() {
            self.compact(&IdMap::compact(vec![true; self.sections.len()]), &syms);
        }
    }

    /// Sorts every section's relocations by offset (stable).
    pub fn sort_relocs(&mut self) {
        for s in &mut self.sections {
            s.relocs.sort_by_key(|r| r.offset);
        }
    }

    /// Makes every defined global or weak symbol local.
    pub fn localize_defined(&mut self) {
        for s in &mut self.symbols {
            if s.is_global() && !s.section.is_const() {
                s.bind = elf::STB_LOCAL;
            }
        }
    }
}

// Typed indexing of the model's vectors, so that `obj.sections[id]` and
// `obj.symbols[id]` take ids of the right kind (and plain positions still
// work for code that walks the vectors).
macro_rules! typed_index {
    ($id:ty, $item:ty) => {
        impl std::ops::Index<$id> for [$item] {
            type Output = $item;
            fn index(&self, id: $id) -> &$item {
                &self[id.index()]
            }
        }
        impl std::ops::IndexMut<$id> for [$item] {
            fn index_mut(&mut self, id: $id) -> &mut $item {
                &mut self[id.index()]
            }
        }
        impl std::ops::Index<$id> for Vec<$item> {
            type Output = $item;
            fn index(&self, id: $id) -> &$item {
                &self[id.index()]
            }
        }
        impl std::ops::IndexMut<$id> for Vec<$item> {
            fn index_mut(&mut self, id: $id) -> &mut $item {
                &mut self[id.index()]
            }
        }
    };
}
typed_index!(SecId, Section);
typed_index!(SymId, Symbol);

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(name: &str, section: SymSection) -> Symbol {
        Symbol {
            name: name.into(),
            value: 0,
            size: 0,
            kind: elf::STT_NOTYPE,
            bind: elf::STB_GLOBAL,
            other: 0,
            section,
        }
    }

    fn reloc(offset: u64, sym: SymId) -> Reloc {
        Reloc {
            offset,
            r_type: elf::R_X86_64_64,
            sym,
            addend: 0,
        }
    }

    /// Sections a, b, c; symbols in each and one undefined; a refers to
    /// all of them, c is linked to b and a group holds a, b and c.
    fn sample() -> Object {
        let mut o = Object::default();
        let [a, b, c] = ["a", "b", "c"].map(|n| o.push_section(Section::new_progbits(n, 0, 1)));
        let sa = o.push_symbol(sym("sa", SymSection::Section(a)));
        let sb = o.push_symbol(sym("sb", SymSection::Section(b)));
        let sc = o.push_symbol(sym("sc", SymSection::Section(c)));
        let u = o.add_undefined_symbol("u");
        let unused = o.add_undefined_symbol("unused");
        o[a].data = vec![0; 32];
        o[a].relocs = vec![reloc(0, sa), reloc(8, sb), reloc(16, sc), reloc(24, u)];
        o[c].link_order = Some(b);
        let mut g = Section::new_progbits("grp", 0, 4);
        g.sh_type = elf::SHT_GROUP;
        g.group = Some(Group {
            flags: 1,
            members: vec![a, b, c],
            signature: sc,
        });
        o.push_section(g);
        assert_eq!(o.symbol_name(unused), "unused");
        o
    }

    #[test]
    fn remove_sections_renumbers_every_reference() {
        let mut o = sample();
        assert_eq!(o.remove_sections(|s| s.name == "b"), 1);
        let names: Vec<&str> = o.sections.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a", "c", "grp"]);
        let (a, c) = (SecId::new(0), SecId::new(1));
        let syms: Vec<&str> = o.symbols.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(syms, ["sa", "sc", "u", "unused"]);
        assert_eq!(o[SymId::new(1)].section, SymSection::Section(c));
        let targets: Vec<&str> = o[a].relocs.iter().map(|r| o.symbol_name(r.sym)).collect();
        assert_eq!(targets, ["sa", "sc", "u"]);
        assert_eq!(o[c].link_order, None);
        let g = o.sections[2].group.as_ref().unwrap();
        assert_eq!(g.members, [a, c]);
        assert_eq!(o.symbol_name(g.signature), "sc");
    }

    #[test]
    fn removing_the_signature_section_drops_the_group() {
        let mut o = sample();
        o.remove_sections(|s| s.name == "c");
        assert!(o.sections[2].group.is_none());
        assert_eq!(o[SecId::new(0)].relocs.len(), 3);
    }

    #[test]
    fn drop_unused_undefined_keeps_referenced_symbols() {
        let mut o = sample();
        o.drop_unused_undefined();
        let syms: Vec<&str> = o.symbols.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(syms, ["sa", "sb", "sc", "u"]);
        let targets: Vec<&str> = o.sections[0]
            .relocs
            .iter()
            .map(|r| o.symbol_name(r.sym))
            .collect();
        assert_eq!(targets, ["sa", "sb", "sc", "u"]);
    }
}
