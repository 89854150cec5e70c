//! keep-new-code: from the comparison of pre and post, the new code of a
//! patch. The spans that are new or changed are kept with what they need
//! (table entries, strings, alternative code), exports the running kernel
//! already has are dropped, and the output gets ksplice sections for the
//! new code, the patch records of `patches.rs`, and relocations that stay
//! ELF relocations or become ksplice relocations.

use super::emit::{Emit, matchable};
use super::old_code::filter_tables;
use super::{NewCode, loader_resolves, unsupported_at};
use crate::engine::classify::Kind;
use crate::engine::diff::{Diff, SpanId};
use crate::engine::elf::howto;
use crate::engine::elf::{Object, Reloc, SecId, SymId};
use crate::engine::error::{ObjError, ObjResult};
use crate::engine::meta::{HowtoType, SiteKind, SymRef};
use crate::engine::report::Report;
use crate::engine::sites::{self, Site, find_sites};
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
    let core_sites = take_core_sites(&mut d.new);
    refuse_runtime_consts_left(&d.new)?;
    refuse_alternatives_left(&d.new)?;
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
    let object = Emit::new(&d.new, map)
        .with_diff(&d)
        .new_code(kid, &core_sites)?;
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

/// The table entries of new code that the module loader must not act on,
/// taken out of the new code and given back as sites for the core, which
/// processes them once the new code's relocations are filled:
/// alternatives (their replacement may carry a canary until then) and jump
/// labels whose key the new code does not define (the core sets them from
/// the key's state), jumps to the return thunk (the module loader would
/// find their target unfilled; the core writes a return or a jump to the
/// thunk boot chose), 6.3+'s paravirt calls (the core writes the call to the
/// slot's function, as boot did), runtime constants (the module loader never sets them;
/// the core writes the variable's value, as boot did). Static-call sites
/// are dropped: the calls go through the trampoline, as compiled, which is
/// what the sites would be patched to.
fn take_core_sites(a: &mut Analysis) -> Vec<Site> {
    let mut out = Vec::new();
    for s in find_sites(a) {
        if s.kind == SiteKind::Return && s.entry.is_none() && kept_at(a, s.sect, s.offset) {
            out.push(s);
            continue;
        }
        let Some((tsect, tstart)) = s.entry else {
            continue;
        };
        let entry_kept = kept_at(a, tsect, tstart);
        let keep_site = match s.kind {
            SiteKind::Alternative => true,
            SiteKind::JumpLabel => !key_is_kept(a, tsect, tstart),
            SiteKind::RuntimeConst => true,
            // 6.3+'s paravirt calls are alternatives: the module loader
            // would read the call's pv_ops pointer before the core fills it
            SiteKind::Paravirt => a.obj.sections[tsect].name == ".altinstructions",
            _ => false,
        };
        if entry_kept && keep_site {
            if let Some(k) = a.find_span(tsect, tstart) {
                a.spans[tsect][k].keep = false;
            }
            out.push(s);
        }
    }
    for sect in a.spans.ids() {
        if a.obj.sections[sect].name == ".static_call_sites" {
            for sp in a.spans[sect].iter_mut() {
                sp.keep = false;
            }
        }
    }
    out
}

/// The variable holding the return thunk boot chose (x86's
/// `apply_returns` jumps there, or returns in place).
const RETURN_THUNK_VAR: &str = "x86_return_thunk";

/// Whether the span holding `off` of `sect` is kept.
fn kept_at(a: &Analysis, sect: SecId, off: u64) -> bool {
    a.find_span(sect, off)
        .is_some_and(|k| a.spans[sect][k].keep)
}

/// A runtime constant kept in new code that is no core site (not at a
/// `movabs` or `shrl` immediate) would keep its placeholder: refused.
fn refuse_runtime_consts_left(a: &Analysis) -> ObjResult<()> {
    for sect in a.spans.ids() {
        let name = &a.obj.sections[sect].name;
        if sites::runtime_const(name).is_none() {
            continue;
        }
        if let Some(sp) = a.spans[sect].iter().find(|s| s.keep) {
            return Err(ObjError::Unsupported(format!(
                "runtime constant {name}+{:#x} ({}): not the immediate of a movabs or shrl, \
                 the new code would keep its placeholder",
                sp.start, sp.label
            )));
        }
    }
    Ok(())
}

/// An alternative kept in new code that is no core site (flags the site
/// records cannot express) would be applied by the module loader before
/// the core fills its relocations: refused.
fn refuse_alternatives_left(a: &Analysis) -> ObjResult<()> {
    let Some(sect) = a.obj.section_by_name(".altinstructions") else {
        return Ok(());
    };
    match a.spans[sect].iter().find(|s| s.keep) {
        Some(sp) => Err(ObjError::Unsupported(format!(
            "alternative {} (.altinstructions+{:#x}): flags the core cannot apply",
            sp.label, sp.start
        ))),
        None => Ok(()),
    }
}

/// Whether the key of the jump label entry at `start` of `sect` is kept in
/// the new code (a key the patch defines: the module loader handles it).
fn key_is_kept(a: &Analysis, sect: SecId, start: u64) -> bool {
    a.reloc_at(sect, start + 8)
        .and_then(|r| a.reloc_target_span(sect, r))
        .is_some_and(|(t, k)| a.spans[t][k].keep)
}

/// Keeps the pieces of a table's "other" section (alternative replacement
/// code) that kept entries point to.
fn keep_table_others(a: &mut Analysis) -> bool {
    let mut changed = false;
    for t in tables::tables() {
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

    pub(super) fn new_code(mut self, kid: &str, core_sites: &[Site]) -> ObjResult<Object> {
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
                    let loader = s.is_undefined() && loader_resolves(&s.name);
                    let target_kept = a
                        .reloc_target_span(sect, r)
                        .is_some_and(|(ts, tk)| a.spans[ts][tk].keep);
                    if loader
                        || (self.new_code_keeps_elf(sect, sp.start, r)
                            && (s.section.is_const() || target_kept))
                    {
                        self.elf_reloc(sect, r)?;
                    } else {
                        let h = howto::howto(r.r_type).map_err(|_| unsupported_at(a, sect, r))?;
                        self.ksplice_reloc(sect, r, h)?;
                    }
                }
            }
        }
        self.core_site_records(core_sites)?;
        self.out.sort_relocs();
        Ok(self.out)
    }
}

impl Emit<'_> {
    /// The `ksplice_site` records of the sites the core processes in new code.
    fn core_site_records(&mut self, sites: &[Site]) -> ObjResult<()> {
        for s in sites {
            let Some(at) = self.out_place(s.sect, s.offset) else {
                continue;
            };
            match s.kind {
                SiteKind::Alternative => {
                    let aux = s.aux.and_then(|(t, o)| self.out_place(t, o));
                    if s.aux_len > 0 && aux.is_none() {
                        return Err(self.site_error(s, "replacement not kept"));
                    }
                    self.meta
                        .site(&mut self.out, at, aux, s.kind, s.len, s.aux_len, s.feature);
                }
                SiteKind::JumpLabel => self.jump_label_record(s, at)?,
                SiteKind::RuntimeConst => self.runtime_const_record(s, at)?,
                SiteKind::Return => self.return_record(s, at)?,
                SiteKind::Paravirt => {
                    self.meta
                        .site(&mut self.out, at, None, s.kind, s.len, 0, s.feature);
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// A jump label the core sets from its key's state: `aux` is the key
    /// (a ksplice relocation), `aux_len` the entry's flags, `feature` the
    /// target's distance from the site (signed).
    fn jump_label_record(&mut self, s: &Site, at: (SecId, u64)) -> ObjResult<()> {
        let a = self.a;
        let (tsect, tstart) = s.entry.ok_or_else(|| self.site_error(s, "no entry"))?;
        let r = *a
            .reloc_at(tsect, tstart + 8)
            .ok_or_else(|| self.site_error(s, "entry without a key"))?;
        let to = match s.aux {
            Some((t, o)) if t == s.sect => o as i64 - s.offset as i64,
            _ => return Err(self.site_error(s, "target outside the site's section")),
        };
        let to = i16::try_from(to).map_err(|_| self.site_error(s, "target out of reach"))?;
        let flags = a.target_offset(tsect, &r) & 3;
        if flags & 2 != 0 {
            // The build's marker for a jump objtool turns into a nop (the
            // kernel's "jump label hack"): the entry's initial state.
            self.nop_out(s, at)?;
        }
        // Room for the entry the core builds for the labels module (in the
        // module area: its offsets reach the code and the key).
        let space = self.meta.section(&mut self.out, ".ksplice_label_space");
        crate::engine::meta::Meta::grow(
            &mut self.out,
            space,
            crate::engine::meta::JUMP_ENTRY_SIZE,
            8,
        );
        let rec = self.meta.site(
            &mut self.out,
            at,
            None,
            s.kind,
            s.len,
            flags as u8,
            to as u16,
        );
        let (symref, rebase) = self.reloc_symbol(tsect, &r);
        let target = a
            .target_offset(tsect, &r)
            .wrapping_add(rebase)
            .wrapping_sub(flags);
        let h = howto::howto(object::elf::R_X86_64_64).map_err(|_| unsupported_at(a, tsect, &r))?;
        let howto = self
            .meta
            .howto(&mut self.out, HowtoType::Reloc, Some(h), h.size);
        self.meta.reloc(
            &mut self.out,
            ".ksplice_sites",
            (rec.0, rec.1 + 8),
            symref,
            howto,
            0,
            target,
        );
        Ok(())
    }

    /// A runtime constant the core sets as boot did: `aux` is the variable
    /// the entry's table is named after (a ksplice relocation, resolved
    /// like any symbol of the update), whose first `len` bytes the core
    /// writes at the immediate (its value, or its low byte for a shift).
    fn runtime_const_record(&mut self, s: &Site, at: (SecId, u64)) -> ObjResult<()> {
        let (tsect, _) = s.entry.ok_or_else(|| self.site_error(s, "no entry"))?;
        let var = sites::runtime_const(&self.a.obj.sections[tsect].name)
            .map(|(v, _)| v.to_string())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| self.site_error(s, "a table without a variable"))?;
        self.variable_site_record(s, at, var, tsect)
    }

    /// A return-thunk jump of the new code the core sets as boot set the
    /// original's: `aux` is the kernel's `x86_return_thunk` variable (the
    /// thunk boot chose), for when the CPU wants return thunks.
    fn return_record(&mut self, s: &Site, at: (SecId, u64)) -> ObjResult<()> {
        self.variable_site_record(s, at, RETURN_THUNK_VAR.to_string(), s.sect)
    }

    /// A site record whose `aux` is the address of the kernel variable
    /// `var`, through a ksplice relocation (by the pre object's label when
    /// the object has a symbol of that name, else deferred to finalize).
    fn variable_site_record(
        &mut self,
        s: &Site,
        at: (SecId, u64),
        var: String,
        tsect: SecId,
    ) -> ObjResult<()> {
        let (symref, target) = match self.a_symbol_named(&var) {
            None => (SymRef::Deferred(var), 0),
            Some(sym) => {
                let r = Reloc {
                    offset: 0,
                    r_type: object::elf::R_X86_64_64,
                    sym,
                    addend: 0,
                };
                if let Some((t, k)) = self.a.reloc_target_span(tsect, &r)
                    && self.a.spans[t][k].keep
                {
                    let why = format!("{var} is the update's own: boot never set it");
                    return Err(self.site_error(s, &why));
                }
                let (symref, rebase) = self.reloc_symbol(tsect, &r);
                (symref, self.a.target_offset(tsect, &r).wrapping_add(rebase))
            }
        };
        let rec = self.meta.site(&mut self.out, at, None, s.kind, s.len, 0, 0);
        let h = howto::howto(object::elf::R_X86_64_64)
            .map_err(|_| self.site_error(s, "no howto for a pointer"))?;
        let howto = self
            .meta
            .howto(&mut self.out, HowtoType::Reloc, Some(h), h.size);
        let field = (rec.0, rec.1 + 8);
        self.meta.reloc(
            &mut self.out,
            ".ksplice_sites",
            field,
            symref,
            howto,
            0,
            target,
        );
        Ok(())
    }

    /// The symbol of the input named `name` (not a section or file symbol),
    /// defined ones first.
    fn a_symbol_named(&self, name: &str) -> Option<SymId> {
        let named: Vec<(SymId, bool)> = self
            .a
            .obj
            .symbols_with_ids()
            .filter(|(_, s)| s.name == name && !s.is_section() && !s.is_file())
            .map(|(i, s)| (i, s.is_undefined()))
            .collect();
        named
            .iter()
            .find(|(_, undefined)| !undefined)
            .or(named.first())
            .map(|&(i, _)| i)
    }

    /// Writes the nop of the site's size over the jump the compiler emitted.
    fn nop_out(&mut self, s: &Site, at: (SecId, u64)) -> ObjResult<()> {
        let nop: &[u8] = match s.len {
            2 => &[0x66, 0x90],
            5 => &[0x0f, 0x1f, 0x44, 0x00, 0x00],
            _ => return Err(self.site_error(s, "not a 2- or 5-byte jump")),
        };
        let data = &mut self.out.sections[at.0].data;
        let start = at.1 as usize;
        match data.get_mut(start..start + nop.len()) {
            Some(bytes) if matches!(bytes[0], 0xeb | 0xe9) => {
                bytes.copy_from_slice(nop);
                Ok(())
            }
            Some(bytes) if bytes == nop => Ok(()),
            _ => Err(self.site_error(s, "neither a jump nor a nop")),
        }
    }

    fn site_error(&self, s: &Site, why: &str) -> ObjError {
        ObjError::Unsupported(format!(
            "{:?} site at {}+{:#x}: {why}",
            s.kind, self.a.obj.sections[s.sect].name, s.offset
        ))
    }
}
