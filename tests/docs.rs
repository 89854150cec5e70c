//! docs/PATCH-AUTHORS.md shows code of the e2e cases that tests/e2e/run
//! applies in the test VM: every example must still be that code.

use std::fs;
use std::path::Path;

/// The code blocks of a Markdown file preceded by `<!-- case: NAME -->`.
fn examples(md: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut lines = md.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line
            .trim()
            .strip_prefix("<!-- case:")
            .and_then(|r| r.strip_suffix("-->"))
        else {
            continue;
        };
        let fence = lines.next().unwrap_or_default();
        assert!(fence.starts_with("```"), "no code block after case {name}");
        let body: Vec<String> = lines
            .by_ref()
            .take_while(|l| !l.starts_with("```"))
            .map(str::to_string)
            .collect();
        out.push((name.trim().to_string(), body));
    }
    out
}

#[test]
fn every_patch_author_example_is_code_of_a_tested_case() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let md = fs::read_to_string(root.join("docs/PATCH-AUTHORS.md")).unwrap();
    let found = examples(&md);
    assert!(found.len() >= 3, "examples: {found:?}");
    for (case, body) in found {
        let dir = root.join("tests/e2e/cases").join(&case);
        let patch =
            fs::read_to_string(dir.join("patch")).unwrap_or_else(|e| panic!("case {case}: {e}"));
        // The code the case's patch leaves: its context and added lines.
        let after: Vec<&str> = patch
            .lines()
            .filter(|l| !l.starts_with("+++") && !l.starts_with("---"))
            .filter_map(|l| l.strip_prefix('+').or_else(|| l.strip_prefix(' ')))
            .collect();
        let code: Vec<&String> = body.iter().filter(|l| !l.trim().is_empty()).collect();
        assert!(!code.is_empty(), "case {case}: empty example");
        for line in code {
            assert!(
                after.iter().any(|a| a == line),
                "case {case}: the example line {line:?} is not in {}",
                dir.join("patch").display()
            );
        }
        assert!(
            dir.join("expect-fail").is_file() || dir.join("check-loaded").is_file(),
            "case {case} checks nothing"
        );
    }
}
