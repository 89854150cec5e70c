//! ELF output: the model serialised with `object`'s low-level ELF writer.
//!
//! Layout follows what the assembler produces: every content section is
//! followed by its `.rela` section; then the symbol table (locals first),
//! its string table and the section-name string table.

use super::{Object, SymSection};
use crate::engine::error::{ObjError, ObjResult};
use object::Endianness;
use object::elf;
use object::write::elf::{FileHeader, Rel, SectionHeader, SectionIndex, Sym, SymbolIndex, Writer};

/// Serialises `obj`.
pub fn write(obj: &Object) -> ObjResult<Vec<u8>> {
    let mut buf = Vec::new();
    let mut w = Writer::new(Endianness::Little, true, &mut buf);
    w.reserve_file_header();
    w.reserve_null_section_index();

    let rela_names: Vec<Vec<u8>> = obj
        .sections
        .iter()
        .map(|s| format!(".rela{}", s.name).into_bytes())
        .collect();

    // Section indices: each section, then its .rela if it has relocations.
    let mut sec_index = Vec::with_capacity(obj.sections.len());
    let mut rela_index = Vec::with_capacity(obj.sections.len());
    let mut sec_name = Vec::with_capacity(obj.sections.len());
    let mut rela_name = Vec::with_capacity(obj.sections.len());
    for (i, s) in obj.sections.iter().enumerate() {
        sec_name.push(w.add_section_name(s.name.as_bytes()));
        sec_index.push(w.reserve_section_index());
        if s.relocs.is_empty() {
            rela_index.push(None);
            rela_name.push(None);
        } else {
            rela_name.push(Some(w.add_section_name(&rela_names[i])));
            rela_index.push(Some(w.reserve_section_index()));
        }
    }

    // Symbols: locals first.
    w.reserve_null_symbol_index();
    let mut order: Vec<usize> = (0..obj.symbols.len())
        .filter(|&i| obj.symbols[i].bind == elf::STB_LOCAL)
        .collect();
    let num_local = order.len() as u32 + 1;
    order.extend((0..obj.symbols.len()).filter(|&i| obj.symbols[i].bind != elf::STB_LOCAL));
    let mut sym_index = vec![SymbolIndex(0); obj.symbols.len()];
    let mut sym_name = vec![None; obj.symbols.len()];
    for &i in &order {
        let s = &obj.symbols[i];
        let section = match s.section {
            SymSection::Section(k) => Some(*sec_index.get(k).ok_or_else(|| {
                ObjError::Corrupt(format!("symbol {} in missing section {k}", s.name))
            })?),
            _ => None,
        };
        if !s.name.is_empty() && !s.is_section() {
            sym_name[i] = Some(w.add_string(s.name.as_bytes()));
        }
        sym_index[i] = w.reserve_symbol_index(section);
    }
    let symtab = w.reserve_symtab_section_index();
    let symtab_shndx = if w.symtab_shndx_needed() {
        Some(w.reserve_symtab_shndx_section_index())
    } else {
        None
    };
    w.reserve_strtab_section_index();
    w.reserve_shstrtab_section_index();

    // Group section contents are rebuilt with output indices.
    let mut group_data: Vec<Option<Vec<u8>>> = vec![None; obj.sections.len()];
    for (i, s) in obj.sections.iter().enumerate() {
        if let Some(g) = &s.group {
            let mut d = g.flags.to_le_bytes().to_vec();
            for &m in &g.members {
                let idx = sec_index
                    .get(m)
                    .ok_or_else(|| ObjError::Corrupt(format!("group {} member {m}", s.name)))?;
                d.extend_from_slice(&idx.0.to_le_bytes());
                if let Some(Some(r)) = rela_index.get(m) {
                    d.extend_from_slice(&r.0.to_le_bytes());
                }
            }
            group_data[i] = Some(d);
        }
    }

    // File layout.
    let mut data_off = Vec::with_capacity(obj.sections.len());
    let mut rela_off = Vec::with_capacity(obj.sections.len());
    for (i, s) in obj.sections.iter().enumerate() {
        let len = match &group_data[i] {
            Some(d) => d.len(),
            None => s.data.len(),
        };
        let align = usize::try_from(s.align).unwrap_or(1).clamp(1, 4096);
        data_off.push(if s.sh_type == elf::SHT_NOBITS {
            0
        } else {
            w.reserve(len, align)
        });
        rela_off.push(if s.relocs.is_empty() {
            0
        } else {
            w.reserve_relocations(s.relocs.len(), true)
        });
    }
    w.reserve_symtab();
    if symtab_shndx.is_some() {
        w.reserve_symtab_shndx();
    }
    w.reserve_strtab();
    w.reserve_shstrtab();
    w.reserve_section_headers();

    // Contents.
    w.write_file_header(&FileHeader {
        os_abi: elf::ELFOSABI_NONE,
        abi_version: 0,
        e_type: elf::ET_REL,
        e_machine: elf::EM_X86_64,
        e_entry: 0,
        e_flags: obj.e_flags,
    })
    .map_err(|e| ObjError::Corrupt(format!("writing header: {e}")))?;
    for (i, s) in obj.sections.iter().enumerate() {
        if s.sh_type != elf::SHT_NOBITS {
            let align = usize::try_from(s.align).unwrap_or(1).clamp(1, 4096);
            w.write_align(align);
            match &group_data[i] {
                Some(d) => w.write(d),
                None => w.write(&s.data),
            }
        }
        if !s.relocs.is_empty() {
            w.write_align_relocation();
            for r in &s.relocs {
                let sym = *sym_index.get(r.sym).ok_or_else(|| {
                    ObjError::Corrupt(format!(
                        "relocation in {} to missing symbol {}",
                        s.name, r.sym
                    ))
                })?;
                w.write_relocation(
                    true,
                    &Rel {
                        r_offset: r.offset,
                        r_sym: sym.0,
                        r_type: r.r_type,
                        r_addend: r.addend,
                    },
                );
            }
        }
    }
    w.write_null_symbol();
    for &i in &order {
        let s = &obj.symbols[i];
        let (section, st_shndx) = match s.section {
            SymSection::Section(k) => (Some(sec_index[k]), 0),
            SymSection::Undefined => (None, elf::SHN_UNDEF),
            SymSection::Absolute => (None, elf::SHN_ABS),
            SymSection::Common => (None, elf::SHN_COMMON),
        };
        w.write_symbol(&Sym {
            name: sym_name[i],
            section,
            st_info: (s.bind << 4) | (s.kind & 0xf),
            st_other: s.other,
            st_shndx,
            st_value: s.value,
            st_size: s.size,
        });
    }
    if symtab_shndx.is_some() {
        w.write_symtab_shndx();
    }
    w.write_strtab();
    w.write_shstrtab();

    // Headers.
    w.write_null_section_header();
    for (i, s) in obj.sections.iter().enumerate() {
        let (sh_link, sh_info, entsize) = if let Some(g) = &s.group {
            let sig = sym_index
                .get(g.signature)
                .ok_or_else(|| ObjError::Corrupt(format!("group {} signature", s.name)))?;
            (symtab.0, sig.0, 4)
        } else if let Some(l) = s.link_order {
            let idx: SectionIndex = *sec_index
                .get(l)
                .ok_or_else(|| ObjError::Corrupt(format!("section {} link", s.name)))?;
            (idx.0, s.info, s.entsize)
        } else {
            (0, s.info, s.entsize)
        };
        let size = match &group_data[i] {
            Some(d) => d.len() as u64,
            None => s.size(),
        };
        w.write_section_header(&SectionHeader {
            name: Some(sec_name[i]),
            sh_type: s.sh_type,
            sh_flags: s.flags,
            sh_addr: 0,
            sh_offset: data_off[i] as u64,
            sh_size: size,
            sh_link,
            sh_info,
            sh_addralign: s.align,
            sh_entsize: entsize,
        });
        if let Some(name) = rela_name[i] {
            let entsize = std::mem::size_of::<elf::Rela64<Endianness>>() as u64;
            w.write_section_header(&SectionHeader {
                name: Some(name),
                sh_type: elf::SHT_RELA,
                sh_flags: u64::from(elf::SHF_INFO_LINK) | (s.flags & u64::from(elf::SHF_GROUP)),
                sh_addr: 0,
                sh_offset: rela_off[i] as u64,
                sh_size: s.relocs.len() as u64 * entsize,
                sh_link: symtab.0,
                sh_info: sec_index[i].0,
                sh_addralign: 8,
                sh_entsize: entsize,
            });
        }
    }
    w.write_symtab_section_header(num_local);
    if symtab_shndx.is_some() {
        w.write_symtab_shndx_section_header();
    }
    w.write_strtab_section_header();
    w.write_shstrtab_section_header();
    drop(w);
    Ok(buf)
}
