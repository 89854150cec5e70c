//! keep-new-code: from the comparison of pre and post, the new code of a
//! patch. The spans that are new or changed are kept with what they need
//! (table entries, strings, alternative code), exports the running kernel
//! already has are dropped, and the output gets ksplice sections for the
//! new code, the patch records of `patches.rs`, and relocations that stay
//! ELF relocations or become ksplice relocations.

use super::emit::{Emit, matchable};
use super::old_code::filter_tables;
use super::{LOADER_SYMBOLS, NewCode, unsupported_at};
use crate::engine::classify::Kind;
use crate::engine::diff::{Diff, SpanId};
use crate::engine::elf::howto;
use crate::engine::elf::{Object, Reloc, SecId};
use crate::engine::error::{ObjError, ObjResult};
use crate::engine::report::Report;
use crate::engine::span::{Analysis, is_named, label_file};
use crate::engine::sysmap::SystemMap;
use crate::engine::tables;

/// True for code without a named entry point (out-of-line stubs): nothing
/// calls it, its one referrer jumps to it.
pub(super) fn is_stub(a: &Analysis, id: SpanId) -> bool {
    let sp = a.span(id);
    a.kinds[id.0] == Kind::Text
        && sp.symbol.is_none_or(|s| !is_named(&a.obj.symbols[s]))
        && !a.symbols_in(id.0).iter().any(|&i| {
            let s = &a.obj.symbols[i];
            s.is_global() && s.value >= sp.start && s.value < sp.start + sp.size.max(1)
        })
}

/// keep-new-code from a comparison; gives the comparison back.
pub(super) fn new_code_of(
    mut d: Diff,
    post_path: &str,
    kid: &str,
    map: &SystemMap,
) -> ObjResult<(NewCode, Diff)> {
    let report = Report::from_diff(&d, &label_file(post_path));
    for sect in d.new.spans.ids() {
        let call = d.new.kinds[sect] == Kind::KspliceCall;
        for k in 0..d.new.spans[sect].len() {
            d.new.spans[sect][k].keep = d.fate((sect, k)).in_new_code() || call;
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
    for sect in d.new.spans.ids() {
        if d.new.kinds[sect] != Kind::Export {
            continue;
        }
        for k in 0..d.new.spans[sect].len() {
            if !d.fate((sect, k)).is_new() {
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
    for sect in a.spans.ids() {
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
        d.fates[ts][tk] = crate::engine::diff::Fate::New;
    }
}

/// Keeps the pieces of a table's "other" section (alternative replacement
/// code) that kept entries point to.
fn keep_table_others(a: &mut Analysis) -> bool {
    let mut changed = false;
    for t in tables::TABLES {
        let (Some(off), Some(_)) = (t.other_offset, t.other_sect) else {
            continue;
        };
        let Some(sect) = a.obj.section_by_name(t.name) else {
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
    pub(super) fn with_diff(mut self, d: &'a Diff) -> Emit<'a> {
        self.diff = Some(d);
        self
    }

    /// The label a post span is known by: its pre counterpart's when matched.
    pub(super) fn post_label(&self, id: SpanId) -> String {
        match self.diff.and_then(|d| d.matched_old(id).map(|o| (d, o))) {
            Some((d, o)) => d.old.span(o).label.clone(),
            None => self.a.span(id).label.clone(),
        }
    }

    /// Whether relocation `r` of kept span `(sect, span)` stays an ELF
    /// relocation in new code (else it becomes a ksplice relocation).
    pub(super) fn new_code_keeps_elf(&self, sect: SecId, span_start: u64, r: &Reloc) -> bool {
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
        if let Some(t) = tables::table(&a.obj.sections[sect].name) {
            let rel = (r.offset - span_start) % t.entry_size;
            if t.addr_offset == Some(rel) || t.other_offset == Some(rel) {
                return true;
            }
        }
        let Some(tid) = a.reloc_target_span(sect, r) else {
            return true;
        };
        if d.fate(tid).is_new() || (d.fate(tid).is_patched() && is_stub(a, tid)) {
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
        a.kinds[tid.0] == Kind::Text && off != a.span(tid).start
    }

    pub(super) fn new_code(mut self, kid: &str) -> ObjResult<Object> {
        let a = self.a;
        let d = self
            .diff
            .ok_or_else(|| ObjError::Corrupt("new code without a comparison".into()))?;
        self.copy_sections(|_, _| None);
        self.copy_symbols_keeping(None, |sect, value| {
            a.find_span(sect, value)
                .is_some_and(|k| d.fate((sect, k)).is_new())
        });
        for sect in a.spans.ids() {
            let Some(osect) = self.out_sect(sect) else {
                continue;
            };
            let flags = matchable(a, sect);
            for k in 0..a.spans[sect].len() {
                let sp = &a.spans[sect][k];
                let f = d.fate((sect, k));
                if !sp.keep || !f.in_new_code() {
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
                if f.is_patched() {
                    self.text_patches((sect, k))?;
                }
                if f.is_patched_in_place() {
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
        for sect in a.obj.section_ids() {
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
