//! The per-object report of keep-new-code: what changed and why, as text
//! (KSPLICE_VERBOSE>=1) and as JSON (`OBJ.KSPLICE_report.json`).

use crate::engine::classify::Kind;
use crate::engine::diff::{Change, Diff, Fate, SpanId};
use crate::engine::span::{Analysis, is_named};

/// One reported span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Symbol name, or the span's label when it has none.
    pub name: String,
    /// Section.
    pub section: String,
    /// Why it changed (`differing bytes at offset 0x12`, `differing
    /// relocations at offset 0x10: target changed`), when it did: the
    /// text of a [`Change`].
    pub reason: Option<String>,
    /// First differing offset, when known.
    pub offset: Option<u64>,
}

/// What keep-new-code found in one object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The object (without `.KSPLICE*` suffix).
    pub object: String,
    /// Functions replaced by their new version.
    pub patched_functions: Vec<Entry>,
    /// Functions that only exist after the patch.
    pub new_functions: Vec<Entry>,
    /// Functions that no longer exist.
    pub deleted_functions: Vec<Entry>,
    /// Data that only exists after the patch (lives in the new code).
    pub new_data: Vec<Entry>,
    /// Read-only data overwritten in place.
    pub patched_data: Vec<Entry>,
    /// BUG/WARN entries whose line number is rewritten.
    pub bug_line_patches: Vec<Entry>,
    /// Exports added.
    pub new_exports: Vec<Entry>,
    /// Exports removed.
    pub deleted_exports: Vec<Entry>,
    /// Changes to writable data, which replacing code cannot carry out.
    pub refused: Vec<Entry>,
}

fn entry(a: &Analysis, id: SpanId, change: Option<Change>) -> Entry {
    let sp = &a.spans[id.0][id.1];
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
        for (sect, spans) in d.new.spans.iter().enumerate() {
            let kind = d.new.kinds[sect];
            for (k, span) in spans.iter().enumerate() {
                let id = (sect, k);
                let fate = d.fate(id);
                let list = match fate {
                    Fate::Patched(_) => &mut r.patched_functions,
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

    /// True when the object has something to patch.
    pub fn has_changes(&self) -> bool {
        !(self.patched_functions.is_empty()
            && self.new_functions.is_empty()
            && self.deleted_functions.is_empty()
            && self.new_data.is_empty()
            && self.patched_data.is_empty()
            && self.bug_line_patches.is_empty()
            && self.new_exports.is_empty()
            && self.deleted_exports.is_empty())
    }

    fn groups(&self) -> [(&'static str, &'static str, &Vec<Entry>); 9] {
        [
            ("patched_functions", "PATCH", &self.patched_functions),
            ("new_functions", "NEW", &self.new_functions),
            ("deleted_functions", "DELETE", &self.deleted_functions),
            ("new_data", "NEWDATA", &self.new_data),
            ("patched_data", "DATAPATCH", &self.patched_data),
            ("bug_line_patches", "BUGLINE", &self.bug_line_patches),
            ("new_exports", "EXPORT", &self.new_exports),
            ("deleted_exports", "UNEXPORT", &self.deleted_exports),
            ("refused", "REFUSED", &self.refused),
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
                out.push('\n');
            }
        }
        out
    }

    /// The report as JSON.
    pub fn json(&self) -> String {
        let mut out = format!(
            "{{\n  \"object\": {},\n  \"changed\": {}",
            quote(&self.object),
            self.has_changes()
        );
        for (key, _, entries) in self.groups() {
            out.push_str(&format!(",\n  \"{key}\": ["));
            for (i, e) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&format!(
                    "\n    {{\"name\": {}, \"section\": {}",
                    quote(&e.name),
                    quote(&e.section)
                ));
                if let Some(r) = &e.reason {
                    out.push_str(&format!(", \"reason\": {}", quote(r)));
                }
                if let Some(o) = e.offset {
                    out.push_str(&format!(", \"offset\": {o}"));
                }
                out.push('}');
            }
            if !entries.is_empty() {
                out.push_str("\n  ");
            }
            out.push(']');
        }
        out.push_str("\n}\n");
        out
    }
}

/// A JSON string literal.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_json_strings() {
        assert_eq!(quote("a\"b\\c\n<x>"), "\"a\\\"b\\\\c\\n<x>\"");
        assert_eq!(quote("\u{1}"), "\"\\u0001\"");
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
}
