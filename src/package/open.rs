//! An update package opened from its tarball or an unpacked tree.

use super::API_VERSION;
use super::contents::Contents;
use super::error::UpdateError;
use super::names::is_module_name;
use super::patched::parse_patched;
use super::tarball::{self, Unpacked};
use super::utsname::Utsname;
use anyhow::{Context, Result, bail};
use std::fs;
use std::path::{Path, PathBuf};

/// An update package, unpacked and checked.
#[derive(Debug)]
pub struct Update {
    /// The update directory (`.../ksplice-<kid>`).
    pub dir: PathBuf,
    /// The update id.
    pub kid: String,
    /// Its modules.
    pub contents: Contents,
    /// The kernel it was built for.
    pub utsname: Utsname,
    /// Its description, if any.
    pub description: Option<String>,
    /// The functions it changes, as (object, function), if listed.
    pub patched: Option<Vec<(String, String)>>,
    /// Keeps the private directory of an unpacked tarball alive.
    _unpacked: Option<Unpacked>,
}

impl Update {
    /// Opens an update: a tarball (unpacked into a private directory that
    /// lives as long as the value) or an unpacked update directory.
    pub fn open(path: &Path) -> Result<Update> {
        let meta =
            fs::metadata(path).with_context(|| format!("{}: cannot open", path.display()))?;
        let (dir, unpacked) = if meta.is_dir() {
            (path.to_path_buf(), None)
        } else {
            let u = tarball::unpack(path)?;
            (u.root().to_path_buf(), Some(u))
        };
        Self::load(dir, unpacked).with_context(|| path.display().to_string())
    }

    fn load(dir: PathBuf, unpacked: Option<Unpacked>) -> Result<Update> {
        let name = dir
            .canonicalize()
            .unwrap_or_else(|_| dir.clone())
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let kid = name
            .strip_prefix("ksplice-")
            .filter(|k| is_module_name(k))
            .ok_or_else(|| UpdateError::BadDirName(name.clone()))?
            .to_string();
        let read = |file: &str| -> Result<Option<String>> {
            let p = dir.join(file);
            match fs::metadata(&p) {
                Ok(m) if m.is_file() => Ok(Some(
                    fs::read_to_string(&p).with_context(|| format!("{file}: cannot read"))?,
                )),
                Ok(_) => bail!("{file}: not a regular file"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e).with_context(|| format!("{file}: cannot read")),
            }
        };
        if let Some(v) = read("api-version")? {
            let v = v.trim();
            if v != API_VERSION {
                bail!(UpdateError::ApiVersion {
                    found: v.to_string(),
                    expected: API_VERSION.to_string()
                });
            }
        }
        let text = read("contents")?.ok_or(UpdateError::MissingFile("contents".into()))?;
        let contents = Contents::parse(&text, &kid)?;
        for (line, f) in contents.files(&text) {
            if !dir.join(&f).is_file() {
                bail!(UpdateError::MissingModuleFile { line, name: f });
            }
        }
        let uts = read("utsname")?.ok_or(UpdateError::MissingFile("utsname".into()))?;
        let utsname = Utsname::parse(&uts)?;
        let description = read("description")?;
        let patched = read("patched")?.map(|t| parse_patched(&t));
        Ok(Update {
            dir,
            kid,
            contents,
            utsname,
            description,
            patched,
            _unpacked: unpacked,
        })
    }

    /// Checks that the update was built for the running kernel.
    pub fn check_kernel(&self, proc_root: &Path) -> Result<()> {
        let running = Utsname::running(proc_root)?;
        // An update whose build did not know the version string (no
        // utsversion.h) is checked by release only.
        let same = running.release == self.utsname.release
            && (self.utsname.version.is_empty() || running.version == self.utsname.version);
        if !same {
            bail!(UpdateError::WrongKernel {
                built: self.utsname.clone(),
                running,
            });
        }
        Ok(())
    }

    /// The path of a file of the update.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}
