//! Makefile.ksplice on an out-of-tree build (`O=`) whose source tree holds
//! a `.config` (the Perl ksplice-create copies the config directory's there,
//! which Linux 6.1 refuses with `O=`): the file moves to the objtree, and
//! nothing of the objtree's own configuration is lost.

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;

/// Runs Makefile.ksplice's revert mode (the cheapest that builds nothing)
/// on a fake tree `dir/src`, with `O=dir/obj` unless `in_tree`; returns its
/// stdout.
fn run_revert(dir: &Path, in_tree: bool) -> String {
    let makefile = Path::new(env!("CARGO_MANIFEST_DIR")).join("Makefile.ksplice");
    let mut cmd = Command::new("make");
    cmd.args(["-s", "-rR", "-f"])
        .arg(&makefile)
        .arg("-C")
        .arg(dir.join("src"));
    if !in_tree {
        cmd.arg(format!("O={}", dir.join("obj").display()));
    }
    let out = cmd
        .args(["KSPLICE_MODE=revert", "KSPLICE_OBJ=true"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// [`run_revert`] of an out-of-tree build.
fn revert(dir: &Path) -> String {
    run_revert(dir, false)
}

/// A fake kernel tree with `.config` = `src_config`, and an objtree whose
/// `.config` is `obj_config` (none when `None`).
fn tree(src_config: &str, obj_config: Option<&str>) -> std::path::PathBuf {
    let dir = support::scratch("makefile-ksplice");
    fs::create_dir_all(dir.join("src")).unwrap();
    fs::create_dir_all(dir.join("obj")).unwrap();
    fs::write(dir.join("src/Makefile"), "").unwrap();
    fs::write(dir.join("src/Kbuild"), "").unwrap();
    fs::write(dir.join("src/.config"), src_config).unwrap();
    if let Some(c) = obj_config {
        fs::write(dir.join("obj/.config"), c).unwrap();
    }
    dir
}

fn read(p: &Path) -> Option<String> {
    fs::read_to_string(p).ok()
}

#[test]
fn the_source_trees_config_moves_to_the_objtree() {
    let d = tree("CONFIG_A=y\n", None);
    assert!(revert(&d).contains("MOVE    .config"));
    assert_eq!(read(&d.join("src/.config")), None);
    assert_eq!(
        read(&d.join("obj/.config")).as_deref(),
        Some("CONFIG_A=y\n")
    );
    assert_eq!(read(&d.join("obj/.config.old")), None);
}

#[test]
fn a_different_objtree_config_is_kept_as_config_old() {
    let d = tree("CONFIG_A=y\n", Some("CONFIG_B=y\n"));
    revert(&d);
    assert_eq!(read(&d.join("src/.config")), None);
    assert_eq!(
        read(&d.join("obj/.config")).as_deref(),
        Some("CONFIG_A=y\n")
    );
    assert_eq!(
        read(&d.join("obj/.config.old")).as_deref(),
        Some("CONFIG_B=y\n")
    );
}

#[test]
fn the_same_config_leaves_the_objtrees_copy_alone() {
    let d = tree("CONFIG_A=y\n", Some("CONFIG_A=y\n"));
    revert(&d);
    assert_eq!(read(&d.join("src/.config")), None);
    assert_eq!(
        read(&d.join("obj/.config")).as_deref(),
        Some("CONFIG_A=y\n")
    );
    assert_eq!(read(&d.join("obj/.config.old")), None);
}

#[test]
fn an_in_tree_build_keeps_its_config() {
    let d = tree("CONFIG_A=y\n", None);
    run_revert(&d, true);
    assert_eq!(
        read(&d.join("src/.config")).as_deref(),
        Some("CONFIG_A=y\n")
    );
}
