//! `ksplice-inspect MODULE`: prints the Ksplice metadata of an update module
//! or object (its sections, relocations and System.map entries). The Perl
//! ksplice-create runs it from its LIBEXECDIR for each module of an update,
//! into the update's debug/inspect. `--version` (`-V`) alone prints its
//! version.

use ksplice::engine::elf::Object;
use ksplice::engine::metaread::Reader;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if ksplice::cli::asks_version(&args) {
        println!("{}", ksplice::cli::version_line("ksplice-inspect"));
        return;
    }
    let Some(path) = args.into_iter().next() else {
        eprintln!("usage: ksplice-inspect MODULE");
        std::process::exit(1);
    };
    let data = match std::fs::read(&path) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(1);
        }
    };
    let obj = match Object::parse(&data) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(1);
        }
    };
    let r = Reader::new(&obj);
    for s in r.sections() {
        println!(
            "section {:?} size {:#x} flags {:#x} in {}",
            s.symbol, s.size, s.flags, s.in_section
        );
        println!("        at {:?}", s.address);
    }
    for k in r.relocs() {
        println!(
            "reloc {:?} sym {:?}{} howto {:?} insn {} target {}",
            k.blank,
            k.symbol,
            k.deferred
                .map(|d| format!(" deferred {d}"))
                .unwrap_or_default(),
            k.howto,
            k.insn_addend,
            k.target_addend
        );
    }
    for m in r.system_map() {
        println!("system_map {} {:x?}", m.label, m.candidates);
    }
}
