//! The `patched` file: the functions an update changes, from the
//! per-object reports.

use crate::engine::report::Report;
use anyhow::{Context, Result};

/// Parses a `patched` file: `<object> <function>` per line.
pub fn parse_patched(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let (obj, func) = l.rsplit_once(' ')?;
            Some((obj.trim().to_string(), func.to_string()))
        })
        .collect()
}

/// The `patched` file of an update from the per-object reports (object
/// path, report JSON): the report's `patched_functions` then its
/// `new_functions`, one `<object> <function>` line each. The out-of-line
/// stubs of `static_cpu_has()` (`.altinstr_aux<from:F#N>`) are left out:
/// they change with the function `F` that uses them, which is listed.
pub fn patched_file(reports: &[(String, String)]) -> Result<String> {
    let mut out = String::new();
    for (object, text) in reports {
        let r = Report::from_json(text).with_context(|| format!("{object}: bad report"))?;
        for e in r.patched_functions.iter().chain(&r.new_functions) {
            if e.name.starts_with(".altinstr_aux<") {
                continue;
            }
            let name: String = e
                .name
                .chars()
                .map(|c| if c.is_whitespace() { '_' } else { c })
                .collect();
            out.push_str(&format!("{object} {name}\n"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patched_list_from_reports() {
        let r = crate::engine::report::Report {
            object: "kernel/sys.o".into(),
            patched_functions: vec![
                crate::engine::report::Entry {
                    name: ".altinstr_aux<from:do_sys<kernel/sys.o>#0>".into(),
                    section: ".altinstr_aux".into(),
                    reason: Some("differing bytes at offset 0x1".into()),
                    offset: Some(1),
                },
                crate::engine::report::Entry {
                    name: "do_sys \"x\"".into(),
                    section: ".text.do_sys".into(),
                    reason: Some("differing bytes at offset 0x4".into()),
                    offset: Some(4),
                },
            ],
            new_functions: vec![crate::engine::report::Entry {
                name: "helper".into(),
                section: ".text.helper".into(),
                reason: None,
                offset: None,
            }],
            ..Default::default()
        };
        let text = patched_file(&[("kernel/sys.o".to_string(), r.json())]).unwrap();
        assert_eq!(text, "kernel/sys.o do_sys_\"x\"\nkernel/sys.o helper\n");
        assert_eq!(
            parse_patched(&text),
            vec![
                ("kernel/sys.o".to_string(), "do_sys_\"x\"".to_string()),
                ("kernel/sys.o".to_string(), "helper".to_string())
            ]
        );
        assert!(patched_file(&[("x.o".into(), "{\"a\": [".into())]).is_err());
    }
}
