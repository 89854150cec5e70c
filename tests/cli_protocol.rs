//! Protocol-level tests of the `ksplice-obj` command line: one test per
//! documented behaviour and per bad-input case.

mod support;

use std::fs;
use std::process::Command;
use support::*;

const MISSING_WORDS: &[&str] = &["No such file", "not found", "does not exist"];
const CORRUPT_WORDS: &[&str] = &["truncated", "corrupt", "invalid"];

fn a_object(dir: &TestDir, rel: &str, prefix: &str) {
    dir.compile(&sample_c(prefix), rel);
}

// ---------------------------------------------------------------- snap

#[test]
fn snap_writes_empty_marker_and_removes_stale_files() {
    let d = TestDir::new("snap_stale");
    a_object(&d, "a.o", "a");
    let obj = d.read("a.o");
    d.write("a.o.KSPLICE_pre", b"stale pre");
    d.write("a.o.KSPLICE_new_code", b"stale new");
    d.write("a.o.KSPLICE_old_code", b"stale old");
    d.write("a.o.KSPLICE_report.json", b"{}");
    d.write("a.o.KSPLICE", b"1\n");
    let r = d.run(&["snap", "a.o.KSPLICE"], &[]);
    r.assert_ok("snap a.o.KSPLICE");
    assert_eq!(r.stdout, "", "snap must be quiet by default");
    assert_eq!(d.read("a.o.KSPLICE"), b"", "marker must be empty");
    for s in [
        "a.o.KSPLICE_pre",
        "a.o.KSPLICE_new_code",
        "a.o.KSPLICE_old_code",
        "a.o.KSPLICE_report.json",
    ] {
        assert!(!d.exists(s), "{s} should have been removed by snap");
    }
    assert_same_bytes(&d.read("a.o"), &obj, "the object must not be modified");
}

#[test]
fn snap_fresh_and_in_subdirectory() {
    let d = TestDir::new("snap_subdir");
    a_object(&d, "kernel/sched/core.o", "core");
    let r = d.run(&["snap", "kernel/sched/core.o.KSPLICE"], &[]);
    r.assert_ok("snap kernel/sched/core.o.KSPLICE");
    assert_eq!(r.stdout, "");
    assert_eq!(d.read("kernel/sched/core.o.KSPLICE"), b"");
    // Nothing but the marker was added.
    let names: Vec<String> = fs::read_dir(d.join("kernel/sched"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut names = names;
    names.sort();
    assert_eq!(names, ["core.c", "core.o", "core.o.KSPLICE"]);
}

#[test]
fn snap_verbose_prints_and_default_is_quiet() {
    let d = TestDir::new("snap_verbose");
    a_object(&d, "a.o", "a");
    let quiet = d.run(&["snap", "a.o.KSPLICE"], &[]);
    quiet.assert_ok("snap");
    assert_eq!(quiet.stdout, "", "no stdout by default");
    let loud = d.run(&["snap", "a.o.KSPLICE"], &[("KSPLICE_VERBOSE", "1")]);
    loud.assert_ok("KSPLICE_VERBOSE=1 snap");
    let all = format!("{}{}", loud.stdout, loud.stderr);
    assert!(
        all.lines().count() >= 1,
        "KSPLICE_VERBOSE=1 should print at least one line\n{}",
        loud.describe()
    );
    assert_eq!(d.read("a.o.KSPLICE"), b"");
}

// ---------------------------------------------------------------- diff

#[test]
fn diff_identical_removes_pre_and_writes_empty_marker() {
    let d = TestDir::new("diff_identical");
    a_object(&d, "a.o", "a");
    let obj = d.read("a.o");
    d.write("a.o.KSPLICE_pre", &obj);
    let r = d.run(&["diff", "a.o.KSPLICE"], &[]);
    r.assert_ok("diff a.o.KSPLICE (identical)");
    assert_eq!(r.stdout, "", "diff must be quiet by default");
    assert!(!d.exists("a.o.KSPLICE_pre"), "_pre must be removed");
    assert_eq!(d.read("a.o.KSPLICE"), b"");
    assert_same_bytes(&d.read("a.o"), &obj, "the object must not be modified");
}

#[test]
fn diff_identical_replaces_previous_marker() {
    let d = TestDir::new("diff_identical_prev");
    a_object(&d, "a.o", "a");
    let obj = d.read("a.o");
    d.write("a.o.KSPLICE_pre", &obj);
    d.write("a.o.KSPLICE", b"1\n");
    let r = d.run(&["diff", "a.o.KSPLICE"], &[]);
    r.assert_ok("diff a.o.KSPLICE (identical)");
    assert!(!d.exists("a.o.KSPLICE_pre"));
    assert_eq!(d.read("a.o.KSPLICE"), b"");
}

#[test]
fn diff_missing_pre_reports_new_object() {
    let d = TestDir::new("diff_missing_pre");
    a_object(&d, "a.o", "a");
    let before = d.snapshot();
    let r = d.run(&["diff", "a.o.KSPLICE"], &[]);
    r.assert_fail("diff a.o.KSPLICE without _pre");
    assert!(
        r.stderr.contains("Patch creates new object a.o"),
        "expected 'Patch creates new object a.o'\n{}",
        r.describe()
    );
    assert!(!d.exists("a.o.KSPLICE"), "no marker on failure");
    assert!(snapshot_diff(&before, &d.snapshot()).is_empty());
}

#[test]
fn diff_differing_writes_new_and_old_code_then_marker() {
    let d = TestDir::new("diff_differing");
    a_object(&d, "a.o", "a");
    a_object(&d, "pre.o", "a_old");
    let obj = d.read("a.o");
    let pre = d.read("pre.o");
    assert_ne!(obj, pre);
    d.write("a.o.KSPLICE_pre", &pre);

    let r = d.run(&["diff", "a.o.KSPLICE"], &[]);
    r.assert_ok("diff a.o.KSPLICE (differing)");
    assert_eq!(
        d.read("a.o.KSPLICE"),
        b"1\n",
        "changed object: marker \"1\""
    );
    for out in [
        "a.o.KSPLICE_new_code",
        "a.o.KSPLICE_old_code",
        "a.o.KSPLICE_report.json",
    ] {
        assert!(d.exists(out), "{out} written\n{}", r.describe());
    }
    assert_same_bytes(&d.read("a.o"), &obj, "object must be untouched");
    assert_same_bytes(
        &d.read("a.o.KSPLICE_pre"),
        &pre,
        "_pre must stay (revert needs it)",
    );
}

/// A file whose `__init`-style function (in `.init.text`) is `init`, and a
/// run-time function `run` that stays the same.
fn boot_c(init: &str) -> String {
    format!(
        "int run(int x) {{ return x * 3; }}\n\
         __attribute__((section(\".init.text\"), noinline)) int setup(int x) {{ {init} }}\n\
         int (*keep)(int) = setup;\n"
    )
}

#[test]
fn diff_of_boot_time_code_only_names_it_and_changes_nothing() {
    let d = TestDir::new("diff_boot_only");
    d.compile(&boot_c("return x + 1;"), "pre.o");
    d.compile(&boot_c("return x + 2;"), "a.o");
    d.write("a.o.KSPLICE_pre", d.read("pre.o"));
    let r = d.run(&["diff", "a.o.KSPLICE"], &[]);
    r.assert_ok("diff a.o.KSPLICE (boot-time code only)");
    assert_eq!(d.read("a.o.KSPLICE"), b"", "nothing to patch: empty marker");
    assert!(!d.exists("a.o.KSPLICE_new_code"), "{}", r.describe());
    let report = String::from_utf8(d.read("a.o.KSPLICE_report.json")).unwrap();
    assert!(
        report.contains("\"boot_only\": [\n    {\n      \"name\": \"setup\""),
        "{report}"
    );
    assert!(report.contains("\"changed\": false"), "{report}");

    // The same run-time function and boot-time function: no report at all.
    d.compile(&boot_c("return x + 2;"), "pre.o");
    d.write("a.o.KSPLICE_pre", d.read("pre.o"));
    d.run(&["diff", "a.o.KSPLICE"], &[])
        .assert_ok("diff (identical)");
    assert!(!d.exists("a.o.KSPLICE_report.json"));
}

/// A function with two alternative entries in Linux 6.12's layout (14
/// bytes: two s32 offsets, u32 ft_flags, u8 lengths), 28 bytes in all: not
/// a whole number of 6.1's 12-byte entries.
fn alt_6_12_c(ret: u32) -> String {
    let entry = |label: &str| {
        format!("\".long 661b - .\\n.long {label} - .\\n.long 0x10049\\n.byte 3\\n.byte 3\\n\"")
    };
    format!(
        "int f(int x) {{\n\
         asm volatile(\"661: nop; nop; nop\\n\"\n\
         \".pushsection .altinstructions, \\\"a\\\"\\n\"\n{}\n{}\n\
         \".popsection\\n\"\n\
         \".pushsection .altinstr_replacement, \\\"ax\\\"\\n\"\n\
         \"662: lfence\\n663: mfence\\n\"\n\
         \".popsection\\n\");\n\
         return x + {ret};\n}}\n",
        entry("662f"),
        entry("663f")
    )
}

#[test]
fn table_layouts_follow_the_kernel_version() {
    let d = TestDir::new("diff_kernel_version");
    d.compile(&alt_6_12_c(1), "a.o.KSPLICE_pre");
    d.compile(&alt_6_12_c(2), "a.o");
    let diff = |env: &[(&str, &str)]| d.run(&["diff", "a.o.KSPLICE"], env);
    let r = diff(&[]);
    r.assert_fail("diff without a kernel version");
    assert!(
        r.stderr.contains("a.o") && r.stderr.contains(".altinstructions"),
        "{}",
        r.describe()
    );
    assert!(
        r.stderr.contains("KSPLICE_KERNEL_VERSION"),
        "{}",
        r.describe()
    );
    let r = diff(&[("KSPLICE_KERNEL_VERSION", "6.1")]);
    r.assert_fail("diff of 6.12 tables read with 6.1's layout");
    assert!(r.stderr.contains("entry size 12"), "{}", r.describe());
    let r = diff(&[("KSPLICE_KERNEL_VERSION", "5.10")]);
    r.assert_fail("diff for an unsupported kernel");
    assert!(
        r.stderr.contains("Linux 5.10 is not supported"),
        "{}",
        r.describe()
    );
    diff(&[("KSPLICE_KERNEL_VERSION", "6.12")]).assert_ok("diff with 6.12's layout");
    assert_eq!(d.read("a.o.KSPLICE"), b"1\n");
    // Kbuild's variable, then the object tree's release file.
    d.write("a.o.KSPLICE_pre", d.read("a.o"));
    diff(&[("KERNELVERSION", "6.12.115")]).assert_ok("diff under Kbuild");
    d.write("include/config/kernel.release", "6.12.115\n");
    d.write("a.o.KSPLICE_pre", d.read("a.o"));
    diff(&[]).assert_ok("diff in the object tree");
}

/// `f`, exported the way Linux 6.5+ does when `export` is set.
fn export_c(ret: u32, export: bool) -> String {
    let exp = if export {
        "asm(\".section \\\".export_symbol\\\",\\\"a\\\"\\n__export_symbol_f:\\n\
         .asciz \\\"\\\"\\n.ascii \\\"\\\\0\\\"\\n.balign 8\\n.quad f\\n.previous\");\n"
    } else {
        ""
    };
    format!(
        "int f(int *p) {{ int s = 0; for (int i = 0; i < 10; i++) s += p[i] * {ret}; return s; }}\n{exp}"
    )
}

#[test]
fn diff_refuses_a_changed_export_table_and_ignores_the_records() {
    let d = TestDir::new("diff_exports");
    d.compile(&export_c(1, false), "a.o.KSPLICE_pre");
    d.compile(&export_c(2, true), "a.o");
    let r = d.run(
        &["diff", "a.o.KSPLICE"],
        &[("KSPLICE_KERNEL_VERSION", "6.12")],
    );
    r.assert_fail("diff of a patch that adds an export");
    assert!(
        r.stderr.contains("a.o") && r.stderr.contains("adds the export f"),
        "{}",
        r.describe()
    );
    assert!(!d.exists("a.o.KSPLICE"));
    // The same export before and after: its records are not the patch's.
    d.compile(&export_c(1, true), "a.o.KSPLICE_pre");
    let r = d.run(
        &["diff", "a.o.KSPLICE"],
        &[("KSPLICE_KERNEL_VERSION", "6.12")],
    );
    r.assert_ok("diff of a patch to an exported function");
    let report = String::from_utf8(d.read("a.o.KSPLICE_report.json")).unwrap();
    assert!(report.contains("\"name\": \"f\""), "{report}");
    assert!(!report.contains("export_symbol"), "{report}");
    d.compile(&export_c(1, false), "a.o");
    let r = d.run(
        &["diff", "a.o.KSPLICE"],
        &[("KSPLICE_KERNEL_VERSION", "6.12")],
    );
    r.assert_fail("diff of a patch that removes an export");
    assert!(
        r.stderr.contains("removes the export f"),
        "{}",
        r.describe()
    );
}

#[test]
fn failed_diff_removes_existing_marker() {
    let d = TestDir::new("diff_differing_prev");
    a_object(&d, "a.o", "a");
    a_object(&d, "pre.o", "a_old");
    let pre = d.read("pre.o");
    d.write("a.o.KSPLICE_pre", &pre);
    // A post object the engine cannot read makes the diff fail.
    let obj = d.read("a.o");
    d.write("a.o", &obj[..100]);
    for previous in [&b""[..], &b"1\n"[..]] {
        d.write("a.o.KSPLICE", previous);
        let r = d.run(&["diff", "a.o.KSPLICE"], &[]);
        r.assert_fail("diff a.o.KSPLICE (unreadable post, marker existed)");
        assert!(
            r.stderr.contains("a.o") && r.stderr.to_lowercase().contains("truncated"),
            "expected the file and the cause\n{}",
            r.describe()
        );
        assert!(
            !d.exists("a.o.KSPLICE"),
            "a previously existing marker ({previous:?}) must be removed"
        );
        assert_same_bytes(&d.read("a.o.KSPLICE_pre"), &pre, "_pre must be untouched");
    }
}

// ---------------------------------------------------------------- old_code

fn old_code_env(d: &TestDir) -> String {
    make_config_dir(d, "config").to_str().unwrap().to_string()
}

#[test]
fn old_code_produces_valid_relocatable_elf() {
    let d = TestDir::new("old_code_valid");
    let cfg = old_code_env(&d);
    a_object(&d, "a.o", "a");
    let obj = d.read("a.o");
    let r = d.run(
        &["old_code", "a.o.KSPLICE_old_code"],
        &[("KSPLICE_CONFIG_DIR", &cfg)],
    );
    r.assert_ok("old_code a.o.KSPLICE_old_code");
    let out = d.read("a.o.KSPLICE_old_code");
    assert!(out.len() > 64, "output too short");
    assert_eq!(
        &out[..4],
        b"\x7fELF",
        "output must start with the ELF magic"
    );
    assert_eq!(out[4], 2, "ELF64 expected");
    assert_eq!(u16::from_le_bytes([out[16], out[17]]), 1, "e_type ET_REL");
    assert_eq!(
        u16::from_le_bytes([out[18], out[19]]),
        62,
        "e_machine x86-64"
    );
    assert_readelf_ok(&d.join("a.o.KSPLICE_old_code"));
    sh(&d.path, "ld", &["-r", "-o", "x.o", "a.o.KSPLICE_old_code"]);
    assert!(d.exists("x.o"));
    assert_same_bytes(&d.read("a.o"), &obj, "input must be untouched");
}

#[test]
fn old_code_is_deterministic() {
    let d = TestDir::new("old_code_det");
    let cfg = old_code_env(&d);
    d.compile(&many_functions_c("det", 40), "a.o");
    let env = [("KSPLICE_CONFIG_DIR", cfg.as_str())];
    d.run(&["old_code", "a.o.KSPLICE_old_code"], &env)
        .assert_ok("old_code #1");
    let first = d.read("a.o.KSPLICE_old_code");
    d.run(&["old_code", "a.o.KSPLICE_old_code"], &env)
        .assert_ok("old_code #2 (overwriting)");
    assert_same_bytes(&first, &d.read("a.o.KSPLICE_old_code"), "old_code output");
}

#[test]
fn old_code_uses_pre_when_present() {
    // dir1: a.o = A, a.o.KSPLICE_pre = B   -> must equal dir2's output
    // dir2: a.o = B                         -> reference for B
    // dir3: a.o = A                         -> must differ
    // Each run happens inside its directory so that the object is called
    // `a.o` in all three (the output may embed the object's name).
    let d = TestDir::new("old_code_pre");
    let cfg = old_code_env(&d);
    let env = [("KSPLICE_CONFIG_DIR", cfg.as_str())];
    let src_a = sample_c("only_in_obj");
    let src_b = sample_c("only_in_pre");
    d.compile(&src_a, "dir1/a.o");
    d.compile(&src_b, "dir2/a.o");
    d.compile(&src_a, "dir3/a.o");
    let b_obj = d.read("dir2/a.o");
    d.write("dir1/a.o.KSPLICE_pre", &b_obj);
    for dir in ["dir1", "dir2", "dir3"] {
        run(&d.join(dir), &["old_code", "a.o.KSPLICE_old_code"], &env)
            .assert_ok(&format!("old_code a.o.KSPLICE_old_code in {dir}"));
    }
    let o1 = d.read("dir1/a.o.KSPLICE_old_code");
    let o2 = d.read("dir2/a.o.KSPLICE_old_code");
    let o3 = d.read("dir3/a.o.KSPLICE_old_code");
    assert_same_bytes(&o1, &o2, "old_code must be taken from OBJ.KSPLICE_pre");
    assert!(o1 != o3, "old code of different objects must differ");
    assert_same_bytes(&d.read("dir1/a.o.KSPLICE_pre"), &b_obj, "_pre kept intact");
}

// ---------------------------------------------------------------- combine

#[test]
fn combine_all_empty_markers_writes_empty_out() {
    let d = TestDir::new("combine_empty");
    d.write("dir/a.o.KSPLICE", b"");
    d.write("dir/b.o.KSPLICE", b"");
    d.write("dir/sub/c.o.KSPLICE", b"");
    let r = d.run(
        &[
            "combine",
            "dir/built-in.o.KSPLICE",
            "dir/a.o.KSPLICE",
            "dir/b.o.KSPLICE",
            "dir/sub/c.o.KSPLICE",
        ],
        &[],
    );
    r.assert_ok("combine over empty markers");
    assert_eq!(d.read("dir/built-in.o.KSPLICE"), b"");
    assert!(!d.exists("dir/built-in.o.KSPLICE_new_code"));
    assert!(!d.exists("dir/built-in.o.KSPLICE_old_code"));
}

#[test]
fn combine_no_inputs_writes_empty_out() {
    let d = TestDir::new("combine_none");
    let r = d.run(&["combine", "built-in.o.KSPLICE"], &[]);
    r.assert_ok("combine with no inputs");
    assert_eq!(d.read("built-in.o.KSPLICE"), b"");
}

#[test]
fn combine_replaces_stale_nonempty_out() {
    let d = TestDir::new("combine_stale");
    d.write("a.o.KSPLICE", b"");
    d.write("built-in.o.KSPLICE", b"1\n");
    d.write("built-in.o.KSPLICE_old_code", b"stale");
    d.write("built-in.o.KSPLICE_new_code", b"stale");
    let r = d.run(&["combine", "built-in.o.KSPLICE", "a.o.KSPLICE"], &[]);
    r.assert_ok("combine");
    assert_eq!(d.read("built-in.o.KSPLICE"), b"");
}

#[test]
fn combine_own_object_removes_identical_pre() {
    let d = TestDir::new("combine_own");
    a_object(&d, "dir/a.o", "a");
    d.write("dir/a.o.KSPLICE", b"");
    sh(&d.join("dir"), "ld", &["-r", "-o", "built-in.o", "a.o"]);
    let builtin = d.read("dir/built-in.o");
    d.write("dir/built-in.o.KSPLICE_pre", &builtin);
    let r = d.run(
        &[
            "combine",
            "dir/built-in.o.KSPLICE",
            "dir/built-in.o",
            "dir/a.o.KSPLICE",
        ],
        &[],
    );
    r.assert_ok("combine with the target's own object");
    assert!(
        !d.exists("dir/built-in.o.KSPLICE_pre"),
        "an identical _pre of the target object must be deleted"
    );
    assert_eq!(d.read("dir/built-in.o.KSPLICE"), b"");
    assert_same_bytes(
        &d.read("dir/built-in.o"),
        &builtin,
        "target object untouched",
    );
}

#[test]
fn combine_unexpected_input_fails_naming_it() {
    for (i, bad) in ["notes.txt", "dir/other.o", "dir/a.o.KSPLICE_pre"]
        .iter()
        .enumerate()
    {
        let d = TestDir::new(&format!("combine_unexpected{i}"));
        d.write("dir/a.o.KSPLICE", b"");
        d.write("notes.txt", b"just some text\n");
        a_object(&d, "dir/other.o", "other");
        let pre = d.read("dir/other.o");
        d.write("dir/a.o.KSPLICE_pre", &pre);
        assert_bad_input(
            &d,
            &["combine", "dir/built-in.o.KSPLICE", "dir/a.o.KSPLICE", bad],
            &[],
            bad,
            &[""],
        );
        assert!(!d.exists("dir/built-in.o.KSPLICE"));
    }
}

#[test]
fn combine_single_old_code_input_is_copied() {
    let d = TestDir::new("combine_single_old");
    a_object(&d, "x.o", "x");
    let code = d.read("x.o");
    d.write("dir/a.o.KSPLICE_old_code", &code);
    d.write("dir/b.o.KSPLICE", b"");
    let r = d.run(
        &[
            "combine",
            "dir/built-in.o.KSPLICE",
            "dir/b.o.KSPLICE",
            "dir/a.o.KSPLICE_old_code",
        ],
        &[],
    );
    r.assert_ok("combine with one old_code input");
    assert_eq!(d.read("dir/built-in.o.KSPLICE"), b"1\n");
    assert_same_bytes(
        &d.read("dir/built-in.o.KSPLICE_old_code"),
        &code,
        "a single part must be copied",
    );
    assert_same_bytes(
        &d.read("dir/a.o.KSPLICE_old_code"),
        &code,
        "input untouched",
    );
}

fn combine_two_old_code(ld: Option<&str>, name: &str) {
    let d = TestDir::new(name);
    a_object(&d, "x.o", "xfirst");
    a_object(&d, "y.o", "ysecond");
    let x = d.read("x.o");
    let y = d.read("y.o");
    d.write("dir/a.o.KSPLICE_old_code", &x);
    d.write("dir/b.o.KSPLICE_old_code", &y);
    let env: Vec<(&str, &str)> = ld.iter().map(|l| ("LD", *l)).collect();
    let r = d.run(
        &[
            "combine",
            "dir/built-in.o.KSPLICE",
            "dir/a.o.KSPLICE_old_code",
            "dir/b.o.KSPLICE_old_code",
        ],
        &env,
    );
    r.assert_ok(&format!("combine with two old_code inputs, LD={ld:?}"));
    assert_eq!(d.read("dir/built-in.o.KSPLICE"), b"1\n");
    let out = d.join("dir/built-in.o.KSPLICE_old_code");
    assert_readelf_ok(&out);
    let syms = readelf_symbols(&out);
    for s in ["xfirst_one", "xfirst_two", "ysecond_one", "ysecond_three"] {
        assert!(
            syms.iter().any(|n| n == s),
            "linked old code lacks {s}: {syms:?}"
        );
    }
    assert_same_bytes(&d.read("dir/a.o.KSPLICE_old_code"), &x, "input a untouched");
    assert_same_bytes(&d.read("dir/b.o.KSPLICE_old_code"), &y, "input b untouched");
}

#[test]
fn combine_two_old_code_inputs_default_ld() {
    combine_two_old_code(None, "combine_two_default_ld");
}

#[test]
fn combine_two_old_code_inputs_ld_with_arguments() {
    combine_two_old_code(Some("ld -m elf_x86_64"), "combine_two_ld_args");
}

#[test]
fn combine_uses_ld_from_environment() {
    let d = TestDir::new("combine_ld_wrapper");
    a_object(&d, "x.o", "xw");
    a_object(&d, "y.o", "yw");
    d.write("a.o.KSPLICE_old_code", d.read("x.o"));
    d.write("b.o.KSPLICE_old_code", d.read("y.o"));
    let log = d.join("ld.log");
    d.write(
        "myld",
        format!(
            "#!/bin/sh\necho \"$@\" >> '{}'\nexec ld \"$@\"\n",
            log.display()
        ),
    );
    sh(&d.path, "chmod", &["+x", "myld"]);
    let myld = d.join("myld");
    let r = d.run(
        &[
            "combine",
            "built-in.o.KSPLICE",
            "a.o.KSPLICE_old_code",
            "b.o.KSPLICE_old_code",
        ],
        &[("LD", myld.to_str().unwrap())],
    );
    r.assert_ok("combine with LD=wrapper");
    let logged = fs::read_to_string(&log).unwrap_or_default();
    assert!(
        logged.contains("-r"),
        "$LD was not invoked with -r; log: {logged:?}"
    );
    assert_eq!(d.read("built-in.o.KSPLICE"), b"1\n");
    assert_readelf_ok(&d.join("built-in.o.KSPLICE_old_code"));
}

#[test]
fn combine_nonempty_marker_contributes_new_and_old_code() {
    let d = TestDir::new("combine_marker");
    a_object(&d, "n.o", "newcode");
    a_object(&d, "o.o", "oldcode");
    let n = d.read("n.o");
    let o = d.read("o.o");
    d.write("dir/x.o.KSPLICE", b"1\n");
    d.write("dir/x.o.KSPLICE_new_code", &n);
    d.write("dir/x.o.KSPLICE_old_code", &o);
    d.write("dir/y.o.KSPLICE", b"");
    let r = d.run(
        &[
            "combine",
            "dir/built-in.o.KSPLICE",
            "dir/x.o.KSPLICE",
            "dir/y.o.KSPLICE",
        ],
        &[],
    );
    r.assert_ok("combine with one non-empty marker");
    assert_eq!(d.read("dir/built-in.o.KSPLICE"), b"1\n");
    assert_same_bytes(
        &d.read("dir/built-in.o.KSPLICE_new_code"),
        &n,
        "new code copied",
    );
    assert_same_bytes(
        &d.read("dir/built-in.o.KSPLICE_old_code"),
        &o,
        "old code copied",
    );
}

#[test]
fn combine_two_nonempty_markers_are_linked() {
    let d = TestDir::new("combine_two_markers");
    for (p, pre) in [("x", "xm"), ("y", "ym")] {
        a_object(&d, &format!("{p}n.o"), &format!("{pre}_new"));
        a_object(&d, &format!("{p}o.o"), &format!("{pre}_old"));
        d.write(&format!("{p}.o.KSPLICE"), b"1\n");
        d.write(
            &format!("{p}.o.KSPLICE_new_code"),
            d.read(&format!("{p}n.o")),
        );
        d.write(
            &format!("{p}.o.KSPLICE_old_code"),
            d.read(&format!("{p}o.o")),
        );
    }
    let r = d.run(
        &[
            "combine",
            "built-in.o.KSPLICE",
            "x.o.KSPLICE",
            "y.o.KSPLICE",
        ],
        &[],
    );
    r.assert_ok("combine with two non-empty markers");
    assert_eq!(d.read("built-in.o.KSPLICE"), b"1\n");
    let new = d.join("built-in.o.KSPLICE_new_code");
    let old = d.join("built-in.o.KSPLICE_old_code");
    assert_readelf_ok(&new);
    assert_readelf_ok(&old);
    let ns = readelf_symbols(&new);
    let os = readelf_symbols(&old);
    for s in ["xm_new_one", "ym_new_one"] {
        assert!(ns.iter().any(|n| n == s), "new code lacks {s}");
    }
    for s in ["xm_old_one", "ym_old_one"] {
        assert!(os.iter().any(|n| n == s), "old code lacks {s}");
    }
}

// ---------------------------------------------------------------- finalize

#[test]
fn finalize_empty_archive_yields_empty_archive() {
    let d = TestDir::new("finalize_empty");
    d.write("empty.a", b"!<arch>\n");
    let r = d.run(&["finalize", "empty.a", "out.a", "vmlinux"], &[]);
    r.assert_ok("finalize empty.a out.a vmlinux");
    assert_eq!(d.read("out.a"), b"!<arch>\n");
    assert_eq!(d.read("empty.a"), b"!<arch>\n");
}

// ---------------------------------------------------------------- system_map_lookup

#[test]
fn system_map_lookup_present() {
    let d = TestDir::new("sysmap_present");
    let cfg = make_config_dir(&d, "cfg");
    let env = [("KSPLICE_CONFIG_DIR", cfg.to_str().unwrap())];
    for (sym, addr) in [
        ("_text", "ffffffff81000000"),
        ("secondary_startup_64", "ffffffff81000100"),
        ("printk", "ffffffff810a1230"),
        ("printk_helper", "ffffffff810a1240"),
        ("mod_func", "ffffffffa0001000"),
    ] {
        let r = d.run(&["system_map_lookup", sym], &env);
        r.assert_ok(&format!("system_map_lookup {sym}"));
        assert_eq!(r.stdout.trim_end(), addr, "address of {sym}");
    }
}

#[test]
fn system_map_lookup_absent_prints_nothing() {
    let d = TestDir::new("sysmap_absent");
    let cfg = make_config_dir(&d, "cfg");
    let env = [("KSPLICE_CONFIG_DIR", cfg.to_str().unwrap())];
    for sym in [
        "no_such_symbol",
        "printk_",
        "startup",
        "T",
        "ffffffff81000000",
    ] {
        let r = d.run(&["system_map_lookup", sym], &env);
        r.assert_ok(&format!("system_map_lookup {sym}"));
        assert_eq!(r.stdout, "", "nothing must be printed for {sym}");
    }
}

// ---------------------------------------------------------------- usage

fn check_usage(args: &[&str], name: &str) {
    let d = TestDir::new(name);
    let r = d.run(args, &[]);
    assert_no_panic(&r);
    assert_eq!(r.status.code(), Some(1), "exit status\n{}", r.describe());
    let all = format!("{}{}", r.stdout, r.stderr);
    for c in COMMANDS {
        assert!(all.contains(c), "usage does not name {c}\n{}", r.describe());
    }
    assert!(d.snapshot().is_empty(), "usage must not create files");
}

#[test]
fn usage_for_unknown_command() {
    check_usage(&["frobnicate", "a.o.KSPLICE"], "usage_unknown");
}

#[test]
fn usage_for_no_command() {
    check_usage(&[], "usage_none");
}

// ---------------------------------------------------------------- bad input: missing file

#[test]
fn bad_missing_object_snap() {
    let d = TestDir::new("bad_missing_snap");
    d.write("a.o.KSPLICE_pre", b"keep me");
    assert_bad_input(&d, &["snap", "a.o.KSPLICE"], &[], "a.o", MISSING_WORDS);
}

#[test]
fn bad_missing_object_diff() {
    let d = TestDir::new("bad_missing_diff");
    a_object(&d, "x.o", "x");
    d.write("a.o.KSPLICE_pre", d.read("x.o"));
    assert_bad_input(&d, &["diff", "a.o.KSPLICE"], &[], "a.o", MISSING_WORDS);
}

#[test]
fn bad_missing_object_old_code() {
    let d = TestDir::new("bad_missing_old_code");
    let cfg = make_config_dir(&d, "cfg");
    d.write("other.o", b"unrelated");
    assert_bad_input(
        &d,
        &["old_code", "a.o.KSPLICE_old_code"],
        &[("KSPLICE_CONFIG_DIR", cfg.to_str().unwrap())],
        "a.o",
        MISSING_WORDS,
    );
}

#[test]
fn bad_missing_object_rmsyms() {
    let d = TestDir::new("bad_missing_rmsyms");
    d.write("other.o", b"unrelated");
    assert_bad_input(&d, &["rmsyms", "a.o", "out.o"], &[], "a.o", MISSING_WORDS);
}

#[test]
fn bad_missing_object_finalize() {
    let d = TestDir::new("bad_missing_finalize");
    d.write("other.o", b"unrelated");
    assert_bad_input(
        &d,
        &["finalize", "a.o", "out.o", "vmlinux"],
        &[],
        "a.o",
        MISSING_WORDS,
    );
}

#[test]
fn bad_missing_system_map() {
    let d = TestDir::new("bad_missing_sysmap");
    fs::create_dir_all(d.join("cfg")).unwrap();
    let cfg = d.join("cfg");
    assert_bad_input(
        &d,
        &["system_map_lookup", "printk"],
        &[("KSPLICE_CONFIG_DIR", cfg.to_str().unwrap())],
        "System.map",
        MISSING_WORDS,
    );
}

// ---------------------------------------------------------------- bad input: wrong suffix

#[test]
fn bad_suffix_snap() {
    let d = TestDir::new("bad_suffix_snap");
    a_object(&d, "a.o", "a");
    assert_bad_input(&d, &["snap", "a.o"], &[], "a.o", &["KSPLICE"]);
}

#[test]
fn bad_suffix_diff() {
    let d = TestDir::new("bad_suffix_diff");
    a_object(&d, "a.o", "a");
    d.write("a.o.KSPLICE_pre", d.read("a.o"));
    assert_bad_input(&d, &["diff", "a.o"], &[], "a.o", &["KSPLICE"]);
}

#[test]
fn bad_suffix_snap_other_protocol_name() {
    let d = TestDir::new("bad_suffix_snap_pre");
    a_object(&d, "a.o", "a");
    d.write("a.o.KSPLICE_pre", d.read("a.o"));
    assert_bad_input(
        &d,
        &["snap", "a.o.KSPLICE_pre"],
        &[],
        "a.o.KSPLICE_pre",
        &["KSPLICE"],
    );
}

// ---------------------------------------------------------------- bad input: ELF problems

/// How a malformed input is given to a command.
#[derive(Clone, Copy, Debug)]
enum Via {
    OldCode,
    Rmsyms,
    Finalize,
}

/// Put `contents` at `bad.o` in a fresh dir and run the command on it.
fn bad_object(name: &str, contents: &[u8], via: Via, words: &[&str]) {
    let d = TestDir::new(name);
    let cfg = make_config_dir(&d, "cfg");
    d.write("bad.o", contents);
    let env = [("KSPLICE_CONFIG_DIR", cfg.to_str().unwrap())];
    match via {
        Via::OldCode => assert_bad_input(
            &d,
            &["old_code", "bad.o.KSPLICE_old_code"],
            &env,
            "bad.o",
            words,
        ),
        Via::Rmsyms => assert_bad_input(&d, &["rmsyms", "bad.o", "out.o"], &env, "bad.o", words),
        Via::Finalize => assert_bad_input(
            &d,
            &["finalize", "bad.o", "out.o", "vmlinux"],
            &env,
            "bad.o",
            words,
        ),
    }
}

fn real_object(name: &str) -> Vec<u8> {
    let d = TestDir::new(name);
    d.compile(&sample_c("real"), "real.o");
    d.read("real.o")
}

fn truncated(len: Option<usize>, name: &str) -> Vec<u8> {
    let obj = real_object(name);
    let n = len.unwrap_or(obj.len() / 2);
    assert!(n < obj.len());
    obj[..n].to_vec()
}

fn elf32(name: &str) -> Vec<u8> {
    let d = TestDir::new(name);
    if compile_c_flags(&sample_c("m32"), &d.join("m32.o"), &["-m32"]) {
        let o = d.read("m32.o");
        assert_eq!(o[4], 1, "gcc -m32 should produce ELFCLASS32");
        o
    } else {
        let mut o = real_object(&format!("{name}_fallback"));
        o[4] = 1;
        o
    }
}

fn other_machine(name: &str) -> Vec<u8> {
    let mut o = real_object(name);
    o[18..20].copy_from_slice(&183u16.to_le_bytes());
    o
}

const NOT_ELF_TEXT: &[u8] = b"this is just a text file\nnot an object at all\n";

macro_rules! bad_elf_tests {
    ($($test:ident: $make:expr, $via:expr, $words:expr;)*) => {
        $(
            #[test]
            fn $test() {
                let contents: Vec<u8> = $make(stringify!($test));
                bad_object(concat!(stringify!($test), "_run"), &contents, $via, $words);
            }
        )*
    };
}

bad_elf_tests! {
    bad_truncated100_old_code: |n| truncated(Some(100), n), Via::OldCode, CORRUPT_WORDS;
    bad_truncated100_rmsyms: |n| truncated(Some(100), n), Via::Rmsyms, CORRUPT_WORDS;
    bad_truncated100_finalize: |n| truncated(Some(100), n), Via::Finalize, CORRUPT_WORDS;
    bad_truncated_half_old_code: |n| truncated(None, n), Via::OldCode, CORRUPT_WORDS;
    bad_truncated_half_rmsyms: |n| truncated(None, n), Via::Rmsyms, CORRUPT_WORDS;
    bad_truncated_half_finalize: |n| truncated(None, n), Via::Finalize, CORRUPT_WORDS;
    bad_not_elf_old_code: |_| NOT_ELF_TEXT.to_vec(), Via::OldCode, &["not an ELF"];
    bad_not_elf_rmsyms: |_| NOT_ELF_TEXT.to_vec(), Via::Rmsyms, &["not an ELF"];
    bad_not_elf_finalize: |_| NOT_ELF_TEXT.to_vec(), Via::Finalize, &["not an ELF"];
    bad_elf32_old_code: elf32, Via::OldCode, &["ELF32", "32-bit"];
    bad_elf32_rmsyms: elf32, Via::Rmsyms, &["ELF32", "32-bit"];
    bad_elf32_finalize: elf32, Via::Finalize, &["ELF32", "32-bit"];
    bad_machine_old_code: other_machine, Via::OldCode, &["machine"];
    bad_machine_rmsyms: other_machine, Via::Rmsyms, &["machine"];
    bad_machine_finalize: other_machine, Via::Finalize, &["machine"];
}

#[test]
fn bad_empty_file_old_code() {
    // A zero-length object is neither an ELF nor a plausible object.
    bad_object(
        "bad_empty_old_code",
        b"",
        Via::OldCode,
        &["truncated", "corrupt", "invalid", "not an ELF", "empty"],
    );
}

#[test]
fn bad_archive_old_code() {
    let d = TestDir::new("bad_archive");
    let cfg = make_config_dir(&d, "cfg");
    d.compile(&sample_c("arch"), "a.o");
    sh(&d.path, "ar", &["rcs", "x.a", "a.o"]);
    fs::copy(d.join("x.a"), d.join("obj.o")).unwrap();
    assert_bad_input(
        &d,
        &["old_code", "obj.o.KSPLICE_old_code"],
        &[("KSPLICE_CONFIG_DIR", cfg.to_str().unwrap())],
        "obj.o",
        &["archive"],
    );
}

// ---------------------------------------------------------------- bad input: System.map

fn system_map_is_directory(d: &TestDir) -> String {
    fs::create_dir_all(d.join("cfg/System.map")).unwrap();
    d.join("cfg").to_str().unwrap().to_string()
}

#[test]
fn bad_system_map_directory_old_code() {
    let d = TestDir::new("bad_sysmap_old_code");
    let cfg = system_map_is_directory(&d);
    d.compile(&sample_c("sm"), "a.o");
    assert_bad_input(
        &d,
        &["old_code", "a.o.KSPLICE_old_code"],
        &[("KSPLICE_CONFIG_DIR", &cfg)],
        "System.map",
        &["System.map"],
    );
}

#[test]
fn bad_system_map_directory_lookup() {
    let d = TestDir::new("bad_sysmap_lookup");
    let cfg = system_map_is_directory(&d);
    assert_bad_input(
        &d,
        &["system_map_lookup", "printk"],
        &[("KSPLICE_CONFIG_DIR", &cfg)],
        "System.map",
        &["System.map"],
    );
}

// ---------------------------------------------------------------- sanity of the fixtures

#[test]
fn fixtures_are_what_they_claim() {
    let t = truncated(Some(100), "fixture_trunc");
    assert_eq!(t.len(), 100);
    assert_eq!(&t[..4], b"\x7fELF");
    let e = elf32("fixture_elf32");
    assert_eq!(e[4], 1);
    let m = other_machine("fixture_machine");
    assert_eq!(u16::from_le_bytes([m[18], m[19]]), 183);
    let out = Command::new("readelf").arg("-h").arg("/dev/null").output();
    assert!(out.is_ok(), "readelf must be installed");
}
