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

/// Restores SIGPIPE's default action, for a read-only tool whose output
/// may go to a reader that stops early (`ksplice-view | grep -q`): a
/// closed pipe then ends it quietly, as it does a C tool, instead of a
/// panic in the middle of printing.
pub fn default_sigpipe() {
    // SAFETY: setting a signal's disposition to its default touches no
    // memory of this program.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
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
