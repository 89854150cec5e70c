//! The metadata ABI between ksplice-obj (src/engine/meta.rs) and the kernel
//! core (kmodsrc/ksplice.h): every constant, record size and field offset
//! must be the same on both sides, and as docs/FORMAT.md documents them.
//!
//! The header is read as text: `#define NAME VALUE`, `enum NAME { A = 1,
//! B, ... };` and `struct NAME { TYPE MEMBER; ... };` with one member per
//! declaration. Record layouts are computed with the x86-64 (LP64) rules.

use ksplice::engine::elf::howto::howto;
use ksplice::engine::elf::{Object, SecId, Section};
use ksplice::engine::meta::{self, HowtoType, Meta, PatchType, SiteKind, SymRef};
use ksplice::engine::transform::HOOK_SECTIONS;
use object::elf;
use std::collections::BTreeMap;
use std::path::Path;

fn read(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The header without its comments.
fn strip_comments(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("/*") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find("*/").expect("unterminated comment");
        rest = &rest[i + end + 2..];
    }
    out.push_str(rest);
    out.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A C integer literal (decimal or hex, with U/L suffixes).
fn c_int(lit: &str) -> Option<u64> {
    let t = lit.trim().trim_end_matches(['u', 'U', 'l', 'L']);
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => t.parse().ok(),
    }
}

/// What the test reads of the header.
struct Header {
    defines: BTreeMap<String, u64>,
    /// Each enum's members in order, with their values.
    enums: BTreeMap<String, Vec<(String, u64)>>,
    /// Each struct's members in order: (C type, name).
    structs: BTreeMap<String, Vec<(String, String)>>,
}

/// The body of each `KEYWORD NAME { ... }` in `text`.
fn blocks(text: &str, keyword: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    let key = format!("{keyword} ");
    while let Some(i) = rest.find(&key) {
        rest = &rest[i + key.len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let after = rest[name.len()..].trim_start();
        if name.is_empty() || !after.starts_with('{') {
            continue;
        }
        let open = rest.len() - after.len();
        let close = rest[open..].find('}').expect("unterminated block") + open;
        out.push((name, rest[open + 1..close].to_string()));
        rest = &rest[close..];
    }
    out
}

fn parse_header(text: &str) -> Header {
    let text = strip_comments(text);
    let mut defines = BTreeMap::new();
    for l in text.lines() {
        let mut w = l.split_whitespace();
        if w.next() != Some("#define") {
            continue;
        }
        let (Some(name), Some(value), None) = (w.next(), w.next(), w.next()) else {
            continue;
        };
        if let Some(v) = c_int(value) {
            defines.insert(name.to_string(), v);
        }
    }
    let mut enums = BTreeMap::new();
    for (name, body) in blocks(&text, "enum") {
        let mut next = 0;
        let mut members = Vec::new();
        for item in body.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (m, v) = match item.split_once('=') {
                Some((m, v)) => (m.trim(), c_int(v).expect(item)),
                None => (item, next),
            };
            members.push((m.to_string(), v));
            next = v + 1;
        }
        enums.insert(name, members);
    }
    let mut structs = BTreeMap::new();
    for (name, body) in blocks(&text, "struct") {
        let mut members = Vec::new();
        for decl in body.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let split = decl
                .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
                .expect(decl);
            let member = decl[split + 1..].to_string();
            let ty = decl[..=split]
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            members.push((ty, member));
        }
        structs.insert(name, members);
    }
    Header {
        defines,
        enums,
        structs,
    }
}

/// Size (and alignment) of a record member's C type on x86-64.
fn c_size(ty: &str) -> u64 {
    if ty.contains('*') {
        return 8;
    }
    let base = ty.trim_start_matches("const ").trim();
    match base {
        "unsigned long" | "long" | "u64" | "s64" => 8,
        "u32" | "s32" | "int" | "unsigned int" => 4,
        "u16" | "s16" => 2,
        "u8" | "s8" => 1,
        _ => panic!("a record member of type `{ty}`: teach tests/kmodsrc_abi.rs its size"),
    }
}

/// Offsets of the members of a record, and its size.
fn layout(members: &[(String, String)]) -> (BTreeMap<String, u64>, u64) {
    let mut offsets = BTreeMap::new();
    let (mut off, mut align) = (0u64, 1u64);
    for (ty, name) in members {
        let s = c_size(ty);
        off = off.div_ceil(s) * s;
        offsets.insert(name.clone(), off);
        off += s;
        align = align.max(s);
    }
    (offsets, off.div_ceil(align) * align)
}

fn header() -> Header {
    parse_header(&read("kmodsrc/ksplice.h"))
}

/// The records: C struct, size constant in the header, size in meta.rs.
const RECORDS: [(&str, &str, u64); 7] = [
    ("ksplice_symbol", "KSPLICE_SYMBOL_SIZE", meta::SYMBOL_SIZE),
    ("ksplice_reloc", "KSPLICE_RELOC_SIZE", meta::RELOC_SIZE),
    (
        "ksplice_reloc_howto",
        "KSPLICE_HOWTO_SIZE",
        meta::HOWTO_SIZE,
    ),
    (
        "ksplice_section",
        "KSPLICE_SECTION_SIZE",
        meta::SECTION_SIZE,
    ),
    ("ksplice_patch", "KSPLICE_PATCH_SIZE", meta::PATCH_SIZE),
    (
        "ksplice_system_map",
        "KSPLICE_SYSTEM_MAP_SIZE",
        meta::SYSTEM_MAP_SIZE,
    ),
    ("ksplice_site", "KSPLICE_SITE_SIZE", meta::SITE_SIZE),
];

fn offsets(h: &Header, record: &str) -> BTreeMap<String, u64> {
    layout(&h.structs[record]).0
}

#[test]
fn record_sizes_match() {
    let h = header();
    for (record, define, rust) in RECORDS {
        let members = h
            .structs
            .get(record)
            .unwrap_or_else(|| panic!("no struct {record} in kmodsrc/ksplice.h"));
        let (_, size) = layout(members);
        assert_eq!(size, rust, "sizeof(struct {record}) in C vs meta.rs");
        assert_eq!(h.defines.get(define), Some(&rust), "{define} vs meta.rs");
    }
}

#[test]
fn constants_match() {
    let h = header();
    let want: &[(&str, u64)] = &[
        ("KSPLICE_SECTION_TEXT", meta::SECTION_TEXT.into()),
        ("KSPLICE_SECTION_RODATA", meta::SECTION_RODATA.into()),
        ("KSPLICE_SECTION_DATA", meta::SECTION_DATA.into()),
        ("KSPLICE_SECTION_STRING", meta::SECTION_STRING.into()),
        ("KSPLICE_SECTION_REWRITTEN", meta::SECTION_REWRITTEN.into()),
        ("KSPLICE_CANARY", meta::CANARY),
    ];
    for (name, rust) in want {
        assert_eq!(h.defines.get(*name), Some(rust), "{name} vs meta.rs");
    }
    // No section flag in the header that meta.rs lacks.
    let flags: Vec<&str> = h
        .defines
        .keys()
        .filter(|k| k.starts_with("KSPLICE_SECTION_") && !k.ends_with("_SIZE"))
        .map(String::as_str)
        .collect();
    let mut known: Vec<&str> = want[..5].iter().map(|(n, _)| *n).collect();
    known.sort();
    assert_eq!(flags, known, "section flags of the header vs meta.rs");
}

#[test]
fn enums_match() {
    let h = header();
    let howtos = [
        ("KSPLICE_HOWTO_RELOC", HowtoType::Reloc),
        ("KSPLICE_HOWTO_RELOC_PATCH", HowtoType::RelocPatch),
        ("KSPLICE_HOWTO_DATE", HowtoType::Date),
        ("KSPLICE_HOWTO_TIME", HowtoType::Time),
        ("KSPLICE_HOWTO_BUG", HowtoType::Bug),
        ("KSPLICE_HOWTO_EXTABLE", HowtoType::Extable),
        ("KSPLICE_HOWTO_SYMBOL", HowtoType::Symbol),
    ];
    let c: Vec<(String, u64)> = h.enums["ksplice_reloc_howto_type"].clone();
    let rust: Vec<(String, u64)> = howtos
        .iter()
        .map(|(n, t)| (n.to_string(), *t as u64))
        .collect();
    assert_eq!(c, rust, "enum ksplice_reloc_howto_type vs meta::HowtoType");
    let patches = [
        ("KSPLICE_PATCH_TEXT", PatchType::Text),
        ("KSPLICE_PATCH_DATA", PatchType::Data),
        ("KSPLICE_PATCH_EXPORT", PatchType::Export),
        ("KSPLICE_PATCH_BUGLINE", PatchType::BugLine),
    ];
    let rust: Vec<(String, u64)> = patches
        .iter()
        .map(|(n, t)| (n.to_string(), *t as u64))
        .collect();
    assert_eq!(
        h.enums["ksplice_patch_type"], rust,
        "enum ksplice_patch_type vs meta::PatchType"
    );
    let sites = [
        ("KSPLICE_SITE_ALTERNATIVE", SiteKind::Alternative),
        ("KSPLICE_SITE_PARAVIRT", SiteKind::Paravirt),
        ("KSPLICE_SITE_RETPOLINE", SiteKind::Retpoline),
        ("KSPLICE_SITE_RETURN", SiteKind::Return),
        ("KSPLICE_SITE_JUMP_LABEL", SiteKind::JumpLabel),
        ("KSPLICE_SITE_STATIC_CALL", SiteKind::StaticCall),
        ("KSPLICE_SITE_FENTRY", SiteKind::Fentry),
        ("KSPLICE_SITE_ENDBR", SiteKind::Endbr),
        ("KSPLICE_SITE_SMP_LOCK", SiteKind::SmpLock),
        ("KSPLICE_SITE_RELAXABLE", SiteKind::Relaxable),
        ("KSPLICE_SITE_RUNTIME_CONST", SiteKind::RuntimeConst),
    ];
    let rust: Vec<(String, u64)> = sites
        .iter()
        .map(|(n, t)| (n.to_string(), *t as u64))
        .collect();
    assert_eq!(
        h.enums["ksplice_site_kind"], rust,
        "enum ksplice_site_kind vs meta::SiteKind"
    );
    let doc = read("docs/FORMAT.md");
    for (name, kind) in sites {
        let short = name.trim_start_matches("KSPLICE_SITE_");
        assert!(
            doc.contains(&format!("{} `{short}`", kind as u16)),
            "FORMAT.md lists site kind {short} as {}",
            kind as u16
        );
    }
}

#[test]
fn hooks_match() {
    let h = header();
    let kinds = &h.enums["ksplice_hook_kind"];
    let (last, kinds) = kinds.split_last().expect("enum ksplice_hook_kind");
    assert_eq!(last.0, "KSPLICE_NR_HOOKS");
    assert_eq!(last.1, HOOK_SECTIONS.len() as u64);
    let c: Vec<String> = kinds
        .iter()
        .map(|(n, _)| {
            let kind = n.strip_prefix("KSPLICE_HOOK_").expect(n);
            format!(".ksplice_call_{}", kind.to_lowercase())
        })
        .collect();
    assert_eq!(c, HOOK_SECTIONS, "enum ksplice_hook_kind vs HOOK_SECTIONS");
    let lds = read("kmodsrc/ksplice.lds");
    for s in HOOK_SECTIONS {
        assert!(
            lds.contains(&format!("{s} :")),
            "{s} in kmodsrc/ksplice.lds"
        );
    }
}

/// The fields docs/FORMAT.md gives each record: record -> (size, name -> offset).
fn documented() -> BTreeMap<String, (u64, BTreeMap<String, u64>)> {
    let mut out = BTreeMap::new();
    for l in read("docs/FORMAT.md").lines() {
        let cells: Vec<&str> = l.split('|').map(str::trim).collect();
        if cells.len() < 4 || !cells[1].starts_with("`ksplice_") {
            continue;
        }
        let Ok(size) = cells[2].parse::<u64>() else {
            continue;
        };
        let mut fields = BTreeMap::new();
        for f in cells[3].split(';') {
            let Some((off, rest)) = f.split_once(':') else {
                continue;
            };
            let mut ticks = rest.split('`');
            let (Some(_), Some(decl)) = (ticks.next(), ticks.next()) else {
                continue; // padding
            };
            let name = decl
                .rsplit(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next()
                .unwrap_or_default();
            fields.insert(name.to_string(), off.trim().parse().expect(f));
        }
        out.insert(cells[1].trim_matches('`').to_string(), (size, fields));
    }
    out
}

#[test]
fn format_doc_matches_header() {
    let h = header();
    let doc = documented();
    for (record, _, _) in RECORDS {
        let (size, fields) = doc
            .get(record)
            .unwrap_or_else(|| panic!("docs/FORMAT.md has no row for {record}"));
        let (offsets, c_size) = layout(&h.structs[record]);
        assert_eq!(*size, c_size, "size of {record}: FORMAT.md vs ksplice.h");
        for (name, off) in &offsets {
            if name == "pad" {
                continue;
            }
            assert_eq!(
                fields.get(name),
                Some(off),
                "{record}.{name}: FORMAT.md vs ksplice.h"
            );
        }
        assert_eq!(
            fields.len(),
            offsets.keys().filter(|n| *n != "pad").count(),
            "{record}: FORMAT.md documents {:?}",
            fields.keys()
        );
    }
    // Every section flag the doc lists is one the header defines.
    let f = read("docs/FORMAT.md");
    let line = f
        .lines()
        .skip_while(|l| !l.starts_with("Section `flags`"))
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let listed: Vec<u64> = line
        .split('`')
        .skip(1)
        .step_by(2)
        .filter_map(c_int)
        .collect();
    let mut defined: Vec<u64> = h
        .defines
        .iter()
        .filter(|(k, _)| k.starts_with("KSPLICE_SECTION_") && !k.ends_with("_SIZE"))
        .map(|(_, v)| *v)
        .collect();
    defined.sort();
    assert_eq!(listed, defined, "section flags: FORMAT.md vs ksplice.h");
}

/// A pointer field meta.rs wrote: the relocation at `off` of section `sect`.
fn has_ptr(obj: &Object, sect: &str, off: u64) -> bool {
    let s = obj.section_by_name(sect).expect(sect);
    obj.sections[s]
        .relocs
        .iter()
        .any(|r| r.offset == off && r.r_type == elf::R_X86_64_64)
}

fn field(obj: &Object, sect: &str, off: u64, size: usize) -> u64 {
    let s = obj.section_by_name(sect).expect(sect);
    obj.sections[s]
        .read_uint(off, size)
        .expect("field in range")
}

/// The fields meta.rs writes are where the C records have them.
#[test]
fn writer_follows_the_layout() {
    let h = header();
    let mut obj = Object::default();
    obj.sections.push(Section::new_progbits(".text.f", 6, 16));
    obj.sections[0].data = vec![0; 64];
    let mut m = Meta::new();

    let sym = m.symbol(&mut obj, "f<a.o>", Some("f"), || vec![0x1000, 0x2000]);
    let o = offsets(&h, "ksplice_symbol");
    assert!(has_ptr(&obj, ".ksplice_symbols", sym + o["name"]));
    assert!(has_ptr(&obj, ".ksplice_symbols", sym + o["label"]));
    let o = offsets(&h, "ksplice_system_map");
    assert!(has_ptr(&obj, ".ksplice_system_map", o["label"]));
    assert!(has_ptr(&obj, ".ksplice_system_map", o["candidates"]));
    assert_eq!(field(&obj, ".ksplice_system_map", o["nr_candidates"], 8), 2);

    let pc32 = howto(elf::R_X86_64_PC32).unwrap();
    let ho = m.howto(&mut obj, HowtoType::RelocPatch, Some(pc32), 0);
    let o = offsets(&h, "ksplice_reloc_howto");
    let hs = ".ksplice_reloc_howtos";
    assert_eq!(
        field(&obj, hs, ho + o["type"], 4),
        HowtoType::RelocPatch as u64
    );
    assert_eq!(field(&obj, hs, ho + o["pcrel"], 4), u64::from(pc32.pcrel));
    assert_eq!(field(&obj, hs, ho + o["size"], 4), u64::from(pc32.size));
    assert_eq!(field(&obj, hs, ho + o["dst_mask"], 8), pc32.dst_mask);
    assert_eq!(
        field(&obj, hs, ho + o["rightshift"], 4),
        u64::from(pc32.rightshift)
    );
    assert_eq!(
        field(&obj, hs, ho + o["signed_addend"], 4),
        u64::from(pc32.signed)
    );

    m.reloc(
        &mut obj,
        ".text.f",
        (SecId::new(0), 8),
        SymRef::Record(sym),
        ho,
        -4,
        12,
    );
    let o = offsets(&h, "ksplice_reloc");
    let rs = ".ksplice_relocs.text.f";
    for p in ["blank_addr", "symbol", "howto"] {
        assert!(has_ptr(&obj, rs, o[p]), "ksplice_reloc.{p}");
    }
    assert_eq!(field(&obj, rs, o["insn_addend"], 8), -4i64 as u64);
    assert_eq!(field(&obj, rs, o["target_addend"], 8), 12);

    m.ksection(
        &mut obj,
        ".text.f",
        sym,
        (SecId::new(0), 0),
        40,
        meta::SECTION_TEXT,
    );
    let o = offsets(&h, "ksplice_section");
    let ss = ".ksplice_sections.text.f";
    assert!(has_ptr(&obj, ss, o["symbol"]));
    assert!(has_ptr(&obj, ss, o["address"]));
    assert_eq!(field(&obj, ss, o["size"], 8), 40);
    assert_eq!(
        field(&obj, ss, o["flags"], 4),
        u64::from(meta::SECTION_TEXT)
    );

    let text = SecId::new(0);
    m.site(&mut obj, (text, 4), None, SiteKind::Fentry, 5, 0, 0);
    m.site(
        &mut obj,
        (text, 9),
        Some((text, 30)),
        SiteKind::Alternative,
        6,
        3,
        0x8123,
    );
    let o = offsets(&h, "ksplice_site");
    let st = ".ksplice_sites";
    let second = meta::SITE_SIZE;
    assert!(has_ptr(&obj, st, o["addr"]));
    assert!(
        !has_ptr(&obj, st, o["aux"]),
        "no aux pointer when there is none"
    );
    assert!(has_ptr(&obj, st, second + o["aux"]));
    assert_eq!(field(&obj, st, o["kind"], 2), SiteKind::Fentry as u64);
    assert_eq!(field(&obj, st, o["len"], 1), 5);
    assert_eq!(
        field(&obj, st, second + o["kind"], 2),
        SiteKind::Alternative as u64
    );
    assert_eq!(field(&obj, st, second + o["len"], 1), 6);
    assert_eq!(field(&obj, st, second + o["aux_len"], 1), 3);
    assert_eq!(field(&obj, st, second + o["feature"], 2), 0x8123);
    assert_eq!(field(&obj, st, second + o["seq"], 2), 1);
}

/// The parser itself: a drifted header is seen as drifted.
#[test]
fn parser_reads_what_it_checks() {
    let h = parse_header(
        "/* c */\n#define KSPLICE_X\t0x10UL /* x */\nenum e {\n\tA = 2, /* a */\n\tB,\n};\n\
         struct s {\n\tconst char *p;\n\tu32 a;\n\tu64 b;\n\tint c;\n};\n",
    );
    assert_eq!(h.defines["KSPLICE_X"], 0x10);
    assert_eq!(h.enums["e"], vec![("A".into(), 2), ("B".into(), 3)]);
    let (off, size) = layout(&h.structs["s"]);
    assert_eq!(
        (off["p"], off["a"], off["b"], off["c"], size),
        (0, 8, 16, 24, 32)
    );
}
