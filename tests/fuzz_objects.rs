//! Bounded fuzzing of the object engine: mutated real objects go through
//! parsing, every transform (keep-new-code on mutated pre/post pairs too)
//! and serialisation, which must never panic.
//!
//! `KSPLICE_FUZZ_ITERS` sets the number of mutants (default 1500); a panic
//! reports the seed so the case can be replayed with `KSPLICE_FUZZ_SEED`.

mod support;

use ksplice::elf::Object;
use ksplice::sysmap::SystemMap;
use ksplice::transform;
use std::panic;
use support::*;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// One mutant of `base`: byte flips, targeted header and table overwrites,
/// truncation.
fn mutate(base: &[u8], rng: &mut XorShift) -> Vec<u8> {
    let mut d = base.to_vec();
    let shoff = u64::from_le_bytes(d[0x28..0x30].try_into().unwrap()) as usize;
    for _ in 0..1 + rng.below(4) {
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

fn exercise(data: &[u8], base: &[u8]) {
    let Ok(obj) = Object::parse(data) else { return };
    let map = SystemMap::parse("ffffffff81000000 T printk\n");
    // keep-new-code on mutated pairs, both ways round.
    if let Ok(b) = Object::parse(base) {
        for (pre, post) in [
            (b.clone(), obj.clone()),
            (obj.clone(), b),
            (obj.clone(), obj.clone()),
        ] {
            if let Ok(nc) =
                transform::keep_new_code(pre, "f.o.KSPLICE_pre", post, "f.o", "fuzz", &map)
            {
                let _ = nc.report.json();
                if let Some(o) = nc.object {
                    let _ = o.to_bytes();
                }
            }
        }
    }
    if let Ok(o) = transform::keep_old_code(obj.clone(), "f.o", &map) {
        let _ = o.to_bytes();
        if let Ok(f) = transform::finalize(o, "f.o.KSPLICE_old_code", "vmlinux", &map) {
            let _ = f.to_bytes();
        }
    }
    if let Ok(f) = transform::finalize(obj.clone(), "f.o", "mod", &map) {
        let _ = f.to_bytes();
    }
    if let Ok(r) = transform::rmsyms(obj.clone(), "f.o", &map) {
        let _ = r.to_bytes();
    }
    let _ = obj.to_bytes();
}

#[test]
fn mutated_objects_never_panic() {
    let dir = scratch("fuzz");
    let bases = [
        std::fs::read(compile_file(&dir, "k", &fixture("kernelish.c"))).unwrap(),
        std::fs::read(compile_file(&dir, "x", &fixture("extract.c"))).unwrap(),
    ];
    let iters: u64 = std::env::var("KSPLICE_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500);
    let first: u64 = std::env::var("KSPLICE_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    panic::set_hook(Box::new(|_| {}));
    let mut parsed = 0;
    for seed in first..first + iters {
        let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let base = &bases[(seed % 2) as usize];
        let m = mutate(base, &mut rng);
        if Object::parse(&m).is_ok() {
            parsed += 1;
        }
        let res = panic::catch_unwind(|| exercise(&m, base));
        if res.is_err() {
            let _ = panic::take_hook();
            let path = dir.join(format!("crash-{seed}.o"));
            std::fs::write(&path, &m).unwrap();
            panic!("seed {seed} panics; mutant saved at {}", path.display());
        }
    }
    let _ = panic::take_hook();
    // The mutations must reach past the parser often enough to be useful.
    assert!(
        parsed * 10 >= iters,
        "only {parsed} of {iters} mutants parsed"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
