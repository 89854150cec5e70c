//! Building tar archives by hand, good and hostile, for the tests of the
//! tools' tar reader.

use std::io::Write;

/// Size of a tar block.
pub const BLOCK: usize = 512;

/// A ustar header block for `name` (cut at the field's 100 bytes) with a
/// correct checksum.
pub fn header(name: &[u8], typeflag: u8, size: u64) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name[..n]);
    h[100..107].copy_from_slice(b"0000644");
    h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    h[156] = typeflag;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    fix_checksum(&mut h);
    h
}

/// A header block like [`header`] whose link name is `link` (for link
/// entries, which the reader must refuse).
pub fn link_header(name: &[u8], typeflag: u8, size: u64, link: &[u8]) -> [u8; BLOCK] {
    let mut h = header(name, typeflag, size);
    let n = link.len().min(100);
    h[157..157 + n].copy_from_slice(&link[..n]);
    fix_checksum(&mut h);
    h
}

/// Recomputes the checksum of the header block `h` (after a change).
pub fn fix_checksum(h: &mut [u8]) {
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
}

/// Appends an entry (its header and its data, padded) to `out`.
pub fn entry(out: &mut Vec<u8>, name: &[u8], typeflag: u8, data: &[u8]) {
    out.extend_from_slice(&header(name, typeflag, data.len() as u64));
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
}

/// One pax extended header record `LEN KEY=VALUE\n`.
pub fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while format!("{len}{body}").len() != len {
        len += 1;
    }
    format!("{len}{body}").into_bytes()
}

/// Appends the end-of-archive blocks.
pub fn finish(mut out: Vec<u8>) -> Vec<u8> {
    out.extend_from_slice(&[0u8; 2 * BLOCK]);
    out
}

/// Gzip-compresses `data`.
pub fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A good archive: the top directory `ksplice-abc/`, its `contents` and a
/// file under `debug/`.
pub fn good() -> Vec<u8> {
    let mut t = Vec::new();
    entry(&mut t, b"ksplice-abc/", b'5', b"");
    entry(
        &mut t,
        b"ksplice-abc/contents",
        b'0',
        b"core ksplice_abc x.ko\n",
    );
    entry(&mut t, b"ksplice-abc/debug/objects/a.o", b'0', b"ELF");
    finish(t)
}

/// A good archive with a GNU long name, a pax path, a file of several
/// blocks and a subdirectory.
pub fn varied() -> Vec<u8> {
    let mut t = Vec::new();
    entry(&mut t, b"ksplice-k/", b'5', b"");
    entry(
        &mut t,
        b"././@LongLink",
        b'L',
        format!("ksplice-k/{}", "l".repeat(120)).as_bytes(),
    );
    entry(&mut t, b"ksplice-k/x", b'0', &[7u8; 700]);
    entry(&mut t, b"pax", b'x', &pax_record("path", "ksplice-k/p"));
    entry(&mut t, b"ksplice-k/y", b'0', b"pax named");
    entry(&mut t, b"ksplice-k/sub/", b'5', b"");
    entry(&mut t, b"ksplice-k/sub/z.ko", b'0', b"");
    finish(t)
}

/// The offsets of the header blocks of the well-formed archive `t`.
pub fn header_offsets(t: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + BLOCK <= t.len() && t[off..off + BLOCK].iter().any(|&b| b != 0) {
        out.push(off);
        off += BLOCK + octal(&t[off + 124..off + 136]).div_ceil(BLOCK) * BLOCK;
    }
    out
}

/// An octal header field (digits, then NUL or space padding).
fn octal(field: &[u8]) -> usize {
    field
        .iter()
        .take_while(|b| (b'0'..=b'7').contains(*b))
        .fold(0, |v, b| v * 8 + usize::from(b - b'0'))
}
