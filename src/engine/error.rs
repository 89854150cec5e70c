//! Typed errors for the object engine.
//!
//! Callers branch on [`ObjError`] (for example `finalize` treats an empty
//! archive specially); everything else is wrapped with `anyhow` context at
//! the command boundary so that the user sees one line naming the file and
//! the cause.

use std::fmt;

/// Why an input could not be used as an x86-64 relocatable object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjError {
    /// The file does not start with the ELF magic.
    NotElf,
    /// The file is an `ar` archive; `members` is its member count.
    Archive {
        /// Number of members in the archive.
        members: usize,
    },
    /// The file is a 32-bit ELF object.
    Elf32,
    /// The file is big-endian.
    BigEndian,
    /// The ELF machine is not x86-64.
    Machine(u16),
    /// The ELF type is not `ET_REL`.
    NotRelocatable(u16),
    /// A header, table or section lies outside the file.
    Truncated(String),
    /// The object is well-formed ELF but inconsistent.
    Corrupt(String),
    /// A construct the engine does not handle (for example a relocation type).
    Unsupported(String),
}

impl fmt::Display for ObjError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjError::NotElf => write!(f, "not an ELF object"),
            ObjError::Archive { members } => {
                write!(
                    f,
                    "is an archive ({members} members) where an object was expected"
                )
            }
            ObjError::Elf32 => write!(
                f,
                "is an ELF32 (32-bit) object; only ELF64 x86-64 is supported"
            ),
            ObjError::BigEndian => {
                write!(f, "is a big-endian ELF object; only x86-64 is supported")
            }
            ObjError::Machine(m) => write!(f, "is for ELF machine {m}, not x86-64 (62)"),
            ObjError::NotRelocatable(t) => {
                write!(f, "is ELF type {t}, not a relocatable object (ET_REL)")
            }
            ObjError::Truncated(what) => write!(f, "truncated or corrupt ELF: {what}"),
            ObjError::Corrupt(what) => write!(f, "corrupt ELF: {what}"),
            ObjError::Unsupported(what) => write!(f, "unsupported: {what}"),
        }
    }
}

impl std::error::Error for ObjError {}

/// Result alias for the object engine.
pub type ObjResult<T> = Result<T, ObjError>;
