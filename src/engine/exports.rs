//! Exports of Linux 6.5 and later: `EXPORT_SYMBOL(sym)` puts a record
//! labelled `__export_symbol_<sym>` in the object's `.export_symbol`
//! section, which only modpost reads (it writes the export table of
//! vmlinux or of the module). The section is not part of the running
//! kernel, so the engine ignores it ([`crate::engine::classify`]); this
//! module finds the exports a patch adds or removes, which an update
//! cannot carry: the running kernel's export table stays as it is.

use crate::engine::elf::Object;
use std::collections::BTreeSet;

/// The section modpost reads exports from.
pub const EXPORT_SECTION: &str = ".export_symbol";
/// The prefix of the label of each export's record.
pub const EXPORT_LABEL: &str = "__export_symbol_";

/// The symbols `obj` exports through [`EXPORT_SECTION`].
pub fn exported(obj: &Object) -> BTreeSet<&str> {
    let Some(sect) = obj.section_by_name(EXPORT_SECTION) else {
        return BTreeSet::new();
    };
    obj.symbols
        .iter()
        .filter(|s| s.section.id() == Some(sect))
        .filter_map(|s| s.name.strip_prefix(EXPORT_LABEL))
        .collect()
}

/// The exports of `new` that `old` lacks, and those of `old` that `new`
/// lacks.
pub fn changed_exports(old: &Object, new: &Object) -> (Vec<String>, Vec<String>) {
    let (before, after) = (exported(old), exported(new));
    let added = after.difference(&before).map(|s| s.to_string()).collect();
    let removed = before.difference(&after).map(|s| s.to_string()).collect();
    (added, removed)
}
