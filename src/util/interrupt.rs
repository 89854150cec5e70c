//! Termination signals (SIGINT, SIGTERM, SIGHUP), for ksplice-create and
//! the update tools alike: the handler only sets a flag, and the run stops
//! at its next check, where it cleans up (restores the source tree, kills
//! its builds, unloads what it loaded) and exits 130.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Installs the handler that sets the flag [`interrupted`] reads.
pub fn install_handler() {
    let _ = ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst));
}

/// True once a termination signal arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// `Err(Interrupted)` once a termination signal arrived.
pub fn check() -> anyhow::Result<()> {
    if interrupted() {
        return Err(Interrupted.into());
    }
    Ok(())
}

/// Marker error: the run was interrupted (found with `downcast_ref`).
#[derive(Debug)]
pub struct Interrupted;

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "interrupted")
    }
}

impl std::error::Error for Interrupted {}
