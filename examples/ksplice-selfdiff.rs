//! Runs keep-new-code of each object against itself (no identical-file
//! shortcut) and against a second build when one is given as `OBJ=OTHER`;
//! prints the objects where the engine finds a change.
//! `cargo run --release --example ksplice-selfdiff -- OBJ[=OTHER]...`

use ksplice::engine::elf::Object;
use ksplice::engine::sysmap::SystemMap;
use ksplice::engine::transform;

fn main() {
    let map = SystemMap::default();
    let (mut ok, mut bad) = (0, 0);
    for arg in std::env::args().skip(1) {
        let (a, b) = arg.split_once('=').unwrap_or((&arg, &arg));
        let load = |p: &str| {
            std::fs::read(p)
                .map_err(|e| e.to_string())
                .and_then(|d| Object::parse(&d).map_err(|e| e.to_string()))
        };
        let (pre, post) = match (load(a), load(b)) {
            (Ok(x), Ok(y)) => (x, y),
            (Err(e), _) | (_, Err(e)) => {
                println!("{arg}: {e}");
                bad += 1;
                continue;
            }
        };
        match transform::keep_new_code(pre, &format!("{a}.KSPLICE_pre"), post, a, "self", &map) {
            Ok(nc) if nc.object.is_none() && nc.report.refused.is_empty() => ok += 1,
            Ok(nc) => {
                bad += 1;
                print!("{arg}: CHANGED\n{}", nc.report.text());
            }
            Err(e) => {
                bad += 1;
                println!("{arg}: {e}");
            }
        }
    }
    println!("{ok} unchanged, {bad} changed or failed");
    if bad > 0 {
        std::process::exit(1);
    }
}
