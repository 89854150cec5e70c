//! Which rewrites of writable data in place an update may carry.
//!
//! With `KSPLICE_DATA_IN_PLACE=1`, ksplice-obj turns a changed writable
//! variable of unchanged size into a data patch, which the loader writes
//! over the running variable once run-pre matching has found its bytes
//! still equal to the build's. That is only right for data the kernel
//! treats as a read-only description it never updates: a variable holding
//! run-time state that happens to equal its initial value (a log level, a
//! counter at zero) must not be reset by an update. The accepted types are
//! listed in [`REWRITABLE`]; the type of each rewritten variable comes from
//! the DWARF of the debug build the structure layout check made.

use crate::engine::report::{Entry, Report};
use std::collections::BTreeMap;

/// The types whose variables are rewritten in place: sysctl tables, which
/// the kernel only reads after registering them (their handlers take them
/// `const` since Linux 6.11), and whose per-namespace copies are made
/// from the static template at namespace creation.
pub(super) const REWRITABLE: &[&str] = &["struct ctl_table"];

/// The type a C type name describes, without qualifiers or array bounds
/// (`const struct ctl_table [3]` is `struct ctl_table`).
fn base_type(t: &str) -> &str {
    let mut t = t.trim();
    while let Some(rest) = t.strip_suffix(']') {
        match rest.rfind('[') {
            Some(i) => t = rest[..i].trim_end(),
            None => break,
        }
    }
    loop {
        if let Some(rest) = t.strip_prefix("const ") {
            t = rest;
        } else if let Some(rest) = t.strip_prefix("volatile ") {
            t = rest;
        } else {
            return t;
        }
    }
}

/// Whether a variable of type `t` (C spelling) may be rewritten in place.
pub(super) fn rewritable(t: &str) -> bool {
    REWRITABLE.contains(&base_type(t))
}

/// The refusals of one report's in-place rewrites: each variable whose
/// type (from `types`, the debug build's variables before the patch, when
/// there is one) is not [`rewritable`], as a one-line reason.
pub(super) fn refusals(report: &Report, types: Option<&BTreeMap<String, String>>) -> Vec<String> {
    report
        .rewritten_data
        .iter()
        .filter_map(|e| {
            let t = types.and_then(|m| m.get(&e.name));
            if t.is_some_and(|t| rewritable(t)) {
                return None;
            }
            let why = match t {
                Some(t) => format!("its type is {t}"),
                None => "its type is unknown (no debug information names it)".to_string(),
            };
            Some(refusal(&report.object, e, &why))
        })
        .collect()
}

fn refusal(object: &str, e: &Entry, why: &str) -> String {
    format!(
        "{object}: writable data {} in section {} changed ({}); it cannot take effect by replacing code: only {} variables are rewritten in place, and {why} (--allow-data-change ignores the change)",
        e.name,
        e.section,
        e.reason.as_deref().unwrap_or("changed"),
        REWRITABLE.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(names: &[&str]) -> Report {
        Report {
            object: "net/x.o".into(),
            rewritten_data: names
                .iter()
                .map(|n| Entry {
                    name: n.to_string(),
                    section: format!(".data.{n}"),
                    reason: Some("differing bytes at offset 0x8".into()),
                    offset: Some(8),
                })
                .collect(),
            ..Report::default()
        }
    }

    #[test]
    fn only_sysctl_tables_are_rewritable() {
        assert!(rewritable("struct ctl_table [2]"));
        assert!(rewritable("const struct ctl_table [2][3]"));
        assert!(rewritable("struct ctl_table"));
        assert!(!rewritable("int [4]"));
        assert!(!rewritable("struct ctl_table *"));
        assert!(!rewritable("struct ctl_table_header"));
        assert!(!rewritable("struct file_operations"));
    }

    #[test]
    fn refusals_name_the_variable_and_its_type() {
        let types: BTreeMap<String, String> = [
            ("unix_table".to_string(), "struct ctl_table [2]".to_string()),
            ("console_printk".to_string(), "int [4]".to_string()),
        ]
        .into();
        let r = report(&["unix_table", "console_printk", "mystery"]);
        let got = refusals(&r, Some(&types));
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].starts_with(
            "net/x.o: writable data console_printk in section .data.console_printk changed (differing bytes at offset 0x8)"
        ));
        assert!(got[0].contains("its type is int [4]"), "{}", got[0]);
        assert!(got[1].contains("mystery") && got[1].contains("unknown"));
        // Without debug information nothing is accepted.
        assert_eq!(refusals(&report(&["unix_table"]), None).len(), 1);
        assert!(refusals(&report(&[]), None).is_empty());
    }
}
