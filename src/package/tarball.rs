//! Unpacking update tarballs (`ksplice-<kid>.tar.gz`) without trusting them.
//!
//! The gzip stream is decoded with `flate2` (pure Rust) and the tar format is
//! read here: POSIX ustar and GNU headers, regular files, directories, GNU
//! long names (`L`) and pax extended headers (`x`, for `path` and `size`).
//! An update is one directory `ksplice-<kid>/`; every entry must lie inside a
//! single top directory, and anything that could reach outside the private
//! destination or is not plain data is refused: absolute paths, `..`
//! components, symbolic and hard links, devices, fifos, unknown entry types.
//! Truncated archives, bad header checksums, corrupt gzip data and archives
//! past the size limits are errors too. Every error names the entry.
//!
//! [`unpack`] extracts into a fresh [`TempDir`] (mode 0700 under `$TMPDIR` or
//! `/tmp`) that is removed when the [`Unpacked`] value is dropped. The
//! `debug/` subtree of an update (objects for diagnosis) is checked but not
//! written: no tool reads it.

use anyhow::{Context, Result};
use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

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
/// Subtrees of the top directory that are checked but not written.
const SKIPPED: &[&str] = &["debug"];

/// Why an archive (or one of its entries) was refused.
#[derive(Debug)]
pub enum TarCause {
    /// The input does not start with the gzip magic.
    NotGzip,
    /// The input cannot be read.
    Read(io::Error),
    /// The gzip stream is corrupt (bad deflate data, CRC or length).
    Gzip(io::Error),
    /// The archive ends in the middle of a header or of an entry's data, or
    /// without an end-of-archive block.
    Truncated,
    /// A header's checksum does not match its contents.
    BadChecksum,
    /// A numeric header field is not a number.
    BadNumber(&'static str),
    /// A pax extended header is malformed.
    BadPax(String),
    /// The entry has an empty name.
    EmptyName,
    /// The entry's name contains a NUL byte.
    NulInName,
    /// The entry's name is absolute.
    AbsolutePath,
    /// The entry's name has a `..` component.
    DotDot,
    /// The entry is not inside the archive's single top directory.
    OutsideTop(String),
    /// A file where the top directory was expected.
    TopNotDirectory,
    /// A symbolic link.
    Symlink,
    /// A hard link.
    HardLink,
    /// A character or block device.
    Device,
    /// A named pipe.
    Fifo,
    /// Another entry type (the type flag).
    UnsupportedType(u8),
    /// The archive holds no entry.
    Empty,
    /// A size limit was exceeded.
    TooLarge(&'static str),
    /// Writing the entry failed.
    Write(io::Error),
}

impl fmt::Display for TarCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TarCause::NotGzip => write!(f, "not a gzip-compressed tar archive"),
            TarCause::Read(e) => write!(f, "cannot read: {e}"),
            TarCause::Gzip(e) => write!(f, "corrupt gzip data: {e}"),
            TarCause::Truncated => write!(f, "truncated archive"),
            TarCause::BadChecksum => write!(f, "bad header checksum (corrupt archive)"),
            TarCause::BadNumber(field) => write!(f, "bad {field} field in the header"),
            TarCause::BadPax(why) => write!(f, "bad pax extended header: {why}"),
            TarCause::EmptyName => write!(f, "empty name"),
            TarCause::NulInName => write!(f, "NUL byte in the name"),
            TarCause::AbsolutePath => write!(f, "absolute path"),
            TarCause::DotDot => write!(f, "path with a '..' component"),
            TarCause::OutsideTop(top) => {
                write!(f, "outside the update's top directory {top:?}")
            }
            TarCause::TopNotDirectory => {
                write!(f, "a file at the top level (an update is one directory)")
            }
            TarCause::Symlink => write!(f, "symbolic link (not allowed in an update)"),
            TarCause::HardLink => write!(f, "hard link (not allowed in an update)"),
            TarCause::Device => write!(f, "device file (not allowed in an update)"),
            TarCause::Fifo => write!(f, "named pipe (not allowed in an update)"),
            TarCause::UnsupportedType(t) if t.is_ascii_graphic() => {
                write!(f, "unsupported entry type '{}'", *t as char)
            }
            TarCause::UnsupportedType(t) => write!(f, "unsupported entry type {t:#04x}"),
            TarCause::Empty => write!(f, "empty archive"),
            TarCause::TooLarge(what) => write!(f, "too large: {what}"),
            TarCause::Write(e) => write!(f, "cannot write: {e}"),
        }
    }
}

/// An archive refused, with the entry concerned when there is one.
#[derive(Debug)]
pub struct TarError {
    /// The entry's name as stored (lossily decoded), if the error is about one.
    pub entry: Option<String>,
    /// What is wrong.
    pub cause: TarCause,
}

impl fmt::Display for TarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.entry {
            Some(e) => write!(f, "entry {e:?}: {}", self.cause),
            None => write!(f, "{}", self.cause),
        }
    }
}

impl std::error::Error for TarError {}

fn err(entry: Option<&[u8]>, cause: TarCause) -> TarError {
    TarError {
        entry: entry.map(display_name),
        cause,
    }
}

/// An entry name for messages: lossy UTF-8, at most 200 characters.
fn display_name(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    if s.chars().count() > 200 {
        let mut t: String = s.chars().take(200).collect();
        t.push_str("...");
        t
    } else {
        s.into_owned()
    }
}

/// A private directory, removed with its contents when dropped.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `ksplice-tmp-XXXXXXXX` with mode 0700 under `$TMPDIR` (or `/tmp`).
    pub fn new() -> Result<TempDir> {
        let base = std::env::temp_dir();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut last = None;
        for _ in 0..100 {
            let n = random_u64() ^ COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = base.join(format!("ksplice-tmp-{:012x}", n & 0xffff_ffff_ffff));
            match fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => {
                    // The umask may have removed bits the owner needs.
                    let dir = TempDir { path };
                    fs::set_permissions(&dir.path, fs::Permissions::from_mode(0o700))
                        .with_context(|| format!("{}: cannot set mode", dir.path.display()))?;
                    return Ok(dir);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("cannot create a temporary directory in {}", base.display())
                    });
                }
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("name collision")))
            .with_context(|| format!("cannot create a temporary directory in {}", base.display()))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    if fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok()
    {
        return u64::from_le_bytes(b);
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (t.as_nanos() as u64) ^ (u64::from(std::process::id()) << 32)
}

/// A tarball unpacked into a private temporary directory.
#[derive(Debug)]
pub struct Unpacked {
    tmp: TempDir,
    top: PathBuf,
}

impl Unpacked {
    /// The archive's top directory (for an update, `.../ksplice-<kid>`).
    pub fn root(&self) -> &Path {
        &self.top
    }

    /// The private directory holding the top directory.
    pub fn temp_dir(&self) -> &Path {
        self.tmp.path()
    }
}

/// Unpacks the gzip-compressed tarball `tarball` into a new private
/// temporary directory. Errors name the tarball and, where there is one,
/// the entry.
pub fn unpack(tarball: &Path) -> Result<Unpacked> {
    let file =
        fs::File::open(tarball).with_context(|| format!("{}: cannot open", tarball.display()))?;
    let tmp = TempDir::new()?;
    let top = unpack_gz(io::BufReader::new(file), tmp.path())
        .with_context(|| tarball.display().to_string())?;
    Ok(Unpacked { top, tmp })
}

/// Unpacks gzip-compressed tar data into `dest` (an existing, empty,
/// private directory); returns the path of the top directory.
pub fn unpack_gz<R: Read>(mut input: R, dest: &Path) -> Result<PathBuf, TarError> {
    let mut magic = [0u8; 2];
    let mut got = 0;
    while got < 2 {
        match input.read(&mut magic[got..]) {
            Ok(0) => return Err(err(None, TarCause::NotGzip)),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(err(None, TarCause::Read(e))),
        }
    }
    if magic != [0x1f, 0x8b] {
        return Err(err(None, TarCause::NotGzip));
    }
    let gz = flate2::read::MultiGzDecoder::new(io::Cursor::new(magic).chain(input));
    unpack_tar(gz, dest)
}

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

/// The components of an entry's name, checked: relative, no `..`, no NUL.
fn components(raw: &[u8]) -> Result<Vec<&[u8]>, TarCause> {
    if raw.is_empty() {
        return Err(TarCause::EmptyName);
    }
    if raw.contains(&0) {
        return Err(TarCause::NulInName);
    }
    if raw[0] == b'/' {
        return Err(TarCause::AbsolutePath);
    }
    let comps: Vec<&[u8]> = raw
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .collect();
    if comps.iter().any(|c| *c == b"..") {
        return Err(TarCause::DotDot);
    }
    if comps.is_empty() {
        return Err(TarCause::EmptyName);
    }
    Ok(comps)
}

/// Unpacks uncompressed tar data into `dest`; returns the top directory.
pub fn unpack_tar<R: Read>(input: R, dest: &Path) -> Result<PathBuf, TarError> {
    let mut s = Stream {
        inner: input,
        read: 0,
    };
    let mut top: Option<Vec<u8>> = None;
    let mut long_name: Option<Vec<u8>> = None;
    let mut pax = Pax::default();
    let mut written: u64 = 0;
    let mut entries = 0usize;
    let mut header = [0u8; BLOCK];
    loop {
        if !s.block(&mut header, None)? {
            // End of data without the end-of-archive block.
            return Err(err(long_name.as_deref(), TarCause::Truncated));
        }
        if header.iter().all(|&b| b == 0) {
            break;
        }
        let hname = cstr(&header[0..100]).to_vec();
        if !checksum_ok(&header) {
            return Err(err(Some(&hname), TarCause::BadChecksum));
        }
        entries += 1;
        if entries > MAX_ENTRIES {
            return Err(err(Some(&hname), TarCause::TooLarge("number of entries")));
        }
        let typeflag = header[156];
        let posix = &header[257..263] == b"ustar\0";
        let mut name = hname.clone();
        if posix {
            let prefix = cstr(&header[345..500]);
            if !prefix.is_empty() {
                name = [prefix, b"/", &hname].concat();
            }
        }
        let header_size = number(&header[124..136], "size").map_err(|c| err(Some(&name), c))?;

        // Metadata records that apply to the next entry.
        match typeflag {
            b'L' => {
                let mut data = s.record(header_size, &name)?;
                while data.last() == Some(&0) {
                    data.pop();
                }
                long_name = Some(data);
                continue;
            }
            b'K' => {
                // A long link target: the link it belongs to is refused below.
                s.record(header_size, &name)?;
                continue;
            }
            b'x' => {
                let data = s.record(header_size, &name)?;
                pax = parse_pax(&data, &name)?;
                continue;
            }
            b'g' => {
                s.record(header_size, &name)?;
                continue;
            }
            _ => {}
        }

        let name = pax.path.take().or_else(|| long_name.take()).unwrap_or(name);
        long_name = None;
        let size = pax.size.take().unwrap_or(header_size);
        let e = Some(name.as_slice());

        let is_dir = match typeflag {
            b'5' => true,
            b'0' | 0 | b'7' => name.ends_with(b"/") && typeflag != b'7',
            b'1' => return Err(err(e, TarCause::HardLink)),
            b'2' => return Err(err(e, TarCause::Symlink)),
            b'3' | b'4' => return Err(err(e, TarCause::Device)),
            b'6' => return Err(err(e, TarCause::Fifo)),
            t => return Err(err(e, TarCause::UnsupportedType(t))),
        };
        let comps = components(&name).map_err(|c| err(e, c))?;
        match &top {
            None => {
                if comps.len() == 1 && !is_dir {
                    return Err(err(e, TarCause::TopNotDirectory));
                }
                top = Some(comps[0].to_vec());
            }
            Some(t) => {
                if comps[0] != t.as_slice() {
                    return Err(err(e, TarCause::OutsideTop(display_name(t))));
                }
                if comps.len() == 1 && !is_dir {
                    return Err(err(e, TarCause::TopNotDirectory));
                }
            }
        }
        let skipped = comps.len() >= 2 && SKIPPED.iter().any(|d| comps[1] == d.as_bytes());
        let mut path = dest.to_path_buf();
        for c in &comps {
            path.push(OsStr::from_bytes(c));
        }

        if is_dir {
            if !skipped {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&path)
                    .map_err(|x| err(e, TarCause::Write(x)))?;
            }
            // A directory's data (GNU dumpdir and the like) is skipped.
            s.copy(size, &name, |_| Ok(()))?;
            s.pad(size, &name)?;
            continue;
        }

        if skipped {
            s.copy(size, &name, |_| Ok(()))?;
        } else {
            written = written.saturating_add(size);
            if written > MAX_WRITTEN {
                return Err(err(e, TarCause::TooLarge("unpacked files")));
            }
            if let Some(parent) = path.parent() {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(parent)
                    .map_err(|x| err(e, TarCause::Write(x)))?;
            }
            let mut out = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&path)
                .map_err(|x| err(e, TarCause::Write(x)))?;
            s.copy(size, &name, |b| io::Write::write_all(&mut out, b))?;
        }
        s.pad(size, &name)?;
    }
    // Metadata with no entry after it.
    if long_name.is_some() || pax.path.is_some() || pax.size.is_some() {
        return Err(err(long_name.as_deref(), TarCause::Truncated));
    }
    let Some(top) = top else {
        return Err(err(None, TarCause::Empty));
    };
    // Read what follows the end blocks so that the gzip trailer (CRC and
    // length) is checked; a lot of trailing data is refused.
    let mut rest = [0u8; 8192];
    let mut trailing: u64 = 0;
    loop {
        let n = s.read_some(&mut rest, None)?;
        if n == 0 {
            break;
        }
        trailing += n as u64;
        if trailing > 16 << 20 {
            return Err(err(
                None,
                TarCause::TooLarge("data after the end of the archive"),
            ));
        }
    }
    Ok(dest.join(OsStr::from_bytes(&top)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_dir_is_private_and_removed() {
        let d = TempDir::new().unwrap();
        let p = d.path().to_path_buf();
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        drop(d);
        assert!(!p.exists());
    }

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
