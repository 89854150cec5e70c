//! keep-old-code, finalize and rmsyms on objects compiled from C fixtures.

mod support;

use ksplice::engine::classify::{self, Kind};
use ksplice::engine::elf::{Object, SymId, SymSection, howto};
use ksplice::engine::meta::CANARY;
use ksplice::engine::metaread::{KReloc, Reader, Target};
use ksplice::engine::sysmap::SystemMap;
use ksplice::engine::transform;
use object::elf;
use support::*;

fn load(path: &std::path::Path) -> Object {
    Object::parse(&std::fs::read(path).unwrap()).unwrap()
}

fn kernelish() -> (std::path::PathBuf, Object) {
    let dir = scratch("kernelish");
    let o = compile_file(&dir, "k", &fixture("kernelish.c"));
    let obj = load(&o);
    (o, obj)
}

fn is_loader_symbol(obj: &Object, sym: SymId) -> bool {
    let s = &obj.symbols[sym];
    s.is_undefined() && (s.name == "mcount" || s.name == "__fentry__")
}

#[test]
fn old_code_has_one_ksplice_reloc_per_text_relocation() {
    let (_, inp) = kernelish();
    let out = transform::keep_old_code(inp.clone(), "k.o", &SystemMap::default()).unwrap();
    let r = Reader::new(&out);
    let krelocs: Vec<KReloc> = r
        .relocs()
        .into_iter()
        .filter(|k| k.howto.map(|h| h.kind) == Some(0))
        .collect();
    let mut checked = 0;
    let mut with_imm = 0;
    for (i, sec) in inp.sections.iter().enumerate() {
        if classify::kind(sec) != Kind::Text || sec.name == ".init.text" || sec.relocs.is_empty() {
            continue;
        }
        let osec = out.section_by_name(&sec.name).expect("text section kept");
        for rel in &sec.relocs {
            let matching: Vec<&KReloc> = krelocs
                .iter()
                .filter(|k| k.blank == Target::Section(sec.name.clone(), rel.offset))
                .collect();
            assert_eq!(
                matching.len(),
                1,
                "{}+{:#x}: {matching:?}",
                sec.name,
                rel.offset
            );
            let k = matching[0];
            let h = howto::howto(rel.r_type).unwrap();
            let kh = k.howto.unwrap();
            assert_eq!(
                kh.pcrel,
                u32::from(h.pcrel),
                "{}+{:#x}",
                sec.name,
                rel.offset
            );
            assert_eq!(kh.size, h.size);
            assert_eq!(kh.dst_mask, h.dst_mask);
            if h.pcrel {
                // Relative to the end of the instruction: the field and
                // the immediate after it, if any.
                let imm = ksplice::engine::insn::rip_imm_size(&sec.data, rel.offset);
                assert_eq!(
                    k.insn_addend,
                    -i64::from(h.size) - imm,
                    "{}+{:#x}: x86 pc-relative operands end the instruction",
                    sec.name,
                    rel.offset
                );
                if imm > 0 {
                    with_imm += 1;
                }
            } else {
                assert_eq!(k.insn_addend, 0);
            }
            let field = out.sections[osec]
                .read_uint(rel.offset, h.size as usize)
                .unwrap();
            assert_eq!(
                field,
                CANARY & h.dst_mask,
                "canary at {}+{:#x}",
                sec.name,
                rel.offset
            );
            let s = &inp.symbols[rel.sym];
            if s.is_undefined() {
                assert_eq!(
                    k.deferred.as_deref(),
                    Some(format!("KSPLICE_SYMBOL_{}", s.name).as_str())
                );
            } else {
                assert!(
                    k.symbol.is_some(),
                    "symbol record for {}+{:#x}",
                    sec.name,
                    rel.offset
                );
            }
            checked += 1;
        }
        assert!(
            out.sections[osec]
                .relocs
                .iter()
                .all(|r| is_loader_symbol(&out, r.sym)),
            "ELF relocations left in {}",
            sec.name
        );
        let _ = i;
    }
    assert!(checked >= 15, "only {checked} relocations checked");
    assert!(
        with_imm > 0,
        "no RIP-relative operand with an immediate in the fixture"
    );
}

#[test]
fn old_code_has_a_section_record_per_function() {
    let (_, inp) = kernelish();
    let out = transform::keep_old_code(inp.clone(), "k.o", &SystemMap::default()).unwrap();
    let sections = Reader::new(&out).sections();
    for sec in inp
        .sections
        .iter()
        .filter(|s| classify::kind(s) == Kind::Text && s.size() > 0)
    {
        let recs: Vec<_> = sections
            .iter()
            .filter(|k| k.address == Target::Section(sec.name.clone(), 0) && k.flags & 1 != 0)
            .collect();
        if sec.name == ".init.text" {
            assert!(recs.is_empty());
            assert!(
                out.section_by_name(".init.text").is_none(),
                "init code left out"
            );
            continue;
        }
        assert_eq!(recs.len(), 1, "{}", sec.name);
        assert_eq!(recs[0].size, sec.size(), "{}", sec.name);
    }
    let label = |name: &str| {
        sections
            .iter()
            .find(|k| k.address == Target::Section(name.into(), 0))
            .and_then(|k| k.symbol.clone())
            .unwrap()
    };
    assert_eq!(label(".text.foo").label, "foo");
    assert_eq!(label(".text.foo").name.as_deref(), Some("foo"));
    assert_eq!(label(".text.helper").label, "helper<k.o>");
    // Strings are matched one by one.
    assert!(sections.iter().any(|k| k.flags == 0xa));
}

#[test]
fn old_code_handles_tables_and_exports() {
    let (_, inp) = kernelish();
    let out = transform::keep_old_code(inp, "k.o", &SystemMap::default()).unwrap();
    let names: Vec<&str> = out.sections.iter().map(|s| s.name.as_str()).collect();
    for hidden in ["__bug_table", "__ex_table", "___ksymtab+foo"] {
        assert!(
            !names.contains(&hidden),
            "{hidden} must be hidden from the module loader"
        );
        assert!(
            names.contains(&format!(".ksplice_pre.{hidden}").as_str()),
            "{hidden} renamed"
        );
    }
    let relocs = Reader::new(&out).relocs();
    let kind_in = |kind: u32| {
        relocs
            .iter()
            .filter(|k| k.howto.map(|h| h.kind) == Some(kind))
            .map(|k| k.blank.clone())
            .collect::<Vec<_>>()
    };
    let bug = kind_in(4);
    assert_eq!(bug.len(), 1);
    assert!(matches!(&bug[0], Target::Section(s, _) if s == ".text.foo"));
    let ex = kind_in(5);
    assert_eq!(ex.len(), 1);
    assert!(matches!(&ex[0], Target::Section(s, _) if s == ".text.foo"));
    let entries = kind_in(6);
    assert!(entries.contains(&Target::Section(".text.foo".into(), 0)));
    assert!(entries.contains(&Target::Section(".text.baz".into(), 0)));
    // .smp_locks is no table the loader applies to old code any more: its
    // entry became a lock-prefix site of the kept code.
    assert!(out.section_by_name(".smp_locks").is_none());
    let sites = out.section_by_name(".ksplice_sites").expect("site records");
    let lock = (0..out.sections[sites].size() / ksplice::engine::meta::SITE_SIZE)
        .map(|i| i * ksplice::engine::meta::SITE_SIZE)
        .find(|&o| {
            out.sections[sites].read_uint(o + 16, 2)
                == Some(ksplice::engine::meta::SiteKind::SmpLock as u64)
        })
        .expect("a lock-prefix site");
    let rel = out.sections[sites]
        .relocs
        .iter()
        .find(|r| r.offset == lock)
        .expect("its address");
    assert_eq!(out.symbol_name(rel.sym), ".text.foo");
    // Old code exports nothing and defines no global symbol.
    assert!(
        out.symbols
            .iter()
            .all(|s| !s.is_global() || s.section.is_const())
    );
}

fn undefined_outside_metadata(obj: &Object) -> Vec<String> {
    let mut bad = Vec::new();
    for s in &obj.sections {
        if s.name.starts_with(".ksplice") {
            continue;
        }
        for r in &s.relocs {
            let sym = &obj.symbols[r.sym];
            if sym.is_undefined() && sym.name != "mcount" && sym.name != "__fentry__" {
                bad.push(format!("{}+{:#x} -> {}", s.name, r.offset, sym.name));
            }
        }
    }
    bad
}

#[test]
fn finalize_resolves_every_undefined_symbol() {
    let (_, inp) = kernelish();
    let map = SystemMap::parse("ffffffff81001000 T printk\nffffffff81002000 T schedule\n");
    let fin = transform::finalize(inp, "k.o", "vmlinux", &map).unwrap();
    assert_eq!(undefined_outside_metadata(&fin), Vec::<String>::new());
    // No stale import is left for modpost and the module loader to trip on.
    let undefined: Vec<&str> = fin
        .symbols
        .iter()
        .filter(|s| s.is_undefined())
        .map(|s| s.name.as_str())
        .collect();
    assert!(
        undefined.is_empty(),
        "undefined symbols left: {undefined:?}"
    );
    // The kmodsrc linker script needs every metadata and hook section
    // allocated, even when empty (modpost refuses empty non-alloc ones).
    for name in transform::HOOK_SECTIONS.iter().copied().chain([
        ".ksplice_relocs",
        ".ksplice_patches",
        ".ksplice_system_map",
    ]) {
        let i = fin
            .section_by_name(name)
            .unwrap_or_else(|| panic!("{name} missing"));
        assert_ne!(fin.sections[i].flags & u64::from(object::elf::SHF_ALLOC), 0);
    }
    let r = Reader::new(&fin);
    let printk: Vec<_> = r
        .relocs()
        .into_iter()
        .filter(|k| k.symbol.as_ref().map(|s| s.label.as_str()) == Some("printk"))
        .collect();
    assert_eq!(printk.len(), 2, "two calls to printk");
    assert!(
        printk
            .iter()
            .all(|k| k.symbol.as_ref().unwrap().name.as_deref() == Some("printk"))
    );
    let smap = r.system_map();
    assert!(
        smap.iter()
            .any(|m| m.label == "printk" && m.candidates == [0xffff_ffff_8100_1000])
    );
    assert!(
        !smap.iter().any(|m| m.label == "some_key"),
        "no candidates, no record"
    );
    // Date placeholder recorded with its length.
    let date: Vec<_> = r
        .relocs()
        .into_iter()
        .filter(|k| k.howto.map(|h| h.kind) == Some(2))
        .collect();
    assert_eq!(date.len(), 1);
    assert_eq!(date[0].howto.unwrap().size, "<{DATE...}>".len() as u32);
    // Everything defined is local now.
    assert!(
        fin.symbols
            .iter()
            .all(|s| !s.is_global() || s.section.is_const())
    );
}

#[test]
fn finalize_of_old_code_resolves_deferred_symbols() {
    let (_, inp) = kernelish();
    let old = transform::keep_old_code(inp, "k.o", &SystemMap::default()).unwrap();
    let deferred = Reader::new(&old)
        .relocs()
        .iter()
        .filter(|k| k.deferred.is_some())
        .count();
    assert!(deferred > 0);
    let fin = transform::finalize(
        old,
        "k.o.KSPLICE_old_code",
        "vmlinux",
        &SystemMap::default(),
    )
    .unwrap();
    let relocs = Reader::new(&fin).relocs();
    assert!(relocs.iter().all(|k| k.deferred.is_none()));
    let names: Vec<_> = relocs
        .iter()
        .filter_map(|k| k.symbol.as_ref())
        .map(|s| s.label.clone())
        .collect();
    assert!(names.contains(&"printk".to_string()));
    for s in &fin.sections {
        for r in &s.relocs {
            assert!(
                !fin.symbols[r.sym].name.starts_with("KSPLICE_SYMBOL_"),
                "{} keeps a deferred symbol",
                s.name
            );
        }
    }
}

#[test]
fn finalize_drops_exit_metadata_for_vmlinux_only() {
    let dir = scratch("exit");
    let o = compile(
        &dir,
        "e",
        "extern int printk(const char *, ...);\n\
         __attribute__((section(\".exit.text\"))) void bye(void) { printk(\"bye\"); }\n\
         int keep(void) { return printk(\"hi\"); }\n",
    );
    let old = transform::keep_old_code(load(&o), "e.o", &SystemMap::default()).unwrap();
    assert!(
        old.sections
            .iter()
            .any(|s| s.name.starts_with(".ksplice_relocs.exit.text"))
    );
    let vm = transform::finalize(old.clone(), "e.o", "vmlinux", &SystemMap::default()).unwrap();
    assert!(
        !vm.sections
            .iter()
            .any(|s| s.name.starts_with(".ksplice_relocs.exit")
                || s.name.starts_with(".ksplice_sections.exit"))
    );
    let module = transform::finalize(old, "e.o", "mymod", &SystemMap::default()).unwrap();
    assert!(
        module
            .sections
            .iter()
            .any(|s| s.name.starts_with(".ksplice_sections.exit.text"))
    );
}

#[test]
fn rmsyms_replaces_only_extracted_symbols() {
    let dir = scratch("rmsyms");
    let o = compile_file(&dir, "x", &fixture("extract.c"));
    let map = SystemMap::parse("ffffffff81003000 T kallsyms_lookup_name\n");
    let out = transform::rmsyms(load(&o), "x.o", &map).unwrap();
    let text = out.section_by_name(".text.core_lookup").unwrap();
    let syms: Vec<&str> = out.sections[text]
        .relocs
        .iter()
        .map(|r| out.symbol_name(r.sym))
        .collect();
    assert!(
        syms.contains(&"printk"),
        "printk stays for the module loader"
    );
    assert!(!syms.contains(&"kallsyms_lookup_name"));
    assert!(
        !out.symbols
            .iter()
            .any(|s| s.is_undefined() && s.name == "kallsyms_lookup_name"),
        "the extracted symbol is no longer imported"
    );
    let relocs = Reader::new(&out).relocs();
    assert!(
        relocs
            .iter()
            .any(|k| k.in_section == ".ksplice_relocs.text.core_lookup"
                && k.symbol.as_ref().map(|s| s.label.as_str()) == Some("kallsyms_lookup_name"))
    );
    assert!(
        Reader::new(&out)
            .system_map()
            .iter()
            .any(|m| m.label == "kallsyms_lookup_name")
    );
}

#[test]
fn binutils_accept_every_output() {
    let dir = scratch("binutils");
    let k = compile_file(&dir, "k", &fixture("kernelish.c"));
    let x = compile_file(&dir, "x", &fixture("extract.c"));
    let run = |args: &[&str]| {
        let out = ksplice_obj(&dir, args, &[]);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&["old_code", "k.o.KSPLICE_old_code"]);
    run(&["finalize", "k.o", "k.final.o", "vmlinux"]);
    run(&[
        "finalize",
        "k.o.KSPLICE_old_code",
        "k.oldfinal.o",
        "vmlinux",
    ]);
    run(&["rmsyms", "x.o", "x.rmsyms.o"]);
    for f in [
        "k.o.KSPLICE_old_code",
        "k.final.o",
        "k.oldfinal.o",
        "x.rmsyms.o",
    ] {
        assert_binutils_accept(&dir.join(f));
    }
    let _ = (k, x);
}

#[test]
fn model_round_trips() {
    let (_, inp) = kernelish();
    let bytes = inp.to_bytes().unwrap();
    let again = Object::parse(&bytes).unwrap();
    assert_eq!(inp.sections, again.sections);
    // Symbols are reordered (locals first) but the set is the same.
    let key = |o: &Object| {
        let mut v: Vec<_> = o
            .symbols
            .iter()
            .map(|s| {
                let sect = match s.section {
                    SymSection::Section(i) => o.sections[i].name.clone(),
                    other => format!("{other:?}"),
                };
                (s.name.clone(), sect, s.value, s.bind)
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(key(&inp), key(&again));
    // Relocations still name the same symbols.
    for (a, b) in inp.sections.iter().zip(&again.sections) {
        let na: Vec<_> = a.relocs.iter().map(|r| inp.symbol_name(r.sym)).collect();
        let nb: Vec<_> = b.relocs.iter().map(|r| again.symbol_name(r.sym)).collect();
        assert_eq!(na, nb, "{}", a.name);
    }
    let _ = elf::SHT_NULL;
}
