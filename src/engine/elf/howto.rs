//! What each x86-64 relocation type does to its field: the facts the
//! ksplice_reloc_howto record carries to the kernel (size, PC-relative,
//! destination mask, signedness), equivalent to GNU BFD's howto table.

use crate::engine::error::{ObjError, ObjResult};
use object::elf;

/// Properties of a relocation type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Howto {
    /// The `R_X86_64_*` type.
    pub r_type: u32,
    /// Bytes of the relocated field.
    pub size: u32,
    /// True when the value is relative to the field's address.
    pub pcrel: bool,
    /// Bits of the field replaced by the relocated value.
    pub dst_mask: u64,
    /// Right shift applied to the value (always 0 on x86-64).
    pub rightshift: u32,
    /// True when the addend/field is interpreted as signed.
    pub signed: bool,
}

const fn mask(size: u32) -> u64 {
    if size >= 8 {
        u64::MAX
    } else {
        (1u64 << (size * 8)) - 1
    }
}

const fn h(r_type: u32, size: u32, pcrel: bool, signed: bool) -> Howto {
    Howto {
        r_type,
        size,
        pcrel,
        dst_mask: mask(size),
        rightshift: 0,
        signed,
    }
}

/// Looks up the howto for a relocation type; unknown or position-dependent
/// types the kernel cannot resolve (GOT, PLT tables, TLS) are refused.
pub fn howto(r_type: u32) -> ObjResult<Howto> {
    Ok(match r_type {
        elf::R_X86_64_64 => h(r_type, 8, false, false),
        elf::R_X86_64_PC32 => h(r_type, 4, true, true),
        elf::R_X86_64_PLT32 => h(r_type, 4, true, true),
        elf::R_X86_64_32 => h(r_type, 4, false, false),
        elf::R_X86_64_32S => h(r_type, 4, false, true),
        elf::R_X86_64_16 => h(r_type, 2, false, true),
        elf::R_X86_64_PC16 => h(r_type, 2, true, true),
        elf::R_X86_64_8 => h(r_type, 1, false, true),
        elf::R_X86_64_PC8 => h(r_type, 1, true, true),
        elf::R_X86_64_PC64 => h(r_type, 8, true, false),
        _ => {
            return Err(ObjError::Unsupported(format!(
                "relocation type {} ({r_type})",
                name(r_type)
            )));
        }
    })
}

/// Size in bytes of the field a relocation type patches, when known.
pub fn field_size(r_type: u32) -> Option<u32> {
    howto(r_type).ok().map(|h| h.size).or(match r_type {
        elf::R_X86_64_GOTPCREL
        | elf::R_X86_64_GOTPCRELX
        | elf::R_X86_64_REX_GOTPCRELX
        | elf::R_X86_64_GOT32
        | elf::R_X86_64_TPOFF32
        | elf::R_X86_64_GOTTPOFF
        | elf::R_X86_64_TLSGD
        | elf::R_X86_64_TLSLD
        | elf::R_X86_64_DTPOFF32
        | elf::R_X86_64_SIZE32 => Some(4),
        elf::R_X86_64_SIZE64 | elf::R_X86_64_DTPOFF64 | elf::R_X86_64_TPOFF64 => Some(8),
        _ => None,
    })
}

/// Symbolic name of a relocation type, for messages.
pub fn name(r_type: u32) -> &'static str {
    match r_type {
        elf::R_X86_64_NONE => "R_X86_64_NONE",
        elf::R_X86_64_64 => "R_X86_64_64",
        elf::R_X86_64_PC32 => "R_X86_64_PC32",
        elf::R_X86_64_GOT32 => "R_X86_64_GOT32",
        elf::R_X86_64_PLT32 => "R_X86_64_PLT32",
        elf::R_X86_64_GOTPCREL => "R_X86_64_GOTPCREL",
        elf::R_X86_64_32 => "R_X86_64_32",
        elf::R_X86_64_32S => "R_X86_64_32S",
        elf::R_X86_64_16 => "R_X86_64_16",
        elf::R_X86_64_PC16 => "R_X86_64_PC16",
        elf::R_X86_64_8 => "R_X86_64_8",
        elf::R_X86_64_PC8 => "R_X86_64_PC8",
        elf::R_X86_64_PC64 => "R_X86_64_PC64",
        elf::R_X86_64_GOTPCRELX => "R_X86_64_GOTPCRELX",
        elf::R_X86_64_REX_GOTPCRELX => "R_X86_64_REX_GOTPCRELX",
        elf::R_X86_64_TPOFF32 => "R_X86_64_TPOFF32",
        elf::R_X86_64_GOTTPOFF => "R_X86_64_GOTTPOFF",
        elf::R_X86_64_SIZE32 => "R_X86_64_SIZE32",
        elf::R_X86_64_SIZE64 => "R_X86_64_SIZE64",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pc32_is_signed_pcrel_four_bytes() {
        let h = howto(elf::R_X86_64_PC32).unwrap();
        assert_eq!(
            (h.size, h.pcrel, h.dst_mask, h.signed),
            (4, true, 0xffff_ffff, true)
        );
    }

    #[test]
    fn abs64_covers_whole_field() {
        let h = howto(elf::R_X86_64_64).unwrap();
        assert_eq!((h.size, h.pcrel, h.dst_mask), (8, false, u64::MAX));
    }

    #[test]
    fn got_relocations_are_refused() {
        let e = howto(elf::R_X86_64_GOTPCREL).unwrap_err();
        assert!(e.to_string().contains("R_X86_64_GOTPCREL"));
    }
}
