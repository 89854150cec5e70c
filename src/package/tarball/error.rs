//! Why an archive is refused: the error type of the tar reader.

use std::fmt;
use std::io;

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
    /// A second entry for a path already in the archive.
    Duplicate,
    /// A size limit was exceeded.
    TooLarge(&'static str),
    /// Another defect of the format, as the tar reader describes it.
    Format(String),
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
            TarCause::Duplicate => write!(f, "duplicate entry (the same path twice)"),
            TarCause::TooLarge(what) => write!(f, "too large: {what}"),
            TarCause::Format(why) => write!(f, "corrupt archive: {why}"),
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

pub(super) fn err(entry: Option<&[u8]>, cause: TarCause) -> TarError {
    TarError {
        entry: entry.map(display_name),
        cause,
    }
}

/// An entry name for messages: lossy UTF-8, at most 200 characters.
pub(super) fn display_name(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    if s.chars().count() > 200 {
        let mut t: String = s.chars().take(200).collect();
        t.push_str("...");
        t
    } else {
        s.into_owned()
    }
}
