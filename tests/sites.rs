//! Boot-time rewrite sites: what `engine::sites` finds in an object built
//! the way a distribution kernel is (fentry, IBT, return and retpoline
//! thunks, jump labels, alternatives, paravirt, static calls, lock
//! prefixes, jumps the running build may have relaxed, runtime constants),
//! and the `ksplice_site` records keep-old-code and keep-new-code write
//! from them.

mod support;

use ksplice::engine::elf::{Object, SecId};
use ksplice::engine::meta::{SITE_SIZE, SiteKind};
use ksplice::engine::metaread::{Reader, Target};
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
    load(&o)
}

/// The object file at `p`.
fn load(p: &std::path::Path) -> Object {
    Object::parse(&std::fs::read(p).unwrap()).unwrap()
}

/// keep-new-code of `post` against `pre`, without a System.map.
fn new_code(
    pre: Object,
    post: Object,
) -> Result<transform::NewCode, ksplice::engine::error::ObjError> {
    transform::keep_new_code(pre, "pre.o", post, "post.o", "t", &SystemMap::default())
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

/// The sites of `tests/fixtures/alt_6_12.c` read with Linux 6.12's layouts.
fn alt_6_12_sites() -> (Analysis, Vec<Site>) {
    use ksplice::engine::tables::{KernelVersion, use_kernel};
    use_kernel(KernelVersion {
        major: 6,
        minor: 12,
    })
    .unwrap();
    let dir = scratch("sites_6_12");
    let o = dir.join("alt_6_12.o");
    if let Err(e) = gcc(None, &[KFLAGS], &fixture("alt_6_12.c"), &o) {
        panic!("gcc: {e}");
    }
    let a = analysis(load(&o));
    let sites = find_sites(&a);
    (a, sites)
}

#[test]
fn linux_6_12_alternatives_and_paravirt_calls() {
    let (a, sites) = alt_6_12_sites();
    let plain = a.obj.section_by_name(".text.plain_alt").unwrap();
    let alts: Vec<(u16, u8, u8)> = sites
        .iter()
        .filter(|s| s.sect == plain && s.kind == SiteKind::Alternative)
        .map(|s| (s.feature, s.len, s.aux_len))
        .collect();
    // ft_flags 0x94 and 0x10095 (ALT_FLAG_NOT): bit 15 of the record.
    assert_eq!(alts, [(0x94, 3, 3), (0x8095, 3, 3)]);
    let pv = a.obj.section_by_name(".text.pv_call").unwrap();
    let at = find(&a.obj, ".text.pv_call", &[0xff, 0x15]);
    let mut here: Vec<(SiteKind, u16, u8, u64)> = sites
        .iter()
        .filter(|s| s.sect == pv && s.offset == at)
        .map(|s| (s.kind, s.feature, s.len, s.offset))
        .collect();
    here.sort_by_key(|h| h.0 as u16);
    // The direct call is the paravirt site of slot 2 (pv_ops+16); the
    // native replacement (not on Xen) an alternative over it.
    assert_eq!(
        here,
        [
            (SiteKind::Alternative, 0x80a1, 6, at),
            (SiteKind::Paravirt, 2, 6, at)
        ]
    );
}

#[test]
fn linux_6_12_new_code_gives_paravirt_calls_to_the_core() {
    use ksplice::engine::tables::{KernelVersion, use_kernel};
    use_kernel(KernelVersion {
        major: 6,
        minor: 12,
    })
    .unwrap();
    let dir = scratch("sites_6_12_new");
    let pre = dir.join("pre.o");
    let post = dir.join("post.o");
    gcc(None, &[KFLAGS], &fixture("alt_6_12.c"), &pre).unwrap();
    gcc(
        None,
        &[KFLAGS, &["-DPOST_CHANGE"]],
        &fixture("alt_6_12.c"),
        &post,
    )
    .unwrap();
    let nc = new_code(load(&pre), load(&post)).unwrap();
    let out = nc.object.expect("new code");
    let kinds: Vec<u16> = records(&out).into_iter().map(|r| r.0).collect();
    assert!(kinds.contains(&(SiteKind::Paravirt as u16)), "{kinds:?}");
    // No entry is left for the module loader to apply.
    assert!(
        out.sections
            .iter()
            .all(|s| s.name != ".altinstructions" || s.size() == 0),
        "an .altinstructions section is left"
    );
}

#[test]
fn an_endbr_after_call_padding_is_a_site() {
    // Linux 6.2+'s CALL_PADDING: 16 bytes of nops before each function, in
    // its section; the function (and its endbr64) starts at 16.
    let dir = scratch("sites_padding");
    let src = dir.join("pad.c");
    std::fs::write(&src, "int f(int x) { return x * 7; }\n").unwrap();
    let o = dir.join("pad.o");
    let flags: &[&str] = &["-fcf-protection=branch", "-fpatchable-function-entry=16,16"];
    gcc(None, &[KFLAGS, flags], &src, &o).unwrap();
    let a = analysis(load(&o));
    let sites = find_sites(&a);
    assert_eq!(
        sites_of(&a, &sites, ".text.f"),
        [(16, SiteKind::Endbr, 4)],
        "the function's endbr64 past the padding"
    );
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
    let plain = analysis(load(&o));
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
    let nc = new_code(rewrites(), load(&post_o)).unwrap();
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
    // Each jump to the return thunk is also a core site: once the new
    // code's relocations are filled, the core writes a return, or a jump to
    // the thunk boot chose (the x86_return_thunk variable, deferred).
    let returns: Vec<(u16, u8, String)> = records(&out)
        .into_iter()
        .filter(|r| r.0 == SiteKind::Return as u16)
        .collect();
    let thunk_jumps = out.sections[text]
        .relocs
        .iter()
        .filter(|r| out.symbols[r.sym].name == "__x86_return_thunk")
        .count();
    assert!(thunk_jumps > 0);
    assert_eq!(returns.len(), thunk_jumps, "{returns:?}");
    assert!(returns.iter().all(|r| r.1 == 5 && r.2 == ".text.rw_all"));
    assert!(
        out.symbols
            .iter()
            .any(|s| s.name == "KSPLICE_SYMBOL_x86_return_thunk"),
        "the thunk variable, resolved at finalize"
    );
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
    let plain = load(&o);
    let out = transform::keep_old_code(plain, "plain.o", &map).unwrap();
    let maps = ksplice::engine::metaread::Reader::new(&out).system_map();
    assert!(maps.iter().all(|m| !m.label.starts_with("ftrace")));
}

/// The runtime-constant fixture, before (`pre`) or after (`post`) its patch.
fn runtime_consts(post: bool) -> Object {
    let dir = scratch("sites-rc");
    let o = dir.join("rc.o");
    let post_flag: &[&str] = if post { &["-DPOST"] } else { &[] };
    if let Err(e) = gcc(None, &[KFLAGS, post_flag], &fixture("runtime_const.c"), &o) {
        panic!("gcc: {e}");
    }
    load(&o)
}

/// Where the immediates of the `movabs` placeholder and of `shrl $12` are
/// in section `name`.
fn immediates(obj: &Object, name: &str) -> (u64, u64) {
    let ptr = find(obj, name, &0x0123_4567_89ab_cdef_u64.to_le_bytes());
    let data = &obj.sections[obj.section_by_name(name).unwrap()].data;
    let shift = data
        .windows(3)
        .position(|w| w[0] == 0xc1 && (0xe8..=0xef).contains(&w[1]) && w[2] == 12)
        .expect("shrl $12") as u64
        + 2;
    (ptr, shift)
}

/// The runtime-constant records of `.ksplice_sites`: (len, addr, offset of
/// the record), sorted by len.
fn runtime_const_records(out: &Object) -> Vec<(u8, Target, u64)> {
    let s = out.section_by_name(".ksplice_sites").expect("site records");
    let sec = &out.sections[s];
    let reader = Reader::new(out);
    let mut recs: Vec<(u8, Target, u64)> = (0..sec.size() / SITE_SIZE)
        .map(|i| i * SITE_SIZE)
        .filter(|&off| sec.read_uint(off + 16, 2) == Some(SiteKind::RuntimeConst as u64))
        .map(|off| {
            let len = sec.read_uint(off + 18, 1).unwrap() as u8;
            (len, reader.pointer(s, off), off)
        })
        .collect();
    recs.sort_by_key(|r| r.0);
    recs
}

fn no_runtime_tables(out: &Object, what: &str) {
    for s in &out.sections {
        assert!(
            !s.name.contains("runtime_ptr_") && !s.name.contains("runtime_shift_"),
            "{} left in {what}",
            s.name
        );
    }
}

#[test]
fn runtime_constants_are_sites_at_their_immediates_in_old_code() {
    let pre = runtime_consts(false);
    let text = ".text.rc_lookup";
    let (ptr, shift) = immediates(&pre, text);
    let a = analysis(pre.clone());
    let got = sites_of(&a, &find_sites(&a), text);
    assert!(got.contains(&(ptr, SiteKind::RuntimeConst, 8)), "{got:x?}");
    assert!(
        got.contains(&(shift, SiteKind::RuntimeConst, 1)),
        "{got:x?}"
    );
    let out = transform::keep_old_code(pre, "pre.o", &SystemMap::default()).unwrap();
    let recs = runtime_const_records(&out);
    let at: Vec<(u8, Target)> = recs.iter().map(|r| (r.0, r.1.clone())).collect();
    assert_eq!(
        at,
        [
            (1, Target::Section(text.into(), shift)),
            (8, Target::Section(text.into(), ptr)),
        ]
    );
    // Old code's records have no aux (matching accepts any immediate).
    let sites = out.section_by_name(".ksplice_sites").unwrap();
    for (_, _, off) in &recs {
        assert_eq!(Reader::new(&out).pointer(sites, off + 8), Target::Null);
    }
    no_runtime_tables(&out, "old code");
}

#[test]
fn new_code_leaves_runtime_constants_to_the_core_with_their_variables() {
    let post = runtime_consts(true);
    let text = ".text.rc_lookup";
    let (ptr, shift) = immediates(&post, text);
    let nc = new_code(runtime_consts(false), post).unwrap();
    let out = nc.object.expect("rc_lookup changed");
    no_runtime_tables(&out, "new code");
    let recs = runtime_const_records(&out);
    let at: Vec<(u8, Target)> = recs.iter().map(|r| (r.0, r.1.clone())).collect();
    assert_eq!(
        at,
        [
            (1, Target::Section(text.into(), shift)),
            (8, Target::Section(text.into(), ptr)),
        ]
    );
    // The placeholder stays for the core to replace.
    let t = out.section_by_name(text).unwrap();
    assert_eq!(
        out.sections[t].read_uint(ptr, 8),
        Some(0x0123_4567_89ab_cdef)
    );
    // Each aux is a pointer-sized ksplice relocation to the variable.
    let relocs = Reader::new(&out).relocs();
    let aux = |off: u64| {
        relocs
            .iter()
            .find(|k| k.blank == Target::Section(".ksplice_sites".into(), off + 8))
            .unwrap_or_else(|| panic!("no ksplice relocation of the aux at {off:#x}"))
    };
    let (shift_var, ptr_var) = (aux(recs[0].2), aux(recs[1].2));
    for k in [shift_var, ptr_var] {
        let h = k.howto.expect("howto");
        assert_eq!((h.kind, h.pcrel, h.size), (0, 0, 8), "{k:?}");
        assert_eq!((k.insn_addend, k.target_addend), (0, 0), "{k:?}");
    }
    assert_eq!(ptr_var.deferred.as_deref(), Some("KSPLICE_SYMBOL_foo"));
    let bar = shift_var.symbol.as_ref().expect("bar's record");
    assert_eq!(bar.name.as_deref(), Some("bar"));
    assert!(bar.label.starts_with("bar<"), "{bar:?}");
    // finalize names foo for System.map and kallsyms like any symbol.
    let map = SystemMap::parse("ffffffff82a0b3c8 D foo\n");
    let fin = transform::finalize(out, "new.o", "vmlinux", &map).unwrap();
    let r = Reader::new(&fin);
    let foo = r
        .relocs()
        .into_iter()
        .filter(|k| k.in_section == ".ksplice_relocs.ksplice_sites")
        .find_map(|k| k.symbol.filter(|s| s.label == "foo"))
        .expect("foo's record after finalize");
    assert_eq!(foo.name.as_deref(), Some("foo"));
    assert!(
        r.system_map()
            .iter()
            .any(|m| m.label == "foo" && m.candidates == [0xffffffff82a0b3c8])
    );
}

/// keep-new-code of `rc_lookup` changed to `post` (C source).
fn new_code_of_rc(post: &str) -> Result<(), ksplice::engine::error::ObjError> {
    let dir = scratch("sites-rc-refused");
    let pre_c =
        "unsigned long rc_lookup(unsigned int h) { asm(\".fill 8, 1, 0x90\"); return h; }\n";
    let pre = compile(&dir, "pre", pre_c);
    let post = compile(&dir, "post", post);
    new_code(load(&pre), load(&post)).map(|_| ())
}

#[test]
fn runtime_constants_the_core_cannot_set_are_refused() {
    use ksplice::engine::error::ObjError;
    // An entry that points at no movabs immediate.
    let bogus = "unsigned long rc_lookup(unsigned int h) {\n\
                 asm volatile(\".fill 10, 1, 0x90\\n1:\\n\"\n\
                 \".pushsection runtime_ptr_foo,\\\"a\\\"\\n.long 1b - 8 - .\\n.popsection\");\n\
                 return h + 1; }\n";
    match new_code_of_rc(bogus) {
        Err(ObjError::Unsupported(m)) => assert!(m.contains("runtime_ptr_foo"), "{m}"),
        other => panic!("not refused: {other:?}"),
    }
    // A variable the update adds: boot never set its constants.
    let own = "static unsigned long baz;\n\
               void rc_set(unsigned long v) { baz = v; }\n\
               unsigned long rc_lookup(unsigned int h) { unsigned long r;\n\
               asm(\"movabs $0x0123456789abcdef,%0\\n1:\\n\"\n\
               \".pushsection runtime_ptr_baz,\\\"a\\\"\\n.long 1b - 8 - .\\n.popsection\"\n\
               : \"=r\" (r));\n\
               return r + h + baz; }\n";
    match new_code_of_rc(own) {
        Err(ObjError::Unsupported(m)) => assert!(m.contains("baz"), "{m}"),
        other => panic!("not refused: {other:?}"),
    }
}
