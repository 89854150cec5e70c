//! The DWARF sections of a relocatable ELF object, relocated.

use super::LayoutError;
use gimli::SectionId;
use object::{Object, ObjectSection, ObjectSymbol, RelocationFlags, RelocationTarget};
use std::collections::HashMap;

/// x86-64 relocation types found in debug sections.
const R_X86_64_64: u32 = 1;
const R_X86_64_32: u32 = 10;

/// The DWARF sections of an ELF object, with their relocations applied
/// (in a relocatable object, `.debug_info`'s string offsets are addends).
pub(super) fn debug_sections(data: &[u8]) -> Result<HashMap<SectionId, Vec<u8>>, LayoutError> {
    let file = object::File::parse(data).map_err(|e| LayoutError::Elf(e.to_string()))?;
    let mut out = HashMap::new();
    for id in [
        SectionId::DebugAbbrev,
        SectionId::DebugInfo,
        SectionId::DebugStr,
        SectionId::DebugLineStr,
        SectionId::DebugStrOffsets,
        SectionId::DebugAddr,
        SectionId::DebugLine,
        SectionId::DebugRanges,
        SectionId::DebugRngLists,
    ] {
        let Some(section) = file.section_by_name(id.name()) else {
            continue;
        };
        let mut bytes = section
            .uncompressed_data()
            .map_err(|_| LayoutError::Compressed(id.name().to_string()))?
            .into_owned();
        for (offset, rel) in section.relocations() {
            let width = match rel.flags() {
                RelocationFlags::Elf {
                    r_type: R_X86_64_64,
                } => 8,
                RelocationFlags::Elf {
                    r_type: R_X86_64_32,
                } => 4,
                _ => continue,
            };
            let base = match rel.target() {
                RelocationTarget::Symbol(i) => file
                    .symbol_by_index(i)
                    .map_err(|e| LayoutError::Relocation(format!("{}: {e}", id.name())))?
                    .address(),
                _ => 0,
            };
            let value = base.wrapping_add(rel.addend() as u64);
            let start = usize::try_from(offset).unwrap_or(usize::MAX);
            let field = start
                .checked_add(width)
                .and_then(|end| bytes.get_mut(start..end))
                .ok_or_else(|| {
                    LayoutError::Relocation(format!(
                        "{}: relocation at 0x{offset:x} outside the section",
                        id.name()
                    ))
                })?;
            field.copy_from_slice(&value.to_le_bytes()[..width]);
        }
        out.insert(id, bytes);
    }
    if !out.contains_key(&SectionId::DebugInfo) {
        return Err(LayoutError::NoDebugInfo);
    }
    Ok(out)
}
