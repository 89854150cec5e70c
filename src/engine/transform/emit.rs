//! The output builder of keep-old-code and keep-new-code: [`Emit`] copies
//! the kept spans of an analysis into a new object (sections, symbols, ELF
//! relocations retargeted through an [`IdMap`]) and writes the metadata
//! records every kept span needs (ksplice relocations, ksplice sections,
//! entry points, table relocations). The transform-specific passes are in
//! `old_code.rs`, `new_code.rs` and `patches.rs`.

use super::candidates::Candidates;
use crate::engine::classify::Kind;
use crate::engine::diff::Diff;
use crate::engine::elf::howto::Howto;
use crate::engine::elf::{IdMap, Object, Reloc, SecId, Section, SymId, SymSection, Symbol};
use crate::engine::error::{ObjError, ObjResult};
use crate::engine::meta::{self, HowtoType, Meta, SymRef};
use crate::engine::span::{Analysis, SpanId, is_named};
use crate::engine::sysmap::SystemMap;
use crate::engine::tables;
use object::elf;

/// Whether a kept span of this kind gets a ksplice_section for matching.
pub(super) fn matchable(a: &Analysis, sect: SecId) -> Option<u32> {
    let has_relocs = !a.obj.sections[sect].relocs.is_empty();
    match a.kinds[sect] {
        Kind::Text => Some(meta::SECTION_TEXT),
        Kind::String => Some(meta::SECTION_RODATA | meta::SECTION_STRING),
        Kind::Rodata | Kind::Export | Kind::BugTable => Some(meta::SECTION_RODATA),
        Kind::Data if has_relocs => Some(meta::SECTION_DATA),
        _ => None,
    }
}

/// Builds an output object from the kept spans of an analysis.
pub(super) struct Emit<'a> {
    pub(super) a: &'a Analysis,
    /// For new code: the comparison with pre, whose labels matched spans take.
    pub(super) diff: Option<&'a Diff>,
    pub(super) cands: Candidates<'a>,
    pub(super) out: Object,
    pub(super) meta: Meta,
    /// Where each input section went in the output.
    pub(super) sect_map: IdMap<SecId>,
    /// Where each input symbol went in the output.
    pub(super) sym_map: IdMap<SymId>,
    /// Old code: the spans of writable data the update rewrites in place,
    /// which run-pre matching must find unchanged.
    pub(super) rewritten: Vec<SpanId>,
}

impl<'a> Emit<'a> {
    pub(super) fn new(a: &'a Analysis, map: &'a SystemMap) -> Emit<'a> {
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
            rewritten: Vec::new(),
        }
    }

    /// The output section of input section `sect`, if kept.
    pub(super) fn out_sect(&self, sect: SecId) -> Option<SecId> {
        self.sect_map.get(sect)
    }

    /// Output offset of input `(sect, off)`, through the span's shift.
    pub(super) fn out_offset(&self, sect: SecId, off: u64) -> Option<u64> {
        let k = self.a.find_span(sect, off)?;
        let s = &self.a.spans[sect][k];
        s.keep.then(|| (off as i64 + s.shift) as u64)
    }

    /// Where `sect+off` of the input is in the output, if it was kept.
    pub(super) fn out_place(&self, sect: SecId, off: u64) -> Option<(SecId, u64)> {
        Some((self.out_sect(sect)?, self.out_offset(sect, off)?))
    }

    pub(super) fn copy_sections(&mut self, rename: impl Fn(&str, Kind) -> Option<String>) {
        let a = self.a;
        for (i, sec) in a.obj.sections_with_ids() {
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
            self.sect_map.insert(i, out);
        }
    }

    /// Copies kept symbols; defined globals become local.
    pub(super) fn copy_symbols(&mut self, drop_kind: Option<Kind>) {
        self.copy_symbols_keeping(drop_kind, |_, _| false);
    }

    /// Copies kept symbols; defined globals become local unless `stays_global`
    /// says otherwise for their (section, value).
    pub(super) fn copy_symbols_keeping(
        &mut self,
        drop_kind: Option<Kind>,
        stays_global: impl Fn(SecId, u64) -> bool,
    ) {
        let a = self.a;
        for (i, s) in a.obj.symbols_with_ids() {
            let (section, value) = match s.section {
                SymSection::Section(k) => {
                    let Some(nk) = self.sect_map.get(k) else {
                        continue;
                    };
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
                && !matches!(s.section, SymSection::Section(k) if stays_global(k, s.value))
            {
                ns.bind = elf::STB_LOCAL;
            }
            let out = self.out.push_symbol(ns);
            self.sym_map.insert(i, out);
        }
    }

    /// Output symbol for an input symbol referenced by a kept ELF relocation.
    pub(super) fn out_symbol(&mut self, sym: SymId) -> Option<SymId> {
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
    pub(super) fn reloc_symbol(&mut self, sect: SecId, r: &Reloc) -> (SymRef, i64) {
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
            let old = d.old.span(o);
            let name = old
                .symbol
                .filter(|&c| is_named(&d.old.obj.symbols[c]))
                .map(|c| d.old.obj.symbols[c].name.clone());
            let rebase = (s.value as i64).wrapping_sub(a.span(t).start as i64);
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
        let named = a.canonical(r.sym).filter(|&c| is_named(&a.obj.symbols[c]));
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
    pub(super) fn ksplice_reloc(&mut self, sect: SecId, r: &Reloc, h: Howto) -> ObjResult<()> {
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
    pub(super) fn elf_reloc(&mut self, sect: SecId, r: &Reloc) -> ObjResult<()> {
        let a = self.a;
        let (Some(osect), Some(off)) = (self.out_sect(sect), self.out_offset(sect, r.offset))
        else {
            return Ok(());
        };
        let s = &a.obj.symbols[r.sym];
        let new = if s.section.is_const() {
            self.out_symbol(r.sym).map(|sym| (sym, r.addend))
        } else if s.is_section() {
            let (ts, toff) = a.reloc_target(sect, r).unwrap_or((SecId::new(0), 0));
            if a.find_span(ts, toff).is_none() && !a.spans[ts].is_empty() {
                // Never drop a kept field's relocation: that code would
                // read or write the wrong place.
                return Err(ObjError::Unsupported(format!(
                    "relocation at {}+{:#x} refers to {}{:+#x}, outside its pieces",
                    a.obj.sections[sect].name, r.offset, a.obj.sections[ts].name, toff as i64
                )));
            }
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
        Ok(())
    }

    /// ksplice_section records (and, for old code, entry points) for the
    /// kept spans of matchable sections.
    pub(super) fn sections_records(&mut self, entry_points: bool) -> ObjResult<()> {
        let a = self.a;
        for sect in a.obj.section_ids() {
            let Some(osect) = self.out_sect(sect) else {
                continue;
            };
            let base = matchable(a, sect);
            let rewrites = self.rewritten.iter().any(|r| r.0 == sect);
            if base.is_none() && !rewrites || a.obj.sections[sect].size() == 0 {
                continue;
            }
            if a.symbol_at(sect, 0)
                .is_some_and(|c| a.obj.symbols[c].is_weak())
            {
                continue;
            }
            let table = tables::table(&a.obj.sections[sect].name);
            for (k, span) in a.spans[sect].iter().enumerate().filter(|(_, s)| s.keep) {
                let flags = if self.rewritten.contains(&(sect, k)) {
                    meta::SECTION_DATA | meta::SECTION_REWRITTEN
                } else if let Some(f) = base {
                    f
                } else {
                    continue;
                };
                let mut for_name = a.obj.sections[sect].name.clone();
                if let Some(addr) = table.and_then(|t| t.addr_offset)
                    && let Some(r) = a.reloc_at(sect, span.start + addr)
                    && let SymSection::Section(ts) = a.obj.symbols[r.sym].section
                {
                    for_name = a.obj.sections[ts].name.clone();
                }
                let name = span
                    .symbol
                    .filter(|&c| is_named(&a.obj.symbols[c]))
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
    pub(super) fn entry_points(
        &mut self,
        sect: SecId,
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
    pub(super) fn table_relocs(&mut self, table: &str, kind: HowtoType) {
        let a = self.a;
        let Some(sect) = a.obj.section_by_name(table) else {
            return;
        };
        let Some(t) = tables::table(table) else {
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
}
