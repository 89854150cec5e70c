//! Walking an archive with the `tar` crate, each entry checked by
//! [`super::policy`] before anything is written.
//!
//! The crate reads the format (headers and their checksums, numeric fields,
//! pax records); the entries are taken raw, metadata entries included, so
//! that every size is checked here before any data is read: a GNU long name
//! or pax header is read into memory only when it is small, a file only when
//! it fits in what may still be written. Nothing of the crate's unpacking
//! is used: files are created here, inside the destination, and nothing is
//! followed.

use super::error::{TarCause, TarError, err};
use super::policy;
use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use tar::EntryType;

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
/// Largest total length of the entry names kept to find duplicates.
const MAX_NAMES: usize = 16 << 20;

/// The decompressed stream under the `tar` crate: counts and limits what is
/// read, notes the end of the data, keeps the last block read (the header
/// the crate refuses, when it refuses one) and the cause of a failure of
/// the layers below (the crate only passes an `io::Error` on).
struct Guard<R> {
    inner: R,
    read: u64,
    eof: bool,
    failure: Option<TarCause>,
    last: [u8; BLOCK],
}

impl<R: Read> Guard<R> {
    fn new(inner: R) -> Self {
        Guard {
            inner,
            read: 0,
            eof: false,
            failure: None,
            last: [0; BLOCK],
        }
    }

    /// Keeps the last `BLOCK` bytes of the stream.
    fn remember(&mut self, data: &[u8]) {
        if data.len() >= BLOCK {
            self.last.copy_from_slice(&data[data.len() - BLOCK..]);
        } else {
            self.last.copy_within(data.len().., 0);
            self.last[BLOCK - data.len()..].copy_from_slice(data);
        }
    }

    fn fail(&mut self, cause: TarCause) -> io::Error {
        let e = io::Error::other(cause.to_string());
        self.failure = Some(cause);
        e
    }
}

impl<R> Guard<R> {
    /// The last block read, as a header (for an error about that header).
    fn last_header(&self) -> tar::Header {
        let mut h = tar::Header::new_old();
        h.as_mut_bytes().copy_from_slice(&self.last);
        h
    }
}

impl<R: Read> Read for Guard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.failure.is_some() {
            return Err(io::Error::other("the archive cannot be read further"));
        }
        loop {
            match self.inner.read(buf) {
                Ok(0) if !buf.is_empty() => {
                    self.eof = true;
                    return Ok(0);
                }
                Ok(n) => {
                    self.read += n as u64;
                    if self.read > MAX_STREAM {
                        return Err(self.fail(TarCause::TooLarge("decompressed archive")));
                    }
                    self.remember(&buf[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Err(self.fail(TarCause::Truncated));
                }
                Err(e) => return Err(self.fail(TarCause::Gzip(e))),
            }
        }
    }
}

/// Why walking the archive stopped.
enum Stop {
    /// An entry refused by the checks here, or a write that failed.
    Refused(TarError),
    /// Reading failed (in the crate or below it) at or after the entry
    /// `entry`: told apart with what the [`Guard`] saw.
    Read {
        entry: Option<Vec<u8>>,
        error: io::Error,
    },
}

impl Stop {
    /// The error for the caller, once the crate has let go of the stream.
    fn into_error<R>(self, g: &mut Guard<R>) -> TarError {
        let (entry, error) = match self {
            Stop::Refused(e) => return e,
            Stop::Read { entry, error } => (entry, error),
        };
        if let Some(cause) = g.failure.take() {
            return err(entry.as_deref(), cause);
        }
        if g.eof || error.kind() == io::ErrorKind::UnexpectedEof {
            return err(entry.as_deref(), TarCause::Truncated);
        }
        // Otherwise the crate refused the header it has just read, which is
        // the last block of the stream.
        let h = g.last_header();
        let msg = error.to_string();
        let cause = if h.cksum().is_err() {
            TarCause::BadChecksum
        } else if h.entry_size().is_err() {
            TarCause::BadNumber("size")
        } else if msg.contains("checksum mismatch") {
            TarCause::BadChecksum
        } else if msg.contains("size overflow") {
            TarCause::BadNumber("size")
        } else {
            TarCause::Format(msg)
        };
        err(Some(&h.path_bytes()), cause)
    }
}

fn refused(entry: &[u8], cause: TarCause) -> Stop {
    Stop::Refused(err(Some(entry), cause))
}

/// What a pax extended header sets for the next entry.
#[derive(Default)]
struct Pax {
    path: Option<Vec<u8>>,
    size: Option<u64>,
}

/// Reads the records of a pax extended header (with the crate's parser).
fn parse_pax(data: &[u8]) -> Result<Pax, TarCause> {
    // Trailing NUL padding is tolerated.
    let end = data.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let mut pax = Pax::default();
    for ext in tar::PaxExtensions::new(&data[..end]) {
        let ext = ext.map_err(|e| TarCause::BadPax(e.to_string()))?;
        match ext.key_bytes() {
            b"path" => pax.path = Some(ext.value_bytes().to_vec()),
            b"size" => {
                let v = ext
                    .value()
                    .ok()
                    .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| TarCause::BadPax("bad size".into()))?;
                pax.size = Some(v);
            }
            k if k.starts_with(b"GNU.sparse") => return Err(TarCause::UnsupportedType(b'S')),
            _ => {}
        }
    }
    Ok(pax)
}

/// An archive being unpacked: what carries over from one entry to the next.
struct Walk<'a> {
    dest: &'a Path,
    /// The top directory, set by the first entry.
    top: Option<Vec<u8>>,
    /// A GNU long name for the next entry.
    long_name: Option<Vec<u8>>,
    /// A pax extended header for the next entry.
    pax: Option<Pax>,
    /// The last entry seen (for errors that come after it).
    current: Option<Vec<u8>>,
    /// The paths of the entries so far, and their total length.
    seen: HashSet<Vec<u8>>,
    names: usize,
    /// Bytes of files written so far.
    written: u64,
    /// Headers read so far.
    entries: usize,
}

/// Unpacks uncompressed tar data into `dest`; returns the top directory.
pub fn unpack_tar<R: Read>(input: R, dest: &Path) -> Result<PathBuf, TarError> {
    let mut g = Guard::new(input);
    let mut w = Walk {
        dest,
        top: None,
        long_name: None,
        pax: None,
        current: None,
        seen: HashSet::new(),
        names: 0,
        written: 0,
        entries: 0,
    };
    let walked = w.walk(&mut tar::Archive::new(&mut g));
    walked.map_err(|s| s.into_error(&mut g))?;
    w.finish(g)
}

impl Walk<'_> {
    /// Goes through every header up to the end-of-archive block.
    fn walk<R: Read>(&mut self, archive: &mut tar::Archive<R>) -> Result<(), Stop> {
        let entries = archive.entries().map_err(|e| self.read_error(e))?;
        for entry in entries.raw(true) {
            let mut entry = entry.map_err(|e| self.read_error(e))?;
            let raw = entry.path_bytes().into_owned();
            self.entries += 1;
            if self.entries > MAX_ENTRIES {
                return Err(refused(&raw, TarCause::TooLarge("number of entries")));
            }
            match entry.header().entry_type() {
                EntryType::GNULongName => {
                    let mut data = self.record(&mut entry, &raw)?;
                    while data.last() == Some(&0) {
                        data.pop();
                    }
                    self.long_name = Some(data);
                }
                // A long link target (the link it belongs to is refused) or
                // a global pax header: read and ignored.
                EntryType::GNULongLink | EntryType::XGlobalHeader => {
                    self.record(&mut entry, &raw)?;
                }
                EntryType::XHeader => {
                    let data = self.record(&mut entry, &raw)?;
                    self.pax = Some(parse_pax(&data).map_err(|c| refused(&raw, c))?);
                }
                kind => self.entry(&mut entry, kind, raw)?,
            }
        }
        if self.long_name.is_some() || self.pax.is_some() {
            // Metadata for an entry that never came.
            let name = self.long_name.take().or(self.current.take());
            return Err(Stop::Refused(err(name.as_deref(), TarCause::Truncated)));
        }
        Ok(())
    }

    fn read_error(&self, error: io::Error) -> Stop {
        Stop::Read {
            entry: self.current.clone(),
            error,
        }
    }

    /// Reads a metadata record (long name, pax header) into memory; its size
    /// is checked first.
    fn record<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        name: &[u8],
    ) -> Result<Vec<u8>, Stop> {
        let size = entry.size();
        if size > MAX_META {
            return Err(refused(name, TarCause::TooLarge("metadata record")));
        }
        self.current = Some(name.to_vec());
        let mut data = Vec::with_capacity(size as usize);
        self.copy(entry, size, name, |b| {
            data.extend_from_slice(b);
            Ok(())
        })?;
        Ok(data)
    }

    /// Checks one entry (with the long name or pax header before it) and
    /// writes it out, unless it is in a skipped subtree. The data of
    /// directories and skipped entries is left to the crate to skip.
    fn entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        kind: EntryType,
        raw: Vec<u8>,
    ) -> Result<(), Stop> {
        let pax = self.pax.take().unwrap_or_default();
        let long_name = self.long_name.take();
        let name = pax.path.or(long_name).unwrap_or(raw);
        self.current = Some(name.clone());
        let size = entry.size();
        let (is_dir, comps) = self
            .check(kind, &name, pax.size, size)
            .map_err(|c| refused(&name, c))?;
        if policy::is_skipped(&comps) {
            return Ok(());
        }
        let mut path = self.dest.to_path_buf();
        for c in &comps {
            path.push(OsStr::from_bytes(c));
        }
        if is_dir {
            create_dir(&path).map_err(|x| refused(&name, TarCause::Write(x)))
        } else {
            self.write_file(entry, &path, &name, size)
        }
    }

    /// The checks on an entry: its type (whether it is a directory), its
    /// name (returned as components), where it lies, that it is new.
    fn check<'n>(
        &mut self,
        kind: EntryType,
        name: &'n [u8],
        pax_size: Option<u64>,
        size: u64,
    ) -> Result<(bool, Vec<&'n [u8]>), TarCause> {
        if pax_size.is_some_and(|s| s != size) {
            return Err(TarCause::BadPax("size differs from the header's".into()));
        }
        let is_dir = policy::is_directory(kind, name)?;
        let comps = policy::components(name)?;
        policy::check_top(&mut self.top, &comps, is_dir)?;
        self.names = self.names.saturating_add(name.len());
        if self.names > MAX_NAMES {
            return Err(TarCause::TooLarge("entry names"));
        }
        policy::check_unique(&mut self.seen, &comps)?;
        Ok((is_dir, comps))
    }

    /// Writes the `size` bytes of the file entry `name` to `path`, a new
    /// file; the size is checked first.
    fn write_file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        path: &Path,
        name: &[u8],
        size: u64,
    ) -> Result<(), Stop> {
        self.written = self.written.saturating_add(size);
        if self.written > MAX_WRITTEN {
            return Err(refused(name, TarCause::TooLarge("unpacked files")));
        }
        let write_err = |x| refused(name, TarCause::Write(x));
        if let Some(parent) = path.parent() {
            create_dir(parent).map_err(write_err)?;
        }
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(write_err)?;
        self.copy(entry, size, name, |b| out.write_all(b))
    }

    /// Passes exactly `n` bytes of the entry's data to `sink`; a short
    /// entry is a truncation.
    fn copy<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        mut n: u64,
        name: &[u8],
        mut sink: impl FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<(), Stop> {
        let mut buf = [0u8; 16 * 1024];
        while n > 0 {
            let want = buf.len().min(usize::try_from(n).unwrap_or(usize::MAX));
            let got = match entry.read(&mut buf[..want]) {
                Ok(0) => return Err(refused(name, TarCause::Truncated)),
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    return Err(Stop::Read {
                        entry: Some(name.to_vec()),
                        error,
                    });
                }
            };
            sink(&buf[..got]).map_err(|e| refused(name, TarCause::Write(e)))?;
            n -= got as u64;
        }
        Ok(())
    }

    /// After the end-of-archive block: refuses an archive without entries
    /// or without that block, and reads what follows so that the gzip
    /// trailer (CRC and length) is checked; a lot of trailing data is
    /// refused. Returns the top directory.
    fn finish<R: Read>(self, mut g: Guard<R>) -> Result<PathBuf, TarError> {
        let Some(top) = self.top else {
            return Err(err(None, TarCause::Empty));
        };
        if g.eof {
            // The data ended where a header was expected.
            return Err(err(self.current.as_deref(), TarCause::Truncated));
        }
        let mut rest = [0u8; 8192];
        let mut trailing: u64 = 0;
        loop {
            let n = match g.read(&mut rest) {
                Ok(n) => n,
                Err(error) => return Err(Stop::Read { entry: None, error }.into_error(&mut g)),
            };
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
    fn guard_keeps_the_last_block() {
        let data: Vec<u8> = (0..2000u32).map(|i| i as u8).collect();
        let mut g = Guard::new(&data[..]);
        let mut buf = [0u8; 700];
        g.read_exact(&mut buf[..300]).unwrap();
        g.read_exact(&mut buf[..100]).unwrap();
        assert_eq!(g.last[BLOCK - 400..], data[..400]);
        g.read_exact(&mut buf).unwrap();
        assert_eq!(g.last[..], data[1100 - BLOCK..1100]);
        assert!(!g.eof);
        let mut rest = Vec::new();
        g.read_to_end(&mut rest).unwrap();
        assert!(g.eof);
    }

    #[test]
    fn pax_records() {
        let p = parse_pax(b"20 path=ksplice-k/p\n11 size=42\n\0\0").unwrap();
        assert_eq!(p.path.as_deref(), Some(&b"ksplice-k/p"[..]));
        assert_eq!(p.size, Some(42));
        assert!(matches!(
            parse_pax(b"99 path=x\n"),
            Err(TarCause::BadPax(_))
        ));
        assert!(matches!(
            parse_pax(b"11 size=+4\n"),
            Err(TarCause::BadPax(_))
        ));
        assert!(matches!(
            parse_pax(b"22 GNU.sparse.major=1\n"),
            Err(TarCause::UnsupportedType(b'S'))
        ));
    }
}
