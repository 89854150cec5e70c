//! `ksplice-inspect MODULE`: prints the Ksplice metadata of an update module
//! or object (its sections, relocations and System.map entries). The Perl
//! ksplice-create runs it from its LIBEXECDIR for each module of an update,
//! into the update's debug/inspect.

use ksplice::engine::elf::Object;
use ksplice::engine::metaread::Reader;

fn main() {
    let Some(path) = std::env::args().nth(1) else {
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
