//! Shared helpers for the `ksplice-obj` integration tests.
//!
//! Only `std` is used: temporary directories are created by hand, C fixtures
//! are compiled by invoking `gcc`, and the binary under test is located with
//! `CARGO_BIN_EXE_ksplice-obj`.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Path of the binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_ksplice-obj");

/// Every command the usage message must name.
pub const COMMANDS: &[&str] = &[
    "snap",
    "diff",
    "old_code",
    "combine",
    "finalize",
    "rmsyms",
    "system_map_lookup",
];

/// The suffixes that make up the protocol names of an object `OBJ`.
pub const PROTOCOL_SUFFIXES: &[&str] = &[
    ".KSPLICE",
    ".KSPLICE_pre",
    ".KSPLICE_new_code",
    ".KSPLICE_old_code",
    ".KSPLICE_report.json",
];

/// Environment variables that influence the tool and are removed from the
/// environment of every run unless a test sets them explicitly.
const SCRUBBED_ENV: &[&str] = &["LD", "KSPLICE_VERBOSE", "KSPLICE_CONFIG_DIR", "KSPLICE_KID"];

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh, uniquely named directory under `std::env::temp_dir()`.
///
/// It is removed when dropped, unless the test is panicking (so that a
/// failing test leaves its files behind for inspection).
pub struct TestDir {
    pub path: PathBuf,
}

impl TestDir {
    pub fn new(name: &str) -> TestDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let clean: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let path = std::env::temp_dir().join(format!(
            "ksplice-obj-test-{}-{}-{}",
            std::process::id(),
            n,
            clean
        ));
        if path.exists() {
            fs::remove_dir_all(&path).unwrap();
        }
        fs::create_dir_all(&path).unwrap();
        // Canonicalise so that comparisons with /proc/*/cwd work even when
        // the temp dir is reached through a symlink.
        let path = fs::canonicalize(&path).unwrap();
        TestDir { path }
    }

    /// Path of `rel` inside this directory.
    pub fn join(&self, rel: &str) -> PathBuf {
        self.path.join(rel)
    }

    /// Write `contents` to `rel` (creating parent directories).
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) {
        let p = self.join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(&p, contents).unwrap();
    }

    /// Read `rel`, panicking with a helpful message if it is missing.
    pub fn read(&self, rel: &str) -> Vec<u8> {
        fs::read(self.join(rel)).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.join(rel).exists()
    }

    /// Run the binary under test in this directory.
    pub fn run(&self, args: &[&str], env: &[(&str, &str)]) -> RunResult {
        run(&self.path, args, env)
    }

    /// Compile a C snippet to `rel_obj` (a path ending in `.o`) inside this
    /// directory with the standard flags.
    pub fn compile(&self, src: &str, rel_obj: &str) {
        compile_c(src, &self.join(rel_obj));
    }

    /// Recursive snapshot of the directory contents.
    pub fn snapshot(&self) -> BTreeMap<String, Option<Vec<u8>>> {
        snapshot_dir(&self.path)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// The result of one run of the binary.
#[derive(Debug)]
pub struct RunResult {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl RunResult {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// A description suitable for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "status: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }

    /// Assert a zero exit status and no panic.
    pub fn assert_ok(&self, what: &str) {
        assert_no_panic(self);
        assert!(
            self.success(),
            "{what}: expected success\n{}",
            self.describe()
        );
    }

    /// Assert a non-zero exit status and no panic.
    pub fn assert_fail(&self, what: &str) {
        assert_no_panic(self);
        assert!(
            !self.success(),
            "{what}: expected failure\n{}",
            self.describe()
        );
    }
}

/// Run the binary with `args` in `cwd`. The variables in [`SCRUBBED_ENV`] are
/// removed first; `env` is then applied on top.
pub fn run(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> RunResult {
    let mut cmd = Command::new(BIN);
    cmd.args(args).current_dir(cwd).stdin(Stdio::null());
    for k in SCRUBBED_ENV {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
    RunResult {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Assert that the run did not end in a Rust panic.
pub fn assert_no_panic(r: &RunResult) {
    assert!(
        !r.stderr.contains("panicked") && !r.stdout.contains("panicked"),
        "the tool panicked\n{}",
        r.describe()
    );
    assert_ne!(
        r.status.code(),
        Some(101),
        "exit status 101 (Rust panic)\n{}",
        r.describe()
    );
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            r.status.signal(),
            None,
            "the tool died from a signal\n{}",
            r.describe()
        );
    }
}

/// Compile `src` to the object `out` with
/// `gcc -O2 -ffunction-sections -fdata-sections -c`. The source is written
/// next to the object (`x.o` -> `x.c`) and gcc runs in that directory with
/// relative names, so the output does not depend on the directory.
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
    let output = Command::new("gcc")
        .args(["-O2", "-ffunction-sections", "-fdata-sections"])
        .args(extra)
        .args(["-c", &src_name, "-o", &obj_name])
        .current_dir(dir)
        .output()
        .expect("cannot run gcc");
    if !output.status.success() {
        eprintln!("gcc stderr:\n{}", String::from_utf8_lossy(&output.stderr));
    }
    output.status.success()
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

/// Run a bad-input case and check the error contract:
/// non-zero exit, no panic, exactly one line on stderr, naming `offending`
/// and containing one of `words` (case-insensitive), and the directory left
/// exactly as it was (nothing deleted, changed or created).
pub fn assert_bad_input(
    dir: &TestDir,
    args: &[&str],
    env: &[(&str, &str)],
    offending: &str,
    words: &[&str],
) {
    let before = dir.snapshot();
    let r = dir.run(args, env);
    let what = format!("ksplice-obj {}", args.join(" "));
    r.assert_fail(&what);
    let err = r.stderr.trim_end();
    assert!(!err.is_empty(), "{what}: empty stderr\n{}", r.describe());
    assert_eq!(
        err.lines().count(),
        1,
        "{what}: expected a one-line error on stderr\n{}",
        r.describe()
    );
    assert!(
        err.contains(offending),
        "{what}: error does not name {offending:?}\n{}",
        r.describe()
    );
    let lower = err.to_lowercase();
    assert!(
        words.iter().any(|w| lower.contains(&w.to_lowercase())),
        "{what}: error contains none of {words:?}\n{}",
        r.describe()
    );
    let after = dir.snapshot();
    let diffs = snapshot_diff(&before, &after);
    assert!(
        diffs.is_empty(),
        "{what}: the directory was modified by a failing run: {diffs:?}\n{}",
        r.describe()
    );
}

/// Whether a file name is one of the protocol names of some object.
pub fn is_protocol_name(name: &str) -> bool {
    PROTOCOL_SUFFIXES.iter().any(|s| name.ends_with(s))
}

/// Run `readelf -a` on `path` and assert it exits 0 with no Error/Warning
/// lines on stderr.
pub fn assert_readelf_ok(path: &Path) {
    let out = Command::new("readelf")
        .arg("-a")
        .arg(path)
        .output()
        .expect("cannot run readelf");
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
    let out = Command::new("readelf")
        .arg("-sW")
        .arg(path)
        .output()
        .expect("cannot run readelf");
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

/// Run an external command in `cwd` and assert success.
pub fn sh(cwd: &Path, prog: &str, args: &[&str]) -> std::process::Output {
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

/// Write a small, plausible System.map into `dir/rel_config` and return the
/// config directory's absolute path.
pub fn make_config_dir(dir: &TestDir, rel_config: &str) -> PathBuf {
    dir.write(
        &format!("{rel_config}/System.map"),
        "0000000000000000 A VDSO32_PRELINK\n\
         ffffffff81000000 T _text\n\
         ffffffff81000000 T startup_64\n\
         ffffffff81000100 T secondary_startup_64\n\
         ffffffff810a1230 T printk\n\
         ffffffff810a1240 t printk_helper\n\
         ffffffff82000000 D _sdata\n\
         ffffffffa0001000 t mod_func\t[somemod]\n",
    );
    dir.join(rel_config)
}
