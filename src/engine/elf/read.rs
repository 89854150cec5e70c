//! ELF input: validation of the header and conversion into the model.

use super::{Group, Object, Reloc, Section, SymSection, Symbol};
use crate::engine::error::{ObjError, ObjResult};
use object::Endianness;
use object::elf;
use object::read::elf::{FileHeader, SectionHeader, Sym};

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

/// Parses `data` into the model.
pub fn parse(data: &[u8]) -> ObjResult<Object> {
    check_header(data)?;
    let header = elf::FileHeader64::<Endianness>::parse(data).map_err(trunc("header"))?;
    let endian = header.endian().map_err(trunc("header"))?;
    let sections = header
        .sections(endian, data)
        .map_err(trunc("section headers"))?;

    // Model index for every ELF section index that carries contents.
    let count = sections.len();
    let mut map: Vec<Option<usize>> = vec![None; count];
    let mut out = Object {
        e_flags: header.e_flags(endian),
        ..Object::default()
    };
    for (i, sh) in sections.iter().enumerate() {
        let t = sh.sh_type(endian);
        if i == 0
            || matches!(
                t,
                elf::SHT_NULL
                    | elf::SHT_SYMTAB
                    | elf::SHT_STRTAB
                    | elf::SHT_RELA
                    | elf::SHT_REL
                    | elf::SHT_SYMTAB_SHNDX
            )
        {
            if t == elf::SHT_REL {
                return Err(ObjError::Unsupported(
                    "SHT_REL relocation section (x86-64 objects use RELA)".into(),
                ));
            }
            continue;
        }
        let name = sections
            .section_name(endian, sh)
            .map_err(trunc("section name"))?;
        let name = String::from_utf8_lossy(name).into_owned();
        let (bytes, nobits_size) = if t == elf::SHT_NOBITS {
            (Vec::new(), sh.sh_size(endian))
        } else {
            let d = sh
                .data(endian, data)
                .map_err(|e| ObjError::Truncated(format!("section {name}: {e}")))?;
            (d.to_vec(), 0)
        };
        let align = sh.sh_addralign(endian).max(1);
        if !align.is_power_of_two() {
            return Err(ObjError::Corrupt(format!(
                "section {name} has alignment {align}, not a power of two"
            )));
        }
        map[i] = Some(out.sections.len());
        out.sections.push(Section {
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
        });
    }
    let section_of = |elf_index: usize| -> ObjResult<usize> {
        map.get(elf_index)
            .copied()
            .flatten()
            .ok_or_else(|| ObjError::Corrupt(format!("reference to section index {elf_index}")))
    };

    // Symbols. Model symbol i+? : keep a map from ELF symbol index.
    let symtab = sections
        .symbols(endian, data, elf::SHT_SYMTAB)
        .map_err(trunc("symbol table"))?;
    let mut sym_map: Vec<Option<usize>> = vec![None; symtab.len()];
    for (i, sym) in symtab.iter().enumerate() {
        if i == 0 {
            continue;
        }
        let shndx = sym.st_shndx(endian);
        let section = match shndx {
            elf::SHN_UNDEF => SymSection::Undefined,
            elf::SHN_ABS => SymSection::Absolute,
            elf::SHN_COMMON => SymSection::Common,
            _ => {
                let idx = symtab
                    .symbol_section(endian, sym, object::SymbolIndex(i))
                    .map_err(trunc("symbol section"))?;
                match idx {
                    Some(idx) => SymSection::Section(section_of(idx.0)?),
                    None => SymSection::Undefined,
                }
            }
        };
        let name = symtab
            .symbol_name(endian, sym)
            .map_err(trunc("symbol name"))?;
        sym_map[i] = Some(out.symbols.len());
        out.symbols.push(Symbol {
            name: String::from_utf8_lossy(name).into_owned(),
            value: sym.st_value(endian),
            size: sym.st_size(endian),
            kind: sym.st_type(),
            bind: sym.st_bind(),
            other: sym.st_other(),
            section,
        });
    }
    let symbol_of = |elf_index: usize| -> ObjResult<usize> {
        sym_map
            .get(elf_index)
            .copied()
            .flatten()
            .ok_or_else(|| ObjError::Corrupt(format!("reference to symbol index {elf_index}")))
    };

    // Relocations, groups and link-order links.
    for (i, sh) in sections.iter().enumerate() {
        let t = sh.sh_type(endian);
        if t == elf::SHT_RELA {
            let target = section_of(sh.sh_info(endian) as usize)?;
            let (relas, _) = sh
                .rela(endian, data)
                .map_err(trunc("relocation section"))?
                .ok_or_else(|| ObjError::Corrupt("relocation section".into()))?;
            let size = out.sections[target].size();
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
                        out.sections[target].name
                    )));
                }
                let sym = if r_sym == 0 {
                    return Err(ObjError::Unsupported(format!(
                        "relocation without symbol at {offset:#x} in {}",
                        out.sections[target].name
                    )));
                } else {
                    symbol_of(r_sym)?
                };
                relocs.push(Reloc {
                    offset,
                    r_type,
                    sym,
                    addend: r.r_addend.get(endian),
                });
            }
            relocs.sort_by_key(|r| r.offset);
            out.sections[target].relocs.extend(relocs);
            out.sections[target].relocs.sort_by_key(|r| r.offset);
        } else if t == elf::SHT_GROUP {
            let Some(me) = map[i] else { continue };
            let words = &out.sections[me].data;
            if words.len() < 4 || !words.len().is_multiple_of(4) {
                return Err(ObjError::Corrupt(format!(
                    "group section {} of size {}",
                    out.sections[me].name,
                    words.len()
                )));
            }
            let word =
                |k: usize| u32::from_le_bytes([words[k], words[k + 1], words[k + 2], words[k + 3]]);
            let flags = word(0);
            let mut members = Vec::new();
            for k in (4..words.len()).step_by(4) {
                let m = word(k) as usize;
                let is_rela = sections
                    .section(object::SectionIndex(m))
                    .map(|h| matches!(h.sh_type(endian), elf::SHT_RELA))
                    .unwrap_or(false);
                if !is_rela {
                    members.push(section_of(m)?);
                }
            }
            let signature = symbol_of(sh.sh_info(endian) as usize)?;
            out.sections[me].group = Some(Group {
                flags,
                members,
                signature,
            });
        }
        if let Some(me) = map[i]
            && sh.sh_flags(endian) & u64::from(elf::SHF_LINK_ORDER) != 0
        {
            let link = sh.sh_link(endian) as usize;
            if link != 0 {
                out.sections[me].link_order = Some(section_of(link)?);
            }
        }
    }
    Ok(out)
}
