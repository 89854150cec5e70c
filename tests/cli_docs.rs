//! What users of the tools expect around the command line: `--version`
//! everywhere, exit statuses after `--help`, and the man pages and shell
//! completions `ksplice-gen-docs` writes from the clap definitions.

mod support;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

const VERSION: &str = env!("CARGO_PKG_VERSION");
const GEN_DOCS: &str = env!("CARGO_BIN_EXE_ksplice-gen-docs");

/// Every program with its path.
const PROGRAMS: &[(&str, &str)] = &[
    ("ksplice-create", env!("CARGO_BIN_EXE_ksplice-create")),
    ("ksplice-apply", env!("CARGO_BIN_EXE_ksplice-apply")),
    ("ksplice-undo", env!("CARGO_BIN_EXE_ksplice-undo")),
    ("ksplice-view", env!("CARGO_BIN_EXE_ksplice-view")),
    ("ksplice-obj", env!("CARGO_BIN_EXE_ksplice-obj")),
    ("ksplice-inspect", env!("CARGO_BIN_EXE_ksplice-inspect")),
    (
        "ksplice-kernel-utsname",
        env!("CARGO_BIN_EXE_ksplice-kernel-utsname"),
    ),
    ("ksplice-gen-docs", GEN_DOCS),
];

/// The tools with a man page and completions, and long options each
/// one's completions must offer.
const TOOLS: &[(&str, &[&str])] = &[
    (
        "ksplice-create",
        &["--patch", "--allow-layout-change", "--raw-errors"],
    ),
    (
        "ksplice-apply",
        &["--partial", "--debugfile", "--raw-errors"],
    ),
    ("ksplice-undo", &["--debug", "--api-version"]),
    ("ksplice-view", &["--json", "--id", "--file"]),
    ("ksplice-obj", &["--version", "system_map_lookup"]),
];

fn run(prog: &str, args: &[&str]) -> Output {
    Command::new(prog).args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn every_program_answers_version() {
    for (name, prog) in PROGRAMS {
        for flag in ["--version", "-V"] {
            let out = run(prog, &[flag]);
            assert_eq!(out.status.code(), Some(0), "{name} {flag}: {out:?}");
            assert_eq!(text(&out.stdout), format!("{name} {VERSION}\n"), "{name}");
        }
    }
}

#[test]
fn ksplice_obj_keeps_its_protocol_around_version() {
    let obj = PROGRAMS.iter().find(|p| p.0 == "ksplice-obj").unwrap().1;
    // A command's arguments are not options: `--version` after a command
    // is a usage error (usage on stdout, status 1), as before.
    let out = run(obj, &["snap", "--version"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stdout).starts_with("Usage: ksplice-obj snap|diff"));
    let out = run(obj, &["bogus"]);
    assert_eq!(out.status.code(), Some(1));
    let out = run(obj, &["system_map_lookup"]);
    assert_eq!(out.status.code(), Some(1), "a missing argument: {out:?}");
}

#[test]
fn help_ends_with_the_exit_statuses() {
    for (name, prog) in PROGRAMS.iter().take(5) {
        let out = run(prog, &["--help"]);
        assert_eq!(out.status.code(), Some(0), "{name}");
        let help = text(&out.stdout);
        assert!(help.contains("\nExit status:\n  0    "), "{name}: {help}");
        assert!(help.contains("\n  1    "), "{name}: {help}");
    }
    let create = run(PROGRAMS[0].1, &["--help"]);
    assert!(text(&create.stdout).contains("\n  66   no changes detected"));
}

/// Runs `ksplice-gen-docs WHAT DIR` and returns the files it names.
fn gen_docs(what: &str, dir: &Path) -> Vec<String> {
    let out = Command::new(GEN_DOCS).arg(what).arg(dir).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).lines().map(str::to_string).collect()
}

#[test]
fn man_pages_have_the_options_and_exit_statuses() {
    let dir = support::scratch("man");
    let written = gen_docs("man", &dir.join("man1"));
    assert_eq!(written.len(), TOOLS.len(), "{written:?}");
    for (name, _) in TOOLS {
        let page = fs::read_to_string(dir.join(format!("man1/{name}.1"))).unwrap();
        assert!(page.contains(&format!(".TH {name} 1")), "{name}: {page}");
        assert!(page.contains(".SH \"EXIT STATUS\""), "{name}: {page}");
        assert!(page.contains(".SH OPTIONS") && page.contains(".SH SYNOPSIS"));
    }
    let apply = fs::read_to_string(dir.join("man1/ksplice-apply.1")).unwrap();
    let exit = &apply[apply.find(".SH \"EXIT STATUS\"").unwrap()..];
    assert!(
        exit.contains("\\fB2\\fR\nthe kernel refused the update"),
        "{exit}"
    );
    assert!(exit.contains("\\fB130\\fR"), "{exit}");
    let create = fs::read_to_string(dir.join("man1/ksplice-create.1")).unwrap();
    assert!(create.contains("\\fB66\\fR"), "{create}");
    let obj = fs::read_to_string(dir.join("man1/ksplice-obj.1")).unwrap();
    assert!(obj.contains(".SH COMMANDS") && obj.contains("\\fBold_code\\fR"));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn completions_offer_the_long_options() {
    let dir = support::scratch("completions");
    let written = gen_docs("completions", &dir);
    assert_eq!(written.len(), 3 * TOOLS.len(), "{written:?}");
    for (name, options) in TOOLS {
        let bash = fs::read_to_string(dir.join("bash").join(name)).unwrap();
        for o in *options {
            assert!(bash.contains(o), "{name}: bash lacks {o}");
        }
        assert!(bash.contains(&format!("complete -F _{}", name.replace('-', "__"))));
        let zsh = fs::read_to_string(dir.join(format!("zsh/_{name}"))).unwrap();
        assert!(zsh.starts_with(&format!("#compdef {name}")), "{zsh}");
        let fish = fs::read_to_string(dir.join(format!("fish/{name}.fish"))).unwrap();
        assert!(fish.contains(&format!("complete -c {name}")), "{fish}");
    }
    // bash reads them without complaint.
    let out = Command::new("bash")
        .arg("-c")
        .arg("for f in \"$1\"/*; do . \"$f\" || exit 1; done; complete -p ksplice-view")
        .arg("bash")
        .arg(dir.join("bash"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn gen_docs_refuses_a_bad_command_line() {
    let out = run(GEN_DOCS, &["pdf", "/tmp"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(GEN_DOCS, &[]);
    assert_ne!(out.status.code(), Some(0));
}
