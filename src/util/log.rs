//! Kbuild-style output: quiet by default, one line per action at
//! `KSPLICE_VERBOSE>=1`, debugging at `>=2`.

use std::sync::OnceLock;

/// The verbosity from `KSPLICE_VERBOSE` (0 when unset or not a number).
pub fn level() -> u32 {
    static LEVEL: OnceLock<u32> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        std::env::var("KSPLICE_VERBOSE")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    })
}

/// Prints a Kbuild-style action line (`  TAG     object`) at verbosity 1.
pub fn action(tag: &str, what: &str) {
    if level() >= 1 {
        println!("  {tag:<8}{what}");
    }
}

/// Prints a debugging line at verbosity 2.
pub fn debug(msg: impl FnOnce() -> String) {
    if level() >= 2 {
        eprintln!("ksplice-obj: {}", msg());
    }
}
