//! The object model: an x86-64 ELF relocatable object held in memory.
//!
//! Reading ([`Object::parse`]) and writing ([`Object::to_bytes`]) go through
//! the `object` crate's low-level ELF reader and writer; in between, the
//! transforms edit plain vectors of sections, symbols and relocations.
//! Symbol and relocation tables, string tables and `.rela` sections are not
//! part of the model: they are rebuilt on output.

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
    /// Defined in the section with this model index.
    Section(usize),
}

impl SymSection {
    /// True for undefined, absolute and common symbols ("constant" sections).
    pub fn is_const(self) -> bool {
        !matches!(self, SymSection::Section(_))
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
    /// Model index of the symbol.
    pub sym: usize,
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
    /// For `SHT_GROUP`: the group flags word and member sections (model indices).
    pub group: Option<Group>,
    /// For `SHF_LINK_ORDER` sections: the linked section (model index).
    pub link_order: Option<usize>,
}

/// Contents of an `SHT_GROUP` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The flags word (`GRP_COMDAT`).
    pub flags: u32,
    /// Member sections, model indices.
    pub members: Vec<usize>,
    /// The signature symbol, model index.
    pub signature: usize,
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

    /// Finds a section by exact name.
    pub fn section_by_name(&self, name: &str) -> Option<usize> {
        self.sections.iter().position(|s| s.name == name)
    }

    /// Returns the index of a section symbol for `sect`, creating one if needed.
    pub fn section_symbol(&mut self, sect: usize) -> usize {
        if let Some(i) = self
            .symbols
            .iter()
            .position(|s| s.is_section() && s.section == SymSection::Section(sect))
        {
            return i;
        }
        self.add_section_symbol(sect)
    }

    /// Appends a section symbol for `sect` (the caller knows there is none)
    /// and returns its index.
    pub fn add_section_symbol(&mut self, sect: usize) -> usize {
        self.symbols.push(Symbol {
            name: String::new(),
            value: 0,
            size: 0,
            kind: elf::STT_SECTION,
            bind: elf::STB_LOCAL,
            other: 0,
            section: SymSection::Section(sect),
        });
        self.symbols.len() - 1
    }

    /// Returns the index of an undefined global symbol `name`, creating one if needed.
    pub fn undefined_symbol(&mut self, name: &str) -> usize {
        if let Some(i) = self
            .symbols
            .iter()
            .position(|s| s.is_undefined() && s.name == name)
        {
            return i;
        }
        self.add_undefined_symbol(name)
    }

    /// Appends an undefined global symbol `name` (the caller knows there is
    /// none) and returns its index.
    pub fn add_undefined_symbol(&mut self, name: &str) -> usize {
        self.symbols.push(Symbol {
            name: name.to_string(),
            value: 0,
            size: 0,
            kind: elf::STT_NOTYPE,
            bind: elf::STB_GLOBAL,
            other: 0,
            section: SymSection::Undefined,
        });
        self.symbols.len() - 1
    }

    /// Display name of a symbol: its own name, or its section's for a section symbol.
    pub fn symbol_name(&self, sym: usize) -> &str {
        let Some(s) = self.symbols.get(sym) else {
            return "";
        };
        if s.is_section()
            && let SymSection::Section(i) = s.section
            && let Some(sec) = self.sections.get(i)
        {
            return &sec.name;
        }
        &s.name
    }
}

impl Object {
    /// Removes the sections for which `drop` is true, with the symbols
    /// defined in them and the relocations that refer to those symbols.
    /// Returns the number of sections removed.
    pub fn remove_sections(&mut self, drop: impl Fn(&Section) -> bool) -> usize {
        let remove: Vec<bool> = self.sections.iter().map(&drop).collect();
        let n = remove.iter().filter(|&&r| r).count();
        if n == 0 {
            return 0;
        }
        let mut sect_map = vec![None; self.sections.len()];
        let mut next = 0;
        for (i, r) in remove.iter().enumerate() {
            if !r {
                sect_map[i] = Some(next);
                next += 1;
            }
        }
        let mut sym_map = vec![None; self.symbols.len()];
        let mut symbols = Vec::with_capacity(self.symbols.len());
        for (i, s) in self.symbols.iter().enumerate() {
            let section = match s.section {
                SymSection::Section(k) => match sect_map[k] {
                    Some(n) => SymSection::Section(n),
                    None => continue,
                },
                other => other,
            };
            sym_map[i] = Some(symbols.len());
            symbols.push(Symbol {
                section,
                ..s.clone()
            });
        }
        let mut sections = Vec::with_capacity(next);
        for (i, mut s) in std::mem::take(&mut self.sections).into_iter().enumerate() {
            if remove[i] {
                continue;
            }
            s.relocs = s
                .relocs
                .iter()
                .filter_map(|r| sym_map[r.sym].map(|sym| Reloc { sym, ..*r }))
                .collect();
            if let Some(g) = &mut s.group {
                g.members = g.members.iter().filter_map(|&m| sect_map[m]).collect();
                match sym_map[g.signature] {
                    Some(sig) => g.signature = sig,
                    None => s.group = None,
                }
            }
            s.link_order = s.link_order.and_then(|l| sect_map[l]);
            sections.push(s);
        }
        self.sections = sections;
        self.symbols = symbols;
        n
    }

    /// Removes undefined symbols no relocation or group refers to, so that
    /// the module tools (modpost, the module loader) see no stale imports.
    pub fn drop_unused_undefined(&mut self) {
        let mut used = vec![false; self.symbols.len()];
        for s in &self.sections {
            for r in &s.relocs {
                if let Some(u) = used.get_mut(r.sym) {
                    *u = true;
                }
            }
            if let Some(g) = &s.group
                && let Some(u) = used.get_mut(g.signature)
            {
                *u = true;
            }
        }
        let mut map = vec![usize::MAX; self.symbols.len()];
        let mut kept = Vec::with_capacity(self.symbols.len());
        for (i, s) in std::mem::take(&mut self.symbols).into_iter().enumerate() {
            if s.is_undefined() && !used[i] {
                continue;
            }
            map[i] = kept.len();
            kept.push(s);
        }
        self.symbols = kept;
        for s in &mut self.sections {
            for r in &mut s.relocs {
                r.sym = map[r.sym];
            }
            if let Some(g) = &mut s.group {
                g.signature = map[g.signature];
            }
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
