//! ELF input: validation of the header and conversion into the model.
//!
//! [`parse`] checks the header, then reads in steps: the content sections
//! (symbol, string and relocation tables are left out), the symbols, and
//! the references between them (relocations, groups, link-order links),
//! each ELF index translated to a model id.

use super::{Group, Object, Reloc, SecId, Section, SymId, SymSection, Symbol};
use crate::engine::error::{ObjError, ObjResult};
use object::Endianness;
use object::elf;
use object::read::elf::{FileHeader, SectionHeader, SectionTable, Sym};

/// Magic of a regular `ar` archive.
pub const AR_MAGIC: &[u8] = b"!<arch>\n";
/// Magic of a GNU thin archive.
pub const AR_THIN_MAGIC: &[u8] = b"!<thin>\n";

/// Counts the members of an archive (symbol tables excluded), or `None` when
/// `data` is not an archive.
pub fn archive_members(data: &[u8]) -> Option<ObjResult<usize>> {
    if !data.starts_with(AR_MAGIC) && !data.starts_with(AR_THIN_MAGIC) {
        return None;
    }
    Some(
        object::read::archive::ArchiveFile::parse(data)
            .map_err(|e| ObjError::Corrupt(format!("archive: {e}")))
            .and_then(|a| {
                let mut n = 0;
                for m in a.members() {
                    m.map_err(|e| ObjError::Corrupt(format!("archive: {e}")))?;
                    n += 1;
                }
                Ok(n)
            }),
    )
}

fn trunc<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> ObjError {
    move |e| ObjError::Truncated(format!("{what}: {e}"))
}

/// Checks the identification and header fields before any parsing.
fn check_header(data: &[u8]) -> ObjResult<()> {
    if let Some(members) = archive_members(data) {
        return Err(ObjError::Archive { members: members? });
    }
    if data.len() < 4 || &data[..4] != b"\x7fELF" {
        return Err(ObjError::NotElf);
    }
    if data.len() < 20 {
        return Err(ObjError::Truncated(
            "file shorter than the ELF identification".into(),
        ));
    }
    match data[4] {
        elf::ELFCLASS64 => {}
        elf::ELFCLASS32 => return Err(ObjError::Elf32),
        c => return Err(ObjError::Corrupt(format!("bad ELF class {c}"))),
    }
    match data[5] {
        elf::ELFDATA2LSB => {}
        elf::ELFDATA2MSB => return Err(ObjError::BigEndian),
        d => return Err(ObjError::Corrupt(format!("bad ELF data encoding {d}"))),
    }
    let e_type = u16::from_le_bytes([data[16], data[17]]);
    let e_machine = u16::from_le_bytes([data[18], data[19]]);
    if e_machine != elf::EM_X86_64 {
        return Err(ObjError::Machine(e_machine));
    }
    if data.len() < 64 {
        return Err(ObjError::Truncated(
            "file shorter than the ELF header".into(),
        ));
    }
    if e_type != elf::ET_REL {
        return Err(ObjError::NotRelocatable(e_type));
    }
    Ok(())
}

type Header = elf::FileHeader64<Endianness>;

/// Parses `data` into the model.
pub fn parse(data: &[u8]) -> ObjResult<Object> {
    check_header(data)?;
    let header = Header::parse(data).map_err(trunc("header"))?;
    let endian = header.endian().map_err(trunc("header"))?;
    let sections = header
        .sections(endian, data)
        .map_err(trunc("section headers"))?;
    let mut r = Reader {
        data,
        endian,
        sections,
        sec_map: Vec::new(),
        sym_map: Vec::new(),
        out: Object {
            e_flags: header.e_flags(endian),
            ..Object::default()
        },
    };
    r.read_sections()?;
    r.read_symbols()?;
    r.read_links()?;
    Ok(r.out)
}

/// The state of one parse: the input, its section table, the model built
/// so far and the model id of each ELF section and symbol index.
struct Reader<'d> {
    data: &'d [u8],
    endian: Endianness,
    sections: SectionTable<'d, Header>,
    /// Model id for every ELF section index that carries contents.
    sec_map: Vec<Option<SecId>>,
    /// Model id for every ELF symbol index but 0.
    sym_map: Vec<Option<SymId>>,
    out: Object,
}

/// Section types the model does not hold (rebuilt on output).
fn is_table(t: u32) -> bool {
    matches!(
        t,
        elf::SHT_NULL
            | elf::SHT_SYMTAB
            | elf::SHT_STRTAB
            | elf::SHT_RELA
            | elf::SHT_REL
            | elf::SHT_SYMTAB_SHNDX
    )
}

impl<'d> Reader<'d> {
    /// The model id of ELF section `elf_index`.
    fn section_of(&self, elf_index: usize) -> ObjResult<SecId> {
        self.sec_map
            .get(elf_index)
            .copied()
            .flatten()
            .ok_or_else(|| ObjError::Corrupt(format!("reference to section index {elf_index}")))
    }

    /// The model id of ELF symbol `elf_index`.
    fn symbol_of(&self, elf_index: usize) -> ObjResult<SymId> {
        self.sym_map
            .get(elf_index)
            .copied()
            .flatten()
            .ok_or_else(|| ObjError::Corrupt(format!("reference to symbol index {elf_index}")))
    }

    /// The content sections, without relocations, groups and links.
    fn read_sections(&mut self) -> ObjResult<()> {
        let endian = self.endian;
        self.sec_map = vec![None; self.sections.len()];
        for (i, sh) in self.sections.iter().enumerate() {
            let t = sh.sh_type(endian);
            if t == elf::SHT_REL {
                return Err(ObjError::Unsupported(
                    "SHT_REL relocation section (x86-64 objects use RELA)".into(),
                ));
            }
            if i == 0 || is_table(t) {
                continue;
            }
            let section = self.read_section(sh)?;
            self.sec_map[i] = Some(self.out.push_section(section));
        }
        Ok(())
    }

    /// One content section's header and contents.
    fn read_section(&self, sh: &elf::SectionHeader64<Endianness>) -> ObjResult<Section> {
        let endian = self.endian;
        let t = sh.sh_type(endian);
        let name = self
            .sections
            .section_name(endian, sh)
            .map_err(trunc("section name"))?;
        let name = String::from_utf8_lossy(name).into_owned();
        let (bytes, nobits_size) = if t == elf::SHT_NOBITS {
            (Vec::new(), sh.sh_size(endian))
        } else {
            let d = sh
                .data(endian, self.data)
                .map_err(|e| ObjError::Truncated(format!("section {name}: {e}")))?;
            (d.to_vec(), 0)
        };
        let align = sh.sh_addralign(endian).max(1);
        if !align.is_power_of_two() {
            return Err(ObjError::Corrupt(format!(
                "section {name} has alignment {align}, not a power of two"
            )));
        }
        Ok(Section {
            name,
            sh_type: t,
            flags: sh.sh_flags(endian),
            align,
            entsize: sh.sh_entsize(endian),
            data: bytes,
            nobits_size,
            relocs: Vec::new(),
            info: sh.sh_info(endian),
            group: None,
            link_order: None,
        })
    }

    /// The symbol table (the null symbol left out).
    fn read_symbols(&mut self) -> ObjResult<()> {
        let endian = self.endian;
        let symtab = self
            .sections
            .symbols(endian, self.data, elf::SHT_SYMTAB)
            .map_err(trunc("symbol table"))?;
        self.sym_map = vec![None; symtab.len()];
        for (i, sym) in symtab.iter().enumerate() {
            if i == 0 {
                continue;
            }
            let section = match sym.st_shndx(endian) {
                elf::SHN_UNDEF => SymSection::Undefined,
                elf::SHN_ABS => SymSection::Absolute,
                elf::SHN_COMMON => SymSection::Common,
                _ => {
                    let idx = symtab
                        .symbol_section(endian, sym, object::SymbolIndex(i))
                        .map_err(trunc("symbol section"))?;
                    match idx {
                        Some(idx) => SymSection::Section(self.section_of(idx.0)?),
                        None => SymSection::Undefined,
                    }
                }
            };
            let name = symtab
                .symbol_name(endian, sym)
                .map_err(trunc("symbol name"))?;
            self.sym_map[i] = Some(self.out.push_symbol(Symbol {
                name: String::from_utf8_lossy(name).into_owned(),
                value: sym.st_value(endian),
                size: sym.st_size(endian),
                kind: sym.st_type(),
                bind: sym.st_bind(),
                other: sym.st_other(),
                section,
            }));
        }
        Ok(())
    }

    /// Relocations, groups and link-order links.
    fn read_links(&mut self) -> ObjResult<()> {
        let endian = self.endian;
        let sections = self.sections;
        for (i, sh) in sections.iter().enumerate() {
            let t = sh.sh_type(endian);
            if t == elf::SHT_RELA {
                self.read_relocs(sh)?;
            } else if t == elf::SHT_GROUP
                && let Some(me) = self.sec_map[i]
            {
                self.read_group(sh, me)?;
            }
            if let Some(me) = self.sec_map[i]
                && sh.sh_flags(endian) & u64::from(elf::SHF_LINK_ORDER) != 0
            {
                let link = sh.sh_link(endian) as usize;
                if link != 0 {
                    self.out[me].link_order = Some(self.section_of(link)?);
                }
            }
        }
        Ok(())
    }

    /// One `.rela` section, added to the section it applies to.
    fn read_relocs(&mut self, sh: &elf::SectionHeader64<Endianness>) -> ObjResult<()> {
        let endian = self.endian;
        let target = self.section_of(sh.sh_info(endian) as usize)?;
        let (relas, _) = sh
            .rela(endian, self.data)
            .map_err(trunc("relocation section"))?
            .ok_or_else(|| ObjError::Corrupt("relocation section".into()))?;
        let size = self.out[target].size();
        let mut relocs = Vec::with_capacity(relas.len());
        for r in relas {
            let r_sym = r.r_sym(endian, false) as usize;
            let r_type = r.r_type(endian, false);
            let offset = r.r_offset.get(endian);
            if r_type == elf::R_X86_64_NONE {
                continue;
            }
            if offset >= size {
                return Err(ObjError::Corrupt(format!(
                    "relocation at {offset:#x} outside section {} of size {size:#x}",
                    self.out[target].name
                )));
            }
            if r_sym == 0 {
                return Err(ObjError::Unsupported(format!(
                    "relocation without symbol at {offset:#x} in {}",
                    self.out[target].name
                )));
            }
            relocs.push(Reloc {
                offset,
                r_type,
                sym: self.symbol_of(r_sym)?,
                addend: r.r_addend.get(endian),
            });
        }
        relocs.sort_by_key(|r| r.offset);
        let out = &mut self.out[target].relocs;
        out.extend(relocs);
        out.sort_by_key(|r| r.offset);
        Ok(())
    }

    /// The members and signature of group section `me`.
    fn read_group(&mut self, sh: &elf::SectionHeader64<Endianness>, me: SecId) -> ObjResult<()> {
        let endian = self.endian;
        let words = &self.out[me].data;
        if words.len() < 4 || !words.len().is_multiple_of(4) {
            return Err(ObjError::Corrupt(format!(
                "group section {} of size {}",
                self.out[me].name,
                words.len()
            )));
        }
        let word =
            |k: usize| u32::from_le_bytes([words[k], words[k + 1], words[k + 2], words[k + 3]]);
        let flags = word(0);
        let mut members = Vec::new();
        for k in (4..words.len()).step_by(4) {
            let m = word(k) as usize;
            let is_rela = self
                .sections
                .section(object::SectionIndex(m))
                .map(|h| matches!(h.sh_type(endian), elf::SHT_RELA))
                .unwrap_or(false);
            if !is_rela {
                members.push(self.section_of(m)?);
            }
        }
        let signature = self.symbol_of(sh.sh_info(endian) as usize)?;
        self.out[me].group = Some(Group {
            flags,
            members,
            signature,
        });
        Ok(())
    }
}
