//! Boot-time rewrite sites: what `engine::sites` finds in an object built
//! the way a distribution kernel is (fentry, IBT, return and retpoline
//! thunks, jump labels, alternatives, paravirt, static calls, lock
//! prefixes, jumps the running build may have relaxed), and the
//! `ksplice_site` records keep-old-code writes from them.

mod support;

use ksplice::engine::elf::{Object, SecId};
use ksplice::engine::meta::{SITE_SIZE, SiteKind};
use ksplice::engine::sites::{Site, find_sites};
use ksplice::engine::span::{Analysis, Options};
use ksplice::engine::sysmap::SystemMap;
use ksplice::engine::transform;
use object::elf;
use support::*;

/// The flags of a distribution kernel that make rewrite sites.
const DISTRO: &[&str] = &[
    "-pg",
    "-mfentry",
    "-fcf-protection=branch",
    "-mfunction-return=thunk-extern",
    "-mindirect-branch=thunk-extern",
    "-mindirect-branch-register",
];

fn rewrites() -> Object {
    let dir = scratch("sites");
    let o = dir.join("rewrites.o");
    if let Err(e) = gcc(None, &[KFLAGS, DISTRO], &fixture("rewrites.c"), &o) {
        panic!("gcc: {e}");
    }
    Object::parse(&std::fs::read(&o).unwrap()).unwrap()
}

fn analysis(obj: Object) -> Analysis {
    Analysis::new(obj, "rewrites.o", Options { split_tables: true }).unwrap()
}

/// The sites of one section, as (offset, kind, len).
fn sites_of(a: &Analysis, sites: &[Site], name: &str) -> Vec<(u64, SiteKind, u8)> {
    let sect = a.obj.section_by_name(name).expect(name);
    sites
        .iter()
        .filter(|s| s.sect == sect)
        .map(|s| (s.offset, s.kind, s.len))
        .collect()
}

/// The byte offset of the first occurrence of `pat` in section `name`.
fn find(obj: &Object, name: &str, pat: &[u8]) -> u64 {
    let s = obj.section_by_name(name).expect(name);
    obj.sections[s]
        .data
        .windows(pat.len())
        .position(|w| w == pat)
        .unwrap_or_else(|| panic!("{pat:02x?} in {name}")) as u64
}

#[test]
fn every_kind_of_site_is_found_where_the_code_has_it() {
    let obj = rewrites();
    let text = ".text.rw_all";
    let alt = find(&obj, text, &[0x90; 5]);
    let para = find(&obj, text, &[0xff, 0x15]);
    let lock = find(&obj, text, &[0xf0, 0xff, 0x05]);
    let a = analysis(obj);
    let sites = find_sites(&a);
    let got = sites_of(&a, &sites, text);
    let has = |off: u64, kind: SiteKind, len: u8| {
        assert!(
            got.contains(&(off, kind, len)),
            "{kind:?} at {off:#x} (len {len}) in {got:x?}"
        )
    };
    has(0, SiteKind::Endbr, 4);
    has(4, SiteKind::Fentry, 5);
    has(alt, SiteKind::Alternative, 5);
    has(para, SiteKind::Paravirt, 6);
    has(lock, SiteKind::SmpLock, 1);
    let kinds: Vec<SiteKind> = got.iter().map(|g| g.1).collect();
    for k in [
        SiteKind::JumpLabel,
        SiteKind::StaticCall,
        SiteKind::Retpoline,
        SiteKind::Return,
        SiteKind::Relaxable,
    ] {
        assert!(kinds.contains(&k), "{k:?} in {got:x?}");
    }
    // Every site lies inside its section, and the code at it is what the
    // kind says.
    let data = &a.obj.sections[a.obj.section_by_name(text).unwrap()].data;
    for s in sites.iter().filter(|s| a.obj.sections[s.sect].name == text) {
        let b = &data[s.offset as usize..(s.offset + u64::from(s.len)) as usize];
        match s.kind {
            SiteKind::Fentry | SiteKind::StaticCall => assert_eq!(b[0], 0xe8),
            SiteKind::Return | SiteKind::Relaxable => assert_eq!(b[0], 0xe9),
            SiteKind::Retpoline => assert!(matches!(b[0], 0xe8 | 0xe9 | 0x0f)),
            SiteKind::Endbr => assert_eq!(b, [0xf3, 0x0f, 0x1e, 0xfa]),
            SiteKind::JumpLabel => assert!(
                b == [0x0f, 0x1f, 0x44, 0, 0] || matches!(b[0], 0xeb | 0xe9),
                "{b:x?}"
            ),
            _ => {}
        }
    }
}

#[test]
fn table_sites_carry_what_the_rule_needs() {
    let a = analysis(rewrites());
    let sites = find_sites(&a);
    let alt = sites
        .iter()
        .find(|s| s.kind == SiteKind::Alternative)
        .unwrap();
    assert_eq!((alt.feature, alt.aux_len), (9 * 32 + 20, 5));
    let (aux_sect, aux_off) = alt.aux.unwrap();
    assert_eq!(
        (a.obj.sections[aux_sect].name.as_str(), aux_off),
        (".altinstr_replacement", 0)
    );
    let para = sites.iter().find(|s| s.kind == SiteKind::Paravirt).unwrap();
    assert_eq!(para.feature, 5, "the pv_ops slot");
    let jl = sites
        .iter()
        .find(|s| s.kind == SiteKind::JumpLabel)
        .unwrap();
    let (t, off) = jl.aux.unwrap();
    assert_eq!(t, jl.sect, "a jump label's target is in its function");
    assert!(off > jl.offset && off < a.obj.sections[t].size());
}

#[test]
fn a_call_to_a_local_function_is_not_relaxable_and_plain_code_has_no_sites() {
    let a = analysis(rewrites());
    let sites = find_sites(&a);
    for s in sites.iter().filter(|s| s.kind == SiteKind::Relaxable) {
        assert_eq!(a.obj.sections[s.sect].data[s.offset as usize], 0xe9);
    }
    // Without the distribution flags and tables: no sites at all.
    let dir = scratch("sites-plain");
    let o = compile(&dir, "plain", "int f(int x) { return x * 7; }\n");
    let plain = analysis(Object::parse(&std::fs::read(o).unwrap()).unwrap());
    assert_eq!(find_sites(&plain), Vec::<Site>::new());
}

/// The `.ksplice_sites` records of an object: (kind, len, target section of addr).
fn records(out: &Object) -> Vec<(u16, u8, String)> {
    let s = out
        .section_by_name(".ksplice_sites")
        .expect(".ksplice_sites");
    let sec = &out.sections[s];
    assert_eq!(sec.size() % SITE_SIZE, 0);
    (0..sec.size() / SITE_SIZE)
        .map(|i| {
            let off = i * SITE_SIZE;
            let r = sec
                .relocs
                .iter()
                .find(|r| r.offset == off && r.r_type == elf::R_X86_64_64)
                .expect("addr is a pointer");
            let target = match out.symbols[r.sym].section.id() {
                Some(t) => out.sections[t].name.clone(),
                None => String::new(),
            };
            (
                sec.read_uint(off + 16, 2).unwrap() as u16,
                sec.read_uint(off + 18, 1).unwrap() as u8,
                target,
            )
        })
        .collect()
}

#[test]
fn old_code_has_site_records_and_no_table_the_module_loader_acts_on() {
    let out = transform::keep_old_code(rewrites(), "rewrites.o", &SystemMap::default()).unwrap();
    let recs = records(&out);
    for kind in [
        SiteKind::Endbr,
        SiteKind::Fentry,
        SiteKind::Alternative,
        SiteKind::Paravirt,
        SiteKind::JumpLabel,
        SiteKind::StaticCall,
        SiteKind::SmpLock,
        SiteKind::Retpoline,
        SiteKind::Return,
    ] {
        assert!(
            recs.iter()
                .any(|r| r.0 == kind as u16 && r.2 == ".text.rw_all"),
            "{kind:?} record for rw_all in {recs:?}"
        );
    }
    for name in [
        ".altinstructions",
        ".parainstructions",
        "__jump_table",
        ".smp_locks",
    ] {
        assert!(
            out.sections
                .iter()
                .all(|s| s.name != name && !s.name.ends_with(name)),
            "{name} left in old code"
        );
    }
    // The replacement is kept, and its call is a ksplice relocation (a
    // canary in the field, no ELF relocation the loader would apply).
    let r = out
        .section_by_name(".altinstr_replacement")
        .expect("replacement");
    assert!(out.sections[r].relocs.is_empty());
    assert_eq!(
        out.sections[r].read_uint(1, 4),
        Some(0x7777_7777),
        "canary in the replacement's call"
    );
}

#[test]
fn sites_only_come_from_kept_code() {
    let a = analysis(rewrites());
    let helper = a.obj.section_by_name(".text.rw_helper").unwrap();
    let all = find_sites(&a);
    assert!(all.iter().any(|s| s.sect == helper));
    // keep-old-code keeps both functions (globals and what they call):
    // every record's addr points into kept text.
    let out = transform::keep_old_code(a.obj.clone(), "rewrites.o", &SystemMap::default()).unwrap();
    for (_, _, target) in records(&out) {
        assert!(target.starts_with(".text."), "{target}");
    }
    let _ = SecId::new(0);
}

#[test]
fn new_code_leaves_thunk_sites_to_the_module_loader() {
    let dir = scratch("sites-new");
    let src = std::fs::read_to_string(fixture("rewrites.c")).unwrap();
    let post_c = dir.join("post.c");
    std::fs::write(
        &post_c,
        src.replace("return rw_helper(x) + x;", "return rw_helper(x) + 2 * x;"),
    )
    .unwrap();
    let post_o = dir.join("post.o");
    gcc(None, &[KFLAGS, DISTRO], &post_c, &post_o).unwrap();
    let post = Object::parse(&std::fs::read(&post_o).unwrap()).unwrap();
    let nc = transform::keep_new_code(
        rewrites(),
        "pre.o",
        post,
        "post.o",
        "t",
        &SystemMap::default(),
    )
    .unwrap();
    let out = nc.object.expect("rw_all changed");
    let text = out.section_by_name(".text.rw_all").expect("new rw_all");
    let elf_targets: Vec<&str> = out.sections[text]
        .relocs
        .iter()
        .map(|r| out.symbols[r.sym].name.as_str())
        .collect();
    for name in [
        "__x86_return_thunk",
        "__x86_indirect_thunk_rax",
        "__fentry__",
    ] {
        assert!(
            elf_targets.contains(&name),
            "{name}: an ELF relocation in new code ({elf_targets:?})"
        );
    }
    // The jump labels are left to the core (their key is the kernel's),
    // each with room for its jump table entry, and the one the build marks
    // for objtool is the nop objtool would have made of its jump.
    let labels: Vec<(u16, u8, String)> = records(&out)
        .into_iter()
        .filter(|r| r.0 == SiteKind::JumpLabel as u16)
        .collect();
    assert_eq!(labels.len(), 2, "{labels:?}");
    let space = out
        .section_by_name(".ksplice_label_space")
        .expect("label space");
    assert_eq!(out.sections[space].size(), 2 * 16);
    let pre = analysis(rewrites());
    let pre_text = pre.obj.section_by_name(".text.rw_all").unwrap();
    let marked = find_sites(&pre)
        .into_iter()
        .find(|s| {
            s.kind == SiteKind::JumpLabel
                && s.sect == pre_text
                && matches!(
                    pre.obj.sections[pre_text].data[s.offset as usize],
                    0xeb | 0xe9
                )
        })
        .expect("the marked jump label");
    let at = marked.offset as usize;
    let nop: &[u8] = if marked.len == 2 {
        &[0x66, 0x90]
    } else {
        &[0x0f, 0x1f, 0x44, 0x00, 0x00]
    };
    assert_eq!(&out.sections[text].data[at..at + nop.len()], nop);
    // ... and no canary where the loader expects a jump to the thunk.
    let data = &out.sections[text].data;
    for r in &out.sections[text].relocs {
        if out.symbols[r.sym].name == "__x86_return_thunk" {
            let o = r.offset as usize;
            assert_ne!(&data[o..o + 4], &[0x77; 4]);
        }
    }
}

#[test]
fn old_code_with_fentry_sites_carries_ftrace_callers() {
    let map = SystemMap::parse(
        "ffffffff8103c710 T ftrace_caller\nffffffff8103c7e0 T ftrace_regs_caller\n",
    );
    let out = transform::keep_old_code(rewrites(), "rewrites.o", &map).unwrap();
    let maps = ksplice::engine::metaread::Reader::new(&out).system_map();
    let addr = |label: &str| {
        maps.iter()
            .find(|m| m.label == label)
            .map(|m| m.candidates.clone())
    };
    assert_eq!(addr("ftrace_caller"), Some(vec![0xffffffff8103c710]));
    assert_eq!(addr("ftrace_regs_caller"), Some(vec![0xffffffff8103c7e0]));
    // Plain code has no fentry site and carries nothing of ftrace's.
    let dir = scratch("sites-nofentry");
    let o = compile(&dir, "plain", "int f(int x) { return x * 7; }\n");
    let plain = Object::parse(&std::fs::read(o).unwrap()).unwrap();
    let out = transform::keep_old_code(plain, "plain.o", &map).unwrap();
    let maps = ksplice::engine::metaread::Reader::new(&out).system_map();
    assert!(maps.iter().all(|m| !m.label.starts_with("ftrace")));
}
