//! The kernel an update was built for, and the running one.

use super::error::UpdateError;
use anyhow::{Context, Result};
use std::fs;
use std::path::Path;

/// A kernel's identity as `uname -r` and `uname -v` print it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Utsname {
    /// The release (`6.1.0-ksplice`).
    pub release: String,
    /// The version (`#1 SMP PREEMPT_DYNAMIC ...`).
    pub version: String,
}

impl Utsname {
    /// Parses an update's `utsname`: release, then version, one per line.
    pub fn parse(text: &str) -> Result<Utsname, UpdateError> {
        let lines: Vec<&str> = text.lines().collect();
        match lines.as_slice() {
            [release, version] | [release, version, ""] => Ok(Utsname {
                release: release.to_string(),
                version: version.to_string(),
            }),
            _ => Err(UpdateError::BadUtsname),
        }
    }

    /// The running kernel's, from `PROC/sys/kernel/osrelease` and `version`.
    pub fn running(proc_root: &Path) -> Result<Utsname> {
        let read = |name: &str| -> Result<String> {
            let p = proc_root.join("sys/kernel").join(name);
            let t =
                fs::read_to_string(&p).with_context(|| format!("{}: cannot read", p.display()))?;
            Ok(t.trim_end_matches('\n').to_string())
        };
        Ok(Utsname {
            release: read("osrelease")?,
            version: read("version")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_utsname() {
        let u = Utsname::parse("6.1.0\n#1 SMP PREEMPT_DYNAMIC Mon\n").unwrap();
        assert_eq!(u.release, "6.1.0");
        assert_eq!(u.version, "#1 SMP PREEMPT_DYNAMIC Mon");
        assert_eq!(Utsname::parse("6.1.0\n"), Err(UpdateError::BadUtsname));
        assert_eq!(Utsname::parse("a\nb\nc\n"), Err(UpdateError::BadUtsname));
        let m = UpdateError::WrongKernel {
            built: u.clone(),
            running: Utsname {
                release: "6.1.1".into(),
                version: "#2".into(),
            },
        }
        .to_string();
        assert!(
            m.contains("6.1.0") && m.contains("6.1.1") && m.contains("#2"),
            "{m}"
        );
    }
}
