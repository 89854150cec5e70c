//! Just enough x86-64 instruction decoding for relocations: the size of the
//! immediate that follows a RIP-relative displacement, which the assembler
//! folds into the relocation's addend (`cmpb $0, sym(%rip)` has addend
//! `-5`, not `-4`: the target is `sym`, the displacement is relative to the
//! end of the instruction, one byte after the field).

/// The size of the immediate after the 32-bit field at `field` of `code`
/// when the field is the displacement of a RIP-relative memory operand; 0
/// for every other field (call, jump and branch displacements, operands
/// without an immediate) and for bytes that do not decode.
pub fn rip_imm_size(code: &[u8], field: u64) -> i64 {
    let Ok(f) = usize::try_from(field) else {
        return 0;
    };
    if f < 2 || f > code.len() {
        return 0;
    }
    let modrm = code[f - 1];
    if modrm & 0xc7 != 0x05 {
        return 0;
    }
    let reg = (modrm >> 3) & 7;
    let op = code[f - 2];
    let at = |back: usize| f.checked_sub(back).map(|i| code[i]);
    if at(3) == Some(0x0f) {
        return i64::from(two_byte_imm8(op));
    }
    if at(4) == Some(0x0f) && at(3) == Some(0x3a) {
        return 1;
    }
    // An operand-size prefix (before a REX prefix, if any) makes the
    // full-size immediates 16-bit.
    let rex = at(3).is_some_and(|b| b & 0xf0 == 0x40);
    let prefix16 = at(if rex { 4 } else { 3 }) == Some(0x66);
    let full = if prefix16 { 2 } else { 4 };
    match op {
        0x80 | 0x82 | 0x83 | 0xc0 | 0xc1 | 0xc6 | 0x6b => 1,
        0x81 | 0xc7 | 0x69 => full,
        0xf6 if reg < 2 => 1,
        0xf7 if reg < 2 => full,
        _ => 0,
    }
}

/// Whether two-byte opcode `0f op` with a memory operand takes an imm8.
fn two_byte_imm8(op: u8) -> bool {
    matches!(op, 0x70..=0x73 | 0xa4 | 0xac | 0xba | 0xc2 | 0xc4..=0xc6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn immediates_after_rip_relative_fields() {
        // cmpb $0x0, x(%rip)
        assert_eq!(rip_imm_size(&[0x80, 0x3d, 0, 0, 0, 0, 0], 2), 1);
        // movb $0x1, x(%rip)
        assert_eq!(rip_imm_size(&[0xc6, 0x05, 0, 0, 0, 0, 1], 2), 1);
        // movl $imm32, x(%rip); with 66: movw $imm16
        assert_eq!(rip_imm_size(&[0xc7, 0x05, 0, 0, 0, 0], 2), 4);
        assert_eq!(rip_imm_size(&[0x66, 0xc7, 0x05, 0, 0, 0, 0], 3), 2);
        // addq $imm8, x(%rip) with REX.W
        assert_eq!(rip_imm_size(&[0x48, 0x83, 0x05, 0, 0, 0, 0], 3), 1);
        // testb $imm8, x(%rip) is f6 /0; negb x(%rip) (f6 /3) has none
        assert_eq!(rip_imm_size(&[0xf6, 0x05, 0, 0, 0, 0], 2), 1);
        assert_eq!(rip_imm_size(&[0xf6, 0x1d, 0, 0, 0, 0], 2), 0);
        // btl $imm8, x(%rip): 0f ba /4
        assert_eq!(rip_imm_size(&[0x0f, 0xba, 0x25, 0, 0, 0, 0], 3), 1);
        // mov x(%rip), %rax; lea; call and jmp rel32; jcc rel32
        assert_eq!(rip_imm_size(&[0x48, 0x8b, 0x05, 0, 0, 0, 0], 3), 0);
        assert_eq!(rip_imm_size(&[0x48, 0x8d, 0x3d, 0, 0, 0, 0], 3), 0);
        assert_eq!(rip_imm_size(&[0xe8, 0, 0, 0, 0], 1), 0);
        assert_eq!(rip_imm_size(&[0x0f, 0x84, 0, 0, 0, 0], 2), 0);
        // out of range or too close to the start
        assert_eq!(rip_imm_size(&[0x05], 1), 0);
        assert_eq!(rip_imm_size(&[], 9), 0);
        assert_eq!(rip_imm_size(&[0x80, 0x3d], u64::MAX), 0);
    }
}
