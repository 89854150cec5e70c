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

    /// A tar header block with a correct checksum.
    fn header(name: &[u8], typeflag: u8, size: u64) -> [u8; BLOCK] {
        let mut h = [0u8; BLOCK];
        h[..name.len()].copy_from_slice(name);
        h[100..107].copy_from_slice(b"0000644");
        h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
        h[156] = typeflag;
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        h
    }

    fn entry(out: &mut Vec<u8>, name: &[u8], typeflag: u8, data: &[u8]) {
        out.extend_from_slice(&header(name, typeflag, data.len() as u64));
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
    }

    fn pax_record(key: &str, value: &str) -> Vec<u8> {
        let body = format!(" {key}={value}\n");
        let mut len = body.len() + 1;
        while format!("{len}{body}").len() != len {
            len += 1;
        }
        format!("{len}{body}").into_bytes()
    }

    fn finish(mut out: Vec<u8>) -> Vec<u8> {
        out.extend_from_slice(&[0u8; 2 * BLOCK]);
        out
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut e, data).unwrap();
        e.finish().unwrap()
    }

    fn good() -> Vec<u8> {
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

    fn try_unpack(data: &[u8]) -> (Result<PathBuf, TarError>, TempDir) {
        let d = TempDir::new().unwrap();
        (unpack_gz(data, d.path()), d)
    }

    #[test]
    fn unpacks_files_and_skips_debug() {
        let (r, d) = try_unpack(&gz(&good()));
        let top = r.unwrap();
        assert_eq!(top, d.path().join("ksplice-abc"));
        assert_eq!(
            fs::read(top.join("contents")).unwrap(),
            b"core ksplice_abc x.ko\n"
        );
        assert!(!top.join("debug").exists());
    }

    #[test]
    fn temp_dir_is_private_and_removed() {
        let d = TempDir::new().unwrap();
        let p = d.path().to_path_buf();
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        drop(d);
        assert!(!p.exists());
    }

    fn refused(t: Vec<u8>) -> TarError {
        match try_unpack(&gz(&t)).0 {
            Ok(p) => panic!("accepted: {}", p.display()),
            Err(e) => e,
        }
    }

    #[test]
    fn refuses_hostile_entries() {
        let cases: Vec<(&[u8], u8, &str)> = vec![
            (b"/etc/passwd", b'0', "absolute"),
            (b"ksplice-abc/../../x", b'0', ".."),
            (b"ksplice-abc/link", b'2', "symbolic link"),
            (b"ksplice-abc/hard", b'1', "hard link"),
            (b"ksplice-abc/dev", b'3', "device"),
            (b"ksplice-abc/blk", b'4', "device"),
            (b"ksplice-abc/fifo", b'6', "named pipe"),
            (b"other/file", b'0', "outside"),
            (b"ksplice-abc/sparse", b'S', "unsupported"),
        ];
        for (name, ty, want) in cases {
            let mut t = Vec::new();
            entry(&mut t, b"ksplice-abc/", b'5', b"");
            entry(&mut t, name, ty, b"x");
            let e = refused(finish(t));
            let msg = e.to_string();
            assert!(msg.contains(want), "{msg}");
            assert!(
                msg.contains(&String::from_utf8_lossy(name).to_string()),
                "{msg}"
            );
        }
    }

    #[test]
    fn long_names_and_pax_paths_are_checked() {
        let mut t = Vec::new();
        entry(&mut t, b"././@LongLink", b'L', b"ksplice-abc/../evil\0");
        entry(&mut t, b"ksplice-abc/short", b'0', b"x");
        assert!(refused(finish(t)).to_string().contains("'..'"));

        let mut t = Vec::new();
        entry(&mut t, b"ksplice-abc/", b'5', b"");
        entry(&mut t, b"pax", b'x', &pax_record("path", "/etc/shadow"));
        entry(&mut t, b"ksplice-abc/short", b'0', b"x");
        assert!(refused(finish(t)).to_string().contains("absolute"));

        // A good long name is used.
        let long = format!("ksplice-abc/{}", "n".repeat(150));
        let mut t = Vec::new();
        entry(&mut t, b"ksplice-abc/", b'5', b"");
        entry(&mut t, b"././@LongLink", b'L', long.as_bytes());
        entry(&mut t, b"ksplice-abc/nnnn", b'0', b"data");
        let (r, d) = try_unpack(&gz(&finish(t)));
        r.unwrap();
        assert_eq!(fs::read(d.path().join(&long)).unwrap(), b"data");
    }

    #[test]
    fn refuses_broken_archives() {
        // Not gzip.
        let (r, _d) = try_unpack(b"hello, world");
        assert!(matches!(r.unwrap_err().cause, TarCause::NotGzip));
        // Truncated data.
        let t = good();
        let e = refused(t[..BLOCK + 100].to_vec());
        assert!(matches!(e.cause, TarCause::Truncated), "{e}");
        // No end-of-archive block.
        let e = refused(t[..3 * BLOCK].to_vec());
        assert!(matches!(e.cause, TarCause::Truncated), "{e}");
        // Bad checksum.
        let mut t = good();
        t[BLOCK + 5] ^= 1;
        assert!(matches!(refused(t).cause, TarCause::BadChecksum));
        // Truncated gzip stream.
        let z = gz(&good());
        let (r, _d) = try_unpack(&z[..z.len() - 6]);
        assert!(r.is_err());
        // Empty archive.
        assert!(matches!(refused(finish(Vec::new())).cause, TarCause::Empty));
    }

    /// A deterministic xorshift generator for the fuzz test.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    fn fix_checksum(h: &mut [u8]) {
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    }

    /// Seed archives (uncompressed) and the offsets of their headers.
    fn seeds() -> Vec<(Vec<u8>, Vec<usize>)> {
        let headers = |t: &[u8]| -> Vec<usize> {
            let mut out = Vec::new();
            let mut off = 0;
            while off + BLOCK <= t.len() && t[off..off + BLOCK].iter().any(|&b| b != 0) {
                out.push(off);
                let size = number(&t[off + 124..off + 136], "size").unwrap_or(0) as usize;
                off += BLOCK + size.div_ceil(BLOCK) * BLOCK;
            }
            out
        };
        let mut all = vec![good()];
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
        all.push(finish(t));
        all.into_iter()
            .map(|t| {
                let h = headers(&t);
                (t, h)
            })
            .collect()
    }

    /// Random and mutated archives: unpacking returns Ok or Err, never
    /// panics, and never writes outside its destination or makes links.
    /// `KSPLICE_FUZZ_ITERS` raises the number of iterations,
    /// `KSPLICE_FUZZ_SEED` changes the sequence.
    #[test]
    fn fuzz_mutated_archives() {
        let iters: usize = std::env::var("KSPLICE_FUZZ_ITERS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(400);
        let seed: u64 = std::env::var("KSPLICE_FUZZ_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0x6b73_706c_6963_6521);
        let seeds = seeds();
        let mut rng = Rng(seed | 1);
        let (mut ok, mut refused) = (0, 0);
        for _ in 0..iters {
            let (base, headers) = &seeds[rng.below(seeds.len())];
            let mut t = base.clone();
            match rng.below(7) {
                0 => {
                    for _ in 0..1 + rng.below(8) {
                        let i = rng.below(t.len());
                        t[i] ^= 1 << rng.below(8);
                    }
                }
                1 | 2 => {
                    // Mutate a header and keep its checksum right, to get past it.
                    let h = headers[rng.below(headers.len())];
                    for _ in 0..1 + rng.below(4) {
                        let i = h + rng.below(500);
                        t[i] = match rng.below(4) {
                            0 => rng.next() as u8,
                            1 => {
                                let interesting = b"0125Lxg/.\0";
                                interesting[rng.below(interesting.len())]
                            }
                            2 => b'7',
                            _ => 0xff,
                        };
                    }
                    fix_checksum(&mut t[h..h + BLOCK]);
                }
                3 => t.truncate(rng.below(t.len())),
                4 => {
                    let n = rng.below(4 * BLOCK);
                    t = (0..n).map(|_| rng.next() as u8).collect();
                }
                5 => {
                    // Duplicate or drop a block.
                    let b = rng.below(t.len() / BLOCK) * BLOCK;
                    if rng.below(2) == 0 {
                        let blk = t[b..b + BLOCK].to_vec();
                        t.splice(b..b, blk);
                    } else {
                        t.drain(b..b + BLOCK);
                    }
                }
                _ => {
                    // Set the size of an entry to something else.
                    let h = headers[rng.below(headers.len())];
                    let size = match rng.below(3) {
                        0 => rng.below(4096) as u64,
                        1 => rng.next() >> rng.below(64),
                        _ => 0,
                    };
                    if size < 0o77777777777 {
                        t[h + 124..h + 135].copy_from_slice(format!("{size:011o}").as_bytes());
                    } else {
                        t[h + 124..h + 128].copy_from_slice(&[0x80, 0, 0, 0]);
                        t[h + 128..h + 136].copy_from_slice(&size.to_be_bytes());
                    }
                    fix_checksum(&mut t[h..h + BLOCK]);
                }
            }
            let mut data = gz(&t);
            if rng.below(8) == 0 {
                // Damage the compressed stream instead.
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            let outer = TempDir::new().unwrap();
            let dest = outer.path().join("d");
            fs::create_dir(&dest).unwrap();
            match unpack_gz(data.as_slice(), &dest) {
                Ok(top) => {
                    ok += 1;
                    assert!(top.starts_with(&dest));
                }
                Err(e) => {
                    refused += 1;
                    assert!(!e.to_string().is_empty());
                }
            }
            let names: Vec<_> = fs::read_dir(outer.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(names, vec![std::ffi::OsString::from("d")]);
            let mut stack = vec![dest.clone()];
            while let Some(d) = stack.pop() {
                for e in fs::read_dir(&d).unwrap() {
                    let ft = e.as_ref().unwrap().file_type().unwrap();
                    assert!(ft.is_dir() || ft.is_file(), "{:?}", e.unwrap().path());
                    if ft.is_dir() {
                        stack.push(e.unwrap().path());
                    }
                }
            }
        }
        assert!(ok > 0 && refused > 0, "ok {ok}, refused {refused}");
    }

    /// Archives written by GNU tar (gnu, pax and ustar formats) unpack.
    #[test]
    fn reads_gnu_tar_output() {
        let src = TempDir::new().unwrap();
        let top = src.path().join("ksplice-gnu");
        // Longer than a header's name field, short enough for ustar's prefix.
        let long = "d".repeat(80);
        fs::create_dir_all(top.join(&long)).unwrap();
        fs::write(top.join("contents"), "core ksplice_gnu ksplice-gnu.ko\n").unwrap();
        fs::write(
            top.join(&long).join(format!("{}.ko", "f".repeat(90))),
            vec![3u8; 5000],
        )
        .unwrap();
        for format in ["gnu", "pax", "ustar", "posix"] {
            let tgz = src.path().join(format!("{format}.tar.gz"));
            let st = std::process::Command::new("tar")
                .arg(format!("--format={format}"))
                .arg("-czf")
                .arg(&tgz)
                .arg("-C")
                .arg(src.path())
                .arg("ksplice-gnu")
                .stderr(std::process::Stdio::null())
                .status();
            let Ok(st) = st else {
                eprintln!("no tar: skipped");
                return;
            };
            assert!(st.success(), "tar --format={format}");
            let u = unpack(&tgz).unwrap();
            assert_eq!(u.root().file_name().unwrap(), "ksplice-gnu");
            assert_eq!(
                fs::read(u.root().join(&long).join(format!("{}.ko", "f".repeat(90)))).unwrap(),
                vec![3u8; 5000],
                "{format}"
            );
        }
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
