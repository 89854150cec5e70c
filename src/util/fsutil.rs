//! Crash-safe file operations for the marker protocol.
//!
//! Every output is written to `<name>.tmp` in the same directory and renamed
//! over `<name>`, so a reader sees either the old file, no file, or the whole
//! new one, whatever happens to the writer. Operations on one object take an
//! exclusive `flock` on the object itself, so concurrent invocations under
//! `make -j` never interleave on the same files.

use anyhow::{Context, Result};
use fs2::FileExt;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The temporary name an output is written under before it is renamed.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

/// Writes `data` to `path` atomically (temporary file, then rename). On
/// failure the temporary file is removed and `path` is untouched.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    let res = (|| -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.flush()?;
        drop(f);
        fs::rename(&tmp, path)
    })();
    if let Err(e) = res {
        let _ = fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("{}: cannot write", path.display()));
    }
    Ok(())
}

/// Removes `path` if it exists.
pub fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("{}: cannot remove", path.display())),
    }
}

/// Reads a whole file, with the path in the error.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).with_context(|| format!("{}: cannot read", path.display()))
}

/// True when both files exist and have identical contents. Compared a
/// block at a time, as `cmp` does: no copy of the whole files in memory,
/// and a difference ends the reading.
pub fn same_contents(a: &Path, b: &Path) -> Result<bool> {
    let (ma, mb) = (fs::metadata(a), fs::metadata(b));
    match (ma, mb) {
        (Ok(ma), Ok(mb)) if ma.len() != mb.len() => Ok(false),
        (Ok(_), Ok(_)) => {
            let open =
                |p: &Path| File::open(p).with_context(|| format!("{}: cannot read", p.display()));
            let (mut fa, mut fb) = (open(a)?, open(b)?);
            const BLOCK: usize = 64 << 10;
            let (mut ba, mut bb) = (vec![0u8; BLOCK], vec![0u8; BLOCK]);
            loop {
                let na = fill(&mut fa, &mut ba)
                    .with_context(|| format!("{}: cannot read", a.display()))?;
                let nb = fill(&mut fb, &mut bb)
                    .with_context(|| format!("{}: cannot read", b.display()))?;
                if na != nb || ba[..na] != bb[..nb] {
                    return Ok(false);
                }
                if na == 0 {
                    return Ok(true);
                }
            }
        }
        _ => Ok(false),
    }
}

/// Reads from `f` until `buf` is full or the file ends; the bytes read.
fn fill(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// An exclusive lock on an object file, held until dropped.
#[derive(Debug)]
pub struct ObjLock {
    file: File,
}

impl ObjLock {
    /// Locks `path` (which must exist) exclusively, waiting for other holders.
    pub fn acquire(path: &Path) -> Result<ObjLock> {
        let file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
        file.lock_exclusive()
            .with_context(|| format!("{}: cannot lock", path.display()))?;
        Ok(ObjLock { file })
    }
}

impl Drop for ObjLock {
    fn drop(&mut self) {
        let _ = FileExt::unlock(&self.file);
    }
}

/// Splits a command string into words as a POSIX shell would (quotes,
/// backslashes and `#` comments; no expansions), with `shlex`. An unclosed
/// quote or a trailing backslash is an error naming the text.
pub fn shell_words(s: &str) -> Result<Vec<String>> {
    shlex::split(s).with_context(|| format!("unterminated quote or escape in {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_like_a_shell() {
        assert_eq!(
            shell_words("ld -m elf_x86_64").unwrap(),
            ["ld", "-m", "elf_x86_64"]
        );
        assert_eq!(
            shell_words(" 'a b' \"c\\\"d\" e\\ f ").unwrap(),
            ["a b", "c\"d", "e f"]
        );
        assert_eq!(
            shell_words("a\\\nb \"x\\$y\" c # comment\nd").unwrap(),
            ["ab", "x$y", "c", "d"]
        );
        for bad in ["'oops", "\"oops", "oops\\"] {
            let e = shell_words(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
        assert!(shell_words("").unwrap().is_empty());
        assert!(shell_words(" \t\n").unwrap().is_empty());
    }

    #[test]
    fn atomic_write_replaces_whole_file() {
        let dir = std::env::temp_dir().join(format!("ksplice-fsutil-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("out");
        write_atomic(&p, b"first").unwrap();
        write_atomic(&p, b"second").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"second");
        assert!(!tmp_path(&p).exists());
        assert!(write_atomic(&dir.join("missing/out"), b"x").is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
