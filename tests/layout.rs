//! Layout-change detection on C fixtures: each `tests/fixtures/layout/NAME.c`
//! is compiled with DWARF without and with `-DPOST`, and the comparison of
//! the two builds' struct and union layouts must find exactly the expected
//! changes. Also: the Kbuild command rewriting run for real, and bounded
//! fuzzing of the DWARF reader (mutated objects give Ok or Err, never a
//! panic; `KSPLICE_FUZZ_ITERS` raises the count).

mod support;

use ksplice::engine::layout::{self, Kind, Layout};
use object::{Object, ObjectSection};
use std::path::{Path, PathBuf};
use std::process::Command;
use support::fuzz::fuzz;
use support::*;

fn build(dir: &Path, case: &str, post: bool) -> PathBuf {
    compile_fixture(dir, "layout", case, post, &["-g", "-gdwarf-4"])
}

fn layouts(p: &Path) -> Vec<Layout> {
    layout::layouts_of_object(&std::fs::read(p).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// (layouts before, layouts after, one line per changed type).
fn run(case: &str) -> (Vec<Layout>, Vec<Layout>, Vec<String>) {
    let dir = scratch(&format!("layout-{case}"));
    let before = layouts(&build(&dir, case, false));
    let after = layouts(&build(&dir, case, true));
    let changes = layout::compare(&before, &after)
        .iter()
        .map(ToString::to_string)
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    (before, after, changes)
}

fn find<'a>(ls: &'a [Layout], name: &str) -> &'a Layout {
    ls.iter()
        .find(|l| l.name == name)
        .unwrap_or_else(|| panic!("no layout {name} in {ls:?}"))
}

#[test]
fn variable_types_name_file_scope_variables() {
    let dir = scratch("layout-variables");
    let data = std::fs::read(build(&dir, "variables", false)).unwrap();
    let t = layout::variable_types(&data).unwrap();
    assert_eq!(
        t.get("table").map(String::as_str),
        Some("struct ctl_table [2]")
    );
    assert_eq!(t.get("levels").map(String::as_str), Some("int [4]"));
    assert_eq!(t.get("counter").map(String::as_str), Some("int"));
    assert!(t["table_ptr"].ends_with("struct ctl_table *"), "{t:?}");
    assert!(
        !t.contains_key("local"),
        "function-local statics are left out: {t:?}"
    );
    assert!(matches!(
        layout::variable_types(b"junk"),
        Err(layout::LayoutError::Elf(_))
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn added_member() {
    let (before, after, changes) = run("added_member");
    assert_eq!(find(&before, "foo").size, 16);
    assert_eq!(find(&after, "foo").size, 24);
    assert_eq!(
        changes,
        [
            "struct foo changed layout: member 'bar' added at offset 8, member 'c' moved from offset 8 to 16 (size 16 -> 24)"
        ]
    );
}

#[test]
fn reordered_members() {
    let (_, _, changes) = run("reordered_members");
    assert_eq!(
        changes,
        [
            "struct pair changed layout: member 'second' moved from offset 4 to 0, member 'first' moved from offset 0 to 4"
        ]
    );
}

#[test]
fn changed_member_type() {
    let (_, _, changes) = run("changed_member_type");
    assert_eq!(
        changes,
        [
            "struct counter changed layout: member 'hits' changed type from 'unsigned int' to 'long long unsigned int' (size 4 -> 8), member 'flags' moved from offset 4 to 8 (size 8 -> 16)"
        ]
    );
}

#[test]
fn changed_array_size() {
    let (before, _, changes) = run("changed_array_size");
    let m = &find(&before, "named").members[0];
    assert_eq!(
        (m.name.as_str(), m.type_name.as_str(), m.size),
        ("name", "char [16]", 16)
    );
    assert_eq!(
        changes,
        [
            "struct named changed layout: member 'name' changed type from 'char [16]' to 'char [32]' (size 16 -> 32), member 'id' moved from offset 16 to 32 (size 20 -> 36)"
        ]
    );
}

#[test]
fn changed_function_with_unchanged_layouts_is_not_a_change() {
    let (before, after, changes) = run("function_only");
    assert!(changes.is_empty(), "{changes:?}");
    assert_eq!(before, after);
    let stats = find(&before, "stats");
    assert_eq!(stats.kind, Kind::Struct);
    assert_eq!(stats.size, 16);
    let names: Vec<(&str, u64, &str)> = stats
        .members
        .iter()
        .map(|m| (m.name.as_str(), m.offset, m.type_name.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("reads", 0, "long unsigned int"),
            ("writes", 8, "long unsigned int")
        ]
    );
    // The anonymous struct named by a typedef is collected under its name.
    let r = find(&before, "range_t");
    assert!(r.typedef);
    assert_eq!(r.size, 8);
}

#[test]
fn union_change() {
    let (before, _, changes) = run("union_change");
    assert_eq!(find(&before, "value").kind, Kind::Union);
    assert_eq!(
        changes,
        ["union value changed layout: member 'bytes' added at offset 0 (size 8 -> 16)"]
    );
}

#[test]
fn nested_anonymous_struct_change() {
    let (before, _, changes) = run("anon_nested");
    let names: Vec<(&str, u64)> = find(&before, "packet")
        .members
        .iter()
        .map(|m| (m.name.as_str(), m.offset))
        .collect();
    assert_eq!(
        names,
        [
            ("kind", 0),
            ("(anonymous union #1)", 8),
            ("(anonymous union #1)/(anonymous struct #1)", 8),
            ("port", 8),
            ("addr", 12),
            ("raw", 8),
            ("tail", 16),
        ]
    );
    assert_eq!(
        changes,
        [
            "struct packet changed layout: member 'extra' added at offset 12, member '(anonymous union #1)' changed size from 8 to 16, member '(anonymous union #1)/(anonymous struct #1)' changed size from 8 to 12 and 2 more changes (size 24 -> 32)"
        ]
    );
    let dir = scratch("layout-anon-full");
    let all = layout::compare(
        &layouts(&build(&dir, "anon_nested", false)),
        &layouts(&build(&dir, "anon_nested", true)),
    );
    assert_eq!(
        all[0].changes[3..],
        [
            "member 'addr' moved from offset 12 to 16",
            "member 'tail' moved from offset 16 to 24"
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn new_and_removed_types_are_not_changes() {
    let (before, after, changes) = run("new_and_removed_types");
    assert!(changes.is_empty(), "{changes:?}");
    find(&before, "stale");
    find(&after, "fresh");
}

#[test]
fn bitfield_change() {
    let (before, _, changes) = run("bitfield_change");
    let bits: Vec<Option<(u64, u64)>> = find(&before, "flags")
        .members
        .iter()
        .map(|m| m.bits)
        .collect();
    assert_eq!(bits, [Some((0, 3)), Some((3, 1))]);
    assert_eq!(
        changes,
        [
            "struct flags changed layout: member 'mode' changed from bits 0..3 to bits 0..4, member 'dirty' changed from bits 3..4 to bits 4..5"
        ]
    );
}

#[test]
fn typedef_of_anonymous_struct_change() {
    let (_, _, changes) = run("typedef_anon");
    assert_eq!(
        changes,
        [
            "typedef struct {...} gen_counter_t changed layout: member 'generation' added at offset 4 (size 4 -> 8)"
        ]
    );
}

/// The Kbuild command, rewritten, compiles for real: a `.cmd` file as Kbuild
/// writes it (with `ksplice-cc`, dependency output, `-g0`, an objtool step).
#[test]
fn kbuild_command_rewritten_and_run() {
    let dir = scratch("layout-cmd");
    let src = fixture("layout/added_member.c");
    let cmd = format!(
        "cmd_sub/added.o := ksplice-cc gcc -Wp,-MMD,sub/.added.o.d -O2 -g0 -DKBUILD_MODNAME='\"added\"' -c -o sub/added.o {}   ; false objtool sub/added.o\n",
        src.display()
    );
    let out = dir.join("after.o");
    let words =
        layout::debug_compile_command(&cmd, "sub/added.o", &out.display().to_string()).unwrap();
    let st = Command::new(&words[0])
        .args(&words[1..])
        .current_dir(&dir)
        .status()
        .unwrap();
    assert!(st.success());
    assert!(
        !dir.join("sub").exists(),
        "nothing written beside the object"
    );
    let l = layouts(&out);
    assert_eq!(find(&l, "foo").size, 16);
    let _ = std::fs::remove_dir_all(&dir);
}

/// An object without DWARF is a typed error.
#[test]
fn object_without_dwarf() {
    let dir = scratch("layout-nodwarf");
    let o = compile(&dir, "plain", "int f(int x) { return x + 1; }\n");
    assert_eq!(
        layout::layouts_of_object(&std::fs::read(&o).unwrap()),
        Err(layout::LayoutError::NoDebugInfo)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Mutated DWARF-bearing objects: byte flips and overwrites anywhere, more
/// often inside the debug sections (DIEs, abbreviations, strings,
/// relocations), and truncation. Every mutant must give Ok or Err.
#[test]
fn fuzz_dwarf_reader_never_panics() {
    let dir = scratch("layout-fuzz");
    let mut objs = Vec::new();
    for case in [
        "anon_nested",
        "bitfield_change",
        "function_only",
        "union_change",
    ] {
        let d = dir.join(case);
        std::fs::create_dir_all(&d).unwrap();
        objs.push(std::fs::read(build(&d, case, true)).unwrap());
    }
    let (iters, read) = fuzz(
        "dwarf",
        5000,
        &dir,
        |rng, seed| {
            let base = &objs[(seed % objs.len() as u64) as usize];
            let ranges: Vec<(usize, usize)> = object::File::parse(base.as_slice())
                .unwrap()
                .sections()
                .filter(|s| s.name().is_ok_and(|n| n.contains("debug")))
                .filter_map(|s| {
                    let (off, len) = s.file_range()?;
                    Some((off as usize, len as usize))
                })
                .filter(|r| r.1 > 0)
                .collect();
            let mut d = base.clone();
            for _ in 0..1 + rng.below(6) {
                let at = if !ranges.is_empty() && rng.below(4) != 0 {
                    let (off, len) = ranges[rng.below(ranges.len())];
                    off + rng.below(len)
                } else {
                    rng.below(d.len())
                };
                match rng.below(4) {
                    0 => d[at] ^= 1 << rng.below(8),
                    1 => d[at] = rng.next() as u8,
                    2 => d[at] = [0u8, 1, 0x7f, 0x80, 0xff][rng.below(5)],
                    _ => {
                        let end = (at + 4).min(d.len());
                        let v = (rng.next() as u32).to_le_bytes();
                        d[at..end].copy_from_slice(&v[..end - at]);
                    }
                }
            }
            if rng.below(20) == 0 {
                let keep = rng.below(d.len());
                d.truncate(keep);
            }
            d
        },
        |d, _| layout::layouts_of_object(d).is_ok(),
    );
    // Mutants both read and refused: the mutations reach past the ELF
    // header into the DWARF (a short replay run may see only one kind).
    if iters >= 100 {
        assert!(read > 0 && read < iters, "{read} of {iters} mutants read");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
