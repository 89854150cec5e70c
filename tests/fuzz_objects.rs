//! Bounded fuzzing of every parser of untrusted input, run by `cargo test`:
//! each target must give `Ok` or `Err` for every mutant, never a panic
//! (nor an abort: an allocation sized by the input would take the whole
//! test down).
//!
//! | target | inputs | through |
//! |---|---|---|
//! | `mutated_objects_never_panic` | real objects (C fixtures, the transforms' outputs with Ksplice metadata, diff pre/post pairs, `ar` archives) with byte flips, header and table overwrites, truncation | `Object::parse` (archive check included), keep-new-code on mutated pre/post pairs both ways, keep-old-code, finalize, rmsyms, serialisation, the metadata reader (`metaread`) |
//! | `mutated_metadata_never_panics` | objects carrying Ksplice metadata (old code, finalized, rmsyms, new code) with the metadata sections' bytes and relocations mutated | `metaread::Reader`, finalize and rmsyms again |
//! | `mutated_texts_never_panic` | System.map, `contents`, `utsname`, `patched`, report JSON and `conflicts` texts, mutated by bytes and by tokens (`..`, `/`, long names, deep nesting, NUL, invalid UTF-8) | `SystemMap::parse`, `sysmap::lookup_text`, `Contents::parse` (a parsed `contents` never names a file outside the update), `Utsname::parse`, `parse_patched`, `patched_file` (the JSON reader), `describe_conflicts` |
//! | `mutated_updates_never_escape` | gzip'ed update tarballs with mutated `contents`/`utsname`, file names, headers and streams | `tarball::unpack_gz`, `Update::open` (validation), `check_kernel`; nothing is written outside the destination |
//! | `fuzz_mutated_archives` | gzip'ed tar archives with flipped bits, mutated headers and sizes, truncation, random data, blocks duplicated or dropped | `tarball::unpack_gz`; nothing is written outside the destination, no link is made |
//!
//! The DWARF reader has its own fuzz test (`tests/layout.rs`).
//!
//! `KSPLICE_FUZZ_ITERS` sets the number of mutants of each target (defaults
//! keep each target to a few seconds); `KSPLICE_FUZZ_SEED` the first seed
//! (mutant `i` uses seed `KSPLICE_FUZZ_SEED + i`, so a failure names the seed
//! that replays it with `KSPLICE_FUZZ_ITERS=1`). Each target prints its
//! executions and time (`-- --nocapture`).

mod support;

use ksplice::engine::elf::{Object, SymId};
use ksplice::engine::metaread::Reader;
use ksplice::engine::sysmap::{self, SystemMap};
use ksplice::engine::transform;
use ksplice::package::{Contents, Update, Utsname, names, patched};
use ksplice::update;
use std::path::Path;
use support::fuzz::{XorShift, fuzz};
use support::*;

// ---------------------------------------------------------------- objects

/// One mutant of `base`: byte flips, targeted header and table overwrites,
/// truncation.
fn mutate(base: &[u8], rng: &mut XorShift) -> Vec<u8> {
    let mut d = base.to_vec();
    let shoff = if d.len() >= 0x30 {
        u64::from_le_bytes(d[0x28..0x30].try_into().unwrap()) as usize
    } else {
        usize::MAX
    };
    for _ in 0..1 + rng.below(4) {
        if d.is_empty() {
            break;
        }
        match rng.below(6) {
            0 => {
                let i = rng.below(d.len());
                d[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.below(d.len());
                d[i] = rng.next() as u8;
            }
            2 if shoff < d.len() => {
                // A field of some section header.
                let i = shoff + rng.below(d.len() - shoff);
                let v = [0u8, 1, 0xff, 0x7f, 0x80][rng.below(5)];
                d[i] = v;
            }
            3 if d.len() >= 8 => {
                // A 32-bit word somewhere (relocation info, symbol index, ...).
                let i = rng.below(d.len().saturating_sub(4));
                let v = (rng.next() as u32) % 64;
                d[i..i + 4].copy_from_slice(&v.to_le_bytes());
            }
            4 => {
                let n = rng.below(d.len());
                d.truncate(n.max(1));
            }
            _ => {
                let i = rng.below(64.min(d.len()));
                d[i] = rng.next() as u8;
            }
        }
    }
    d
}

/// Every metadata record the reader finds, read to the end.
fn read_metadata(obj: &Object) {
    let r = Reader::new(obj);
    let n = r.relocs().len() + r.sections().len() + r.symbols().len() + r.system_map().len();
    std::hint::black_box(n);
}

/// A System.map naming every symbol of `objs` (twice for some, as static
/// symbols of several objects are), so candidates are recorded.
fn system_map_of(objs: &[&[u8]]) -> SystemMap {
    let mut text = String::from("ffffffff81000000 T printk\nffffffff81000010 T _printk\n");
    let mut addr = 0xffff_ffff_8100_1000u64;
    for data in objs {
        let Ok(o) = Object::parse(data) else { continue };
        for (i, s) in o.symbols.iter().enumerate() {
            if s.name.is_empty() {
                continue;
            }
            text.push_str(&format!("{addr:016x} t {}\n", s.name));
            if i % 3 == 0 {
                text.push_str(&format!("{:016x} t {}\n", addr + 8, s.name));
            }
            addr += 0x40;
        }
    }
    SystemMap::parse(&text)
}

fn exercise(data: &[u8], base: &[u8], map: &SystemMap) -> bool {
    let Ok(obj) = Object::parse(data) else {
        return false;
    };
    read_metadata(&obj);
    // keep-new-code on mutated pairs, both ways round.
    if let Ok(b) = Object::parse(base) {
        for (pre, post) in [
            (b.clone(), obj.clone()),
            (obj.clone(), b),
            (obj.clone(), obj.clone()),
        ] {
            let _ = ksplice::engine::boot::changed_init_functions(&pre, &post);
            if let Ok(nc) =
                transform::keep_new_code(pre, "f.o.KSPLICE_pre", post, "f.o", "fuzz", map)
            {
                let _ = nc.report.json();
                let _ = nc.report.text();
                if let Some(o) = nc.object {
                    read_metadata(&o);
                    let _ = o.to_bytes();
                }
            }
        }
    }
    if let Ok(o) = transform::keep_old_code(obj.clone(), "f.o", map) {
        let _ = o.to_bytes();
        read_metadata(&o);
        if let Ok(f) = transform::finalize(o, "f.o.KSPLICE_old_code", "vmlinux", map) {
            let _ = f.to_bytes();
            read_metadata(&f);
        }
    }
    if let Ok(f) = transform::finalize(obj.clone(), "f.o", "mod", map) {
        let _ = f.to_bytes();
        read_metadata(&f);
    }
    if let Ok(r) = transform::rmsyms(obj.clone(), "f.o", map) {
        let _ = r.to_bytes();
    }
    let _ = obj.to_bytes();
    true
}

/// Seed objects: (name, pre, post) where `pre` is the real object
/// keep-new-code compares a mutant of `post` with.
struct Seeds {
    objects: Vec<(String, Vec<u8>, Vec<u8>)>,
    map: SystemMap,
}

fn compile_pair(dir: &Path, case: &str) -> (Vec<u8>, Vec<u8>) {
    let src = fixture(&format!("diff/{case}.c"));
    let mut out = Vec::new();
    for post in [false, true] {
        let o = dir.join(format!("{case}-{post}.o"));
        let mut c = std::process::Command::new("gcc");
        c.args(KFLAGS).arg("-c").arg(&src).arg("-o").arg(&o);
        if post {
            c.arg("-DPOST");
        }
        let r = c.output().unwrap();
        assert!(r.status.success(), "{case}: {r:?}");
        out.push(std::fs::read(&o).unwrap());
    }
    let post = out.pop().unwrap();
    (out.pop().unwrap(), post)
}

fn seeds(dir: &Path) -> Seeds {
    let mut objects = Vec::new();
    let kernelish = std::fs::read(compile_file(dir, "k", &fixture("kernelish.c"))).unwrap();
    let extract = std::fs::read(compile_file(dir, "x", &fixture("extract.c"))).unwrap();
    for (name, d) in [("kernelish", &kernelish), ("extract", &extract)] {
        objects.push((name.to_string(), d.clone(), d.clone()));
    }
    let map0 = SystemMap::parse("ffffffff81000000 T printk\n");
    // Outputs of the transforms: objects with Ksplice metadata.
    let k = Object::parse(&kernelish).unwrap();
    let old = transform::keep_old_code(k.clone(), "k.o", &map0).unwrap();
    let fin = transform::finalize(old.clone(), "k.o.KSPLICE_old_code", "vmlinux", &map0).unwrap();
    let rm = transform::rmsyms(
        Object::parse(&extract).unwrap(),
        "x.o.KSPLICE_old_code",
        &map0,
    )
    .unwrap();
    for (name, o) in [("old_code", &old), ("finalized", &fin), ("rmsyms", &rm)] {
        let d = o.to_bytes().unwrap();
        objects.push((name.to_string(), d.clone(), d));
    }
    // Pre/post pairs of the differencing fixtures; their new code too.
    for case in [
        "changed_constant",
        "caller_of_changed",
        "new_static_local",
        "altinstr_stub",
    ] {
        let (pre, post) = compile_pair(dir, case);
        let nc = transform::keep_new_code(
            Object::parse(&pre).unwrap(),
            "a.o.KSPLICE_pre",
            Object::parse(&post).unwrap(),
            "a.o",
            "fuzz",
            &map0,
        )
        .unwrap();
        if let Some(o) = nc.object {
            let d = o.to_bytes().unwrap();
            objects.push((format!("{case}-new_code"), d.clone(), d));
        }
        objects.push((case.to_string(), pre, post));
    }
    // Archives (an object is expected: refused, never misread).
    for (name, thin) in [("archive", false), ("thin-archive", true)] {
        let a = dir.join(format!("{name}.a"));
        let mut c = std::process::Command::new("ar");
        c.arg(if thin { "rcT" } else { "rc" })
            .arg(&a)
            .arg(dir.join("k.o"))
            .arg(dir.join("x.o"));
        assert!(c.status().unwrap().success());
        let d = std::fs::read(&a).unwrap();
        objects.push((name.to_string(), d.clone(), d));
    }
    let all: Vec<&[u8]> = objects.iter().map(|o| o.2.as_slice()).collect();
    let map = system_map_of(&all);
    Seeds { objects, map }
}

#[test]
fn mutated_objects_never_panic() {
    let dir = scratch("fuzz");
    let s = seeds(&dir);
    let n = s.objects.len() as u64;
    let (iters, parsed) = fuzz(
        "objects",
        1500,
        &dir,
        |rng, seed| mutate(&s.objects[(seed % n) as usize].2, rng),
        |m, seed| exercise(m, &s.objects[(seed % n) as usize].1, &s.map),
    );
    // The mutations must reach past the parser often enough to be useful.
    assert!(
        parsed * 10 >= iters,
        "only {parsed} of {iters} mutants parsed"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Mutants of metadata-bearing objects whose damage is inside the
/// `.ksplice_*` sections (their bytes and their relocations' offsets,
/// symbols and addends), so the object still parses and the reader and the
/// later transforms see hostile records.
#[test]
fn mutated_metadata_never_panics() {
    let dir = scratch("fuzz-meta");
    let s = seeds(&dir);
    let with_meta: Vec<Object> = s
        .objects
        .iter()
        .filter_map(|o| Object::parse(&o.2).ok())
        .filter(|o| o.sections.iter().any(|x| x.name.starts_with(".ksplice")))
        .collect();
    assert!(with_meta.len() >= 4);
    let n = with_meta.len() as u64;
    let mutate_meta = |rng: &mut XorShift, seed: u64| -> Object {
        let mut o = with_meta[(seed % n) as usize].clone();
        let meta: Vec<usize> = (0..o.sections.len())
            .filter(|&i| o.sections[i].name.starts_with(".ksplice"))
            .collect();
        let nsyms = o.symbols.len();
        for _ in 0..1 + rng.below(6) {
            let sec = &mut o.sections[meta[rng.below(meta.len())]];
            match rng.below(7) {
                0 if !sec.data.is_empty() => {
                    let i = rng.below(sec.data.len());
                    sec.data[i] ^= 1 << rng.below(8);
                }
                1 if !sec.data.is_empty() => {
                    // A whole 64-bit field (size, count, addend).
                    let i = rng.below(sec.data.len()) & !7;
                    let v: u64 = match rng.below(4) {
                        0 => u64::MAX,
                        1 => rng.next(),
                        2 => 1 << rng.below(64),
                        _ => u64::MAX - rng.below(64) as u64,
                    };
                    for (k, b) in v.to_le_bytes().iter().enumerate() {
                        if let Some(x) = sec.data.get_mut(i + k) {
                            *x = *b;
                        }
                    }
                }
                2 => {
                    let n = rng.below(sec.data.len() + 1);
                    sec.data.truncate(n);
                    sec.relocs.retain(|r| r.offset < n as u64);
                }
                3 if !sec.relocs.is_empty() => {
                    let r = rng.below(sec.relocs.len());
                    sec.relocs[r].addend = match rng.below(3) {
                        0 => i64::MAX - rng.below(16) as i64,
                        1 => i64::MIN + rng.below(16) as i64,
                        _ => rng.next() as i64,
                    };
                }
                4 if !sec.relocs.is_empty() && nsyms > 0 => {
                    let r = rng.below(sec.relocs.len());
                    sec.relocs[r].sym = SymId::new(rng.below(nsyms));
                }
                5 if !sec.relocs.is_empty() => {
                    let r = rng.below(sec.relocs.len());
                    sec.relocs[r].offset = rng.below(sec.data.len().max(1)) as u64;
                    sec.relocs.sort_by_key(|r| r.offset);
                }
                _ if !sec.relocs.is_empty() => {
                    let r = rng.below(sec.relocs.len());
                    sec.relocs.remove(r);
                }
                _ => {}
            }
        }
        // Symbol values too: the reader adds them to addends.
        if rng.below(3) == 0 && nsyms > 0 {
            let i = rng.below(nsyms);
            o.symbols[i].value = u64::MAX - rng.below(64) as u64;
        }
        o
    };
    let (iters, parsed) = fuzz(
        "metadata",
        1000,
        &dir,
        |rng, seed| {
            // Serialise so a failure can be saved and replayed as a file.
            mutate_meta(rng, seed).to_bytes().unwrap_or_default()
        },
        |bytes, seed| {
            let mut rng = XorShift::new(seed);
            let obj = mutate_meta(&mut rng, seed);
            read_metadata(&obj);
            if let Ok(f) = transform::finalize(obj.clone(), "m.o", "vmlinux", &s.map) {
                read_metadata(&f);
                let _ = f.to_bytes();
            }
            if let Ok(r) = transform::rmsyms(obj, "m.o", &s.map) {
                read_metadata(&r);
            }
            // The serialised mutant, as a file would bring it.
            match Object::parse(bytes) {
                Ok(o) => {
                    read_metadata(&o);
                    true
                }
                Err(_) => false,
            }
        },
    );
    assert!(
        parsed * 2 >= iters,
        "only {parsed} of {iters} mutants parsed"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------- texts

const SYSTEM_MAP: &str = "ffffffff81000000 T _text\nffffffff81000010 t helper\nffffffff81000020 t helper\n0000000000000000 A __per_cpu_start\nffffffff81001000 T _printk\n";
const CONTENTS: &str = "change vmlinux ksplice_abc_vmlinux_new ksplice-abc_vmlinux-new.ko ksplice_abc_vmlinux_old ksplice-abc_vmlinux-old.ko\nchange isofs ksplice_abc_isofs_new ksplice-abc_isofs-new.ko ksplice_abc_isofs_old ksplice-abc_isofs-old.ko\ncore ksplice_abc ksplice-abc.ko\n";
const UTSNAME: &str = "6.1.0-ksplice\n#1 SMP PREEMPT_DYNAMIC Thu Jan  1 00:00:00 UTC 2026\n";
const PATCHED: &str = "fs/proc/version.o version_proc_show\nfs/proc/uptime.o uptime_proc_show\n";
const REPORT: &str = r#"{"object":"fs/proc/version.o","patched_functions":[{"name":"version_proc_show","reason":"code \"changed\"\u00e9\ud83d\ude00"}],"new_functions":[{"name":"helper.isra.0"}],"refused":[],"n":[1,-2.5e3,true,false,null]}"#;
const CONFLICTS: &str = "cat 123 version_proc_show seq_read\nbash 1 x\n";

/// Tokens that mean something to one of the text formats.
const TOKENS: &[&str] = &[
    " ",
    "\n",
    "\t",
    "\r\n",
    "\0",
    "..",
    "/",
    "../../etc/x.ko",
    "/abs.ko",
    ".ko",
    "core",
    "change",
    "ksplice_abc",
    "ksplice_abc_",
    "ksplice-abc.ko",
    "vmlinux",
    "-",
    "_",
    "{",
    "}",
    "[",
    "]",
    "\"",
    "\\",
    "\\u",
    "\\ud800",
    ":",
    ",",
    "1e999",
    "-",
    "ffffffffffffffffff",
    "0x",
    "é",
    "\u{202e}",
];

fn mutate_text(base: &str, rng: &mut XorShift) -> Vec<u8> {
    let mut d = base.as_bytes().to_vec();
    for _ in 0..1 + rng.below(6) {
        match rng.below(8) {
            0 if !d.is_empty() => {
                let i = rng.below(d.len());
                d[i] ^= 1 << rng.below(8);
            }
            1 if !d.is_empty() => {
                let i = rng.below(d.len());
                d[i] = rng.next() as u8;
            }
            2 | 3 => {
                let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                let i = rng.below(d.len() + 1);
                d.splice(i..i, t.iter().copied());
            }
            4 if !d.is_empty() => {
                // Replace a word by a token.
                let i = rng.below(d.len());
                let end = d[i..]
                    .iter()
                    .position(|b| b.is_ascii_whitespace())
                    .map_or(d.len(), |p| i + p);
                let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                d.splice(i..end, t.iter().copied());
            }
            5 => {
                // Duplicate a line, or drop one.
                let lines: Vec<&[u8]> = d.split(|&b| b == b'\n').collect();
                let k = rng.below(lines.len());
                let mut out: Vec<Vec<u8>> = lines.iter().map(|l| l.to_vec()).collect();
                if rng.below(2) == 0 {
                    out.insert(k, lines[k].to_vec());
                } else {
                    out.remove(k);
                }
                d = out.join(&b'\n');
            }
            6 => {
                let n = rng.below(d.len() + 1);
                d.truncate(n);
            }
            _ => {
                // Something long or deep.
                let c = [b'[', b'{', b'a', b'"', b' '][rng.below(5)];
                let n = 1 + rng.below(4096);
                let i = rng.below(d.len() + 1);
                d.splice(i..i, std::iter::repeat_n(c, n));
            }
        }
    }
    d
}

/// True when `name` is a plain file name: no directory, not hidden.
fn plain_file(name: &str) -> bool {
    !name.is_empty()
        && !name.contains('/')
        && !name.contains('\0')
        && !name.starts_with('.')
        && name.ends_with(".ko")
}

#[test]
fn mutated_texts_never_panic() {
    let dir = scratch("fuzz-text");
    let bases = [SYSTEM_MAP, CONTENTS, UTSNAME, PATCHED, REPORT, CONFLICTS];
    let (_, accepted) = fuzz(
        "texts",
        5000,
        &dir,
        |rng, seed| mutate_text(bases[(seed % bases.len() as u64) as usize], rng),
        |bytes, _| {
            let text = String::from_utf8_lossy(bytes);
            // Every parser gets every text.
            let map = SystemMap::parse(&text);
            for name in ["helper", "_text", "_printk", ""] {
                std::hint::black_box(map.get(name));
                std::hint::black_box(sysmap::lookup_text(&text, name));
            }
            let mut ok = false;
            if let Ok(c) = Contents::parse(&text, "abc") {
                ok = true;
                assert!(plain_file(&c.core.file), "{:?}", c.core);
                assert_eq!(c.core.module, "ksplice_abc");
                assert!(!c.changes.is_empty());
                for ch in &c.changes {
                    assert!(
                        plain_file(&ch.new_file) && plain_file(&ch.old_file),
                        "{ch:?}"
                    );
                    assert!(names::is_module_name(&ch.new_module), "{ch:?}");
                    assert!(ch.new_module.starts_with("ksplice_abc_"), "{ch:?}");
                    assert!(ch.old_module.starts_with("ksplice_abc_"), "{ch:?}");
                }
            }
            if let Ok(u) = Utsname::parse(&text) {
                ok = true;
                assert!(!u.release.contains('\n') && !u.version.contains('\n'));
            }
            std::hint::black_box(patched::parse_patched(&text));
            if patched::patched_file(&[("o.o".to_string(), text.to_string())]).is_ok() {
                ok = true;
            }
            std::hint::black_box(update::describe_conflicts(&text));
            std::hint::black_box(update::explain_apply(&text));
            std::hint::black_box(update::explain_undo(&text));
            ok
        },
    );
    assert!(accepted > 0);
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------- updates

/// The files of a good update `ksplice-abc`.
fn update_files() -> Vec<(String, Vec<u8>)> {
    let mut f: Vec<(String, Vec<u8>)> = vec![
        ("contents".into(), CONTENTS.as_bytes().to_vec()),
        ("utsname".into(), UTSNAME.as_bytes().to_vec()),
        ("description".into(), b"fuzz\n".to_vec()),
        ("patched".into(), PATCHED.as_bytes().to_vec()),
        ("api-version".into(), b"2\n".to_vec()),
    ];
    for m in [
        "ksplice-abc.ko",
        "ksplice-abc_vmlinux-new.ko",
        "ksplice-abc_vmlinux-old.ko",
        "ksplice-abc_isofs-new.ko",
        "ksplice-abc_isofs-old.ko",
    ] {
        f.push((m.into(), b"\x7fELF".to_vec()));
    }
    f
}

/// The tar archive of update `ksplice-abc` holding `files`.
fn tar_of(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut t = Vec::new();
    tar::entry(&mut t, b"ksplice-abc/", b'5', b"");
    for (name, data) in files {
        tar::entry(&mut t, format!("ksplice-abc/{name}").as_bytes(), b'0', data);
    }
    tar::finish(t)
}

/// Every entry under `dir` (relative), sorted.
fn tree(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Whole update tarballs: the contents and utsname texts mutated (often),
/// file names, headers and the compressed stream (sometimes), unpacked
/// with the tools' tar reader and opened as an update. `Update::open`
/// gives Ok or Err; when Ok, every module file it names is a regular file
/// inside the unpacked update. Nothing appears outside the destination.
/// (The private temporary directory `Update::open` makes for a tarball is
/// checked by tests/tools.rs: TMPDIR is empty after every tool run.)
#[test]
fn mutated_updates_never_escape() {
    let dir = scratch("fuzz-update");
    let dest = dir.join("u");
    let proc_root = dir.join("proc");
    std::fs::create_dir_all(proc_root.join("sys/kernel")).unwrap();
    std::fs::write(proc_root.join("sys/kernel/osrelease"), "6.1.0-ksplice\n").unwrap();
    std::fs::write(
        proc_root.join("sys/kernel/version"),
        "#1 SMP PREEMPT_DYNAMIC Thu Jan  1 00:00:00 UTC 2026\n",
    )
    .unwrap();
    let (_, opened) = fuzz(
        "updates",
        300,
        &dir,
        |rng, _| {
            let mut files = update_files();
            match rng.below(5) {
                0 | 1 => {
                    let t = mutate_text(CONTENTS, rng);
                    files[0].1 = t;
                }
                2 => {
                    let t = mutate_text(UTSNAME, rng);
                    files[1].1 = t;
                }
                3 => {
                    // A file name.
                    let k = rng.below(files.len());
                    let t = mutate_text(&files[k].0.clone(), rng);
                    files[k].0 = String::from_utf8_lossy(&t).into_owned();
                }
                _ => {}
            }
            let mut t = tar_of(&files);
            if rng.below(4) == 0 {
                // A header field or the data, checksum kept right.
                let h = 512 * rng.below(t.len() / 512);
                for _ in 0..1 + rng.below(3) {
                    let i = h + rng.below(512);
                    t[i] =
                        [0u8, b'/', b'.', b'2', b'5', b'1', 0xff, rng.next() as u8][rng.below(8)];
                }
                tar::fix_checksum(&mut t[h..h + 512]);
            }
            let mut z = tar::gz(&t);
            if rng.below(10) == 0 {
                let i = rng.below(z.len());
                z[i] ^= 1 << rng.below(8);
            }
            z
        },
        |z, _| {
            let _ = std::fs::remove_dir_all(&dest);
            std::fs::create_dir(&dest).unwrap();
            let opened = match ksplice::package::tarball::unpack_gz(z, &dest) {
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    false
                }
                Ok(top) => match Update::open(&top) {
                    Ok(u) => {
                        let inside = dest.canonicalize().unwrap();
                        for name in std::iter::once(&u.contents.core.file).chain(
                            u.contents
                                .changes
                                .iter()
                                .flat_map(|c| [&c.new_file, &c.old_file]),
                        ) {
                            let p = u.file(name);
                            let real = p.canonicalize().unwrap();
                            assert!(real.starts_with(&inside), "{real:?}");
                            assert!(std::fs::symlink_metadata(&p).unwrap().is_file());
                        }
                        let _ = u.check_kernel(&proc_root);
                        true
                    }
                    Err(e) => {
                        assert!(!format!("{e:#}").is_empty());
                        false
                    }
                },
            };
            // Nothing written beside the destination; no links in it.
            let mut top = tree(&dir);
            top.retain(|p| {
                !p.starts_with("proc")
                    && !p.starts_with("u")
                    && !p.to_string_lossy().starts_with("crash-")
            });
            assert!(top.is_empty(), "written outside the destination: {top:?}");
            for p in tree(&dest) {
                let ft = std::fs::symlink_metadata(dest.join(&p))
                    .unwrap()
                    .file_type();
                assert!(ft.is_dir() || ft.is_file(), "{p:?}: {ft:?}");
            }
            opened
        },
    );
    assert!(opened > 0, "no mutant opened: the mutations are too coarse");
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------- tar archives

/// The seed archives of the tar target (uncompressed) and the offsets of
/// their headers.
fn tar_seeds() -> Vec<(Vec<u8>, Vec<usize>)> {
    use support::tar::{good, header_offsets, varied};
    [good(), varied()]
        .into_iter()
        .map(|t| {
            let h = header_offsets(&t);
            (t, h)
        })
        .collect()
}

/// One mutant of a seed archive: bit flips, header fields (checksum kept
/// right), truncation, random data, a block duplicated or dropped, an
/// entry's size; sometimes the compressed stream is damaged instead.
fn mutate_tar(seeds: &[(Vec<u8>, Vec<usize>)], rng: &mut XorShift) -> Vec<u8> {
    use support::tar::{BLOCK, fix_checksum, gz};
    let (base, headers) = &seeds[rng.below(seeds.len())];
    let mut t = base.clone();
    match rng.below(7) {
        0 => {
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(t.len());
                t[i] ^= 1 << rng.below(8);
            }
        }
        1 | 2 => {
            // Mutate a header and keep its checksum right, to get past it.
            let h = headers[rng.below(headers.len())];
            for _ in 0..1 + rng.below(4) {
                let i = h + rng.below(500);
                t[i] = match rng.below(4) {
                    0 => rng.next() as u8,
                    1 => {
                        let interesting = b"0125Lxg/.\0";
                        interesting[rng.below(interesting.len())]
                    }
                    2 => b'7',
                    _ => 0xff,
                };
            }
            fix_checksum(&mut t[h..h + BLOCK]);
        }
        3 => t.truncate(rng.below(t.len())),
        4 => {
            let n = rng.below(4 * BLOCK);
            t = (0..n).map(|_| rng.next() as u8).collect();
        }
        5 => {
            // Duplicate or drop a block.
            let b = rng.below(t.len() / BLOCK) * BLOCK;
            if rng.below(2) == 0 {
                let blk = t[b..b + BLOCK].to_vec();
                t.splice(b..b, blk);
            } else {
                t.drain(b..b + BLOCK);
            }
        }
        _ => {
            // Set the size of an entry to something else.
            let h = headers[rng.below(headers.len())];
            let size = match rng.below(3) {
                0 => rng.below(4096) as u64,
                1 => rng.next() >> rng.below(64),
                _ => 0,
            };
            if size < 0o77777777777 {
                t[h + 124..h + 135].copy_from_slice(format!("{size:011o}").as_bytes());
            } else {
                t[h + 124..h + 128].copy_from_slice(&[0x80, 0, 0, 0]);
                t[h + 128..h + 136].copy_from_slice(&size.to_be_bytes());
            }
            fix_checksum(&mut t[h..h + BLOCK]);
        }
    }
    let mut data = gz(&t);
    if rng.below(8) == 0 {
        // Damage the compressed stream instead.
        let i = rng.below(data.len());
        data[i] ^= 1 << rng.below(8);
    }
    data
}

/// Random and mutated tar archives: unpacking returns Ok or Err, never
/// panics, and never writes outside its destination or makes links.
#[test]
fn fuzz_mutated_archives() {
    use ksplice::package::tarball::{TempDir, unpack_gz};
    let dir = scratch("fuzz-tar");
    let seeds = tar_seeds();
    let (execs, ok) = fuzz(
        "tar",
        400,
        &dir,
        |rng, _| mutate_tar(&seeds, rng),
        |data, _| {
            let outer = TempDir::new().unwrap();
            let dest = outer.path().join("d");
            std::fs::create_dir(&dest).unwrap();
            let ok = match unpack_gz(data, &dest) {
                Ok(top) => {
                    assert!(top.starts_with(&dest));
                    true
                }
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    false
                }
            };
            let names: Vec<_> = std::fs::read_dir(outer.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(names, vec![std::ffi::OsString::from("d")]);
            for p in tree(&dest) {
                let ft = std::fs::symlink_metadata(dest.join(&p))
                    .unwrap()
                    .file_type();
                assert!(ft.is_dir() || ft.is_file(), "{p:?}: {ft:?}");
            }
            ok
        },
    );
    assert!(ok > 0 && ok < execs, "ok {ok}, refused {}", execs - ok);
    let _ = std::fs::remove_dir_all(&dir);
}
