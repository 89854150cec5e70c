//! The differencing engine on C fixtures: each `tests/fixtures/diff/NAME.c`
//! is compiled without and with `-DPOST`, and keep-new-code must find
//! exactly the expected changes.

mod support;

use ksplice::engine::elf::Object;
use ksplice::engine::meta::{self, HowtoType, PATCH_SIZE, PatchType};
use ksplice::engine::metaread::Reader;
use ksplice::engine::report::{Entry, Report};
use ksplice::engine::sysmap::SystemMap;
use ksplice::engine::transform::{self, NewCode};
use std::path::{Path, PathBuf};
use support::*;

fn build(dir: &Path, case: &str, post: bool) -> PathBuf {
    compile_fixture(dir, "diff", case, post, &[])
}

fn load(p: &Path) -> Object {
    Object::parse(&std::fs::read(p).unwrap()).unwrap()
}

/// Runs keep-new-code on a fixture; the object is named `a.o` in labels.
fn run(case: &str) -> (NewCode, PathBuf) {
    let dir = scratch(&format!("diff-{case}"));
    let pre = build(&dir, case, false);
    let post = build(&dir, case, true);
    let nc = transform::keep_new_code(
        load(&pre),
        "a.o.KSPLICE_pre",
        load(&post),
        "a.o",
        "test",
        &SystemMap::default(),
    )
    .unwrap_or_else(|e| panic!("{case}: {e}"));
    (nc, dir)
}

fn names(entries: &[ksplice::engine::report::Entry]) -> Vec<String> {
    let mut v: Vec<String> = entries.iter().map(|e| e.name.clone()).collect();
    v.sort();
    v
}

/// The reason of `entry` (of `name`, in its list): `prefix` then
/// `suffix` (a relocation's cause), and its offset as the JSON gives it.
fn assert_reason(entries: &[Entry], name: &str, prefix: &str, suffix: &str) {
    let e = entries
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("{name} in {entries:?}"));
    let reason = e.reason.as_deref().unwrap_or_default();
    assert!(
        reason.starts_with(prefix) && reason.ends_with(suffix),
        "{name}: {reason:?}, wanted {prefix}..{suffix}"
    );
    if prefix == "differing size" {
        assert_eq!(e.offset, None, "{name}");
    } else {
        let hex = reason[prefix.len()..].split(':').next().unwrap_or_default();
        let at = u64::from_str_radix(hex.trim_start_matches("0x"), 16);
        assert_eq!(e.offset, at.ok(), "{name}: the offset is the reason's");
    }
}

const BYTES: &str = "differing bytes at offset 0x";
const RELOCS: &str = "differing relocations at offset 0x";

fn patch_records(obj: &Object) -> u64 {
    obj.sections
        .iter()
        .filter(|s| s.name.starts_with(".ksplice_patches"))
        .map(|s| s.size() / PATCH_SIZE)
        .sum()
}

/// The `type` of every `ksplice_patch` record, in section then record order.
fn patch_types(obj: &Object) -> Vec<u64> {
    obj.sections
        .iter()
        .filter(|s| s.name.starts_with(".ksplice_patches"))
        .flat_map(|s| (0..s.size() / PATCH_SIZE).map(move |i| s.read_uint(i * PATCH_SIZE + 16, 4)))
        .map(|t| t.unwrap())
        .collect()
}

/// Expected outcome of one fixture.
struct Expect {
    patched: &'static [&'static str],
    new: &'static [&'static str],
    deleted: &'static [&'static str],
    patches: u64,
}

fn check(case: &str, e: Expect) -> (Report, Option<Object>) {
    let (nc, dir) = run(case);
    let r = &nc.report;
    assert_eq!(Report::from_json(&r.json()).unwrap(), *r, "{case}: JSON");
    assert!(r.refused.is_empty(), "{case}: refused {:?}", r.refused);
    assert_eq!(names(&r.patched_functions), e.patched, "{case}: patched");
    assert_eq!(names(&r.new_functions), e.new, "{case}: new");
    assert_eq!(names(&r.deleted_functions), e.deleted, "{case}: deleted");
    match &nc.object {
        Some(obj) => {
            assert_eq!(
                patch_records(obj),
                e.patches,
                "{case}: ksplice_patch records"
            );
            let path = dir.join("a.o.KSPLICE_new_code");
            std::fs::write(&path, obj.to_bytes().unwrap()).unwrap();
            assert_binutils_accept(&path);
        }
        None => assert_eq!(e.patches, 0, "{case}: no new code"),
    }
    (nc.report, nc.object)
}

#[test]
fn changed_constant_patches_one_function() {
    check(
        "changed_constant",
        Expect {
            patched: &["foo"],
            new: &[],
            deleted: &[],
            patches: 1,
        },
    );
}

#[test]
fn static_inline_change_patches_both_users() {
    check(
        "static_inline_two_users",
        Expect {
            patched: &["user_one", "user_two"],
            new: &[],
            deleted: &[],
            patches: 2,
        },
    );
}

#[test]
fn isra_clone_is_matched_by_stem() {
    let (r, _) = check(
        "isra_clone",
        Expect {
            patched: &["caller"],
            new: &[],
            deleted: &[],
            patches: 1,
        },
    );
    assert!(
        r.new_functions.is_empty(),
        "the unchanged .isra clone is not new"
    );
}

#[test]
fn constprop_clone_is_patched_under_its_own_name() {
    check(
        "constprop_clone",
        Expect {
            patched: &["report.constprop.0"],
            new: &[],
            deleted: &[],
            patches: 1,
        },
    );
}

#[test]
fn changed_string_literal_patches_its_user() {
    let (r, _) = check(
        "string_changed",
        Expect {
            patched: &["hello"],
            new: &[],
            deleted: &[],
            patches: 1,
        },
    );
    // The new string has no counterpart: the reference to it differs.
    assert_reason(
        &r.patched_functions,
        "hello",
        RELOCS,
        ": target not matched",
    );
}

#[test]
fn function_of_a_shared_text_section_is_patched_alone() {
    check(
        "multi_function_section",
        Expect {
            patched: &["second"],
            new: &[],
            deleted: &[],
            patches: 1,
        },
    );
}

#[test]
fn unchanged_string_travels_with_the_new_code() {
    let (_, obj) = check(
        "unchanged_string_copied",
        Expect {
            patched: &["greet"],
            new: &[],
            deleted: &[],
            patches: 1,
        },
    );
    let obj = obj.unwrap();
    let labels: Vec<String> = Reader::new(&obj)
        .relocs()
        .into_iter()
        .filter_map(|k| k.symbol.map(|s| s.label))
        .collect();
    assert!(
        !labels.iter().any(|l| l.starts_with(".rodata")),
        "no reference to the running kernel's copy of the string: {labels:?}"
    );
    let needle = b"unchanged greeting";
    assert!(
        obj.sections
            .iter()
            .filter(|s| s.name.starts_with(".rodata"))
            .any(|s| s.data.windows(needle.len()).any(|w| w == needle)),
        "the new code carries the string"
    );
}

#[test]
fn moved_string_is_no_change() {
    let (r, obj) = check(
        "string_moved",
        Expect {
            patched: &[],
            new: &[],
            deleted: &[],
            patches: 0,
        },
    );
    assert!(!r.has_changes() && obj.is_none(), "{r:?}");
}

#[test]
fn new_static_local_lives_in_new_code() {
    let (r, obj) = check(
        "new_static_local",
        Expect {
            patched: &["tick"],
            new: &[],
            deleted: &[],
            patches: 1,
        },
    );
    assert_eq!(r.new_data.len(), 1);
    assert!(r.new_data[0].name.starts_with("count"));
    let obj = obj.unwrap();
    assert!(
        obj.sections
            .iter()
            .any(|s| s.name.starts_with(".bss.count")),
        "the new counter is in the new code"
    );
}

#[test]
fn existing_static_local_is_the_running_instance() {
    let (r, obj) = check(
        "existing_static_local",
        Expect {
            patched: &["tick"],
            new: &[],
            deleted: &[],
            patches: 1,
        },
    );
    assert!(r.new_data.is_empty());
    assert_reason(&r.patched_functions, "tick", RELOCS, ": target not matched");
    let obj = obj.unwrap();
    assert!(
        !obj.sections.iter().any(|s| s.name.starts_with(".bss")),
        "no copy of the static local"
    );
    let labels: Vec<String> = Reader::new(&obj)
        .relocs()
        .into_iter()
        .filter_map(|k| k.symbol.map(|s| s.label))
        .collect();
    assert!(
        labels.iter().any(|l| l.starts_with("calls<.text.tick>")),
        "new code refers to the old instance by its label: {labels:?}"
    );
}

#[test]
fn writable_data_change_is_refused() {
    let (nc, _) = run("writable_data_refused");
    assert_eq!(names(&nc.report.refused), ["limit"]);
    assert_eq!(nc.report.refused[0].section, ".data.limit");
    assert_reason(&nc.report.refused, "limit", BYTES, "");
}

#[test]
fn writable_data_size_change_is_refused() {
    let (nc, _) = run("bss_size_changed");
    assert_eq!(names(&nc.report.refused), ["buffer"]);
    assert_eq!(
        nc.report.refused[0].reason.as_deref(),
        Some("differing size")
    );
}

#[test]
fn retargeted_function_pointer_table_is_refused() {
    let (nc, _) = run("global_data_pointer");
    assert_eq!(names(&nc.report.refused), ["ops"]);
    // The table's pointer now leads to another (matched) function.
    assert_eq!(
        nc.report.refused[0].reason.as_deref(),
        Some("differing relocations at offset 0x0: target changed")
    );
    assert_eq!(nc.report.refused[0].offset, Some(0));
}

#[test]
fn line_only_change_is_a_bug_line_patch() {
    let (r, obj) = check(
        "line_only",
        Expect {
            patched: &[],
            new: &[],
            deleted: &[],
            patches: 1,
        },
    );
    assert_eq!(r.bug_line_patches.len(), 1);
    let obj = obj.unwrap();
    // A bug-line record, which the loader may skip, not a data patch.
    assert_eq!(patch_types(&obj), [PatchType::BugLine as u64]);
    // It rewrites only the byte that differs (the low byte of the line),
    // never the flags (a fired WARN_ONCE's BUGFLAG_DONE stays).
    let rec = obj
        .sections
        .iter()
        .find(|s| s.name.starts_with(".ksplice_patches"))
        .unwrap();
    assert_eq!(rec.read_uint(20, 4), Some(1), "size of the bug-line record");
    // The patch rewrites the line field (offset 8 of the entry) of the running entry.
    let patch = Reader::new(&obj)
        .relocs()
        .into_iter()
        .find(|k| k.in_section.starts_with(".ksplice_relocs.text.checked"))
        .unwrap();
    assert_eq!(patch.target_addend, 8);
    assert!(
        patch
            .symbol
            .unwrap()
            .label
            .starts_with("__bug_table<target:checked")
    );
}

#[test]
fn a_warning_in_boot_time_code_is_named_after_its_function() {
    let (r, obj) = check(
        "line_shift_in_init",
        Expect {
            patched: &[],
            new: &[],
            deleted: &[],
            patches: 2,
        },
    );
    // `.init.text` holds both functions in one span: the entry of the
    // second is named after the function, not after the section's first.
    let labels: Vec<String> = Reader::new(&obj.unwrap())
        .relocs()
        .into_iter()
        .filter_map(|k| k.symbol.map(|s| s.label))
        .filter(|l| l.starts_with("__bug_table<target:"))
        .collect();
    assert!(
        labels
            .iter()
            .any(|l| l.starts_with("__bug_table<target:second_setup+")),
        "{labels:?} ({:?})",
        r.bug_line_patches
    );
    assert!(
        !labels.iter().any(|l| l.contains("first_setup")),
        "{labels:?}"
    );
}

#[test]
fn moved_warning_below_a_changed_function_is_a_bug_line_record() {
    let (r, obj) = check(
        "line_shift_and_change",
        Expect {
            patched: &["foo"],
            new: &[],
            deleted: &[],
            patches: 2,
        },
    );
    assert_eq!(r.bug_line_patches.len(), 1);
    assert!(r.patched_data.is_empty(), "{:?}", r.patched_data);
    let obj = obj.unwrap();
    let mut types = patch_types(&obj);
    types.sort();
    assert_eq!(
        types,
        [PatchType::Text as u64, PatchType::BugLine as u64],
        "the jump of foo and the line of the warning in checked"
    );
    // The loader finds vmlinux's running bug table through System.map.
    let relocs = Reader::new(&obj).relocs();
    for bound in ["__start___bug_table", "__stop___bug_table"] {
        let marker = relocs
            .iter()
            .find(|k| k.deferred.as_deref() == Some(&format!("KSPLICE_SYMBOL_{bound}")))
            .unwrap_or_else(|| panic!("no marker for {bound}"));
        let h = marker.howto.as_ref().unwrap();
        assert_eq!((h.kind, h.size), (HowtoType::Symbol as u32, 0), "{bound}");
    }
}

#[test]
fn data_patch_is_not_a_bug_line_record() {
    let (_, obj) = check(
        "rodata_same_size",
        Expect {
            patched: &[],
            new: &[],
            deleted: &[],
            patches: 1,
        },
    );
    assert_eq!(patch_types(&obj.unwrap()), [PatchType::Data as u64]);
}

#[test]
fn deleted_function_is_recorded() {
    check(
        "deleted_function",
        Expect {
            patched: &["entry"],
            new: &[],
            deleted: &["legacy"],
            patches: 2,
        },
    );
}

#[test]
fn new_function_is_kept() {
    let (_, obj) = check(
        "new_function",
        Expect {
            patched: &["handle"],
            new: &["validate.isra.0"],
            deleted: &[],
            patches: 1,
        },
    );
    assert!(
        obj.unwrap()
            .sections
            .iter()
            .any(|s| s.name.starts_with(".text.validate"))
    );
}

#[test]
fn changed_exported_function_is_not_exported_again() {
    let (r, obj) = check(
        "exported_function_changed",
        Expect {
            patched: &["sleepy"],
            new: &[],
            deleted: &[],
            patches: 1,
        },
    );
    assert!(r.new_exports.is_empty() && r.deleted_exports.is_empty());
    let obj = obj.unwrap();
    // modpost would refuse the module: the kernel already exports it.
    assert!(
        !obj.sections
            .iter()
            .any(|s| s.name.starts_with("___ksymtab")),
        "the new code carries no export entry"
    );
    assert!(!obj.symbols.iter().any(|s| s.name.starts_with("__ksymtab_")));
}

#[test]
fn new_export_is_recorded() {
    let (r, _) = check(
        "new_export",
        Expect {
            patched: &[],
            new: &[],
            deleted: &[],
            patches: 1,
        },
    );
    assert_eq!(r.new_exports.len(), 1);
    assert!(r.new_exports[0].section.ends_with("+baz"));
}

#[test]
fn deleted_export_is_recorded() {
    let (r, _) = check(
        "deleted_export",
        Expect {
            patched: &[],
            new: &[],
            deleted: &[],
            patches: 1,
        },
    );
    assert_eq!(r.deleted_exports.len(), 1);
}

#[test]
fn same_size_rodata_change_is_patched_in_place() {
    let (r, _) = check(
        "rodata_same_size",
        Expect {
            patched: &[],
            new: &[],
            deleted: &[],
            patches: 1,
        },
    );
    assert_eq!(names(&r.patched_data), ["table"]);
}

#[test]
fn resized_rodata_is_new_and_its_users_patched() {
    let (r, _) = check(
        "rodata_new_size",
        Expect {
            patched: &["lookup"],
            new: &[],
            deleted: &[],
            patches: 1,
        },
    );
    assert_eq!(names(&r.new_data), ["table"]);
}

#[test]
fn renumbered_symbols_are_no_change() {
    let (r, _) = check(
        "symbol_renumbering",
        Expect {
            patched: &[],
            new: &[],
            deleted: &[],
            patches: 0,
        },
    );
    assert_eq!(names(&r.new_data), ["added_first", "added_second"]);
}

#[test]
fn cold_path_split_function() {
    check(
        "cold_split",
        Expect {
            patched: &["work"],
            new: &[],
            deleted: &[],
            patches: 1,
        },
    );
}

#[test]
fn changed_callee_leaves_caller_alone() {
    check(
        "caller_of_changed",
        Expect {
            patched: &["callee"],
            new: &[],
            deleted: &[],
            patches: 1,
        },
    );
}

#[test]
fn two_changed_functions_and_their_inliner() {
    check(
        "two_changes",
        Expect {
            patched: &["alpha", "beta", "gamma_"],
            new: &[],
            deleted: &[],
            patches: 3,
        },
    );
}

#[test]
fn too_small_function_is_refused_clearly() {
    let dir = scratch("tiny");
    let pre = build(&dir, "tiny_function", false);
    let post = build(&dir, "tiny_function", true);
    let e = transform::keep_new_code(
        load(&pre),
        "a.o.KSPLICE_pre",
        load(&post),
        "a.o",
        "t",
        &SystemMap::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("tiny") && e.contains("shorter than the 5-byte jump"),
        "{e}"
    );
}

fn all_cases() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(fixture("diff"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".c"))
                .map(String::from)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn fixture_suite_is_large_enough() {
    assert!(all_cases().len() >= 20);
}

#[test]
fn every_fixture_object_against_itself_is_no_change() {
    for case in all_cases() {
        let dir = scratch(&format!("self-{case}"));
        for post in [false, true] {
            let o = build(&dir, &case, post);
            let nc = transform::keep_new_code(
                load(&o),
                "a.o.KSPLICE_pre",
                load(&o),
                "a.o",
                "t",
                &SystemMap::default(),
            )
            .unwrap();
            assert!(
                !nc.report.has_changes() && nc.object.is_none(),
                "{case} (post={post}): {:?}",
                nc.report
            );
            assert!(nc.report.refused.is_empty());
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn compiling_twice_is_no_change() {
    for case in all_cases() {
        let a = scratch(&format!("twice-a-{case}"));
        let b = scratch(&format!("twice-b-{case}"));
        let (x, y) = (build(&a, &case, true), build(&b, &case, true));
        let nc = transform::keep_new_code(
            load(&x),
            "a.o.KSPLICE_pre",
            load(&y),
            "a.o",
            "t",
            &SystemMap::default(),
        )
        .unwrap();
        assert!(nc.object.is_none(), "{case}: {:?}", nc.report);
    }
}

#[test]
fn cli_refusal_names_symbol_and_section_and_can_be_overridden() {
    let dir = scratch("cli-refuse");
    let pre = build(&dir, "writable_data_refused", false);
    let post = build(&dir, "writable_data_refused", true);
    std::fs::copy(&pre, dir.join("a.o.KSPLICE_pre")).unwrap();
    std::fs::copy(&post, dir.join("a.o")).unwrap();
    let out = ksplice_obj(&dir, &["diff", "a.o.KSPLICE"], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("limit")
            && err.contains(".data.limit")
            && err.contains("KSPLICE_ALLOW_DATA_CHANGE"),
        "{err}"
    );
    assert!(
        !dir.join("a.o.KSPLICE").exists(),
        "no marker after a refusal"
    );
    let report = std::fs::read_to_string(dir.join("a.o.KSPLICE_report.json")).unwrap();
    assert!(
        report.contains("\"refused\": [") && report.contains("\"name\": \"limit\""),
        "{report}"
    );
    assert!(
        dir.join("a.o.KSPLICE_pre").exists(),
        "the pre object stays for revert"
    );
    let out = ksplice_obj(
        &dir,
        &["diff", "a.o.KSPLICE"],
        &[("KSPLICE_ALLOW_DATA_CHANGE", "1")],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("warning: ignoring change to writable data limit"),
        "{err}"
    );
    // Nothing else changed: an empty marker, the data stays the running instance.
    assert_eq!(std::fs::read(dir.join("a.o.KSPLICE")).unwrap(), b"");
}

/// With `KSPLICE_DATA_IN_PLACE=1` a changed table of unchanged size is
/// rewritten in place: a data patch in new code, the table in old code for
/// matching, flagged rewritten; a size change stays refused.
#[test]
fn cli_rewrites_writable_data_in_place_when_asked() {
    let dir = scratch("cli-rewrite");
    let pre = build(&dir, "writable_table_rewritten", false);
    let post = build(&dir, "writable_table_rewritten", true);
    std::fs::copy(&pre, dir.join("a.o.KSPLICE_pre")).unwrap();
    std::fs::copy(&post, dir.join("a.o")).unwrap();
    let out = ksplice_obj(&dir, &["diff", "a.o.KSPLICE"], &[]);
    assert_eq!(out.status.code(), Some(1), "refused unless asked");
    let env = [("KSPLICE_DATA_IN_PLACE", "1")];
    let out = ksplice_obj(&dir, &["diff", "a.o.KSPLICE"], &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(dir.join("a.o.KSPLICE")).unwrap(), b"1\n");
    let json = std::fs::read_to_string(dir.join("a.o.KSPLICE_report.json")).unwrap();
    let r = Report::from_json(&json).unwrap();
    assert_eq!(names(&r.rewritten_data), ["table"]);
    assert!(
        r.refused.is_empty() && r.patched_functions.is_empty(),
        "{r:?}"
    );
    let new = load(&dir.join("a.o.KSPLICE_new_code"));
    assert_eq!(patch_types(&new), [PatchType::Data as u64]);
    let old = load(&dir.join("a.o.KSPLICE_old_code"));
    let flags: Vec<u32> = Reader::new(&old)
        .sections()
        .into_iter()
        .filter(|s| {
            s.symbol
                .as_ref()
                .is_some_and(|k| k.label.starts_with("table<"))
        })
        .map(|s| s.flags)
        .collect();
    assert_eq!(flags, [meta::SECTION_DATA | meta::SECTION_REWRITTEN]);
    // Only rewritten data is flagged: the old code's other data is not.
    let all = Reader::new(&old).sections();
    assert_eq!(
        all.iter()
            .filter(|s| s.flags & meta::SECTION_REWRITTEN != 0)
            .count(),
        1,
        "{all:?}"
    );
    let dir = scratch("cli-rewrite-size");
    let pre = build(&dir, "bss_size_changed", false);
    let post = build(&dir, "bss_size_changed", true);
    std::fs::copy(&pre, dir.join("a.o.KSPLICE_pre")).unwrap();
    std::fs::copy(&post, dir.join("a.o")).unwrap();
    let out = ksplice_obj(&dir, &["diff", "a.o.KSPLICE"], &env);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a size change cannot be rewritten"
    );
}

#[test]
fn cli_diff_writes_new_and_old_code_and_marker() {
    let dir = scratch("cli-diff");
    let pre = build(&dir, "changed_constant", false);
    let post = build(&dir, "changed_constant", true);
    std::fs::copy(&pre, dir.join("a.o.KSPLICE_pre")).unwrap();
    std::fs::copy(&post, dir.join("a.o")).unwrap();
    let out = ksplice_obj(&dir, &["diff", "a.o.KSPLICE"], &[("KSPLICE_VERBOSE", "1")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("PATCH") && text.contains("foo"), "{text}");
    assert_eq!(std::fs::read(dir.join("a.o.KSPLICE")).unwrap(), b"1\n");
    for f in ["a.o.KSPLICE_new_code", "a.o.KSPLICE_old_code"] {
        assert_binutils_accept(&dir.join(f));
    }
    let report = std::fs::read_to_string(dir.join("a.o.KSPLICE_report.json")).unwrap();
    assert!(
        report.contains("\"patched_functions\": [\n    {\n      \"name\": \"foo\""),
        "{report}"
    );
    let read = Report::from_json(&report).unwrap();
    assert_eq!(names(&read.patched_functions), ["foo"]);
    assert_reason(&read.patched_functions, "foo", BYTES, "");
    // Finalize makes it loadable: no undefined symbol outside metadata.
    let out = ksplice_obj(
        &dir,
        &["finalize", "a.o.KSPLICE_new_code", "final.o", "vmlinux"],
        &[],
    );
    assert!(out.status.success());
    assert_binutils_accept(&dir.join("final.o"));
}

#[test]
fn static_cpu_has_stub_changes_with_its_function_only() {
    let (r, obj) = check(
        "altinstr_stub",
        Expect {
            patched: &[".altinstr_aux<from:second_user#0>", "second_user"],
            new: &[],
            deleted: &[],
            // No jump over the stub: only the replaced function enters it.
            patches: 1,
        },
    );
    // The stub jumps back into its (resized) function at another offset.
    assert_reason(
        &r.patched_functions,
        ".altinstr_aux<from:second_user#0>",
        RELOCS,
        ": offset in target differs",
    );
    assert_reason(&r.patched_functions, "second_user", "differing size", "");
    let obj = obj.unwrap();
    let text = obj.section_by_name(".text.second_user").unwrap();
    let targets: Vec<&str> = obj.sections[text]
        .relocs
        .iter()
        .map(|r| obj.symbol_name(r.sym))
        .collect();
    assert!(
        targets.contains(&".altinstr_aux"),
        "the new function enters its new stub: {targets:?}"
    );
    // The alternatives of the new function go with it, as site records the
    // core applies once the relocations are filled (the module loader would
    // copy canaries), and not as a table the module loader acts on.
    assert!(obj.section_by_name(".altinstructions").is_none());
    let sites = obj
        .section_by_name(".ksplice_sites")
        .expect("alternatives kept as sites");
    let sec = &obj.sections[sites];
    assert_eq!(
        sec.size(),
        2 * ksplice::engine::meta::SITE_SIZE,
        "the two entries of second_user"
    );
    for rec in [0, ksplice::engine::meta::SITE_SIZE] {
        assert_eq!(
            sec.read_uint(rec + 16, 2),
            Some(ksplice::engine::meta::SiteKind::Alternative as u64)
        );
        let addr = sec.relocs.iter().find(|r| r.offset == rec).expect("addr");
        assert_eq!(obj.symbol_name(addr.sym), ".text.second_user");
    }
}

#[test]
fn hook_sections_are_carried_through() {
    let (_, obj) = check(
        "hook_section",
        Expect {
            patched: &["work"],
            new: &["announce"],
            deleted: &[],
            patches: 1,
        },
    );
    let obj = obj.unwrap();
    let hooks = obj
        .section_by_name(".ksplice_call_post_apply")
        .expect("hook section kept");
    let rel = obj.sections[hooks]
        .relocs
        .first()
        .expect("hook pointer relocation");
    assert_eq!(obj.sections[hooks].size(), 8);
    assert_eq!(
        obj.symbol_name(rel.sym),
        ".text.announce",
        "points at the new hook function"
    );
}
