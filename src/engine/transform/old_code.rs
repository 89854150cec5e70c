//! keep-old-code: the object from before the patch prepared for run-pre
//! matching. Text and what it refers to are kept, every relocation becomes
//! a ksplice relocation with a canary in the field, every kept function or
//! matchable data item gets a ksplice_section, and tables the module loader
//! would act on are renamed out of its way. [`filter_tables`] is shared
//! with keep-new-code.

use super::emit::Emit;
use super::{FTRACE_CALLERS, LOADER_SYMBOLS, unsupported_at};
use crate::engine::classify::Kind;
use crate::engine::elf::howto;
use crate::engine::elf::{Object, SecId};
use crate::engine::error::ObjResult;
use crate::engine::meta::{HowtoType, SiteKind};
use crate::engine::sites;
use crate::engine::span::{Analysis, SpanId};
use crate::engine::sysmap::SystemMap;
use crate::engine::tables;

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
        || tables::is_table_other(name)
}

/// The tables of boot-time rewrites (with those of runtime constants,
/// [`is_site_table`]). Old code does not carry them: the module loader
/// would act on them (patching canaries), and the loader's matching reads
/// the `ksplice_site` records made from them instead.
const SITE_TABLES: &[&str] = &[
    ".altinstructions",
    ".parainstructions",
    "__jump_table",
    ".smp_locks",
    ".static_call_sites",
    ".retpoline_sites",
    ".return_sites",
    ".ibt_endbr_seal",
    ".call_sites",
    ".cfi_sites",
];

/// Whether old code leaves out table `name` for its `ksplice_site` records.
fn is_site_table(name: &str) -> bool {
    SITE_TABLES.contains(&name) || sites::runtime_const(name).is_some()
}

/// keep-old-code of an analysis made with `split_tables` (its keep flags
/// and shifts are recomputed from scratch).
/// The spans `rewritten` (writable data the new code rewrites in place)
/// are kept and flagged for matching.
pub(super) fn old_code_of(
    mut a: Analysis,
    rewritten: &[SpanId],
    map: &SystemMap,
) -> ObjResult<Object> {
    mark_old_code(&mut a, rewritten);
    a.compute_shifts();
    let mut e = Emit::new(&a, map);
    e.rewritten = rewritten.to_vec();
    e.old_code()
}

/// The initial keep set of keep-old-code and its closure over references.
fn mark_old_code(a: &mut Analysis, rewritten: &[SpanId]) {
    for (sect, spans) in a.spans.iter_ids_mut() {
        let kind = a.kinds[sect];
        let keep = (kind == Kind::Text && !a.obj.sections[sect].name.starts_with(".fixup"))
            || kind == Kind::Export;
        for s in spans.iter_mut() {
            s.keep = keep;
        }
    }
    let globals: Vec<(SecId, u64)> = a
        .obj
        .symbols
        .iter()
        .filter(|s| s.is_global())
        .filter_map(|s| Some((s.section.id()?, s.value)))
        .collect();
    for (sect, value) in globals {
        if a.kinds[sect] == Kind::Ignored || value == a.obj.sections[sect].size() && value != 0 {
            continue;
        }
        if let Some(k) = a.find_span(sect, value) {
            a.spans[sect][k].keep = true;
        }
    }
    for &(sect, k) in rewritten {
        a.spans[sect][k].keep = true;
    }
    loop {
        let mut changed = close_references(a);
        changed |= filter_tables(a);
        if !changed {
            break;
        }
    }
    for sect in a.spans.ids() {
        if is_site_table(&a.obj.sections[sect].name) {
            for s in a.spans[sect].iter_mut() {
                s.keep = false;
            }
        }
    }
}

/// Keeps every span a kept span refers to (worklist over relocations).
/// Table entries do not keep the code they describe (that is the other way
/// round, see [`filter_tables`]).
fn close_references(a: &mut Analysis) -> bool {
    let mut work: Vec<SpanId> = Vec::new();
    for (sect, spans) in a.spans.iter_ids() {
        for (k, s) in spans.iter().enumerate() {
            if s.keep {
                work.push((sect, k));
            }
        }
    }
    let mut changed = false;
    while let Some((sect, k)) = work.pop() {
        let (start, size) = (a.spans[sect][k].start, a.spans[sect][k].size);
        let table = tables::table(&a.obj.sections[sect].name);
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
pub(super) fn filter_tables(a: &mut Analysis) -> bool {
    let mut changed = false;
    for sect in a.spans.ids() {
        let Some(t) = tables::table(&a.obj.sections[sect].name) else {
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

impl Emit<'_> {
    pub(super) fn old_code(mut self) -> ObjResult<Object> {
        let a = self.a;
        self.copy_sections(old_code_rename);
        self.copy_symbols(Some(Kind::Export));
        self.sections_records(true)?;
        self.table_relocs("__bug_table", HowtoType::Bug);
        self.table_relocs("__ex_table", HowtoType::Extable);
        for sect in a.obj.section_ids() {
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
                        self.elf_reloc(sect, r)?;
                    }
                }
            }
        }
        self.site_records();
        self.out.sort_relocs();
        Ok(self.out)
    }

    /// A `ksplice_site` record for every rewrite site in kept code; with
    /// fentry sites, the System.map addresses of ftrace's callers, which
    /// the fentry rule compares call targets with.
    fn site_records(&mut self) {
        let sites = sites::find_sites(self.a);
        if sites.iter().any(|s| s.kind == SiteKind::Fentry) {
            for name in FTRACE_CALLERS {
                let cands = self.cands.named(name);
                self.meta.symbol(&mut self.out, name, Some(name), || cands);
            }
        }
        for s in sites {
            let Some(at) = self.out_place(s.sect, s.offset) else {
                continue;
            };
            let aux = match s.aux {
                Some((t, o)) => match self.out_place(t, o) {
                    Some(p) => Some(p),
                    None => continue,
                },
                None => None,
            };
            self.meta
                .site(&mut self.out, at, aux, s.kind, s.len, s.aux_len, s.feature);
        }
    }
}
