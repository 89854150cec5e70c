//! The install script puts ksplice-obj where the Perl tools look for it,
//! and the man pages and shell completions where man and the shells look.

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
        let share = prefix.join("share");
        for doc in [
            format!("man/man1/{t}.1"),
            format!("bash-completion/completions/{t}"),
            format!("zsh/site-functions/_{t}"),
            format!("fish/vendor_completions.d/{t}.fish"),
        ] {
            let text = std::fs::read_to_string(share.join(&doc))
                .unwrap_or_else(|e| panic!("{doc} installed: {e}"));
            assert!(text.contains(t), "{doc} is {t}'s");
        }
    }
    let page = std::fs::read_to_string(prefix.join("share/man/man1/ksplice-apply.1")).unwrap();
    assert!(page.contains(".TH ksplice-apply 1") && page.contains("EXIT STATUS"));
    assert!(
        !prefix.join("bin/ksplice-gen-docs").exists(),
        "the generator is not installed"
    );
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

#[test]
fn install_without_the_generator_skips_the_docs_with_a_warning() {
    let dir = support::scratch("install-nodocs");
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let built = std::path::Path::new(env!("CARGO_BIN_EXE_ksplice-obj"))
        .parent()
        .unwrap();
    for t in [
        "ksplice-obj",
        "ksplice-create",
        "ksplice-apply",
        "ksplice-undo",
        "ksplice-view",
        "ksplice-kernel-utsname",
        "ksplice-inspect",
    ] {
        std::fs::copy(built.join(t), bin.join(t)).unwrap();
    }
    let prefix = dir.join("prefix");
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/install.sh"))
        .arg(&prefix)
        .env("KSPLICE_BIN_DIR", &bin)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("warning") && err.contains("ksplice-gen-docs"),
        "{err}"
    );
    assert!(prefix.join("bin/ksplice-view").is_file());
    assert!(!prefix.join("share/man").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// DESTDIR: an image's or a package's root gets what runs from PREFIX,
/// with ksplice.service pointing at the tools there.
#[test]
fn install_with_destdir_and_the_boot_unit() {
    let dir = support::scratch("install-destdir");
    let root = dir.join("root");
    support::install_with(std::path::Path::new("/usr/local"), &[("DESTDIR", &root)]);
    let root = root.join("usr/local");
    assert!(root.join("bin/ksplice-apply").is_file());
    let unit = std::fs::read_to_string(root.join("lib/systemd/system/ksplice.service")).unwrap();
    assert!(
        unit.contains("ExecStart=/usr/local/bin/ksplice-apply --all-installed"),
        "{unit}"
    );
    assert!(unit.contains("WantedBy=multi-user.target") && !unit.contains('@'));
    let pl = std::fs::read_link(root.join("share/ksplice/ksplice-obj.pl")).unwrap();
    assert_eq!(pl, std::path::Path::new("/usr/local/bin/ksplice-obj"));
    let _ = std::fs::remove_dir_all(&dir);
}
