//! Single-object transforms: keep-old-code, finalize and rmsyms.
//!
//! * keep-old-code prepares the object from before the patch for run-pre
//!   matching: text and what it refers to are kept, every relocation becomes
//!   a ksplice relocation with a canary in the field, every kept function or
//!   matchable data item gets a ksplice_section, and tables the module loader
//!   would act on are renamed out of its way.
//! * finalize makes a linked update object loadable: relocations against
//!   undefined symbols become ksplice relocations the core resolves.
//! * rmsyms does the same for the symbols the core itself extracts.

use crate::engine::classify::{self, Kind};
use crate::engine::diff::Diff;
use crate::engine::elf::howto::{self, Howto};
use crate::engine::elf::{IdMap, Object, Reloc, SecId, Section, SymId, SymSection, Symbol};
use crate::engine::error::{ObjError, ObjResult};
use crate::engine::meta::{self, DEFERRED_PREFIX, HowtoType, Meta, SymRef};
use crate::engine::span::{Analysis, Options};
use crate::engine::span::{HashMap, HashSet};
use crate::engine::sysmap::SystemMap;
use object::elf;
use std::cell::RefCell;
use std::rc::Rc;

/// Undefined symbols whose relocations stay ELF relocations: the module
/// loader resolves them (tracing call sites).
const LOADER_SYMBOLS: &[&str] = &["mcount", "__fentry__"];

/// The patch-author hook sections, in the order of the core's
/// `enum ksplice_hook_kind` (kmodsrc/ksplice.h).
pub const HOOK_SECTIONS: [&str; 10] = [
    ".ksplice_call_pre_apply",
    ".ksplice_call_check_apply",
    ".ksplice_call_apply",
    ".ksplice_call_post_apply",
    ".ksplice_call_fail_apply",
    ".ksplice_call_pre_reverse",
    ".ksplice_call_check_reverse",
    ".ksplice_call_reverse",
    ".ksplice_call_post_reverse",
    ".ksplice_call_fail_reverse",
];

/// Sections renamed in old code so that the module loader ignores them.
fn old_code_rename(name: &str, kind: Kind) -> Option<String> {
    let hide = kind == Kind::Export
        || matches!(
            name,
            "__ex_table" | "__bug_table" | "__tracepoints" | "__markers"
        );
    hide.then(|| format!(".ksplice_pre.{name}"))
}

/// Whether a section's relocations become ksplice relocations in old code.
fn old_code_rewrites(name: &str, kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Text | Kind::Rodata | Kind::String | Kind::Data | Kind::Export | Kind::BugTable
    ) || name == "__ex_table"
}

/// Whether a kept span of this kind gets a ksplice_section for matching.
fn matchable(a: &Analysis, sect: usize) -> Option<u32> {
    let has_relocs = !a.obj.sections[sect].relocs.is_empty();
    match a.kinds[sect] {
        Kind::Text => Some(meta::SECTION_TEXT),
        Kind::String => Some(meta::SECTION_RODATA | meta::SECTION_STRING),
        Kind::Rodata | Kind::Export | Kind::BugTable => Some(meta::SECTION_RODATA),
        Kind::Data if has_relocs => Some(meta::SECTION_DATA),
        _ => None,
    }
}

/// Candidate run-time addresses from System.map, with the part that depends
/// only on a symbol's section worked out once per section.
struct Candidates<'a> {
    map: &'a SystemMap,
    /// Per (analysis, section): the System.map address of each named symbol
    /// of the section minus its offset, first occurrences in symbol table
    /// order.
    bases: RefCell<HashMap<SectionOf, Rc<[u64]>>>,
}

/// A section of an analysis (new code refers to both pre and post).
type SectionOf = (*const Analysis, usize);

impl<'a> Candidates<'a> {
    fn new(map: &'a SystemMap) -> Candidates<'a> {
        Candidates {
            map,
            bases: RefCell::new(HashMap::default()),
        }
    }

    /// Candidate run-time addresses of `sym`: by its own name when
    /// undefined, else through every named symbol of its section (each
    /// section base plus the symbol's offset, without repeats).
    fn of(&self, a: &Analysis, sym: SymId) -> Vec<u64> {
        let obj = &a.obj;
        let s = &obj[sym];
        match s.section {
            SymSection::Absolute => vec![s.value],
            SymSection::Undefined | SymSection::Common => self.map.get(&s.name).to_vec(),
            SymSection::Section(sect) => {
                let sect = sect.index();
                let key = (a as *const Analysis, sect);
                let bases = self.bases.borrow().get(&key).cloned();
                let bases = bases.unwrap_or_else(|| {
                    let b = self.section_bases(a, sect);
                    self.bases.borrow_mut().insert(key, b.clone());
                    b
                });
                // Adding the same offset keeps distinct bases distinct.
                bases.iter().map(|b| b.wrapping_add(s.value)).collect()
            }
        }
    }

    fn section_bases(&self, a: &Analysis, sect: usize) -> Rc<[u64]> {
        let mut out: Vec<u64> = Vec::new();
        let mut seen: HashSet<u64> = HashSet::default();
        for g in a.symbols_in(sect).iter().map(|&i| &a.obj.symbols[i]) {
            if g.is_file() || !crate::engine::span::is_named(g) {
                continue;
            }
            for &addr in self.map.get(&g.name) {
                let b = addr.wrapping_sub(g.value);
                if seen.insert(b) {
                    out.push(b);
                }
            }
        }
        out.into()
    }
}

fn unsupported_at(a: &Analysis, sect: usize, r: &Reloc) -> ObjError {
    ObjError::Unsupported(format!(
        "relocation type {} ({}) at {}+{:#x}",
        howto::name(r.r_type),
        r.r_type,
        a.obj.sections[sect].name,
        r.offset
    ))
}

/// keep-old-code: the pre object prepared for run-pre matching.
pub fn keep_old_code(obj: Object, path: &str, map: &SystemMap) -> ObjResult<Object> {
    let a = Analysis::new(obj, path, Options { split_tables: true })?;
    old_code_of(a, map)
}

/// keep-old-code of an analysis made with `split_tables` (its keep flags
/// and shifts are recomputed from scratch).
fn old_code_of(mut a: Analysis, map: &SystemMap) -> ObjResult<Object> {
    mark_old_code(&mut a);
    a.compute_shifts();
    Emit::new(&a, map).old_code()
}

/// The initial keep set of keep-old-code and its closure over references.
fn mark_old_code(a: &mut Analysis) {
    for (sect, spans) in a.spans.iter_mut().enumerate() {
        let kind = a.kinds[sect];
        let keep = (kind == Kind::Text && !a.obj.sections[sect].name.starts_with(".fixup"))
            || kind == Kind::Export;
        for s in spans.iter_mut() {
            s.keep = keep;
        }
    }
    let globals: Vec<(usize, u64)> = a
        .obj
        .symbols
        .iter()
        .filter(|s| s.is_global())
        .filter_map(|s| Some((s.section.id()?.index(), s.value)))
        .collect();
    for (sect, value) in globals {
        if a.kinds[sect] == Kind::Ignored || value == a.obj.sections[sect].size() && value != 0 {
            continue;
        }
        if let Some(k) = a.find_span(sect, value) {
            a.spans[sect][k].keep = true;
        }
    }
    loop {
        let mut changed = close_references(a);
        changed |= filter_tables(a);
        if !changed {
            break;
        }
    }
}

/// Keeps every span a kept span refers to (worklist over relocations).
/// Table entries do not keep the code they describe (that is the other way
/// round, see [`filter_tables`]).
fn close_references(a: &mut Analysis) -> bool {
    let mut work: Vec<(usize, usize)> = Vec::new();
    for (sect, spans) in a.spans.iter().enumerate() {
        for (k, s) in spans.iter().enumerate() {
            if s.keep {
                work.push((sect, k));
            }
        }
    }
    let mut changed = false;
    while let Some((sect, k)) = work.pop() {
        let (start, size) = (a.spans[sect][k].start, a.spans[sect][k].size);
        let table = classify::table(&a.obj.sections[sect].name);
        let mut targets = Vec::new();
        for r in a.relocs_in(sect, start, size) {
            if let Some(t) = table
                && t.addr_offset == Some((r.offset - start) % t.entry_size)
            {
                continue;
            }
            if let Some((ts, tk)) = a.reloc_target_span(sect, r)
                && a.kinds[ts] != Kind::Ignored
                && !a.spans[ts][tk].keep
            {
                targets.push((ts, tk));
            }
        }
        for (ts, tk) in targets {
            if !a.spans[ts][tk].keep {
                a.spans[ts][tk].keep = true;
                changed = true;
                work.push((ts, tk));
            }
        }
    }
    changed
}

/// Keeps the table entries that describe kept code, and what those entries
/// point to besides.
fn filter_tables(a: &mut Analysis) -> bool {
    let mut changed = false;
    for sect in 0..a.spans.len() {
        let Some(t) = classify::table(&a.obj.sections[sect].name) else {
            continue;
        };
        let Some(addr) = t.addr_offset else { continue };
        for k in 0..a.spans[sect].len() {
            if a.spans[sect][k].keep {
                continue;
            }
            let start = a.spans[sect][k].start;
            let Some(r) = a.reloc_at(sect, start + addr).copied() else {
                continue;
            };
            if let Some((ts, tk)) = a.reloc_target_span(sect, &r)
                && a.spans[ts][tk].keep
            {
                a.spans[sect][k].keep = true;
                changed = true;
            }
        }
    }
    changed
}

/// Builds an output object from the kept spans of an analysis.
struct Emit<'a> {
    a: &'a Analysis,
    /// For new code: the comparison with pre, whose labels matched spans take.
    diff: Option<&'a Diff>,
    cands: Candidates<'a>,
    out: Object,
    meta: Meta,
    /// Where each input section went in the output.
    sect_map: IdMap<SecId>,
    /// Where each input symbol went in the output.
    sym_map: IdMap<SymId>,
}

impl<'a> Emit<'a> {
    fn new(a: &'a Analysis, map: &'a SystemMap) -> Emit<'a> {
        Emit {
            a,
            diff: None,
            cands: Candidates::new(map),
            out: Object {
                e_flags: a.obj.e_flags,
                ..Object::default()
            },
            meta: Meta::new(),
            sect_map: IdMap::unmapped(a.obj.sections.len()),
            sym_map: IdMap::unmapped(a.obj.symbols.len()),
        }
    }

    /// The output section of input section `sect`, if kept.
    fn out_sect(&self, sect: usize) -> Option<SecId> {
        self.sect_map.get(SecId::new(sect))
    }

    /// Output offset of input `(sect, off)`, through the span's shift.
    fn out_offset(&self, sect: usize, off: u64) -> Option<u64> {
        let k = self.a.find_span(sect, off)?;
        let s = &self.a.spans[sect][k];
        s.keep.then(|| (off as i64 + s.shift) as u64)
    }

    fn copy_sections(&mut self, rename: impl Fn(&str, Kind) -> Option<String>) {
        let a = self.a;
        for (i, sec) in a.obj.sections.iter().enumerate() {
            let always = sec.name == ".note.GNU-stack";
            if sec.sh_type == elf::SHT_GROUP || (!a.section_kept(i) && !always) {
                continue;
            }
            let mut data = Vec::new();
            let mut nobits = 0;
            for s in a.spans[i].iter().filter(|s| s.keep) {
                if sec.sh_type == elf::SHT_NOBITS {
                    nobits += s.size;
                } else {
                    let lo = s.start as usize;
                    let hi = (s.start + s.size) as usize;
                    data.extend_from_slice(sec.data.get(lo..hi).unwrap_or(&[]));
                }
            }
            if always && !a.section_kept(i) {
                data = sec.data.clone();
            }
            let out = self.out.push_section(Section {
                name: rename(&sec.name, a.kinds[i]).unwrap_or_else(|| sec.name.clone()),
                flags: sec.flags & !u64::from(elf::SHF_GROUP),
                data,
                nobits_size: nobits,
                relocs: Vec::new(),
                group: None,
                link_order: None,
                ..sec.clone()
            });
            self.sect_map.insert(SecId::new(i), out);
        }
    }

    /// Copies kept symbols; defined globals become local.
    fn copy_symbols(&mut self, drop_kind: Option<Kind>) {
        self.copy_symbols_keeping(drop_kind, |_, _| false);
    }

    /// Copies kept symbols; defined globals become local unless `stays_global`
    /// says otherwise for their (section, value).
    fn copy_symbols_keeping(
        &mut self,
        drop_kind: Option<Kind>,
        stays_global: impl Fn(usize, u64) -> bool,
    ) {
        let a = self.a;
        for (i, s) in a.obj.symbols_with_ids() {
            let (section, value) = match s.section {
                SymSection::Section(k) => {
                    let Some(nk) = self.sect_map.get(k) else {
                        continue;
                    };
                    let k = k.index();
                    if Some(a.kinds[k]) == drop_kind {
                        continue;
                    }
                    if s.is_section() {
                        (SymSection::Section(nk), 0)
                    } else {
                        let Some(v) = self.out_offset(k, s.value) else {
                            continue;
                        };
                        (SymSection::Section(nk), v)
                    }
                }
                SymSection::Absolute if s.is_file() => (SymSection::Absolute, s.value),
                _ => continue,
            };
            let mut ns = Symbol {
                section,
                value,
                ..s.clone()
            };
            if ns.is_global()
                && !matches!(s.section, SymSection::Section(k) if stays_global(k.index(), s.value))
            {
                ns.bind = elf::STB_LOCAL;
            }
            let out = self.out.push_symbol(ns);
            self.sym_map.insert(i, out);
        }
    }

    /// Output symbol for an input symbol referenced by a kept ELF relocation.
    fn out_symbol(&mut self, sym: SymId) -> Option<SymId> {
        if let Some(o) = self.sym_map.get(sym) {
            return Some(o);
        }
        let s = &self.a.obj[sym];
        if !s.section.is_const() {
            return None;
        }
        let out = self.out.push_symbol(s.clone());
        self.sym_map.insert(sym, out);
        Some(out)
    }

    /// The ksplice_symbol record for what relocation `r` of `sect` points to.
    fn reloc_symbol(&mut self, sect: usize, r: &Reloc) -> (SymRef, i64) {
        let a = self.a;
        let s = &a.obj.symbols[r.sym];
        if s.is_undefined() {
            return (SymRef::Deferred(s.name.clone()), 0);
        }
        let target_off = a.target_offset(sect, r);
        let mut span = a.reloc_target_span(sect, r);
        if let Some((ts, tk)) = span
            && tk == 0
            && a.spans[ts][0].start as i64 != target_off
            && s.is_section()
        {
            // A section-relative target outside any span: name the symbol.
            span = None;
        }
        // New code refers to a matched span by the label it had in pre.
        if let (Some(d), Some(t)) = (self.diff, span)
            && let Some(o) = d.matched_old(t)
        {
            let old = &d.old.spans[o.0][o.1];
            let name = old
                .symbol
                .filter(|&c| crate::engine::span::is_named(&d.old.obj.symbols[c]))
                .map(|c| d.old.obj.symbols[c].name.clone());
            let rebase = (s.value as i64).wrapping_sub(a.spans[t.0][t.1].start as i64);
            let cands = &self.cands;
            let old_a = &d.old;
            let old_sym = old.symbol;
            let off = self
                .meta
                .symbol(&mut self.out, &old.label, name.as_deref(), || {
                    old_sym.map(|c| cands.of(old_a, c)).unwrap_or_default()
                });
            return (SymRef::Record(off), rebase);
        }
        let (label, rebase) = match span {
            Some((ts, tk)) if a.spans[ts][tk].start != 0 => {
                let sp = &a.spans[ts][tk];
                (
                    sp.label.clone(),
                    (s.value as i64).wrapping_sub(sp.start as i64),
                )
            }
            _ => (a.label(r.sym), 0),
        };
        let named = a
            .canonical(r.sym)
            .filter(|&c| crate::engine::span::is_named(&a.obj.symbols[c]));
        let name = match (s.section, span) {
            (SymSection::Absolute | SymSection::Common, _) => None,
            (_, Some((ts, tk))) if a.spans[ts][tk].symbol.is_none() => None,
            _ => named.map(|c| a.obj.symbols[c].name.clone()),
        };
        let cands = &self.cands;
        let sym = r.sym;
        let off = self
            .meta
            .symbol(&mut self.out, &label, name.as_deref(), || cands.of(a, sym));
        (SymRef::Record(off), rebase)
    }

    /// Replaces relocation `r` of input section `sect` by a ksplice relocation.
    fn ksplice_reloc(&mut self, sect: usize, r: &Reloc, h: Howto) -> ObjResult<()> {
        let a = self.a;
        let Some(osect) = self.out_sect(sect) else {
            return Ok(());
        };
        let Some(off) = self.out_offset(sect, r.offset) else {
            return Ok(());
        };
        meta::write_canary(&mut self.out.sections[osect], off, &h).ok_or_else(|| {
            ObjError::Corrupt(format!(
                "relocation field at {}+{:#x} outside the section",
                a.obj.sections[sect].name, r.offset
            ))
        })?;
        let (symref, rebase) = self.reloc_symbol(sect, r);
        // Addends are the input's: arithmetic modulo 2^64, as the loader's.
        let target = a.target_offset(sect, r).wrapping_add(rebase);
        let insn = r.addend.wrapping_add(rebase).wrapping_sub(target);
        let howto = self
            .meta
            .howto(&mut self.out, HowtoType::Reloc, Some(h), h.size);
        let name = a.obj.sections[sect].name.clone();
        self.meta.reloc(
            &mut self.out,
            &name,
            (osect, off),
            symref,
            howto,
            insn,
            target,
        );
        Ok(())
    }

    /// Carries relocation `r` of `sect` over as an ELF relocation, retargeted.
    fn elf_reloc(&mut self, sect: usize, r: &Reloc) {
        let a = self.a;
        let (Some(osect), Some(off)) = (self.out_sect(sect), self.out_offset(sect, r.offset))
        else {
            return;
        };
        let s = &a.obj.symbols[r.sym];
        let new = if s.section.is_const() {
            self.out_symbol(r.sym).map(|sym| (sym, r.addend))
        } else if s.is_section() {
            let (ts, toff) = a.reloc_target(sect, r).unwrap_or((0, 0));
            match (self.out_sect(ts), a.find_span(ts, toff)) {
                (Some(ots), Some(tk)) if a.spans[ts][tk].keep => {
                    let sym = self.meta.section_symbol(&mut self.out, ots);
                    Some((sym, r.addend.wrapping_add(a.spans[ts][tk].shift)))
                }
                _ => None,
            }
        } else {
            self.out_symbol(r.sym).map(|sym| (sym, r.addend))
        };
        if let Some((sym, addend)) = new {
            self.out.sections[osect].relocs.push(Reloc {
                offset: off,
                sym,
                addend,
                ..*r
            });
        } else if crate::util::log::level() >= 2 {
            eprintln!(
                "{}: dropping relocation at {}+{:#x} to unkept {}",
                a.file,
                a.obj.sections[sect].name,
                r.offset,
                a.obj.symbol_name(r.sym)
            );
        }
    }

    /// ksplice_section records (and, for old code, entry points) for the
    /// kept spans of matchable sections.
    fn sections_records(&mut self, entry_points: bool) -> ObjResult<()> {
        let a = self.a;
        for sect in 0..a.obj.sections.len() {
            let Some(osect) = self.out_sect(sect) else {
                continue;
            };
            let Some(flags) = matchable(a, sect) else {
                continue;
            };
            if a.obj.sections[sect].size() == 0 {
                continue;
            }
            if a.symbol_at(sect, 0)
                .is_some_and(|c| a.obj.symbols[c].is_weak())
            {
                continue;
            }
            let table = classify::table(&a.obj.sections[sect].name);
            for span in a.spans[sect].iter().filter(|s| s.keep) {
                let mut for_name = a.obj.sections[sect].name.clone();
                if let Some(addr) = table.and_then(|t| t.addr_offset)
                    && let Some(r) = a.reloc_at(sect, span.start + addr)
                    && let SymSection::Section(ts) = a.obj.symbols[r.sym].section
                {
                    for_name = a.obj.sections[ts].name.clone();
                }
                let name = span
                    .symbol
                    .filter(|&c| crate::engine::span::is_named(&a.obj.symbols[c]))
                    .map(|c| a.obj.symbols[c].name.clone());
                let sym = span.symbol;
                let cands = &self.cands;
                let ksym = self
                    .meta
                    .symbol(&mut self.out, &span.label, name.as_deref(), || {
                        sym.map(|s| cands.of(a, s)).unwrap_or_default()
                    });
                let start = (span.start as i64 + span.shift) as u64;
                self.meta.ksection(
                    &mut self.out,
                    &for_name,
                    ksym,
                    (osect, start),
                    span.size,
                    flags,
                );
                if entry_points && a.kinds[sect] == Kind::Text {
                    self.entry_points(
                        sect,
                        osect,
                        span.start,
                        span.size,
                        span.shift,
                        &span.label,
                        &for_name,
                    );
                }
            }
        }
        Ok(())
    }

    /// HOWTO_SYMBOL relocations telling the loader where each global symbol
    /// of a matched function lives (and the function's own start).
    #[allow(clippy::too_many_arguments)]
    fn entry_points(
        &mut self,
        sect: usize,
        osect: SecId,
        start: u64,
        size: u64,
        shift: i64,
        label: &str,
        for_name: &str,
    ) {
        let a = self.a;
        // The section's own symbols (in symbol table order), not the whole table.
        let mut points: Vec<(u64, String, Option<String>, Option<SymId>)> = a
            .symbols_in(sect)
            .iter()
            .map(|&i| (i, &a.obj.symbols[i]))
            .filter(|(_, s)| s.is_global() && s.value >= start && s.value < start + size.max(1))
            .map(|(i, s)| {
                (
                    s.value - start,
                    s.name.clone(),
                    Some(s.name.clone()),
                    Some(i),
                )
            })
            .collect();
        if !points.iter().any(|p| p.0 == 0) {
            points.push((0, label.to_string(), None, None));
        }
        points.sort_by(|x, y| x.0.cmp(&y.0).then(x.1.cmp(&y.1)));
        let howto = self.meta.howto(&mut self.out, HowtoType::Symbol, None, 0);
        for (off, lab, name, sym) in points {
            let cands = &self.cands;
            let ksym = self.meta.symbol(&mut self.out, &lab, name.as_deref(), || {
                sym.map(|s| cands.of(a, s)).unwrap_or_default()
            });
            let blank = (osect, (start as i64 + shift) as u64 + off);
            self.meta.reloc(
                &mut self.out,
                for_name,
                blank,
                SymRef::Record(ksym),
                howto,
                0,
                0,
            );
        }
    }

    /// HOWTO_BUG / HOWTO_EXTABLE records: for each kept table entry, the
    /// instruction it describes, labelled with the entry.
    fn table_relocs(&mut self, table: &str, kind: HowtoType) {
        let a = self.a;
        let Some(sect) = a.obj.section_by_name(table).map(SecId::index) else {
            return;
        };
        let Some(t) = classify::table(table) else {
            return;
        };
        let Some(addr) = t.addr_offset else { return };
        for span in a.spans[sect].iter().filter(|s| s.keep) {
            let Some(r) = a.reloc_at(sect, span.start + addr) else {
                continue;
            };
            let Some((ts, toff)) = a.reloc_target(sect, r) else {
                continue;
            };
            let (Some(ots), Some(out_off)) = (self.out_sect(ts), self.out_offset(ts, toff)) else {
                continue;
            };
            let ksym = self.meta.symbol(&mut self.out, &span.label, None, Vec::new);
            let howto = self.meta.howto(&mut self.out, kind, None, 0);
            let name = a.obj.sections[ts].name.clone();
            self.meta.reloc(
                &mut self.out,
                &name,
                (ots, out_off),
                SymRef::Record(ksym),
                howto,
                0,
                0,
            );
        }
    }

    fn old_code(mut self) -> ObjResult<Object> {
        let a = self.a;
        self.copy_sections(old_code_rename);
        self.copy_symbols(Some(Kind::Export));
        self.sections_records(true)?;
        self.table_relocs("__bug_table", HowtoType::Bug);
        self.table_relocs("__ex_table", HowtoType::Extable);
        for sect in 0..a.obj.sections.len() {
            if self.out_sect(sect).is_none() {
                continue;
            }
            let rewrite = old_code_rewrites(&a.obj.sections[sect].name, a.kinds[sect]);
            for span in a.spans[sect].iter().filter(|s| s.keep) {
                for r in a.relocs_in(sect, span.start, span.size) {
                    let s = &a.obj.symbols[r.sym];
                    let loader = s.is_undefined() && LOADER_SYMBOLS.contains(&s.name.as_str());
                    if rewrite && !loader {
                        let h = howto::howto(r.r_type).map_err(|_| unsupported_at(a, sect, r))?;
                        self.ksplice_reloc(sect, r, h)?;
                    } else {
                        self.elf_reloc(sect, r);
                    }
                }
            }
        }
        self.out.sort_relocs();
        Ok(self.out)
    }
}

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
    for (sect, sec) in a.obj.sections.iter().enumerate() {
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
                    (SecId::new(sect), off),
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
    // The kmodsrc linker script collects these between start and end
    // symbols: they must exist as allocated sections, empty or not.
    for name in [
        ".ksplice_relocs",
        ".ksplice_sections",
        ".ksplice_patches",
        ".ksplice_symbols",
        ".ksplice_system_map",
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
    for sect in 0..a.obj.sections.len() {
        let name = a.obj.sections[sect].name.clone();
        if !rewrite(&name, a.kinds[sect]) {
            continue;
        }
        let mut kept = Vec::with_capacity(a.obj.sections[sect].relocs.len());
        for r in &a.obj.sections[sect].relocs {
            let s = &a.obj.symbols[r.sym];
            if !s.is_undefined() || LOADER_SYMBOLS.contains(&s.name.as_str()) || !wanted(&s.name) {
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
                (SecId::new(sect), r.offset),
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

/// True for code without a named entry point (out-of-line stubs): nothing
/// calls it, its one referrer jumps to it.
fn is_stub(a: &Analysis, id: crate::engine::diff::SpanId) -> bool {
    let sp = &a.spans[id.0][id.1];
    a.kinds[id.0] == Kind::Text
        && sp
            .symbol
            .is_none_or(|s| !crate::engine::span::is_named(&a.obj.symbols[s]))
        && !a.symbols_in(id.0).iter().any(|&i| {
            let s = &a.obj.symbols[i];
            s.is_global() && s.value >= sp.start && s.value < sp.start + sp.size.max(1)
        })
}

/// What keep-new-code produced for one object.
#[derive(Debug)]
pub struct NewCode {
    /// The new code, or None when nothing but noise differs.
    pub object: Option<Object>,
    /// What changed and why.
    pub report: crate::engine::report::Report,
}

/// Size of the jump written over a replaced function (`jmp rel32`).
pub const TRAMPOLINE_SIZE: u64 = 5;

/// keep-new-code: compares pre and post and keeps only what really changed.
pub fn keep_new_code(
    pre: Object,
    pre_path: &str,
    post: Object,
    post_path: &str,
    kid: &str,
    map: &SystemMap,
) -> ObjResult<NewCode> {
    new_code_of(
        compare(pre, pre_path, post, post_path)?,
        post_path,
        kid,
        map,
    )
    .map(|(nc, _)| nc)
}

/// keep-new-code, then keep-old-code of the same pre object when the new
/// code is not empty: the same results as [`keep_new_code`] followed by
/// [`keep_old_code`] of `pre` (read from `pre_path`), with the pre object
/// analysed once instead of twice. Errors of keep-old-code come second, as
/// `Ok((new_code, Some(Err(..))))`, so the caller can write what comes first.
pub fn keep_new_and_old_code(
    pre: Object,
    pre_path: &str,
    post: Object,
    post_path: &str,
    kid: &str,
    map: &SystemMap,
) -> ObjResult<(NewCode, Option<ObjResult<Object>>)> {
    let (nc, d) = new_code_of(
        compare(pre, pre_path, post, post_path)?,
        post_path,
        kid,
        map,
    )?;
    // The comparison leaves the pre analysis as it was made (only the post
    // side's keep flags and shifts change), so keep-old-code can start from it.
    let old = nc.object.as_ref().map(|_| old_code_of(into_pre(d), map));
    Ok((nc, old))
}

/// The comparison keep-new-code starts from: both objects analysed (tables
/// split into entries), then diffed.
fn compare(pre: Object, pre_path: &str, post: Object, post_path: &str) -> ObjResult<Diff> {
    let opts = Options { split_tables: true };
    let old = Analysis::new(pre, pre_path, opts)?;
    let new = Analysis::new(post, post_path, opts)?;
    Ok(crate::engine::diff::diff(old, new))
}

/// The pre analysis of a comparison; the rest is freed.
fn into_pre(d: Diff) -> Analysis {
    d.old
}

/// keep-new-code from a comparison; gives the comparison back.
fn new_code_of(
    mut d: Diff,
    post_path: &str,
    kid: &str,
    map: &SystemMap,
) -> ObjResult<(NewCode, Diff)> {
    let report =
        crate::engine::report::Report::from_diff(&d, &crate::engine::span::label_file(post_path));
    for sect in 0..d.new.spans.len() {
        let call = d.new.kinds[sect] == Kind::KspliceCall;
        for k in 0..d.new.spans[sect].len() {
            let f = d.flags[sect][k];
            d.new.spans[sect][k].keep = f.new || f.patch || f.datapatch || call;
        }
    }
    while filter_tables(&mut d.new) | keep_table_others(&mut d.new) {}
    drop_running_exports(&mut d);
    keep_referenced_strings(&mut d);
    d.new.compute_shifts();
    if !report.has_changes() {
        return Ok((
            NewCode {
                object: None,
                report,
            },
            d,
        ));
    }
    let object = Emit::new(&d.new, map).with_diff(&d).new_code(kid)?;
    Ok((
        NewCode {
            object: Some(object),
            report,
        },
        d,
    ))
}

/// The export entries of a replaced function stay the running kernel's
/// (they lead to the old entry point, which jumps to the new code): the
/// new code carries only the entries of exports the patch adds, else the
/// module would export a symbol the kernel already exports.
fn drop_running_exports(d: &mut Diff) {
    for sect in 0..d.new.spans.len() {
        if d.new.kinds[sect] != Kind::Export {
            continue;
        }
        for k in 0..d.new.spans[sect].len() {
            if !d.flags[sect][k].new {
                d.new.spans[sect][k].keep = false;
            }
        }
    }
}

/// Keeps a copy of every string the kept code and tables refer to. A string
/// costs a few bytes, and a reference to the running kernel's copy would
/// depend on run-pre matching finding it, which it cannot when only a table
/// (a `__bug_table` file name) or an unmatchable function refers to it.
fn keep_referenced_strings(d: &mut Diff) {
    let a = &mut d.new;
    let mut wanted = Vec::new();
    for sect in 0..a.spans.len() {
        for sp in a.spans[sect].iter().filter(|s| s.keep) {
            for r in a.relocs_in(sect, sp.start, sp.size) {
                if let Some((ts, tk)) = a.reloc_target_span(sect, r)
                    && a.kinds[ts] == Kind::String
                    && !a.spans[ts][tk].keep
                {
                    wanted.push((ts, tk));
                }
            }
        }
    }
    for (ts, tk) in wanted {
        a.spans[ts][tk].keep = true;
        // Emitted like new data: ELF relocations refer to the copy.
        d.flags[ts][tk].new = true;
    }
}

/// Keeps the pieces of a table's "other" section (alternative replacement
/// code) that kept entries point to.
fn keep_table_others(a: &mut Analysis) -> bool {
    let mut changed = false;
    for t in classify::TABLES {
        let (Some(off), Some(_)) = (t.other_offset, t.other_sect) else {
            continue;
        };
        let Some(sect) = a.obj.section_by_name(t.name).map(SecId::index) else {
            continue;
        };
        let mut targets = Vec::new();
        for sp in a.spans[sect].iter().filter(|s| s.keep) {
            if let Some(r) = a.reloc_at(sect, sp.start + off)
                && let Some(tid) = a.reloc_target_span(sect, r)
            {
                targets.push(tid);
            }
        }
        for (ts, tk) in targets {
            if !a.spans[ts][tk].keep {
                a.spans[ts][tk].keep = true;
                changed = true;
            }
        }
    }
    changed
}

impl<'a> Emit<'a> {
    fn with_diff(mut self, d: &'a Diff) -> Emit<'a> {
        self.diff = Some(d);
        self
    }

    /// The label a post span is known by: its pre counterpart's when matched.
    fn post_label(&self, id: crate::engine::diff::SpanId) -> String {
        match self.diff.and_then(|d| d.matched_old(id).map(|o| (d, o))) {
            Some((d, o)) => d.old.spans[o.0][o.1].label.clone(),
            None => self.a.spans[id.0][id.1].label.clone(),
        }
    }

    /// A `ksplice_patch` record in `.ksplice_patches<for_name>` whose oldaddr
    /// is `label+addend` in the running kernel. Returns its offset and section.
    fn patch_record(
        &mut self,
        for_name: &str,
        label: &str,
        addend: i64,
        kind: meta::PatchType,
    ) -> (SecId, u64) {
        let psect = self
            .meta
            .section(&mut self.out, &format!(".ksplice_patches{for_name}"));
        let off = Meta::grow(&mut self.out, psect, meta::PATCH_SIZE, 8);
        self.out.sections[psect].write_uint(off, 8, meta::CANARY);
        let ksym = self.meta.symbol(&mut self.out, label, None, Vec::new);
        let h = howto::howto(elf::R_X86_64_64).expect("R_X86_64_64 has a howto");
        let hoff = self
            .meta
            .howto(&mut self.out, HowtoType::Reloc, Some(h), h.size);
        self.meta.reloc(
            &mut self.out,
            for_name,
            (psect, off),
            SymRef::Record(ksym),
            hoff,
            0,
            addend,
        );
        self.out.sections[psect].write_uint(off + 16, 4, kind as u64);
        (psect, off)
    }

    /// Patch storage: a saved-bytes buffer of `size`, and a contents buffer
    /// holding `contents` (or zeros) unless `contents_at` points elsewhere.
    fn patch_storage(
        &mut self,
        rec: (SecId, u64),
        size: u64,
        contents: Option<&[u8]>,
        contents_at: Option<(SecId, u64)>,
    ) {
        let (psect, off) = rec;
        let data = self.meta.section(&mut self.out, ".ksplice_patch_data");
        let saved = Meta::grow(&mut self.out, data, size, 1);
        self.meta
            .ptr_to_section(&mut self.out, psect, off + 40, data, saved as i64);
        match contents_at {
            Some((s, at)) => self
                .meta
                .ptr_to_section(&mut self.out, psect, off + 24, s, at as i64),
            None => {
                let c = Meta::grow(&mut self.out, data, size, 1);
                if let Some(bytes) = contents {
                    let d = &mut self.out.sections[data].data;
                    d[c as usize..c as usize + bytes.len()].copy_from_slice(bytes);
                }
                self.meta
                    .ptr_to_section(&mut self.out, psect, off + 24, data, c as i64);
            }
        }
        self.out.sections[psect].write_uint(off + 20, 4, size);
    }

    /// Jumps from every entry point of the pre function to the post one.
    fn text_patches(&mut self, n: crate::engine::diff::SpanId) -> ObjResult<()> {
        let a = self.a;
        let Some(d) = self.diff else { return Ok(()) };
        let Some(o) = d.matched_old(n) else {
            return Ok(());
        };
        let (osp, nsp) = (&d.old.spans[o.0][o.1], &a.spans[n.0][n.1]);
        if is_stub(&d.old, o) {
            // Only the (replaced) function that enters it reaches a stub.
            return Ok(());
        }
        let mut entries: Vec<(u64, String, Option<String>)> = d
            .old
            .symbols_in(o.0)
            .iter()
            .map(|&i| &d.old.obj.symbols[i])
            .filter(|s| {
                s.is_global() && s.value >= osp.start && s.value < osp.start + osp.size.max(1)
            })
            .map(|s| (s.value - osp.start, s.name.clone(), Some(s.name.clone())))
            .collect();
        if !entries.iter().any(|e| e.0 == 0) {
            entries.push((0, osp.label.clone(), None));
        }
        entries.sort();
        let name = a.obj.sections[n.0].name.clone();
        let osect = self
            .out_sect(n.0)
            .ok_or_else(|| ObjError::Corrupt(format!("patched {name} not kept")))?;
        let out_start = (nsp.start as i64 + nsp.shift) as u64;
        let mut prev: Option<u64> = None;
        for (off, label, sym_name) in entries {
            let new_sym = sym_name.as_ref().and_then(|nm| {
                a.symbols_in(n.0)
                    .iter()
                    .map(|&i| &a.obj.symbols[i])
                    .find(|s| s.is_global() && &s.name == nm)
            });
            if sym_name.is_some() && new_sym.is_none() && off != 0 {
                self.deleted_patch(&name, &label, sym_name.as_deref().unwrap_or(&label));
                continue;
            }
            if prev == Some(off) {
                continue;
            }
            if let Some(p) = prev
                && p + TRAMPOLINE_SIZE > off
            {
                return Err(ObjError::Unsupported(format!(
                    "entry points of {} at {p:#x} and {off:#x} are closer than a jump",
                    osp.label
                )));
            }
            prev = Some(off);
            let target = new_sym.map_or(0, |s| s.value.saturating_sub(nsp.start));
            let rec = self.patch_record(&name, &label, 0, meta::PatchType::Text);
            self.meta.ptr_to_section(
                &mut self.out,
                rec.0,
                rec.1 + 8,
                osect,
                out_start.wrapping_add(target) as i64,
            );
            self.patch_storage(rec, TRAMPOLINE_SIZE, None, None);
        }
        if prev.is_some_and(|p| p + TRAMPOLINE_SIZE > osp.size) {
            return Err(ObjError::Unsupported(format!(
                "function {} cannot be replaced: it is {} bytes long, shorter than the {TRAMPOLINE_SIZE}-byte jump that would replace it",
                osp.label, osp.size
            )));
        }
        Ok(())
    }

    /// A replaced function that no longer exists: its callers get no target.
    fn deleted_patch(&mut self, for_name: &str, label: &str, name: &str) {
        let rec = self.patch_record(for_name, label, 0, meta::PatchType::Text);
        let u = self.meta.undefined_symbol(&mut self.out, name);
        Meta::ptr(&mut self.out, rec.0, rec.1 + 8, u, 0);
        self.patch_storage(rec, TRAMPOLINE_SIZE, None, None);
    }

    /// In-place replacement of read-only data by its new contents.
    fn data_patch(&mut self, n: crate::engine::diff::SpanId) {
        let a = self.a;
        let label = self.post_label(n);
        let sp = &a.spans[n.0][n.1];
        let Some(osect) = self.out_sect(n.0) else {
            return;
        };
        let at = (sp.start as i64 + sp.shift) as u64;
        let name = a.obj.sections[n.0].name.clone();
        let rec = self.patch_record(&name, &label, 0, meta::PatchType::Data);
        self.meta
            .ptr_to_section(&mut self.out, rec.0, rec.1 + 8, osect, at as i64);
        self.patch_storage(rec, sp.contents_size, None, Some((osect, at)));
    }

    /// BUG/WARN entries whose line changed: their non-relocated bytes rewritten.
    fn bugline_patches(&mut self) {
        let a = self.a;
        let Some(sect) = a.obj.section_by_name("__bug_table").map(SecId::index) else {
            return;
        };
        let Some(d) = self.diff else { return };
        for k in 0..a.spans[sect].len() {
            if !d.flag((sect, k)).bugpatch {
                continue;
            }
            let sp = &a.spans[sect][k];
            let label = self.post_label((sect, k));
            let for_name = a
                .reloc_at(sect, sp.start)
                .and_then(|r| match a.obj.symbols[r.sym].section {
                    SymSection::Section(t) => Some(a.obj.sections[t].name.clone()),
                    _ => None,
                })
                .unwrap_or_else(|| "__bug_table".to_string());
            let mut run_start: Option<u64> = None;
            for off in 0..=sp.contents_size {
                let inside = off < sp.contents_size && !a.part_of_reloc(sect, sp.start + off);
                match (inside, run_start) {
                    (true, None) => run_start = Some(off),
                    (false, Some(s)) => {
                        let bytes = a.obj.sections[sect].data
                            [(sp.start + s) as usize..(sp.start + off) as usize]
                            .to_vec();
                        let rec =
                            self.patch_record(&for_name, &label, s as i64, meta::PatchType::Data);
                        self.patch_storage(rec, off - s, Some(&bytes), None);
                        run_start = None;
                    }
                    _ => {}
                }
            }
        }
    }

    /// Export records for exports added and removed.
    fn export_patches(&mut self, kid: &str) {
        let a = self.a;
        let Some(d) = self.diff else { return };
        let mut records: Vec<(String, String)> = Vec::new();
        for sect in 0..a.spans.len() {
            if a.kinds[sect] == Kind::Export
                && a.spans[sect].first().is_some_and(|_| d.flag((sect, 0)).new)
            {
                let name = &a.obj.sections[sect].name;
                let sym = name.rsplit('+').next().unwrap_or(name);
                records.push((format!("{name}:DISABLED_{sym}_{kid}"), sym.to_string()));
            }
        }
        for (sect, k) in d.deleted(Kind::Export) {
            let _ = k;
            let name = &d.old.obj.sections[sect].name;
            let sym = name.rsplit('+').next().unwrap_or(name);
            records.push((format!("{name}:{sym}"), format!("DISABLED_{sym}_{kid}")));
        }
        for (label, newname) in records {
            let rec = self.patch_record("", &label, 0, meta::PatchType::Export);
            let data = self.meta.section(&mut self.out, ".ksplice_patch_data");
            let saved = Meta::grow(&mut self.out, data, 8, 8);
            self.meta
                .ptr_to_section(&mut self.out, rec.0, rec.1 + 40, data, saved as i64);
            let c = Meta::grow(&mut self.out, data, 8, 8);
            self.meta.string_ptr(&mut self.out, data, c, &newname);
            self.meta
                .ptr_to_section(&mut self.out, rec.0, rec.1 + 24, data, c as i64);
            self.out.sections[rec.0].write_uint(rec.1 + 20, 4, 8);
        }
    }

    /// Whether relocation `r` of kept span `(sect, span)` stays an ELF
    /// relocation in new code (else it becomes a ksplice relocation).
    fn new_code_keeps_elf(&self, sect: usize, span_start: u64, r: &Reloc) -> bool {
        let a = self.a;
        let Some(d) = self.diff else { return true };
        let s = &a.obj.symbols[r.sym];
        if matches!(
            a.kinds[sect],
            Kind::KspliceCall | Kind::Ksplice | Kind::Special
        ) {
            return true;
        }
        if s.section.is_const() {
            return true;
        }
        if let Some(t) = classify::table(&a.obj.sections[sect].name) {
            let rel = (r.offset - span_start) % t.entry_size;
            if t.addr_offset == Some(rel) || t.other_offset == Some(rel) {
                return true;
            }
        }
        let Some(tid) = a.reloc_target_span(sect, r) else {
            return true;
        };
        if d.flag(tid).new || (d.flag(tid).patch && is_stub(a, tid)) {
            return true;
        }
        let Some((_, off)) = a.reloc_target(sect, r) else {
            return true;
        };
        let off = if s.is_section() {
            off
        } else {
            off.wrapping_add(a.target_offset(sect, r) as u64)
        };
        a.kinds[tid.0] == Kind::Text && off != a.spans[tid.0][tid.1].start
    }

    fn new_code(mut self, kid: &str) -> ObjResult<Object> {
        let a = self.a;
        let d = self
            .diff
            .ok_or_else(|| ObjError::Corrupt("new code without a comparison".into()))?;
        self.copy_sections(|_, _| None);
        self.copy_symbols_keeping(None, |sect, value| {
            a.find_span(sect, value)
                .is_some_and(|k| d.flag((sect, k)).new)
        });
        for sect in 0..a.spans.len() {
            let Some(osect) = self.out_sect(sect) else {
                continue;
            };
            let flags = matchable(a, sect);
            for k in 0..a.spans[sect].len() {
                let sp = &a.spans[sect][k];
                let f = d.flag((sect, k));
                if !sp.keep || !(f.new || f.patch || f.datapatch) {
                    continue;
                }
                if let Some(flags) = flags.filter(|_| sp.size > 0) {
                    let label = format!("(post){}", self.post_label((sect, k)));
                    let ksym = self.meta.symbol(&mut self.out, &label, None, Vec::new);
                    let at = (sp.start as i64 + sp.shift) as u64;
                    let name = a.obj.sections[sect].name.clone();
                    self.meta
                        .ksection(&mut self.out, &name, ksym, (osect, at), sp.size, flags);
                }
                if f.patch {
                    self.text_patches((sect, k))?;
                }
                if f.datapatch {
                    self.data_patch((sect, k));
                }
            }
        }
        self.bugline_patches();
        for (sect, k) in d.deleted(Kind::Text) {
            if is_stub(&d.old, (sect, k)) {
                continue;
            }
            let sp = &d.old.spans[sect][k];
            let name = sp
                .symbol
                .map(|s| d.old.obj.symbols[s].name.clone())
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| sp.label.clone());
            let (label, secname) = (sp.label.clone(), d.old.obj.sections[sect].name.clone());
            self.deleted_patch(&secname, &label, &name);
        }
        self.export_patches(kid);
        for sect in 0..a.obj.sections.len() {
            if self.out_sect(sect).is_none() {
                continue;
            }
            for sp in a.spans[sect].iter().filter(|s| s.keep) {
                for r in a.relocs_in(sect, sp.start, sp.size) {
                    let s = &a.obj.symbols[r.sym];
                    let loader = s.is_undefined() && LOADER_SYMBOLS.contains(&s.name.as_str());
                    let target_kept = a
                        .reloc_target_span(sect, r)
                        .is_some_and(|(ts, tk)| a.spans[ts][tk].keep);
                    if loader
                        || (self.new_code_keeps_elf(sect, sp.start, r)
                            && (s.section.is_const() || target_kept))
                    {
                        self.elf_reloc(sect, r);
                    } else {
                        let h = howto::howto(r.r_type).map_err(|_| unsupported_at(a, sect, r))?;
                        self.ksplice_reloc(sect, r, h)?;
                    }
                }
            }
        }
        self.out.sort_relocs();
        Ok(self.out)
    }
}
