//! The install script puts ksplice-obj where the Perl tools look for it.

mod support;

use std::process::Command;

#[test]
fn install_provides_ksplice_obj_pl() {
    let dir = support::scratch("install");
    let prefix = dir.join("prefix");
    support::install_to(&prefix);
    let pl = prefix.join("share/ksplice/ksplice-obj.pl");
    for t in [
        "ksplice-obj",
        "ksplice-create",
        "ksplice-apply",
        "ksplice-undo",
        "ksplice-view",
    ] {
        assert!(prefix.join("bin").join(t).is_file(), "{t} installed");
    }
    for f in [
        "Makefile.ksplice",
        "ksplice-cc",
        "scripts/ksplice-objects.mk",
        "kmodsrc/ksplice.c",
        "kmodsrc/Makefile",
    ] {
        assert!(
            prefix.join("share/ksplice").join(f).is_file(),
            "{f} installed"
        );
    }
    // The installed ksplice-create finds its data directory.
    let out = Command::new(prefix.join("bin/ksplice-create"))
        .args(["--prebuild", "/nonexistent-tree"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("/nonexistent-tree") && err.contains("not found"),
        "{err}"
    );
    // Past the argument checks, it finds Makefile.ksplice where it was installed.
    let tree = dir.join("tree");
    std::fs::create_dir_all(tree.join("ksplice")).unwrap();
    for f in ["Makefile", "Kbuild", "ksplice/System.map"] {
        std::fs::write(tree.join(f), "").unwrap();
    }
    let out = Command::new(prefix.join("bin/ksplice-create"))
        .arg("--prebuild")
        .arg(&tree)
        .env_remove("KSPLICE_DATA_DIR")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(!err.contains("cannot find Makefile.ksplice"), "{err}");
    assert!(
        err.contains("the snap build failed"),
        "it ran Makefile.ksplice: {err}"
    );
    // Called by its Perl name, it behaves as ksplice-obj: usage and exit 1.
    let out = Command::new(&pl).arg("bogus").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let usage = String::from_utf8_lossy(&out.stdout);
    for cmd in ksplice::obj::cli::COMMANDS {
        assert!(usage.contains(cmd), "usage lacks {cmd}: {usage}");
    }
    // And it does real work under that name.
    let obj = support::compile(&dir, "a", "int f(int x) { return x + 1; }\n");
    let out = Command::new(&pl)
        .arg("snap")
        .arg(format!("{}.KSPLICE", obj.display()))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(std::fs::read(dir.join("a.o.KSPLICE")).unwrap(), b"");
    let _ = std::fs::remove_dir_all(&dir);
}
