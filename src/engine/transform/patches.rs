//! The `ksplice_patch` records of keep-new-code: jumps from every entry
//! point of a replaced function (and to nowhere for a deleted one),
//! in-place data patches, rewritten BUG/WARN line numbers (best-effort
//! bug-line patches), and export renames.

use super::TRAMPOLINE_SIZE;
use super::emit::Emit;
use super::new_code::is_stub;
use crate::engine::classify::Kind;
use crate::engine::diff::SpanId;
use crate::engine::elf::howto;
use crate::engine::elf::{SecId, SymSection};
use crate::engine::error::{ObjError, ObjResult};
use crate::engine::meta::{self, HowtoType, Meta, SymRef};
use object::elf;

/// The symbols around vmlinux's `__bug_table`: where the loader looks for
/// the running entry of a bug-line patch.
const BUG_TABLE_BOUNDS: [&str; 2] = ["__start___bug_table", "__stop___bug_table"];

impl Emit<'_> {
    /// A `ksplice_patch` record in `.ksplice_patches<for_name>` whose oldaddr
    /// is `label+addend` in the running kernel. Returns its offset and section.
    pub(super) fn patch_record(
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
    pub(super) fn patch_storage(
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
    pub(super) fn text_patches(&mut self, n: SpanId) -> ObjResult<()> {
        let a = self.a;
        let Some(d) = self.diff else { return Ok(()) };
        let Some(o) = d.matched_old(n) else {
            return Ok(());
        };
        let (osp, nsp) = (d.old.span(o), a.span(n));
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
    pub(super) fn deleted_patch(&mut self, for_name: &str, label: &str, name: &str) {
        let rec = self.patch_record(for_name, label, 0, meta::PatchType::Text);
        let u = self.meta.undefined_symbol(&mut self.out, name);
        Meta::ptr(&mut self.out, rec.0, rec.1 + 8, u, 0);
        self.patch_storage(rec, TRAMPOLINE_SIZE, None, None);
    }

    /// In-place replacement of read-only data by its new contents.
    pub(super) fn data_patch(&mut self, n: SpanId) {
        let a = self.a;
        let label = self.post_label(n);
        let sp = a.span(n);
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

    /// BUG/WARN entries whose line changed: their differing non-relocated
    /// bytes rewritten, in [`meta::PatchType::BugLine`] records. A line number is
    /// cosmetic: the loader writes such a record where the running entry
    /// was matched and skips it otherwise, so it never blocks an update.
    pub(super) fn bugline_patches(&mut self) {
        let a = self.a;
        let Some(sect) = a.obj.section_by_name("__bug_table") else {
            return;
        };
        let Some(d) = self.diff else { return };
        let mut first: Option<(String, SecId, u64)> = None;
        for k in 0..a.spans[sect].len() {
            if !d.fate((sect, k)).is_bug_line() {
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
            // Only the bytes that differ (the line, and the flags if they
            // changed): the running flags (BUGFLAG_DONE of a WARN_ONCE that
            // fired) stay as they are.
            let old = d.matched_old((sect, k)).map(|o| {
                let osp = d.old.span(o);
                (&d.old.obj.sections[o.0].data, osp.start)
            });
            let new_data = &a.obj.sections[sect].data;
            let differs = |off: u64| {
                let n = new_data.get((sp.start + off) as usize);
                old.is_none_or(|(od, ostart)| od.get((ostart + off) as usize) != n)
            };
            let mut run_start: Option<u64> = None;
            for off in 0..=sp.contents_size {
                let inside = off < sp.contents_size
                    && !a.part_of_reloc(sect, sp.start + off)
                    && differs(off);
                match (inside, run_start) {
                    (true, None) => run_start = Some(off),
                    (false, Some(s)) => {
                        let bytes = a.obj.sections[sect].data
                            [(sp.start + s) as usize..(sp.start + off) as usize]
                            .to_vec();
                        let rec = self.patch_record(
                            &for_name,
                            &label,
                            s as i64,
                            meta::PatchType::BugLine,
                        );
                        self.patch_storage(rec, off - s, Some(&bytes), None);
                        first.get_or_insert((for_name.clone(), rec.0, rec.1));
                        run_start = None;
                    }
                    _ => {}
                }
            }
        }
        // Where the running kernel's bug table is (vmlinux: System.map;
        // a module's is known to the loader): markers, no field.
        if let Some((for_name, psect, off)) = first {
            let howto = self.meta.howto(&mut self.out, HowtoType::Symbol, None, 0);
            for bound in BUG_TABLE_BOUNDS {
                self.meta.reloc(
                    &mut self.out,
                    &for_name,
                    (psect, off + 8),
                    SymRef::Deferred(bound.to_string()),
                    howto,
                    0,
                    0,
                );
            }
        }
    }

    /// Export records for exports added and removed.
    pub(super) fn export_patches(&mut self, kid: &str) {
        let a = self.a;
        let Some(d) = self.diff else { return };
        let mut records: Vec<(String, String)> = Vec::new();
        for sect in a.spans.ids() {
            if a.kinds[sect] == Kind::Export
                && a.spans[sect]
                    .first()
                    .is_some_and(|_| d.fate((sect, 0)).is_new())
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
}
