//! Shared helpers for the transform tests: compiling C fixtures and
//! checking outputs with binutils.
#![allow(dead_code)]

pub mod fuzz;

use std::path::{Path, PathBuf};
use std::process::Command;
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

/// A fresh scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "ksplice-t-{}-{}-{}",
        name,
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Path of a fixture source.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Compiles the fixture `tests/fixtures/<sub>/<case>.c` into `dir/pre.o`,
/// or with `-DPOST` into `dir/post.o`, with the kernel-like flags and
/// `extra`.
pub fn compile_fixture(dir: &Path, sub: &str, case: &str, post: bool, extra: &[&str]) -> PathBuf {
    let src = fixture(&format!("{sub}/{case}.c"));
    let out = dir.join(if post { "post.o" } else { "pre.o" });
    let mut c = Command::new("gcc");
    c.args(KFLAGS)
        .args(extra)
        .arg("-c")
        .arg(&src)
        .arg("-o")
        .arg(&out);
    if post {
        c.arg("-DPOST");
    }
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "{case}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// Compiles C source text into `dir/name.o` with the kernel-like flags.
pub fn compile(dir: &Path, name: &str, src: &str) -> PathBuf {
    let c = dir.join(format!("{name}.c"));
    std::fs::write(&c, src).unwrap();
    compile_file(dir, name, &c)
}

/// Compiles a C file into `dir/name.o` with the kernel-like flags.
pub fn compile_file(dir: &Path, name: &str, c: &Path) -> PathBuf {
    let o = dir.join(format!("{name}.o"));
    let out = Command::new("gcc")
        .args(KFLAGS)
        .arg("-c")
        .arg(c)
        .arg("-o")
        .arg(&o)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "gcc failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    o
}

/// Asserts that `readelf -a` reads `path` without errors or warnings and
/// that `ld -r` links it.
pub fn assert_binutils_accept(path: &Path) {
    let out = Command::new("readelf")
        .arg("-aW")
        .arg(path)
        .output()
        .unwrap();
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

/// Runs the ksplice-obj binary in `dir`.
pub fn ksplice_obj(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ksplice-obj"));
    c.current_dir(dir)
        .args(args)
        .env_remove("KSPLICE_CONFIG_DIR")
        .env_remove("KSPLICE_VERBOSE");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}
