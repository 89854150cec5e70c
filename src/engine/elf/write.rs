//! ELF output: the model serialised with `object`'s low-level ELF writer.
//!
//! Layout follows what the assembler produces: every content section is
//! followed by its `.rela` section; then the symbol table (locals first),
//! its string table and the section-name string table. [`write`] goes
//! through the writer's two passes in steps: reserve section indices and
//! names, symbols, group contents and file space ([`Plan`]), then write
//! the header, contents, symbols and section headers.

use super::{Object, Section, SymSection};
use crate::engine::error::{ObjError, ObjResult};
use object::Endianness;
use object::elf;
use object::write::StringId;
use object::write::elf::{FileHeader, Rel, SectionHeader, SectionIndex, Sym, SymbolIndex, Writer};

/// What the reserving pass decided, per model section and symbol.
struct Plan {
    /// Output index of each section.
    sec_index: Vec<SectionIndex>,
    /// Output index of each section's `.rela`, if it has relocations.
    rela_index: Vec<Option<SectionIndex>>,
    /// Name of each section.
    sec_name: Vec<StringId>,
    /// Name of each section's `.rela`.
    rela_name: Vec<Option<StringId>>,
    /// Model symbols in output order (locals first).
    order: Vec<usize>,
    /// `sh_info` of the symbol table: one past the last local.
    num_local: u32,
    /// Output index of each model symbol.
    sym_index: Vec<SymbolIndex>,
    /// Name of each model symbol (none for section symbols).
    sym_name: Vec<Option<StringId>>,
    /// The symbol table's own index.
    symtab: SectionIndex,
    /// Whether an `SHT_SYMTAB_SHNDX` section is needed.
    symtab_shndx: bool,
    /// Group sections' contents, rebuilt with output indices.
    group_data: Vec<Option<Vec<u8>>>,
    /// File offset of each section's contents.
    data_off: Vec<usize>,
    /// File offset of each section's relocations.
    rela_off: Vec<usize>,
}

/// Serialises `obj`.
pub fn write(obj: &Object) -> ObjResult<Vec<u8>> {
    let rela_names: Vec<Vec<u8>> = obj
        .sections
        .iter()
        .map(|s| format!(".rela{}", s.name).into_bytes())
        .collect();
    let mut buf = Vec::new();
    let mut w = Writer::new(Endianness::Little, true, &mut buf);
    let plan = reserve(&mut w, obj, &rela_names)?;
    w.write_file_header(&FileHeader {
        os_abi: elf::ELFOSABI_NONE,
        abi_version: 0,
        e_type: elf::ET_REL,
        e_machine: elf::EM_X86_64,
        e_entry: 0,
        e_flags: obj.e_flags,
    })
    .map_err(|e| ObjError::Corrupt(format!("writing header: {e}")))?;
    write_contents(&mut w, obj, &plan)?;
    write_symbols(&mut w, obj, &plan);
    write_headers(&mut w, obj, &plan)?;
    drop(w);
    Ok(buf)
}

/// The reserving pass: indices, names, symbols and file space.
fn reserve<'a>(w: &mut Writer<'a>, obj: &'a Object, rela_names: &'a [Vec<u8>]) -> ObjResult<Plan> {
    w.reserve_file_header();
    w.reserve_null_section_index();
    let mut plan = Plan {
        sec_index: Vec::with_capacity(obj.sections.len()),
        rela_index: Vec::with_capacity(obj.sections.len()),
        sec_name: Vec::with_capacity(obj.sections.len()),
        rela_name: Vec::with_capacity(obj.sections.len()),
        order: Vec::new(),
        num_local: 0,
        sym_index: vec![SymbolIndex(0); obj.symbols.len()],
        sym_name: vec![None; obj.symbols.len()],
        symtab: SectionIndex(0),
        symtab_shndx: false,
        group_data: Vec::new(),
        data_off: Vec::with_capacity(obj.sections.len()),
        rela_off: Vec::with_capacity(obj.sections.len()),
    };
    reserve_sections(w, obj, rela_names, &mut plan);
    reserve_symbols(w, obj, &mut plan)?;
    plan.symtab = w.reserve_symtab_section_index();
    plan.symtab_shndx = w.symtab_shndx_needed();
    if plan.symtab_shndx {
        w.reserve_symtab_shndx_section_index();
    }
    w.reserve_strtab_section_index();
    w.reserve_shstrtab_section_index();
    plan.group_data = group_contents(obj, &plan)?;
    reserve_space(w, obj, &mut plan);
    Ok(plan)
}

/// Section indices: each section, then its `.rela` if it has relocations.
fn reserve_sections<'a>(
    w: &mut Writer<'a>,
    obj: &'a Object,
    rela_names: &'a [Vec<u8>],
    plan: &mut Plan,
) {
    for (i, s) in obj.sections.iter().enumerate() {
        plan.sec_name.push(w.add_section_name(s.name.as_bytes()));
        plan.sec_index.push(w.reserve_section_index());
        if s.relocs.is_empty() {
            plan.rela_index.push(None);
            plan.rela_name.push(None);
        } else {
            plan.rela_name
                .push(Some(w.add_section_name(&rela_names[i])));
            plan.rela_index.push(Some(w.reserve_section_index()));
        }
    }
}

/// Symbol indices and names, locals first.
fn reserve_symbols<'a>(w: &mut Writer<'a>, obj: &'a Object, plan: &mut Plan) -> ObjResult<()> {
    w.reserve_null_symbol_index();
    let is_local = |i: &usize| obj.symbols[*i].bind == elf::STB_LOCAL;
    let mut order: Vec<usize> = (0..obj.symbols.len()).filter(is_local).collect();
    plan.num_local = order.len() as u32 + 1;
    order.extend((0..obj.symbols.len()).filter(|i| !is_local(i)));
    for &i in &order {
        let s = &obj.symbols[i];
        let section = match s.section {
            SymSection::Section(k) => Some(*plan.sec_index.get(k.index()).ok_or_else(|| {
                ObjError::Corrupt(format!("symbol {} in missing section {k}", s.name))
            })?),
            _ => None,
        };
        if !s.name.is_empty() && !s.is_section() {
            plan.sym_name[i] = Some(w.add_string(s.name.as_bytes()));
        }
        plan.sym_index[i] = w.reserve_symbol_index(section);
    }
    plan.order = order;
    Ok(())
}

/// Group section contents, rebuilt with output indices (a member's `.rela`
/// follows it).
fn group_contents(obj: &Object, plan: &Plan) -> ObjResult<Vec<Option<Vec<u8>>>> {
    let mut group_data = vec![None; obj.sections.len()];
    for (i, s) in obj.sections.iter().enumerate() {
        if let Some(g) = &s.group {
            let mut d = g.flags.to_le_bytes().to_vec();
            for &m in &g.members {
                let idx = plan
                    .sec_index
                    .get(m.index())
                    .ok_or_else(|| ObjError::Corrupt(format!("group {} member {m}", s.name)))?;
                d.extend_from_slice(&idx.0.to_le_bytes());
                if let Some(Some(r)) = plan.rela_index.get(m.index()) {
                    d.extend_from_slice(&r.0.to_le_bytes());
                }
            }
            group_data[i] = Some(d);
        }
    }
    Ok(group_data)
}

/// Alignment of a section's contents in the file.
fn file_align(s: &Section) -> usize {
    usize::try_from(s.align).unwrap_or(1).clamp(1, 4096)
}

/// File space: contents and relocations of each section, then the tables.
fn reserve_space(w: &mut Writer, obj: &Object, plan: &mut Plan) {
    for (i, s) in obj.sections.iter().enumerate() {
        let len = match &plan.group_data[i] {
            Some(d) => d.len(),
            None => s.data.len(),
        };
        plan.data_off.push(if s.sh_type == elf::SHT_NOBITS {
            0
        } else {
            w.reserve(len, file_align(s))
        });
        plan.rela_off.push(if s.relocs.is_empty() {
            0
        } else {
            w.reserve_relocations(s.relocs.len(), true)
        });
    }
    w.reserve_symtab();
    if plan.symtab_shndx {
        w.reserve_symtab_shndx();
    }
    w.reserve_strtab();
    w.reserve_shstrtab();
    w.reserve_section_headers();
}

/// Each section's contents and relocations.
fn write_contents(w: &mut Writer, obj: &Object, plan: &Plan) -> ObjResult<()> {
    for (i, s) in obj.sections.iter().enumerate() {
        if s.sh_type != elf::SHT_NOBITS {
            w.write_align(file_align(s));
            match &plan.group_data[i] {
                Some(d) => w.write(d),
                None => w.write(&s.data),
            }
        }
        if !s.relocs.is_empty() {
            w.write_align_relocation();
            for r in &s.relocs {
                let sym = *plan.sym_index.get(r.sym.index()).ok_or_else(|| {
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
    Ok(())
}

/// The symbol table and the string tables.
fn write_symbols(w: &mut Writer, obj: &Object, plan: &Plan) {
    w.write_null_symbol();
    for &i in &plan.order {
        let s = &obj.symbols[i];
        let (section, st_shndx) = match s.section {
            SymSection::Section(k) => (Some(plan.sec_index[k.index()]), 0),
            SymSection::Undefined => (None, elf::SHN_UNDEF),
            SymSection::Absolute => (None, elf::SHN_ABS),
            SymSection::Common => (None, elf::SHN_COMMON),
        };
        w.write_symbol(&Sym {
            name: plan.sym_name[i],
            section,
            st_info: (s.bind << 4) | (s.kind & 0xf),
            st_other: s.other,
            st_shndx,
            st_value: s.value,
            st_size: s.size,
        });
    }
    if plan.symtab_shndx {
        w.write_symtab_shndx();
    }
    w.write_strtab();
    w.write_shstrtab();
}

/// The section headers: each section, its `.rela`, then the tables.
fn write_headers(w: &mut Writer, obj: &Object, plan: &Plan) -> ObjResult<()> {
    w.write_null_section_header();
    for (i, s) in obj.sections.iter().enumerate() {
        write_section_header(w, s, i, plan)?;
        if let Some(name) = plan.rela_name[i] {
            let entsize = std::mem::size_of::<elf::Rela64<Endianness>>() as u64;
            w.write_section_header(&SectionHeader {
                name: Some(name),
                sh_type: elf::SHT_RELA,
                sh_flags: u64::from(elf::SHF_INFO_LINK) | (s.flags & u64::from(elf::SHF_GROUP)),
                sh_addr: 0,
                sh_offset: plan.rela_off[i] as u64,
                sh_size: s.relocs.len() as u64 * entsize,
                sh_link: plan.symtab.0,
                sh_info: plan.sec_index[i].0,
                sh_addralign: 8,
                sh_entsize: entsize,
            });
        }
    }
    w.write_symtab_section_header(plan.num_local);
    if plan.symtab_shndx {
        w.write_symtab_shndx_section_header();
    }
    w.write_strtab_section_header();
    w.write_shstrtab_section_header();
    Ok(())
}

/// The header of content section `s` (model position `i`).
fn write_section_header(w: &mut Writer, s: &Section, i: usize, plan: &Plan) -> ObjResult<()> {
    let (sh_link, sh_info, entsize) = if let Some(g) = &s.group {
        let sig = plan
            .sym_index
            .get(g.signature.index())
            .ok_or_else(|| ObjError::Corrupt(format!("group {} signature", s.name)))?;
        (plan.symtab.0, sig.0, 4)
    } else if let Some(l) = s.link_order {
        let idx: SectionIndex = *plan
            .sec_index
            .get(l.index())
            .ok_or_else(|| ObjError::Corrupt(format!("section {} link", s.name)))?;
        (idx.0, s.info, s.entsize)
    } else {
        (0, s.info, s.entsize)
    };
    let size = match &plan.group_data[i] {
        Some(d) => d.len() as u64,
        None => s.size(),
    };
    w.write_section_header(&SectionHeader {
        name: Some(plan.sec_name[i]),
        sh_type: s.sh_type,
        sh_flags: s.flags,
        sh_addr: 0,
        sh_offset: plan.data_off[i] as u64,
        sh_size: size,
        sh_link,
        sh_info,
        sh_addralign: s.align,
        sh_entsize: entsize,
    });
    Ok(())
}
