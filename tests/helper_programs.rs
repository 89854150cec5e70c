//! The helper programs the Perl ksplice-create runs from its LIBEXECDIR:
//! ksplice-kernel-utsname (the update's utsname, from kmodsrc's offsets.o)
//! and ksplice-inspect (an update module's metadata), and where install.sh
//! puts them.

mod support;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

fn run(exe: &str, arg: &Path) -> Output {
    Command::new(exe).arg(arg).output().unwrap()
}

/// An object like kmodsrc's offsets.o, with `text` in `.ksplice_utsname`.
fn offsets_o(dir: &Path, text: &str) -> std::path::PathBuf {
    let src = dir.join("offsets.c");
    fs::write(
        &src,
        format!(
            "static const char s[] __attribute__((section(\".ksplice_utsname\"), used)) = {text:?};\n"
        ),
    )
    .unwrap();
    let obj = dir.join("offsets.o");
    support::gcc(None, &[], &src, &obj).unwrap();
    obj
}

#[test]
fn kernel_utsname_prints_release_and_version() {
    let dir = support::scratch("utsname");
    let text = "6.1.192\n#1 SMP PREEMPT_DYNAMIC Mon Nov 30 18:38:56 UTC 2026\n";
    let o = run(
        env!("CARGO_BIN_EXE_ksplice-kernel-utsname"),
        &offsets_o(&dir, text),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), text);
    // An empty version (a build without utsversion.h) is still two lines.
    let o = run(
        env!("CARGO_BIN_EXE_ksplice-kernel-utsname"),
        &offsets_o(&dir, "6.1.192\n\n"),
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "6.1.192\n\n");
}

#[test]
fn kernel_utsname_refuses_other_files() {
    let dir = support::scratch("utsname-bad");
    let exe = env!("CARGO_BIN_EXE_ksplice-kernel-utsname");
    let not_elf = dir.join("not-elf");
    fs::write(&not_elf, "hello").unwrap();
    let src = dir.join("plain.c");
    fs::write(&src, "int x = 1;\n").unwrap();
    let plain = dir.join("plain.o");
    support::gcc(None, &[], &src, &plain).unwrap();
    for (path, why) in [
        (not_elf.as_path(), "not an ELF object"),
        (plain.as_path(), "no .ksplice_utsname section"),
        (dir.join("absent").as_path(), "cannot read"),
    ] {
        let o = run(exe, path);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(o.stdout.is_empty());
        assert!(err.contains(why), "{path:?}: {err}");
    }
    let one_line = offsets_o(&dir, "6.1.192");
    assert_eq!(run(exe, &one_line).status.code(), Some(1));
}

#[test]
fn inspect_reads_objects_and_refuses_others() {
    let dir = support::scratch("inspect");
    let obj = offsets_o(&dir, "6.1.192\n#1\n");
    let exe = env!("CARGO_BIN_EXE_ksplice-inspect");
    let o = run(exe, &obj);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bad = dir.join("bad");
    fs::write(&bad, "nope").unwrap();
    assert_eq!(run(exe, &bad).status.code(), Some(1));
}

#[test]
fn install_puts_the_helpers_in_libexec() {
    let dir = support::scratch("install-helpers");
    let prefix = dir.join("prefix");
    support::install_to(&prefix);
    for t in ["ksplice-kernel-utsname", "ksplice-inspect"] {
        assert!(prefix.join("libexec/ksplice").join(t).is_file(), "{t}");
    }
    assert!(prefix.join("share/ksplice/kmodsrc/offsets.c").is_file());
    assert!(prefix.join("share/ksplice/depmod").is_file());
}

#[test]
fn depmod_skips_a_kernel_without_its_modules_directory() {
    let dir = support::scratch("depmod");
    let depmod = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/depmod");
    let base = dir.display().to_string();
    // `-b BASE` and `-bBASE`.
    for args in [
        vec!["-ae".to_string(), "-b".into(), base.clone()],
        vec!["-ae".to_string(), format!("-b{base}")],
    ] {
        let o = Command::new(depmod)
            .args(&args)
            .arg("6.1.0-no-such-release")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{err}");
        assert!(err.contains("skipped"), "{err}");
        assert!(err.contains("/lib/modules/6.1.0-no-such-release"), "{err}");
    }
}
