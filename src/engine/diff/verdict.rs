//! The verdicts of the comparison: what becomes of a post span ([`Fate`])
//! and why a matched pair differs ([`Change`], [`RelocCause`]).

/// What the comparison found wrong with a relocation of a matched pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelocCause {
    /// The pre relocation at the same index sits at another offset: one
    /// was added, removed or moved.
    Position,
    /// The relocation type differs.
    Type,
    /// The bits of the relocated field that the relocation does not
    /// replace differ (an opcode sharing the field, for instance).
    FieldBits,
    /// The target is another symbol, or a span matched to another one.
    TargetChanged,
    /// The target span has no counterpart (it is new or was unmatched).
    TargetUnmatched,
    /// The target could not be resolved to a span.
    TargetUnknown,
    /// One side refers to an undefined, absolute or section symbol, the
    /// other to a different kind.
    TargetKind,
    /// The same undefined symbol, with a different addend.
    Addend,
    /// The same absolute symbol, at a different resulting value.
    AbsoluteValue,
    /// The same target span, at a different offset inside it.
    TargetOffset,
    /// Refers into the middle of a function that is replaced.
    IntoPatchedFunction,
    /// Pre has a relocation post lacks.
    Missing,
    /// Post has a relocation pre lacks.
    Extra,
    /// New or changed code refers into the middle of this function, which
    /// is then replaced too.
    ReferredAtNonzeroOffset,
    /// A table entry (exception table, alternatives, ...) describing this
    /// code changed.
    TableEntryChanged,
}

impl std::fmt::Display for RelocCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RelocCause::Position => "relocation at another offset",
            RelocCause::Type => "relocation type differs",
            RelocCause::FieldBits => "unrelocated bits of the field differ",
            RelocCause::TargetChanged => "target changed",
            RelocCause::TargetUnmatched => "target not matched",
            RelocCause::TargetUnknown => "target not found",
            RelocCause::TargetKind => "target kind differs",
            RelocCause::Addend => "addend differs",
            RelocCause::AbsoluteValue => "absolute value differs",
            RelocCause::TargetOffset => "offset in target differs",
            RelocCause::IntoPatchedFunction => "refers into a replaced function",
            RelocCause::Missing => "relocation missing",
            RelocCause::Extra => "relocation added",
            RelocCause::ReferredAtNonzeroOffset => "referred to at a nonzero offset",
            RelocCause::TableEntryChanged => "its table entry changed",
        })
    }
}

/// Why a matched pair differs: the first difference found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The contents sizes differ.
    Size {
        /// Size in pre.
        old: u64,
        /// Size in post.
        new: u64,
    },
    /// A byte outside relocated fields differs (offset 0 when only one
    /// side occupies file space).
    Bytes {
        /// Offset inside the span.
        offset: u64,
    },
    /// A relocation differs.
    Relocation {
        /// Offset of the (post) relocation inside the span; 0 when the
        /// change comes from outside the span (`cause` says from where).
        offset: u64,
        /// What differs.
        cause: RelocCause,
    },
}

impl Change {
    /// The offset inside the span, when the change has one (not for sizes).
    pub fn offset(&self) -> Option<u64> {
        match *self {
            Change::Size { .. } => None,
            Change::Bytes { offset } | Change::Relocation { offset, .. } => Some(offset),
        }
    }
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Size { .. } => write!(f, "differing size"),
            Change::Bytes { offset } => write!(f, "differing bytes at offset {offset:#x}"),
            Change::Relocation { offset, cause } => {
                write!(f, "differing relocations at offset {offset:#x}: {cause}")
            }
        }
    }
}

/// What happens to a span of the post object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Fate {
    /// Matched and equal (or of a kind that is not compared): the running
    /// kernel's copy stays.
    #[default]
    Unchanged,
    /// No counterpart in pre (or a copy the new code needs): goes to the
    /// new code as is.
    New,
    /// A changed function: replaced by a jump to the new version.
    Patched(Change),
    /// Changed read-only data of the same size, or writable data the
    /// caller chose to rewrite ([`super::Diff::rewrite_writable_in_place`]):
    /// overwritten in place.
    PatchedInPlace(Change),
    /// A BUG/WARN entry whose line changed: its bytes are overwritten.
    BugLineOnly(Change),
    /// Changed writable data: the running instance is kept (the change
    /// cannot take effect by replacing code), and it is reported refused.
    Refused(Change),
}

impl Fate {
    /// Goes to the new code as is.
    pub fn is_new(self) -> bool {
        self == Fate::New
    }

    /// A function replaced by its new version.
    pub fn is_patched(self) -> bool {
        matches!(self, Fate::Patched(_))
    }

    /// Data overwritten in place.
    pub fn is_patched_in_place(self) -> bool {
        matches!(self, Fate::PatchedInPlace(_))
    }

    /// A BUG/WARN entry whose line is rewritten.
    pub fn is_bug_line(self) -> bool {
        matches!(self, Fate::BugLineOnly(_))
    }

    /// Whether the new code carries the post span: new, patched or
    /// patched in place.
    pub fn in_new_code(self) -> bool {
        matches!(self, Fate::New | Fate::Patched(_) | Fate::PatchedInPlace(_))
    }

    /// Why the span changed, when it is a matched span that did.
    pub fn change(self) -> Option<Change> {
        match self {
            Fate::Unchanged | Fate::New => None,
            Fate::Patched(c)
            | Fate::PatchedInPlace(c)
            | Fate::BugLineOnly(c)
            | Fate::Refused(c) => Some(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Change, Fate, RelocCause};

    #[test]
    fn changes_read_as_the_report_says() {
        let size = Change::Size { old: 8, new: 16 };
        assert_eq!(size.to_string(), "differing size");
        assert_eq!(size.offset(), None);
        let bytes = Change::Bytes { offset: 0x12 };
        assert_eq!(bytes.to_string(), "differing bytes at offset 0x12");
        assert_eq!(bytes.offset(), Some(0x12));
        let reloc = |cause| Change::Relocation {
            offset: 0x10,
            cause,
        };
        for (cause, text) in [
            (RelocCause::TargetChanged, "target changed"),
            (RelocCause::TargetUnmatched, "target not matched"),
            (RelocCause::Type, "relocation type differs"),
            (RelocCause::Addend, "addend differs"),
            (
                RelocCause::ReferredAtNonzeroOffset,
                "referred to at a nonzero offset",
            ),
            (RelocCause::Missing, "relocation missing"),
            (RelocCause::Extra, "relocation added"),
        ] {
            assert_eq!(
                reloc(cause).to_string(),
                format!("differing relocations at offset 0x10: {text}")
            );
        }
        assert_eq!(reloc(RelocCause::Type).offset(), Some(0x10));
    }

    #[test]
    fn fates_say_what_goes_to_the_new_code() {
        let c = Change::Bytes { offset: 0 };
        assert!(Fate::New.in_new_code() && Fate::New.is_new());
        assert!(Fate::Patched(c).in_new_code() && Fate::Patched(c).is_patched());
        assert!(Fate::PatchedInPlace(c).in_new_code());
        assert!(!Fate::BugLineOnly(c).in_new_code() && Fate::BugLineOnly(c).is_bug_line());
        assert!(!Fate::Refused(c).in_new_code() && !Fate::Unchanged.in_new_code());
        assert_eq!(Fate::Refused(c).change(), Some(c));
        assert_eq!(Fate::New.change(), None);
        assert_eq!(Fate::default(), Fate::Unchanged);
    }
}
