//! Reading the tar format: POSIX ustar and GNU headers, GNU long names and
//! pax extended headers, each entry checked by [`super::policy`] before
//! anything is written.

use super::error::{TarCause, TarError, err};
use super::policy;
use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Size of a tar block.
const BLOCK: usize = 512;
/// Largest GNU long-name or pax record read into memory.
const MAX_META: u64 = 1 << 20;
/// Largest total size of the files written out.
const MAX_WRITTEN: u64 = 1 << 30;
/// Largest decompressed archive.
const MAX_STREAM: u64 = 8 << 30;
/// Most entries in one archive.
const MAX_ENTRIES: usize = 100_000;
/// Most data read after the end-of-archive blocks.
const MAX_TRAILING: u64 = 16 << 20;

/// Counts and limits what is read from the decompressed stream, and turns
/// decoding errors into [`TarCause::Gzip`].
struct Stream<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Stream<R> {
    /// Fills `buf` completely; `None` at a clean end of stream before the
    /// first byte.
    fn block(&mut self, buf: &mut [u8], entry: Option<&[u8]>) -> Result<bool, TarError> {
        let mut got = 0;
        while got < buf.len() {
            let n = self.read_some(&mut buf[got..], entry)?;
            if n == 0 {
                if got == 0 {
                    return Ok(false);
                }
                return Err(err(entry, TarCause::Truncated));
            }
            got += n;
        }
        Ok(true)
    }

    fn read_some(&mut self, buf: &mut [u8], entry: Option<&[u8]>) -> Result<usize, TarError> {
        loop {
            match self.inner.read(buf) {
                Ok(n) => {
                    self.read += n as u64;
                    if self.read > MAX_STREAM {
                        return Err(err(entry, TarCause::TooLarge("decompressed archive")));
                    }
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Err(err(entry, TarCause::Truncated));
                }
                Err(e) => return Err(err(entry, TarCause::Gzip(e))),
            }
        }
    }

    /// Passes exactly `n` bytes to `sink`; a short stream is a truncation.
    fn copy(
        &mut self,
        mut n: u64,
        entry: &[u8],
        mut sink: impl FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<(), TarError> {
        let mut buf = [0u8; 16 * 1024];
        while n > 0 {
            let want = buf.len().min(usize::try_from(n).unwrap_or(usize::MAX));
            let got = self.read_some(&mut buf[..want], Some(entry))?;
            if got == 0 {
                return Err(err(Some(entry), TarCause::Truncated));
            }
            sink(&buf[..got]).map_err(|e| err(Some(entry), TarCause::Write(e)))?;
            n -= got as u64;
        }
        Ok(())
    }

    /// Skips the padding after `size` bytes of data.
    fn pad(&mut self, size: u64, entry: &[u8]) -> Result<(), TarError> {
        let rem = (size % BLOCK as u64) as usize;
        if rem != 0 {
            let mut buf = [0u8; BLOCK];
            if !self.block(&mut buf[..BLOCK - rem], Some(entry))? {
                return Err(err(Some(entry), TarCause::Truncated));
            }
        }
        Ok(())
    }

    /// Reads a metadata record (long name, pax header) into memory.
    fn record(&mut self, size: u64, entry: &[u8]) -> Result<Vec<u8>, TarError> {
        if size > MAX_META {
            return Err(err(Some(entry), TarCause::TooLarge("metadata record")));
        }
        let mut data = Vec::with_capacity(size as usize);
        self.copy(size, entry, |b| {
            data.extend_from_slice(b);
            Ok(())
        })?;
        self.pad(size, entry)?;
        Ok(data)
    }
}

/// Parses a numeric header field: octal (optionally space or NUL padded)
/// or GNU base-256.
fn number(field: &[u8], name: &'static str) -> Result<u64, TarCause> {
    if let Some(&first) = field.first()
        && first & 0x80 != 0
    {
        if first & 0x40 != 0 {
            return Err(TarCause::BadNumber(name));
        }
        let mut v: u64 = u64::from(first & 0x3f);
        for &b in &field[1..] {
            v = v
                .checked_mul(256)
                .and_then(|v| v.checked_add(u64::from(b)))
                .ok_or(TarCause::BadNumber(name))?;
        }
        return Ok(v);
    }
    let mut it = field
        .iter()
        .skip_while(|&&b| b == b' ' || b == 0)
        .peekable();
    let mut v: u64 = 0;
    while let Some(&&b) = it.peek() {
        if !(b'0'..=b'7').contains(&b) {
            break;
        }
        v = v
            .checked_mul(8)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or(TarCause::BadNumber(name))?;
        it.next();
    }
    if it.any(|&b| b != b' ' && b != 0) {
        return Err(TarCause::BadNumber(name));
    }
    Ok(v)
}

fn checksum_ok(h: &[u8; BLOCK]) -> bool {
    let Ok(stored) = number(&h[148..156], "checksum") else {
        return false;
    };
    let (mut unsigned, mut signed) = (0u64, 0i64);
    for (i, &b) in h.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    stored == unsigned || i64::try_from(stored).is_ok_and(|s| s == signed)
}

/// A NUL-terminated header field.
fn cstr(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

/// What a pax extended header sets for the next entry.
#[derive(Default)]
struct Pax {
    path: Option<Vec<u8>>,
    size: Option<u64>,
}

fn parse_pax(data: &[u8], entry: &[u8]) -> Result<Pax, TarError> {
    let bad = |why: &str| err(Some(entry), TarCause::BadPax(why.to_string()));
    let mut pax = Pax::default();
    let mut rest = data;
    while !rest.is_empty() {
        // Trailing NUL padding is tolerated.
        if rest.iter().all(|&b| b == 0) {
            break;
        }
        let sp = rest
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| bad("record without length"))?;
        let len: usize = std::str::from_utf8(&rest[..sp])
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("bad record length"))?;
        if len <= sp + 1 || len > rest.len() || rest[len - 1] != b'\n' {
            return Err(bad("bad record length"));
        }
        let record = &rest[sp + 1..len - 1];
        let eq = record
            .iter()
            .position(|&b| b == b'=')
            .ok_or_else(|| bad("record without '='"))?;
        let (key, value) = (&record[..eq], &record[eq + 1..]);
        match key {
            b"path" => pax.path = Some(value.to_vec()),
            b"size" => {
                let v = std::str::from_utf8(value)
                    .ok()
                    .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| bad("bad size"))?;
                pax.size = Some(v);
            }
            k if k.starts_with(b"GNU.sparse") => {
                return Err(err(Some(entry), TarCause::UnsupportedType(b'S')));
            }
            _ => {}
        }
        rest = &rest[len..];
    }
    Ok(pax)
}

/// An archive being unpacked: the stream and what carries over from one
/// header to the next.
struct Unpacker<'a, R> {
    s: Stream<R>,
    dest: &'a Path,
    /// The top directory, set by the first entry.
    top: Option<Vec<u8>>,
    /// A GNU long name for the next entry.
    long_name: Option<Vec<u8>>,
    /// A pax extended header for the next entry.
    pax: Pax,
    /// Bytes of files written so far.
    written: u64,
    /// Headers read so far.
    entries: usize,
}

/// Unpacks uncompressed tar data into `dest`; returns the top directory.
pub fn unpack_tar<R: Read>(input: R, dest: &Path) -> Result<PathBuf, TarError> {
    let mut u = Unpacker {
        s: Stream {
            inner: input,
            read: 0,
        },
        dest,
        top: None,
        long_name: None,
        pax: Pax::default(),
        written: 0,
        entries: 0,
    };
    let mut header = [0u8; BLOCK];
    loop {
        if !u.s.block(&mut header, None)? {
            // End of data without the end-of-archive block.
            return Err(err(u.long_name.as_deref(), TarCause::Truncated));
        }
        if header.iter().all(|&b| b == 0) {
            break;
        }
        let (name, size) = u.header(&header)?;
        let typeflag = header[156];
        if !u.metadata(typeflag, size, &name)? {
            u.entry(typeflag, name, size)?;
        }
    }
    u.finish()
}

impl<R: Read> Unpacker<'_, R> {
    /// Checks a header block and counts it; returns the name it gives (with
    /// the ustar prefix) and its size field.
    fn header(&mut self, header: &[u8; BLOCK]) -> Result<(Vec<u8>, u64), TarError> {
        let hname = cstr(&header[0..100]);
        if !checksum_ok(header) {
            return Err(err(Some(hname), TarCause::BadChecksum));
        }
        self.entries += 1;
        if self.entries > MAX_ENTRIES {
            return Err(err(Some(hname), TarCause::TooLarge("number of entries")));
        }
        let prefix = cstr(&header[345..500]);
        let name = if &header[257..263] == b"ustar\0" && !prefix.is_empty() {
            [prefix, b"/", hname].concat()
        } else {
            hname.to_vec()
        };
        let size = number(&header[124..136], "size").map_err(|c| err(Some(&name), c))?;
        Ok((name, size))
    }

    /// Reads a metadata record that applies to the next entry (GNU long
    /// name or link, pax header); false for an entry of another type.
    fn metadata(&mut self, typeflag: u8, size: u64, name: &[u8]) -> Result<bool, TarError> {
        match typeflag {
            b'L' => {
                let mut data = self.s.record(size, name)?;
                while data.last() == Some(&0) {
                    data.pop();
                }
                self.long_name = Some(data);
            }
            // A long link target (the link it belongs to is refused) or a
            // global pax header: read and ignored.
            b'K' | b'g' => {
                self.s.record(size, name)?;
            }
            b'x' => {
                let data = self.s.record(size, name)?;
                self.pax = parse_pax(&data, name)?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Checks one entry (with the long name or pax header before it) and
    /// writes it out, unless it is in a skipped subtree.
    fn entry(&mut self, typeflag: u8, name: Vec<u8>, size: u64) -> Result<(), TarError> {
        let name = self
            .pax
            .path
            .take()
            .or_else(|| self.long_name.take())
            .unwrap_or(name);
        self.long_name = None;
        let size = self.pax.size.take().unwrap_or(size);
        let e = Some(name.as_slice());
        let is_dir = policy::is_directory(typeflag, &name).map_err(|c| err(e, c))?;
        let comps = policy::components(&name).map_err(|c| err(e, c))?;
        policy::check_top(&mut self.top, &comps, is_dir).map_err(|c| err(e, c))?;
        let skipped = policy::is_skipped(&comps);
        let mut path = self.dest.to_path_buf();
        for c in &comps {
            path.push(OsStr::from_bytes(c));
        }
        if is_dir {
            if !skipped {
                create_dir(&path).map_err(|x| err(e, TarCause::Write(x)))?;
            }
            // A directory's data (GNU dumpdir and the like) is skipped.
            self.s.copy(size, &name, |_| Ok(()))?;
        } else if skipped {
            self.s.copy(size, &name, |_| Ok(()))?;
        } else {
            self.write_file(&path, &name, size)?;
        }
        self.s.pad(size, &name)
    }

    /// Writes the `size` bytes of the file entry `name` to `path`.
    fn write_file(&mut self, path: &Path, name: &[u8], size: u64) -> Result<(), TarError> {
        let e = Some(name);
        self.written = self.written.saturating_add(size);
        if self.written > MAX_WRITTEN {
            return Err(err(e, TarCause::TooLarge("unpacked files")));
        }
        if let Some(parent) = path.parent() {
            create_dir(parent).map_err(|x| err(e, TarCause::Write(x)))?;
        }
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map_err(|x| err(e, TarCause::Write(x)))?;
        self.s
            .copy(size, name, |b| io::Write::write_all(&mut out, b))
    }

    /// After the end-of-archive blocks: refuses metadata with no entry after
    /// it and an archive without entries, and reads what follows so that
    /// the gzip trailer (CRC and length) is checked; a lot of trailing data
    /// is refused. Returns the top directory.
    fn finish(mut self) -> Result<PathBuf, TarError> {
        if self.long_name.is_some() || self.pax.path.is_some() || self.pax.size.is_some() {
            return Err(err(self.long_name.as_deref(), TarCause::Truncated));
        }
        let Some(top) = self.top else {
            return Err(err(None, TarCause::Empty));
        };
        let mut rest = [0u8; 8192];
        let mut trailing: u64 = 0;
        loop {
            let n = self.s.read_some(&mut rest, None)?;
            if n == 0 {
                break;
            }
            trailing += n as u64;
            if trailing > MAX_TRAILING {
                return Err(err(
                    None,
                    TarCause::TooLarge("data after the end of the archive"),
                ));
            }
        }
        Ok(self.dest.join(OsStr::from_bytes(&top)))
    }
}

/// Creates `path` and its missing parents, private to the owner.
fn create_dir(path: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(number(b"0000644\0", "m").unwrap(), 0o644);
        assert_eq!(number(b"   12 \0", "m").unwrap(), 0o12);
        assert_eq!(number(b"\0\0\0", "m").unwrap(), 0);
        assert!(number(b"12x4", "m").is_err());
        assert_eq!(number(&[0x80, 0, 0, 1, 0], "m").unwrap(), 256);
        assert!(number(&[0xff; 12], "m").is_err());
        assert!(
            number(
                &[0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                "m"
            )
            .is_err()
        );
    }
}
