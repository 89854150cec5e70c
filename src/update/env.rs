//! Where the update tools find the kernel, their commands and their
//! records, each overridable from the environment so tests can fake the
//! kernel.

use anyhow::{Context, Result, bail};
use std::path::PathBuf;

/// Where the tools find the kernel, their commands and their records.
#[derive(Debug, Clone)]
pub struct Env {
    /// The sysfs root (`KSPLICE_SYSFS`, default `/sys`).
    pub sysfs: PathBuf,
    /// The procfs root (`KSPLICE_PROC`, default `/proc`).
    pub proc_root: PathBuf,
    /// The records of applied updates (`KSPLICE_STATE`, default `/var/run/ksplice`).
    pub state: PathBuf,
    /// The updates installed to be applied at boot (`KSPLICE_LIB`, default
    /// `/var/lib/ksplice`; see [`super::store`]).
    pub lib: PathBuf,
    /// The module loader and its leading arguments (`KSPLICE_INSMOD`, default `insmod`).
    pub insmod: Vec<String>,
    /// The module unloader (`KSPLICE_RMMOD`, default `rmmod`).
    pub rmmod: Vec<String>,
}

impl Env {
    /// The defaults, overridden by the environment variables.
    pub fn from_env() -> Result<Env> {
        Ok(Env {
            sysfs: path_var("KSPLICE_SYSFS", "/sys"),
            proc_root: path_var("KSPLICE_PROC", "/proc"),
            state: path_var("KSPLICE_STATE", "/var/run/ksplice"),
            lib: path_var("KSPLICE_LIB", "/var/lib/ksplice"),
            insmod: command_var("KSPLICE_INSMOD", "insmod")?,
            rmmod: command_var("KSPLICE_RMMOD", "rmmod")?,
        })
    }
}

/// The path in `var`, or `default` when it is unset or empty.
fn path_var(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default))
}

/// The command in `var` split into words (shell quoting), or `default`
/// when it is unset or blank.
fn command_var(var: &str, default: &str) -> Result<Vec<String>> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => {
            let w = crate::util::fsutil::shell_words(&v).with_context(|| format!("${var}"))?;
            if w.is_empty() {
                bail!("${var} names no command");
            }
            Ok(w)
        }
        _ => Ok(vec![default.to_string()]),
    }
}
