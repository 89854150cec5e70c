//! The helpers shared by the integration tests: scratch directories, the
//! one C fixture compiler, binutils checks, running `ksplice-obj`
//! ([`tool`]), tar archives ([`tar`]) and the fuzz harness ([`fuzz`]).
//!
//! Only `std` (and `flate2` for gzip) is used: temporary directories are
//! created by hand and C fixtures are compiled by invoking `gcc`.
#![allow(dead_code)]

pub mod fuzz;
pub mod tar;
mod tool;

#[allow(unused_imports)]
pub use tool::*;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Kernel-like flags: the ones that change relocation types.
pub const KFLAGS: &[&str] = &[
    "-O2",
    "-mcmodel=kernel",
    "-mno-red-zone",
    "-fno-pic",
    "-fno-asynchronous-unwind-tables",
    "-ffunction-sections",
    "-fdata-sections",
];

/// Plain flags, for the objects the command-line tests feed the tool.
pub const CFLAGS: &[&str] = &["-O2", "-ffunction-sections", "-fdata-sections"];

/// Runs `./install.sh PREFIX` with the binaries this test run built
/// (`KSPLICE_BIN_DIR`), and asserts that it succeeded.
pub fn install_to(prefix: &Path) {
    install_with(prefix, &[]);
}

/// [`install_to`] with more environment variables (`DESTDIR`).
pub fn install_with(prefix: &Path, env: &[(&str, &Path)]) {
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/install.sh"))
        .arg(prefix)
        .envs(env.iter().copied())
        .env(
            "KSPLICE_BIN_DIR",
            Path::new(env!("CARGO_BIN_EXE_ksplice-obj"))
                .parent()
                .unwrap(),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "install.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A fresh scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "ksplice-t-{}-{}-{}",
        name,
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

/// Path of a fixture source.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The fixture compiler: `gcc FLAGS... -c SRC -o OUT` (the groups of
/// `flags` in order), run in `cwd` or else in the test's own directory.
/// Gives gcc's error output when it fails.
pub fn gcc(cwd: Option<&Path>, flags: &[&[&str]], src: &Path, out: &Path) -> Result<(), String> {
    let mut c = Command::new("gcc");
    for group in flags {
        c.args(*group);
    }
    c.arg("-c").arg(src).arg("-o").arg(out);
    if let Some(cwd) = cwd {
        c.current_dir(cwd);
    }
    let o = c.output().expect("cannot run gcc");
    if o.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&o.stderr).into_owned())
    }
}

/// Compiles the fixture `tests/fixtures/<sub>/<case>.c` into `dir/pre.o`,
/// or with `-DPOST` into `dir/post.o`, with the kernel-like flags and
/// `extra`.
pub fn compile_fixture(dir: &Path, sub: &str, case: &str, post: bool, extra: &[&str]) -> PathBuf {
    let src = fixture(&format!("{sub}/{case}.c"));
    let out = dir.join(if post { "post.o" } else { "pre.o" });
    let post_flag: &[&str] = if post { &["-DPOST"] } else { &[] };
    if let Err(e) = gcc(None, &[KFLAGS, extra, post_flag], &src, &out) {
        panic!("{case}: {e}");
    }
    out
}

/// Compiles C source text into `dir/name.o` with the kernel-like flags.
pub fn compile(dir: &Path, name: &str, src: &str) -> PathBuf {
    let c = dir.join(format!("{name}.c"));
    fs::write(&c, src).unwrap();
    compile_file(dir, name, &c)
}

/// Compiles a C file into `dir/name.o` with the kernel-like flags.
pub fn compile_file(dir: &Path, name: &str, c: &Path) -> PathBuf {
    let o = dir.join(format!("{name}.o"));
    if let Err(e) = gcc(None, &[KFLAGS], c, &o) {
        panic!("gcc failed: {e}");
    }
    o
}

/// Compiles `src` to the object `out` with [`CFLAGS`]. The source is
/// written next to the object (`x.o` -> `x.c`) and gcc runs in that
/// directory with relative names, so the output does not depend on the
/// directory.
pub fn compile_c(src: &str, out: &Path) {
    assert!(
        compile_c_flags(src, out, &[]),
        "gcc failed compiling {}",
        out.display()
    );
}

/// Like [`compile_c`] with extra flags; returns whether gcc succeeded.
pub fn compile_c_flags(src: &str, out: &Path, extra: &[&str]) -> bool {
    let dir = out.parent().unwrap();
    fs::create_dir_all(dir).unwrap();
    let obj_name = out.file_name().unwrap().to_str().unwrap().to_string();
    let src_name = match obj_name.strip_suffix(".o") {
        Some(stem) => format!("{stem}.c"),
        None => format!("{obj_name}.c"),
    };
    fs::write(dir.join(&src_name), src).unwrap();
    let res = gcc(
        Some(dir),
        &[CFLAGS, extra],
        Path::new(&src_name),
        Path::new(&obj_name),
    );
    if let Err(e) = &res {
        eprintln!("gcc stderr:\n{e}");
    }
    res.is_ok()
}

/// A small C translation unit whose global symbols all start with `prefix`.
pub fn sample_c(prefix: &str) -> String {
    format!(
        r#"
static const char {prefix}_msg[] = "hello from {prefix}";
static int {prefix}_table[8] = {{1, 2, 3, 4, 5, 6, 7, 8}};
int {prefix}_counter;

static int {prefix}_helper(int x)
{{
	return x * 3 + {prefix}_table[x & 7];
}}

int {prefix}_one(int x)
{{
	{prefix}_counter += x;
	return {prefix}_helper(x) + {prefix}_counter;
}}

const char *{prefix}_two(void)
{{
	return {prefix}_msg;
}}

int {prefix}_three(int a, int b)
{{
	int i, s = 0;
	for (i = 0; i < a; i++)
		s += {prefix}_one(i) ^ b;
	return s;
}}
"#
    )
}

/// A C translation unit with `n` functions (for objects that take a moment
/// to process).
pub fn many_functions_c(prefix: &str, n: usize) -> String {
    let mut s = String::new();
    s.push_str(&format!("int {prefix}_sink;\n"));
    for i in 0..n {
        s.push_str(&format!(
            "static const char {prefix}_str{i}[] = \"{prefix} string number {i}\";\n\
             static int {prefix}_data{i}[4] = {{{i}, {a}, {b}, {c}}};\n\
             int {prefix}_fn{i}(int x)\n{{\n\
             \tint r = x * {m} + {prefix}_data{i}[x & 3];\n\
             \tif (x > {i})\n\t\tr ^= {prefix}_str{i}[x % {len}];\n\
             \t{prefix}_sink += r;\n\treturn r;\n}}\n",
            a = i + 1,
            b = i * 2,
            c = i * 7 + 3,
            m = i % 13 + 2,
            len = format!("{prefix} string number {i}").len(),
        ));
    }
    s
}

/// Runs `readelf ARGS PATH`.
fn readelf(args: &str, path: &Path) -> Output {
    Command::new("readelf")
        .arg(args)
        .arg(path)
        .output()
        .expect("cannot run readelf")
}

/// Asserts that `readelf -a` reads `path` without errors or warnings and
/// that `ld -r` links it.
pub fn assert_binutils_accept(path: &Path) {
    let out = readelf("-aW", path);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.trim().is_empty(),
        "readelf on {}: {err}",
        path.display()
    );
    let linked = path.with_extension("ldr.o");
    let out = Command::new("ld")
        .arg("-r")
        .arg("-o")
        .arg(&linked)
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ld -r on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Run `readelf -a` on `path` and assert it exits 0 with no Error/Warning
/// lines on stderr.
pub fn assert_readelf_ok(path: &Path) {
    let out = readelf("-a", path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "readelf -a {} failed: {stderr}",
        path.display()
    );
    let bad: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("Error") || l.contains("Warning"))
        .collect();
    assert!(
        bad.is_empty(),
        "readelf -a {} complained:\n{}",
        path.display(),
        bad.join("\n")
    );
}

/// Symbol names listed by `readelf -sW`.
pub fn readelf_symbols(path: &Path) -> Vec<String> {
    let out = readelf("-sW", path);
    assert!(
        out.status.success(),
        "readelf -sW {} failed",
        path.display()
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() >= 8 && f[0].ends_with(':') {
                Some(f[7].to_string())
            } else {
                None
            }
        })
        .collect()
}

/// Run an external command in `cwd` and assert success.
pub fn sh(cwd: &Path, prog: &str, args: &[&str]) -> Output {
    let out = Command::new(prog)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {prog}: {e}"));
    assert!(
        out.status.success(),
        "{prog} {} failed:\n{}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Recursive snapshot of a directory: relative path -> contents (`None` for
/// directories).
pub fn snapshot_dir(root: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Option<Vec<u8>>>) {
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let p = entry.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let ft = entry.file_type().unwrap();
            if ft.is_dir() {
                out.insert(rel, None);
                walk(root, &p, out);
            } else {
                out.insert(rel, Some(fs::read(&p).unwrap_or_default()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Describe the differences between two snapshots.
pub fn snapshot_diff(
    before: &BTreeMap<String, Option<Vec<u8>>>,
    after: &BTreeMap<String, Option<Vec<u8>>>,
) -> Vec<String> {
    let mut diffs = Vec::new();
    for (k, v) in before {
        match after.get(k) {
            None => diffs.push(format!("removed: {k}")),
            Some(v2) if v2 != v => diffs.push(format!("changed: {k}")),
            _ => {}
        }
    }
    for k in after.keys() {
        if !before.contains_key(k) {
            diffs.push(format!("created: {k}"));
        }
    }
    diffs
}

/// Assert two byte strings are equal without dumping them on failure.
pub fn assert_same_bytes(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let first = got
            .iter()
            .zip(want.iter())
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(want.len()));
        panic!(
            "{what}: contents differ (got {} bytes, expected {} bytes, first difference at offset {first})",
            got.len(),
            want.len()
        );
    }
}
