//! Unpacking update tarballs (`ksplice-<kid>.tar.gz`) without trusting them.
//!
//! The gzip stream is decoded with `flate2` and the tar format is read with
//! the `tar` crate (POSIX ustar and GNU headers, GNU long names, pax
//! extended headers); what may be written is decided here, and the crate's
//! own unpacking is never used. An update is one directory `ksplice-<kid>/`;
//! every entry must lie inside a single top directory, and anything that
//! could reach outside the private destination or is not plain data is
//! refused: absolute paths, `..` components, NUL bytes in names, symbolic
//! and hard links, devices, fifos, unknown entry types, the same path twice.
//! Truncated archives, bad header checksums, corrupt gzip data and archives
//! past the size limits (checked before the data is read) are errors too.
//! Every error names the entry.
//!
//! [`unpack`] extracts into a fresh [`TempDir`] (mode 0700 under `$TMPDIR` or
//! `/tmp`) that is removed when the [`Unpacked`] value is dropped. The
//! `debug/` subtree of an update (objects for diagnosis) is checked but not
//! written: no tool reads it.
//!
//! The gzip layer and the temporary directory are here; the archive is
//! walked in `reader`, what an entry may be is decided in `policy`, and the
//! error type is in `error`.

mod error;
mod policy;
mod reader;

pub use error::{TarCause, TarError};
pub use reader::unpack_tar;

use anyhow::{Context, Result};
use error::err;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

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
}
