//! Why an update package is unusable.

use super::utsname::Utsname;
use std::fmt;

/// Why an update is unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateError {
    /// The update directory is not named `ksplice-<kid>`.
    BadDirName(String),
    /// A file the update must have is missing.
    MissingFile(String),
    /// `contents` has a line of an unknown kind.
    UnknownLine {
        /// Line number (1-based).
        line: usize,
        /// The first word of the line.
        kind: String,
    },
    /// A `contents` line has the wrong number of fields.
    BadFields {
        /// Line number.
        line: usize,
        /// The kind of line.
        kind: String,
        /// Fields expected after the kind.
        expected: usize,
        /// Fields found.
        found: usize,
    },
    /// A module name is not `[A-Za-z0-9_]+`.
    BadModuleName {
        /// Line number.
        line: usize,
        /// The name.
        name: String,
    },
    /// A module of the update is not named after the update.
    ForeignModule {
        /// Line number.
        line: usize,
        /// The name.
        name: String,
        /// The update id.
        kid: String,
    },
    /// A target name is not a kernel module name (or `vmlinux`).
    BadTarget {
        /// Line number.
        line: usize,
        /// The target.
        target: String,
    },
    /// The same target is changed twice.
    DuplicateTarget {
        /// Line number.
        line: usize,
        /// The target.
        target: String,
    },
    /// A module file name is not a plain `NAME.ko`.
    BadFileName {
        /// Line number.
        line: usize,
        /// The file name.
        name: String,
    },
    /// A module file named in `contents` is not in the update.
    MissingModuleFile {
        /// Line number.
        line: usize,
        /// The file name.
        name: String,
    },
    /// A `labels` line whose module is not named `..._labels`, or named twice.
    BadLabels {
        /// Line number.
        line: usize,
        /// The module.
        name: String,
    },
    /// More than one `core` line.
    MultipleCores {
        /// Line number of the second one.
        line: usize,
    },
    /// No `core` line.
    NoCore,
    /// No `change` line.
    NoChanges,
    /// `utsname` is not two lines.
    BadUtsname,
    /// `api-version` names another layout.
    ApiVersion {
        /// The update's version.
        found: String,
        /// The version these tools read.
        expected: String,
    },
    /// The update was built for another kernel.
    WrongKernel {
        /// The kernel the update is for.
        built: Utsname,
        /// The running kernel.
        running: Utsname,
    },
}

impl fmt::Display for UpdateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use UpdateError::*;
        match self {
            BadDirName(n) => write!(
                f,
                "the update directory is {n:?}, not ksplice-ID (ID of letters, digits and underscores)"
            ),
            MissingFile(n) => write!(f, "the update has no {n} file"),
            UnknownLine { line, kind } => {
                write!(f, "contents line {line}: unknown kind of line {kind:?}")
            }
            BadFields {
                line,
                kind,
                expected,
                found,
            } => write!(
                f,
                "contents line {line}: a {kind} line has {expected} fields after the kind, not {found}"
            ),
            BadModuleName { line, name } => write!(
                f,
                "contents line {line}: bad module name {name:?} (letters, digits and underscores)"
            ),
            ForeignModule { line, name, kid } => write!(
                f,
                "contents line {line}: module {name} does not belong to update {kid} (ksplice_{kid}...)"
            ),
            BadTarget { line, target } => {
                write!(f, "contents line {line}: bad target name {target:?}")
            }
            DuplicateTarget { line, target } => {
                write!(f, "contents line {line}: target {target} is changed twice")
            }
            BadFileName { line, name } => {
                write!(f, "contents line {line}: bad module file name {name:?}")
            }
            MissingModuleFile { line, name } => write!(
                f,
                "contents line {line}: module file {name} is not in the update"
            ),
            MultipleCores { line } => write!(f, "contents line {line}: a second core line"),
            BadLabels { line, name } => write!(
                f,
                "contents line {line}: {name} is not a labels module name (..._labels) or is named twice"
            ),
            NoCore => write!(f, "contents has no core line"),
            NoChanges => write!(f, "contents has no change line (nothing to apply)"),
            BadUtsname => write!(
                f,
                "utsname is not two lines (kernel release and kernel version)"
            ),
            ApiVersion { found, expected } => write!(
                f,
                "update format version {found} (this tool reads version {expected}); rebuild it with this ksplice-create"
            ),
            WrongKernel { built, running } => write!(
                f,
                "the update is for kernel {} ({}), but the running kernel is {} ({})",
                built.release, built.version, running.release, running.version
            ),
        }
    }
}

impl std::error::Error for UpdateError {}
