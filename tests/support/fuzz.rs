//! The fuzz harness of the test suites: a seeded generator and a loop that
//! runs mutants, catches panics and names the seed that reproduces one.
//! `KSPLICE_FUZZ_ITERS` sets the number of mutants, `KSPLICE_FUZZ_SEED` the
//! first seed.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::Once;
use std::time::Instant;

/// A deterministic xorshift generator: mutant `i` of a run uses
/// `XorShift::new(first seed + i)`.
pub struct XorShift(u64);

impl XorShift {
    /// The generator of one seed (any value, 0 included).
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

thread_local! {
    /// Panics inside a fuzzed call are caught and reported with their seed;
    /// the default hook stays for everything else.
    static QUIET: Cell<bool> = const { Cell::new(false) };
    /// Where the last quiet panic happened.
    static WHERE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

fn quiet_panics() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if QUIET.with(Cell::get) {
                let at = info.location().map(|l| l.to_string()).unwrap_or_default();
                WHERE.with(|w| *w.borrow_mut() = at);
            } else {
                default(info);
            }
        }));
    });
}

/// A number from the environment.
pub fn env_u64(var: &str) -> Option<u64> {
    std::env::var(var).ok().and_then(|v| v.parse().ok())
}

/// The message of a caught panic.
fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".into()
    }
}

/// Runs `iters` mutants (default `default`, or `KSPLICE_FUZZ_ITERS`):
/// `make(seed)` builds one, `check` runs it and returns whether the first
/// parser accepted it. A panic saves the mutant in `dir` and fails with its
/// seed. Returns (executions, accepted).
pub fn fuzz(
    target: &str,
    default: u64,
    dir: &Path,
    mut make: impl FnMut(&mut XorShift, u64) -> Vec<u8>,
    mut check: impl FnMut(&[u8], u64) -> bool,
) -> (u64, u64) {
    quiet_panics();
    let iters = env_u64("KSPLICE_FUZZ_ITERS").unwrap_or(default);
    let first = env_u64("KSPLICE_FUZZ_SEED").unwrap_or(1);
    let start = Instant::now();
    let mut accepted = 0;
    for seed in first..first.saturating_add(iters) {
        let mut rng = XorShift::new(seed);
        let input = make(&mut rng, seed);
        QUIET.with(|q| q.set(true));
        let res = panic::catch_unwind(AssertUnwindSafe(|| check(&input, seed)));
        QUIET.with(|q| q.set(false));
        match res {
            Ok(true) => accepted += 1,
            Ok(false) => {}
            Err(p) => {
                let path = dir.join(format!("crash-{target}-{seed}"));
                std::fs::write(&path, &input).unwrap();
                panic!(
                    "{target}: seed {seed} panics at {}: {}; input saved at {} (replay: KSPLICE_FUZZ_SEED={seed} KSPLICE_FUZZ_ITERS=1)",
                    WHERE.with(|w| w.borrow().clone()),
                    panic_message(p.as_ref()),
                    path.display()
                );
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{target}: {iters} executions (seeds {first}..{}), {accepted} accepted by the parser, {secs:.1} s, {:.0}/s, no panic",
        first.saturating_add(iters),
        iters as f64 / secs.max(1e-9)
    );
    (iters, accepted)
}
