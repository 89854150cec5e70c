//! The layout of the tree, as docs/DESIGN.md draws it: each layer of `src/`
//! imports only the layers below it, and no file or function grows past
//! what a reader takes in at once.

use std::fs;
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Longest file in `src/` and `kmodsrc/`, in lines.
const MAX_FILE_LINES: usize = 900;
/// Longest function, in lines.
const MAX_FN_LINES: usize = 150;

/// The layers of `src/`, bottom first; a folder may import its own layer's
/// folder and any folder of a lower layer, never a sibling or one above.
const LAYERS: &[&[&str]] = &[
    &["util"],
    &["engine"],
    &["obj", "package"],
    &["create", "update"],
    &["cli"],
];

fn layer_of(folder: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&folder))
}

fn files_under(dir: &Path, exts: &[&str], out: &mut Vec<PathBuf>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, exts, out);
        } else if p
            .extension()
            .and_then(|x| x.to_str())
            .is_some_and(|x| exts.contains(&x))
        {
            out.push(p);
        }
    }
}

fn sources(sub: &str, exts: &[&str]) -> Vec<PathBuf> {
    let mut v = Vec::new();
    files_under(&Path::new(ROOT).join(sub), exts, &mut v);
    v.sort();
    v
}

/// The top-level folders of the crate that `text` names as `crate::X`.
fn crate_imports(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let word_start = i == 0 || {
            let b = rest.as_bytes()[i - 1];
            !(b.is_ascii_alphanumeric() || b == b'_')
        };
        if word_start && !name.is_empty() {
            out.push(name);
        }
        rest = after;
    }
    out
}

/// The folder (first component under `src/`) of a source file, `None` for
/// `lib.rs` and the binaries.
fn folder_of(path: &Path) -> Option<String> {
    let rel = path.strip_prefix(Path::new(ROOT).join("src")).ok()?;
    let mut comps = rel.components();
    let first = comps.next()?.as_os_str().to_str()?.to_string();
    comps.next()?;
    (first != "bin").then_some(first)
}

#[test]
fn every_layer_imports_only_downwards() {
    let mut bad = Vec::new();
    let mut seen = 0;
    for f in sources("src", &["rs"]) {
        let Some(folder) = folder_of(&f) else {
            continue;
        };
        let own = layer_of(&folder)
            .unwrap_or_else(|| panic!("{}: folder {folder} is in no layer", f.display()));
        let text = fs::read_to_string(&f).unwrap();
        for imp in crate_imports(&text) {
            seen += 1;
            let Some(l) = layer_of(&imp) else {
                bad.push(format!("{}: crate::{imp} is no layer", f.display()));
                continue;
            };
            if imp != folder && l >= own {
                bad.push(format!(
                    "{}: {folder} (layer {own}) imports crate::{imp} (layer {l})",
                    f.display()
                ));
            }
        }
    }
    assert!(seen > 50, "only {seen} imports found: is the scan broken?");
    assert!(
        bad.is_empty(),
        "imports that look up or sideways:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_import_scan_sees_an_upward_import() {
    let imports = crate_imports("use crate::update::Kernel;\nlet x = crate::engine::elf::Object;");
    assert_eq!(imports, ["update", "engine"]);
    assert!(layer_of("update") > layer_of("engine"));
    assert_eq!(layer_of("nowhere"), None);
}

#[test]
fn no_file_is_too_long() {
    let mut bad = Vec::new();
    let mut files = sources("src", &["rs"]);
    files.extend(sources("kmodsrc", &["c", "h"]));
    assert!(files.len() > 30, "only {} files found", files.len());
    for f in files {
        let n = fs::read_to_string(&f).unwrap().lines().count();
        if n > MAX_FILE_LINES {
            bad.push(format!("{}: {n} lines", f.display()));
        }
    }
    assert!(
        bad.is_empty(),
        "files over {MAX_FILE_LINES} lines:\n{}",
        bad.join("\n")
    );
}

/// The text with string and character literals and comments blanked out
/// (newlines kept), so braces inside them are not counted.
fn strip(text: &str) -> String {
    #[derive(PartialEq)]
    enum St {
        Code,
        Str(char),
        Line,
        Block,
    }
    let mut out = String::with_capacity(text.len());
    let mut st = St::Code;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' {
            out.push('\n');
            if st == St::Line {
                st = St::Code;
            }
            continue;
        }
        match st {
            St::Str(q) => {
                if c == '\\' {
                    chars.next_if(|&n| n != '\n');
                } else if c == q {
                    st = St::Code;
                }
            }
            St::Line => {}
            St::Block => {
                if c == '*' && chars.peek() == Some(&'/') {
                    chars.next();
                    st = St::Code;
                }
            }
            St::Code => match c {
                '"' => st = St::Str('"'),
                // A char literal ('{', '\n'), not a lifetime ('a).
                '\'' => {
                    let ahead: String = chars.clone().take(3).collect();
                    if ahead.chars().nth(1) == Some('\'') || ahead.starts_with('\\') {
                        st = St::Str('\'');
                    }
                }
                '/' if chars.peek() == Some(&'/') => st = St::Line,
                '/' if chars.peek() == Some(&'*') => {
                    chars.next();
                    st = St::Block;
                }
                _ => out.push(c),
            },
        }
    }
    out
}

/// True when a line opens a function definition: `fn name` in Rust; in C a
/// line at column 0 that is not a declaration, preprocessor line, comment or
/// brace, and has a parenthesis.
fn opens_function(line: &str, rust: bool) -> bool {
    if rust {
        let t = line.trim_start();
        let t = t.strip_prefix("pub(crate) ").unwrap_or(t);
        let t = t.strip_prefix("pub ").unwrap_or(t);
        let t = t.strip_prefix("const ").unwrap_or(t);
        let t = t.strip_prefix("unsafe ").unwrap_or(t);
        return t.starts_with("fn ");
    }
    let first = line.chars().next();
    first.is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && line.contains('(')
        && !line.trim_end().ends_with(';')
        && !line.starts_with("struct ")
        && !line.contains(" = ")
}

/// (first line, length) of every function of a source text.
fn function_lengths(text: &str, rust: bool) -> Vec<(usize, usize)> {
    let stripped = strip(text);
    let lines: Vec<&str> = stripped.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if !opens_function(lines[i], rust) {
            i += 1;
            continue;
        }
        let (mut depth, mut started, mut j) = (0i64, false, i);
        while j < lines.len() {
            if !started && lines[j].contains(';') && !lines[j].contains('{') {
                break;
            }
            for c in lines[j].chars() {
                match c {
                    '{' => {
                        depth += 1;
                        started = true;
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            if started && depth <= 0 {
                break;
            }
            j += 1;
        }
        if started {
            out.push((i + 1, j - i + 1));
        }
        // Nested Rust functions (closures' helpers, test modules) are
        // measured too: go on at the next line.
        i += 1;
    }
    out
}

#[test]
fn the_function_scan_measures_functions() {
    let rust = "fn a() {\n    let s = \"}\";\n    let c = '{';\n}\n\nfn b<'x>(v: &'x str) {\n    if v.is_empty() {\n    }\n}\n";
    assert_eq!(function_lengths(rust, true), [(1, 4), (6, 4)]);
    let c = "static int f(int x)\n{\n\treturn x; /* } */\n}\n/*\n * }\n */\nint g(void);\n";
    assert_eq!(function_lengths(c, false), [(1, 4)]);
}

#[test]
fn no_function_is_too_long() {
    let mut bad = Vec::new();
    let mut count = 0;
    let mut files = sources("src", &["rs"]);
    files.extend(sources("kmodsrc", &["c"]));
    for f in files {
        let rust = f.extension().is_some_and(|x| x == "rs");
        let text = fs::read_to_string(&f).unwrap();
        for (line, len) in function_lengths(&text, rust) {
            count += 1;
            if len > MAX_FN_LINES {
                bad.push(format!("{}:{line}: {len} lines", f.display()));
            }
        }
    }
    assert!(
        count > 300,
        "only {count} functions found: is the scan broken?"
    );
    assert!(
        bad.is_empty(),
        "functions over {MAX_FN_LINES} lines:\n{}",
        bad.join("\n")
    );
}

/// The paragraph of docs/DESIGN.md that starts with `**`FOLDER`**`.
fn design_paragraph(design: &str, folder: &str) -> String {
    let head = format!("**`{folder}`**");
    let start = design
        .find(&head)
        .unwrap_or_else(|| panic!("docs/DESIGN.md has no paragraph {head}"));
    let rest = &design[start..];
    let end = rest.find("\n\n").unwrap_or(rest.len());
    rest[..end].to_string()
}

/// The names a paragraph gives modules: "`name`:" or "`name/`:".
fn described_modules(paragraph: &str) -> Vec<String> {
    let mut out = Vec::new();
    for piece in paragraph.split('`').collect::<Vec<_>>().windows(2) {
        let (name, after) = (piece[0], piece[1]);
        let name = name.trim_end_matches('/');
        if after.starts_with(':')
            && !name.is_empty()
            && name.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        {
            out.push(name.to_string());
        }
    }
    out
}

/// Every module of every folder of `src/` is described in its paragraph of
/// docs/DESIGN.md, and every module described there exists.
#[test]
fn design_describes_every_module() {
    let design = fs::read_to_string(Path::new(ROOT).join("docs/DESIGN.md")).unwrap();
    for folder in LAYERS.iter().flat_map(|l| l.iter()) {
        let para = design_paragraph(&design, &format!("src/{folder}/"));
        let described = described_modules(&para);
        let dir = Path::new(ROOT).join("src").join(folder);
        for name in &described {
            assert!(
                dir.join(format!("{name}.rs")).is_file() || dir.join(name).is_dir(),
                "docs/DESIGN.md describes src/{folder}/{name}, which does not exist"
            );
        }
        for e in fs::read_dir(&dir).unwrap().flatten() {
            let file = e.file_name().to_string_lossy().into_owned();
            let name = file.trim_end_matches(".rs");
            if name != "mod" {
                assert!(
                    described.iter().any(|d| d == name),
                    "docs/DESIGN.md does not describe src/{folder}/{file} (\"`{name}`: ...\")"
                );
            }
        }
    }
}

/// Every file of kmodsrc/ is named in its paragraph of docs/DESIGN.md.
#[test]
fn design_names_every_kernel_file() {
    let design = fs::read_to_string(Path::new(ROOT).join("docs/DESIGN.md")).unwrap();
    let para = design_paragraph(&design, "kmodsrc/");
    for f in sources("kmodsrc", &["c", "h"]) {
        let rel = f.strip_prefix(Path::new(ROOT).join("kmodsrc")).unwrap();
        let rel = rel.to_string_lossy();
        assert!(
            para.contains(&format!("`{rel}`")),
            "docs/DESIGN.md does not name kmodsrc/{rel}"
        );
    }
}
