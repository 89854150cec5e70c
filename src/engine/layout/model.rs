//! The layout model: structs and unions with their members, and the
//! error of reading them.

use std::fmt;

/// Struct or union.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `struct`.
    Struct,
    /// `union`.
    Union,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Struct => "struct",
            Kind::Union => "union",
        })
    }
}

/// One member of a layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member's name (`a`, `s.a` for a member of a named member of
    /// anonymous type, `(anonymous union #1)` for an unnamed aggregate).
    pub name: String,
    /// Byte offset from the start of the outermost type.
    pub offset: u64,
    /// The member's type, as C would spell it (`unsigned int`, `struct foo *`,
    /// `char [16]`).
    pub type_name: String,
    /// The size of the member's type in bytes.
    pub size: u64,
    /// A bit-field: (bit position from the start of the outermost type, width).
    pub bits: Option<(u64, u64)>,
}

/// The layout of one structure or union.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The tag (`foo` for `struct foo`), or the typedef name of an anonymous one.
    pub name: String,
    /// Struct or union.
    pub kind: Kind,
    /// True when the type is anonymous and named by a typedef.
    pub typedef: bool,
    /// `sizeof`.
    pub size: u64,
    /// Members in declaration order (folded anonymous members included).
    pub members: Vec<Member>,
}

impl Layout {
    /// `struct foo`, or `typedef struct {...} foo_t`.
    pub fn display_name(&self) -> String {
        if self.typedef {
            format!("typedef {} {{...}} {}", self.kind, self.name)
        } else {
            format!("{} {}", self.kind, self.name)
        }
    }

    pub(super) fn key(&self) -> (bool, &str) {
        (self.typedef, &self.name)
    }
}

/// Why the layouts of an object could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayoutError {
    /// Not a readable ELF object.
    Elf(String),
    /// The object has no `.debug_info`.
    NoDebugInfo,
    /// A debug section is compressed (the build must use `-gz=none`).
    Compressed(String),
    /// A relocation of a debug section is out of bounds or has a bad symbol.
    Relocation(String),
    /// The DWARF is malformed.
    Dwarf(String),
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayoutError::Elf(e) => write!(f, "not a readable ELF object: {e}"),
            LayoutError::NoDebugInfo => write!(f, "no debug information (.debug_info)"),
            LayoutError::Compressed(s) => write!(f, "{s}: compressed debug section"),
            LayoutError::Relocation(e) => write!(f, "bad debug relocation: {e}"),
            LayoutError::Dwarf(e) => write!(f, "corrupt DWARF: {e}"),
        }
    }
}

impl std::error::Error for LayoutError {}

impl From<gimli::Error> for LayoutError {
    fn from(e: gimli::Error) -> Self {
        LayoutError::Dwarf(e.to_string())
    }
}
