//! ksplice-create accepts every option of the Perl ksplice-create (Ksplice
//! 0.9.9.1) with its meaning, or refuses it with the reason.

use std::process::{Command, Output};

/// A kernel tree that does not exist: a run that gets past the options
/// stops there, with exit status 1.
const NO_TREE: &str = "/nonexistent-ksplice-tree";

fn create(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ksplice-create"))
        .args(args)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The options were accepted: the run stopped at the missing tree.
fn assert_accepted(args: &[&str]) {
    let mut all = args.to_vec();
    all.push(NO_TREE);
    let o = create(&all);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
    assert!(
        err.contains(NO_TREE) && err.contains("not found"),
        "{args:?}: {err}"
    );
}

#[test]
fn every_perl_option_is_accepted() {
    for args in [
        &["--prebuild"][..],
        &["--patch=/dev/null"],
        &["--diffext=.new"],
        &["--git=HEAD"],
        &["--prebuild", "--id=abc123", "--description=a fix"],
        &["--prebuild", "--series"],
        &["--prebuild", "--noseries"],
        &["--prebuild", "--no-series"],
        &["--prebuild", "--build-modules"],
        &["--prebuild", "--nobuild-modules"],
        &["--prebuild", "--no-build-modules"],
        &[
            "--prebuild",
            "--only-targets=vmlinux",
            "--only-targets=ext%",
        ],
        &["--prebuild", "--extra-match=kernel/%", "--exclude-match=x"],
        &["--prebuild", "--standalone"],
        &["--prebuild", "--noshort-name-hack"],
        &["--prebuild", "--no-short-name-hack"],
        &["--prebuild", "--skip-prebuild"],
        &["--prebuild", "--config=/nonexistent-config"],
        &["--prebuild", "--patch-opt=-p1", "--patch-opt", "-F3"],
        &["--prebuild", "-v", "-v", "--verbose"],
        &["--prebuild", "-q", "--quiet"],
        &["--prebuild", "-j4"],
        &["--prebuild", "-j", "4"],
        &["--prebuild", "--jobs=2"],
        &["--prebuild", "--jobs", "2"],
        // A bare -j: make's -j without a limit, as the Perl tool's `j:i`.
        &["--prebuild", "-j"],
        &["-j", "--prebuild"],
        &["--prebuild", "--jobs"],
        // Getopt::Long's unambiguous abbreviations.
        &["--preb", "--desc=x", "--build-mod"],
    ] {
        assert_accepted(args);
    }
}

#[test]
fn options_without_meaning_on_linux_6_1_are_refused_with_the_reason() {
    for (args, why) in [
        (&["--nostandalone"][..], "have no CONFIG_KSPLICE"),
        (&["--no-standalone"], "have no CONFIG_KSPLICE"),
        (&["--short-name-hack"], "ksplice-apply expects"),
    ] {
        let mut all = vec!["--prebuild"];
        all.extend_from_slice(args);
        all.push(NO_TREE);
        let o = create(&all);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
        assert!(
            err.contains(args[0].trim_start_matches("--")) || err.contains("standalone"),
            "{args:?}: names the option: {err}"
        );
        assert!(err.contains(why), "{args:?}: {err}");
    }
}

#[test]
fn api_version_prints_the_update_format_version() {
    let o = create(&["--api-version"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!("{}\n", ksplice::package::API_VERSION)
    );
}

#[test]
fn raw_errors_put_the_abort_code_first() {
    let o = create(&["--raw-errors", "--prebuild", NO_TREE]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(255), "{err}");
    assert_eq!(err.lines().next(), Some("OTHER"), "{err}");
    assert!(err.contains(NO_TREE), "{err}");
}

#[test]
fn question_mark_prints_the_help() {
    let o = create(&["-?"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("Usage: ksplice-create"));
}

#[test]
fn unknown_options_and_two_actions_are_still_refused() {
    let o = create(&["--prebuild", "--no-such-option", NO_TREE]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = create(&["--prebuild", "--patch=/dev/null", NO_TREE]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("exactly one of"), "{}", stderr(&o));
}
