//! Running `ksplice-obj` in a test directory and checking its error
//! contract.

use super::{compile_c, scratch, snapshot_diff, snapshot_dir};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};

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
const SCRUBBED_ENV: &[&str] = &[
    "LD",
    "KSPLICE_VERBOSE",
    "KSPLICE_CONFIG_DIR",
    "KSPLICE_KID",
    "KSPLICE_KERNEL_VERSION",
    "KERNELVERSION",
    "KSPLICE_DATA_IN_PLACE",
    "KSPLICE_ALLOW_DATA_CHANGE",
];

/// A fresh, uniquely named directory under `std::env::temp_dir()`.
///
/// It is removed when dropped, unless the test is panicking (so that a
/// failing test leaves its files behind for inspection).
pub struct TestDir {
    pub path: PathBuf,
}

impl TestDir {
    pub fn new(name: &str) -> TestDir {
        let clean: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        // Canonicalise so that comparisons with /proc/*/cwd work even when
        // the temp dir is reached through a symlink.
        let path = fs::canonicalize(scratch(&clean)).unwrap();
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

/// Runs the ksplice-obj binary with `args` in `cwd` and returns its output.
/// The variables in [`SCRUBBED_ENV`] are removed first; `env` is then
/// applied on top.
pub fn ksplice_obj(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args).current_dir(cwd).stdin(Stdio::null());
    for k in SCRUBBED_ENV {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"))
}

/// [`ksplice_obj`] with the output decoded.
pub fn run(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> RunResult {
    let out = ksplice_obj(cwd, args, env);
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
