//! The per-object report of keep-new-code: what changed and why, as text
//! (KSPLICE_VERBOSE>=1) and as JSON (`OBJ.KSPLICE_report.json`), which
//! [`Report::from_json`] reads back.

use crate::engine::classify::Kind;
use crate::engine::diff::{Change, Diff, Fate, SpanId};
use crate::engine::span::{Analysis, is_named};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};

/// One reported span.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Entry {
    /// Symbol name, or the span's label when it has none.
    pub name: String,
    /// Section.
    #[serde(default)]
    pub section: String,
    /// Why it changed (`differing bytes at offset 0x12`, `differing
    /// relocations at offset 0x10: target changed`), when it did: the
    /// text of a [`Change`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// First differing offset, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

/// What keep-new-code found in one object. In JSON, every list may be left
/// out (empty) and other members (`changed`) are ignored when read; written,
/// it is `object`, `changed` ([`Report::has_changes`]) and every list, in
/// the order of the text report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Report {
    /// The object (without `.KSPLICE*` suffix).
    pub object: String,
    /// Functions replaced by their new version.
    #[serde(default)]
    pub patched_functions: Vec<Entry>,
    /// Functions that only exist after the patch.
    #[serde(default)]
    pub new_functions: Vec<Entry>,
    /// Functions that no longer exist.
    #[serde(default)]
    pub deleted_functions: Vec<Entry>,
    /// Data that only exists after the patch (lives in the new code).
    #[serde(default)]
    pub new_data: Vec<Entry>,
    /// Read-only data overwritten in place.
    #[serde(default)]
    pub patched_data: Vec<Entry>,
    /// Writable data rewritten in place: the loader writes the new bytes
    /// over the running instance once run-pre matching has found it equal
    /// to the build before the patch (listed only when the caller asked
    /// for in-place rewrites; otherwise such changes are refused).
    #[serde(default)]
    pub rewritten_data: Vec<Entry>,
    /// BUG/WARN entries whose line number is rewritten: best-effort, the
    /// loader skips (and logs) an entry it cannot find in the running kernel.
    #[serde(default)]
    pub bug_line_patches: Vec<Entry>,
    /// Exports added.
    #[serde(default)]
    pub new_exports: Vec<Entry>,
    /// Exports removed.
    #[serde(default)]
    pub deleted_exports: Vec<Entry>,
    /// Changes to writable data, which replacing code cannot carry out.
    #[serde(default)]
    pub refused: Vec<Entry>,
    /// Boot-time (`__init`) functions that changed: they ran at boot, so
    /// nothing of them is patched (named, never acted on).
    #[serde(default)]
    pub boot_only: Vec<Entry>,
}

/// A report's JSON that cannot be read.
#[derive(Debug)]
pub struct ReportError(serde_json::Error);

impl std::fmt::Display for ReportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed report: {}", self.0)
    }
}

impl std::error::Error for ReportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

fn entry(a: &Analysis, id: SpanId, change: Option<Change>) -> Entry {
    let sp = a.span(id);
    let name = sp
        .symbol
        .filter(|&s| is_named(&a.obj.symbols[s]))
        .map(|s| a.obj.symbols[s].name.clone())
        .unwrap_or_else(|| sp.label.clone());
    Entry {
        name,
        section: a.obj.sections[id.0].name.clone(),
        reason: change.map(|c| c.to_string()),
        offset: change.and_then(|c| c.offset()),
    }
}

impl Report {
    /// The report of a comparison.
    pub fn from_diff(d: &Diff, object: &str) -> Report {
        let mut r = Report {
            object: object.to_string(),
            ..Report::default()
        };
        for (sect, spans) in d.new.spans.iter_ids() {
            let kind = d.new.kinds[sect];
            for (k, span) in spans.iter().enumerate() {
                let id = (sect, k);
                let fate = d.fate(id);
                let list = match fate {
                    Fate::Patched(_) => &mut r.patched_functions,
                    Fate::PatchedInPlace(_) if kind == Kind::Data => &mut r.rewritten_data,
                    Fate::PatchedInPlace(_) => &mut r.patched_data,
                    Fate::BugLineOnly(_) => &mut r.bug_line_patches,
                    Fate::New if span.size > 0 => match kind {
                        Kind::Text => &mut r.new_functions,
                        Kind::Export => &mut r.new_exports,
                        Kind::Data | Kind::Rodata => &mut r.new_data,
                        _ => continue,
                    },
                    // Refusals are listed in the order found, below.
                    Fate::New | Fate::Unchanged | Fate::Refused(_) => continue,
                };
                list.push(entry(&d.new, id, fate.change()));
            }
        }
        for id in d.deleted(Kind::Text) {
            r.deleted_functions.push(entry(&d.old, id, None));
        }
        for id in d.deleted(Kind::Export) {
            r.deleted_exports.push(entry(&d.old, id, None));
        }
        for x in &d.refused {
            r.refused.push(Entry {
                name: x.symbol.clone(),
                section: x.section.clone(),
                reason: Some(x.reason.to_string()),
                offset: x.reason.offset(),
            });
        }
        r
    }

    /// Reads what [`Report::json`] writes. The object must be named;
    /// missing lists are empty, unknown members ignored. Malformed input
    /// (and nesting deeper than 128) is an error, never a panic.
    pub fn from_json(text: &str) -> Result<Report, ReportError> {
        serde_json::from_str(text).map_err(ReportError)
    }

    /// True when the object has something to patch.
    pub fn has_changes(&self) -> bool {
        !(self.patched_functions.is_empty()
            && self.new_functions.is_empty()
            && self.deleted_functions.is_empty()
            && self.new_data.is_empty()
            && self.patched_data.is_empty()
            && self.rewritten_data.is_empty()
            && self.bug_line_patches.is_empty()
            && self.new_exports.is_empty()
            && self.deleted_exports.is_empty())
    }

    fn groups(&self) -> [(&'static str, &'static str, &Vec<Entry>); 11] {
        [
            ("patched_functions", "PATCH", &self.patched_functions),
            ("new_functions", "NEW", &self.new_functions),
            ("deleted_functions", "DELETE", &self.deleted_functions),
            ("new_data", "NEWDATA", &self.new_data),
            ("patched_data", "DATAPATCH", &self.patched_data),
            ("rewritten_data", "DATAWRITE", &self.rewritten_data),
            ("bug_line_patches", "BUGLINE", &self.bug_line_patches),
            ("new_exports", "EXPORT", &self.new_exports),
            ("deleted_exports", "UNEXPORT", &self.deleted_exports),
            ("refused", "REFUSED", &self.refused),
            ("boot_only", "BOOTONLY", &self.boot_only),
        ]
    }

    /// Kbuild-style lines, one per entry.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for (_, tag, entries) in self.groups() {
            for e in entries {
                out.push_str(&format!(
                    "  {tag:<9}{} {} ({})",
                    self.object, e.name, e.section
                ));
                if let Some(r) = &e.reason {
                    out.push_str(&format!(": {r}"));
                }
                if tag == "BUGLINE" {
                    out.push_str(" (best-effort: left as is if not matched)");
                }
                out.push('\n');
            }
        }
        out
    }

    /// The report as JSON (pretty-printed, ending with a newline).
    pub fn json(&self) -> String {
        // Strings, numbers and booleans only: serializing cannot fail.
        let mut out = serde_json::to_string_pretty(self).unwrap_or_default();
        out.push('\n');
        out
    }
}

/// `object`, then `changed`, which is computed, then the lists in the order
/// of [`Report::groups`] (that of the text report).
impl Serialize for Report {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let groups = self.groups();
        let mut st = s.serialize_struct("Report", 2 + groups.len())?;
        st.serialize_field("object", &self.object)?;
        st.serialize_field("changed", &self.has_changes())?;
        for (key, _, entries) in groups {
            st.serialize_field(key, entries)?;
        }
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_members_in_order() {
        let r = sample();
        let j = r.json();
        assert!(j.starts_with("{\n") && j.ends_with("\n}\n"), "{j}");
        let mut want = vec!["object", "changed"];
        want.extend(r.groups().iter().map(|g| g.0));
        let mut at = 0;
        for k in want {
            let i = j[at..]
                .find(&format!("\n  \"{k}\": "))
                .unwrap_or_else(|| panic!("{k}: missing or out of order in {j}"));
            at += i + 1;
        }
        assert!(j.contains("\"changed\": true"), "{j}");
        assert!(j.contains("\"offset\": 18446744073709551615"), "{j}");
        assert!(j.contains(r#""object": "kernel/sys \"x\"\\é.o""#), "{j}");
        // Reason and offset are left out when there is none.
        assert_eq!(
            serde_json::to_string(&r.new_functions[0]).unwrap(),
            r#"{"name":"helper.isra.0","section":".text.helper.isra.0"}"#
        );
    }

    #[test]
    fn empty_report_is_valid_json_shape() {
        let r = Report {
            object: "a.o".into(),
            ..Report::default()
        };
        let j = r.json();
        assert!(j.contains("\"changed\": false"));
        assert!(j.contains("\"patched_functions\": []"));
        assert!(!r.has_changes());
    }

    fn sample() -> Report {
        let e = |name: &str, reason: Option<&str>, offset: Option<u64>| Entry {
            name: name.into(),
            section: format!(".text.{name}"),
            reason: reason.map(String::from),
            offset,
        };
        Report {
            object: "kernel/sys \"x\"\\é.o".into(),
            patched_functions: vec![
                e(
                    "do_sys",
                    Some("differing relocations at offset 0x10: target changed"),
                    Some(16),
                ),
                e("f\n\t\u{1}", Some("differing size"), None),
            ],
            new_functions: vec![e("helper.isra.0", None, None)],
            deleted_functions: vec![e("gone", None, None)],
            new_data: vec![e("tbl", None, None)],
            patched_data: vec![e("msg", Some("differing bytes at offset 0x0"), Some(0))],
            rewritten_data: vec![e("tab", Some("differing bytes at offset 0x18"), Some(24))],
            bug_line_patches: vec![e("bug", Some("differing bytes at offset 0x8"), Some(8))],
            new_exports: vec![e("__ksymtab_x", None, None)],
            deleted_exports: vec![e("__ksymtab_y", None, None)],
            refused: vec![e(
                "limit",
                Some("differing bytes at offset 0x4"),
                Some(u64::MAX),
            )],
            boot_only: vec![e("setup", Some("changed boot-time code"), None)],
        }
    }

    #[test]
    fn boot_only_is_not_a_change() {
        let r = Report {
            object: "a.o".into(),
            boot_only: sample().boot_only,
            ..Report::default()
        };
        assert!(!r.has_changes());
        assert!(r.text().contains("BOOTONLY a.o setup"), "{}", r.text());
    }

    #[test]
    fn bug_line_text_says_best_effort() {
        let text = sample().text();
        let line = text.lines().find(|l| l.contains("BUGLINE")).unwrap();
        assert!(
            line.ends_with("(best-effort: left as is if not matched)"),
            "{line}"
        );
        let other = text.lines().find(|l| l.contains("DATAPATCH")).unwrap();
        assert!(!other.contains("best-effort"), "{other}");
    }

    #[test]
    fn json_round_trips() {
        let r = sample();
        assert_eq!(Report::from_json(&r.json()).unwrap(), r);
        let empty = Report {
            object: "a.o".into(),
            ..Report::default()
        };
        assert_eq!(Report::from_json(&empty.json()).unwrap(), empty);
    }

    #[test]
    fn from_json_reads_escapes_and_ignores_unknown_members() {
        let r = Report::from_json(
            r#"{"object": "a.o", "changed": true, "n": [1, -2.5e3, true, false, null, {}],
                "new_functions": [{"name": "\u00e9\n\ud83d\ude00\/"}]}"#,
        )
        .unwrap();
        assert_eq!(r.new_functions[0].name, "é\n😀/");
        assert_eq!(r.new_functions[0].section, "");
        assert!(r.patched_functions.is_empty());
    }

    #[test]
    fn malformed_json_is_an_error() {
        for bad in [
            "",
            "{",
            "[1,]",
            "{\"a\" 1}",
            "\"abc",
            "[1] x",
            "tru",
            "[1]",
            "{}",
            "{\"object\": 1}",
            "{\"object\": \"a.o\"} x",
            "{\"object\": \"a.o\", \"refused\": [{\"section\": \"s\"}]}",
            "{\"object\": \"a.o\", \"refused\": [{\"name\": \"n\", \"offset\": -1}]}",
            "{\"object\": \"\\ud800x\"}",
            "{\"object\": \"\\u12\"}",
        ] {
            assert!(Report::from_json(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_without_overflow() {
        for open in ["[", "{\"a\":"] {
            let deep = format!("{{\"object\": \"a.o\", \"x\": {}", open.repeat(100_000));
            let err = Report::from_json(&deep).unwrap_err();
            assert!(err.to_string().starts_with("malformed report"), "{err}");
        }
    }
}
