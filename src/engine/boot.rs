//! Boot-time code that a patch changes: functions in `.init.text`. They ran
//! while the kernel booted and were freed, so an update has nothing to
//! patch for them; the diff ignores their sections, and this module only
//! names them, so that the tools can say so instead of staying silent.

use crate::engine::elf::{Object, Section, Symbol};
use crate::engine::report::Entry;

/// The functions of `.init.text*` sections that are new in `new`, or whose
/// size, bytes or relocations (type, target name, addend) differ from the
/// function of the same name in `old`. Sorted by name.
pub fn changed_init_functions(old: &Object, new: &Object) -> Vec<Entry> {
    let mut out: Vec<Entry> = init_functions(new)
        .filter_map(|(sym, sect)| {
            let reason = match init_functions(old).find(|(o, _)| o.name == sym.name) {
                None => "new",
                Some(before) if !same_function(old, before, new, (sym, sect)) => "changed",
                Some(_) => return None,
            };
            Some(Entry {
                name: sym.name.clone(),
                section: sect.name.clone(),
                reason: Some(format!(
                    "{reason} boot-time code: it ran at boot and is not patched"
                )),
                offset: None,
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.dedup_by(|a, b| a.name == b.name);
    out
}

/// The named functions defined in `.init.text*` sections, with their section.
fn init_functions(obj: &Object) -> impl Iterator<Item = (&Symbol, &Section)> {
    obj.symbols.iter().filter_map(move |s| {
        let sect = obj.get_section(s.section.id()?)?;
        let wanted = s.kind == object::elf::STT_FUNC && !s.name.is_empty();
        (wanted && sect.name.starts_with(".init.text")).then_some((s, sect))
    })
}

/// Whether two functions have the same bytes and relocations.
fn same_function(
    old: &Object,
    (a, asec): (&Symbol, &Section),
    new: &Object,
    (b, bsec): (&Symbol, &Section),
) -> bool {
    let relocs = |obj: &Object, s: &Symbol, sec: &Section| -> Vec<(u64, u32, String, i64)> {
        sec.relocs
            .iter()
            .filter(|r| r.offset >= s.value && r.offset - s.value < s.size)
            .map(|r| {
                let t = obj.get_symbol(r.sym);
                match t.filter(|t| t.is_section()) {
                    // Offsets into a section (strings, local data) move when
                    // anything before them changes: only the section counts.
                    Some(t) => {
                        let sect = t.section.id().and_then(|id| obj.get_section(id));
                        let name = sect.map(|x| x.name.clone()).unwrap_or_default();
                        (r.offset - s.value, r.r_type, name, 0)
                    }
                    None => {
                        let name = t.map(|t| t.name.clone()).unwrap_or_default();
                        (r.offset - s.value, r.r_type, name, r.addend)
                    }
                }
            })
            .collect()
    };
    a.size == b.size
        && bytes_of(a, asec).is_some()
        && bytes_of(a, asec) == bytes_of(b, bsec)
        && relocs(old, a, asec) == relocs(new, b, bsec)
}

/// A function's bytes, when its symbol lies inside its section.
fn bytes_of<'a>(s: &Symbol, sec: &'a Section) -> Option<&'a [u8]> {
    let start = usize::try_from(s.value).ok()?;
    let end = start.checked_add(usize::try_from(s.size).ok()?)?;
    sec.data.get(start..end)
}
