//! finalize and rmsyms, the transforms of a linked update object.
//!
//! * finalize makes it loadable: relocations against undefined symbols
//!   become ksplice relocations the core resolves, date and time
//!   placeholders are recorded, and the metadata of `.exit` code is dropped
//!   for a vmlinux target.
//! * rmsyms does the same for the symbols the core itself extracts.

use super::{HOOK_SECTIONS, loader_resolves, unsupported_at};
use crate::engine::classify::Kind;
use crate::engine::elf::howto;
use crate::engine::elf::{Object, Reloc};
use crate::engine::error::{ObjError, ObjResult};
use crate::engine::meta::{self, DEFERRED_PREFIX, HowtoType, Meta, SymRef};
use crate::engine::span::HashSet;
use crate::engine::span::{Analysis, Options};
use crate::engine::sysmap::SystemMap;
use object::elf;

/// The `__DATE__`/`__TIME__` placeholders ksplice builds substitute.
const DATE_STRINGS: &[(&str, HowtoType)] = &[
    ("<{DATE...}>", HowtoType::Date),
    ("<{TIME}>", HowtoType::Time),
];

/// finalize: relocations against undefined symbols become ksplice
/// relocations; for a vmlinux target the metadata of `.exit` code (which
/// vmlinux discards) is dropped; date and time placeholders are recorded.
pub fn finalize(mut obj: Object, path: &str, target: &str, map: &SystemMap) -> ObjResult<Object> {
    if target == "vmlinux" {
        obj.remove_sections(|s| {
            [
                ".ksplice_relocs.exit",
                ".ksplice_sections.exit",
                ".ksplice_patches.exit",
            ]
            .iter()
            .any(|p| s.name.starts_with(p))
        });
    }
    let a = Analysis::new(obj, path, Options::default())?;
    let mut out = a.obj.clone();
    let mut meta = Meta::new();
    meta.load_existing(&out);
    let file = a.file.clone();
    for (sect, sec) in a.obj.sections_with_ids() {
        if !matches!(a.kinds[sect], Kind::String | Kind::Rodata) || sec.sh_type == elf::SHT_NOBITS {
            continue;
        }
        for (text, kind) in DATE_STRINGS {
            let needle: Vec<u8> = text.bytes().chain(std::iter::once(0)).collect();
            let mut at = 0;
            while let Some(p) = find(&sec.data[at..], &needle) {
                let off = (at + p) as u64;
                at += p + 1;
                let label = format!("{text}<{file}>");
                let ksym = meta.symbol(&mut out, &label, None, Vec::new);
                let howto = meta.howto(&mut out, *kind, None, text.len() as u32);
                meta.reloc(
                    &mut out,
                    &sec.name,
                    (sect, off),
                    SymRef::Record(ksym),
                    howto,
                    0,
                    0,
                );
            }
        }
    }
    let rewrite = |name: &str, kind: Kind| {
        !matches!(kind, Kind::Ksplice | Kind::KspliceCall)
            || name.starts_with(".ksplice_patches")
            || name.starts_with(".ksplice_relocs")
    };
    rewrite_undefined(&a, &mut out, &mut meta, map, rewrite, |_| true)?;
    out.localize_defined();
    rename_copies(&mut out);
    // The kmodsrc linker script collects these between start and end
    // symbols: they must exist as allocated sections, empty or not.
    for name in [
        ".ksplice_relocs",
        ".ksplice_sections",
        ".ksplice_patches",
        ".ksplice_symbols",
        ".ksplice_system_map",
        ".ksplice_sites",
    ]
    .into_iter()
    .chain(HOOK_SECTIONS)
    {
        meta.section(&mut out, name);
    }
    out.drop_unused_undefined();
    out.sort_relocs();
    Ok(out)
}

/// The suffix of the functions of an update module in kallsyms.
pub const COPY_SUFFIX: &str = ".ksplice";

/// The functions of an update module are copies of the kernel's (old code)
/// or replace them (new code): they are called `NAME.ksplice`, so that the
/// tools that find a function by name (kprobes, `perf probe`, which refuse
/// a name that is not unique) still find the kernel's one while an update
/// is loaded. A cold part `NAME.cold` becomes `NAME.ksplice.cold`: objtool
/// finds a cold part's function by the name before `.cold`.
fn rename_copies(obj: &mut Object) {
    for s in &mut obj.symbols {
        if s.kind == elf::STT_FUNC
            && !s.is_undefined()
            && !s.section.is_const()
            && !s.name.is_empty()
            && !s.name.contains(COPY_SUFFIX)
        {
            s.name = copy_name(&s.name);
        }
    }
}

/// The name of an update module's copy of function `name`.
pub fn copy_name(name: &str) -> String {
    match name.find(".cold") {
        Some(i) => format!("{}{COPY_SUFFIX}{}", &name[..i], &name[i..]),
        None => format!("{name}{COPY_SUFFIX}"),
    }
}

/// rmsyms: relocations against the undefined symbols that `.ksplice_extract`
/// refers to become ksplice relocations (the core resolves them itself).
pub fn rmsyms(obj: Object, path: &str, map: &SystemMap) -> ObjResult<Object> {
    let a = Analysis::new(obj, path, Options::default())?;
    let mut extract: HashSet<String> = HashSet::default();
    if let Some(x) = a.obj.section_by_name(".ksplice_extract") {
        for r in &a.obj.sections[x].relocs {
            let s = &a.obj.symbols[r.sym];
            if s.is_undefined() {
                extract.insert(s.name.clone());
            }
        }
    }
    let mut out = a.obj.clone();
    let mut meta = Meta::new();
    meta.load_existing(&out);
    let rewrite = |_: &str, kind: Kind| !matches!(kind, Kind::Ksplice | Kind::KspliceCall);
    rewrite_undefined(&a, &mut out, &mut meta, map, rewrite, |n| {
        extract.contains(n)
    })?;
    out.drop_unused_undefined();
    out.sort_relocs();
    Ok(out)
}

/// Replaces relocations against undefined symbols (those `wanted` accepts)
/// in the sections `rewrite` accepts.
fn rewrite_undefined(
    a: &Analysis,
    out: &mut Object,
    meta: &mut Meta,
    map: &SystemMap,
    rewrite: impl Fn(&str, Kind) -> bool,
    wanted: impl Fn(&str) -> bool,
) -> ObjResult<()> {
    for sect in a.obj.section_ids() {
        let name = a.obj.sections[sect].name.clone();
        if !rewrite(&name, a.kinds[sect]) {
            continue;
        }
        let mut kept = Vec::with_capacity(a.obj.sections[sect].relocs.len());
        for r in &a.obj.sections[sect].relocs {
            let s = &a.obj.symbols[r.sym];
            if !s.is_undefined() || loader_resolves(&s.name) || !wanted(&s.name) {
                kept.push(*r);
                continue;
            }
            if name.starts_with(".ksplice_patches") {
                out.sections[sect].write_uint(r.offset, 8, 0);
                continue;
            }
            if name.starts_with(".ksplice_relocs") {
                let Some(real) = s.name.strip_prefix(DEFERRED_PREFIX) else {
                    return Err(ObjError::Corrupt(format!(
                        "{name}+{:#x} refers to {} instead of a {DEFERRED_PREFIX} symbol",
                        r.offset, s.name
                    )));
                };
                let ksym = meta.symbol(out, real, Some(real), || map.get(real).to_vec());
                let syms = meta.section(out, ".ksplice_symbols");
                let sym = meta.section_symbol(out, syms);
                kept.push(Reloc {
                    sym,
                    addend: ksym as i64,
                    ..*r
                });
                continue;
            }
            let h = howto::howto(r.r_type).map_err(|_| unsupported_at(a, sect, r))?;
            meta::write_canary(&mut out.sections[sect], r.offset, &h).ok_or_else(|| {
                ObjError::Corrupt(format!("relocation field at {name}+{:#x}", r.offset))
            })?;
            let ksym = meta.symbol(out, &s.name, Some(&s.name), || map.get(&s.name).to_vec());
            let target = a.target_offset(sect, r);
            let howto = meta.howto(out, HowtoType::Reloc, Some(h), h.size);
            meta.reloc(
                out,
                &name,
                (sect, r.offset),
                SymRef::Record(ksym),
                howto,
                r.addend.wrapping_sub(target),
                target,
            );
        }
        // Relocations added to this section by the metadata writer stay.
        let added: Vec<Reloc> =
            out.sections[sect].relocs[a.obj.sections[sect].relocs.len()..].to_vec();
        kept.extend(added);
        kept.sort_by_key(|r| r.offset);
        out.sections[sect].relocs = kept;
    }
    Ok(())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod copy_name_tests {
    use super::copy_name;

    #[test]
    fn cold_parts_keep_their_parent_name() {
        assert_eq!(copy_name("show_softirqs"), "show_softirqs.ksplice");
        assert_eq!(copy_name("f.cold"), "f.ksplice.cold");
        assert_eq!(copy_name("f.isra.0.cold"), "f.isra.0.ksplice.cold");
        assert_eq!(copy_name("f.part.1"), "f.part.1.ksplice");
    }
}
