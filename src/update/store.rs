//! Installed updates: the updates kept to be applied again whenever the
//! machine boots the kernel they were built for (`ksplice-apply --install`,
//! `ksplice-apply --all-installed` from `ksplice.service`,
//! `ksplice-undo --uninstall`, listed by ksplice-view).
//!
//! Layout, under `$KSPLICE_LIB` (default `/var/lib/ksplice`):
//! `<release>/ksplice-<kid>.tar.gz`, one tarball per installed update of
//! kernel release `<release>` (`uname -r`), and `<release>/order`, the ids
//! one per line in installation order, which is the order they are
//! applied in at boot (a later update may be built on an earlier one).
//! Every change is written to a temporary file and renamed into place, under
//! a lock (`.lock`), so an interrupted or concurrent run never leaves a
//! half-written store.

use super::env::Env;
use crate::package::utsname::Utsname;
use crate::util::fsutil;
use anyhow::{Context, Result, bail};
use fs2::FileExt;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

/// One installed update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// The update's id.
    pub kid: String,
    /// Its tarball in the store.
    pub tarball: PathBuf,
}

/// The store of installed updates.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// Whether `s` can be a kernel release or an update id in a path: one
/// non-empty component of printable characters, no `/`, not `.` or `..`.
fn safe_component(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.len() <= 255
        && s.chars().all(|c| c.is_ascii_graphic() && c != '/')
}

impl Store {
    /// The store rooted at `root` (created when something is installed).
    pub fn new(root: &Path) -> Store {
        Store {
            root: root.to_path_buf(),
        }
    }

    /// The store of `env` (`KSPLICE_LIB`) and the running kernel's release
    /// (`uname -r`), which the tools install for and apply from.
    pub fn running(env: &Env) -> Result<(Store, String)> {
        let release = Utsname::running(&env.proc_root)?.release;
        Ok((Store::new(&env.lib), release))
    }

    /// Fails unless `path` is an update tarball (what can be installed).
    pub fn check_tarball(path: &Path) -> Result<()> {
        if !path.is_file() {
            bail!(
                "{}: --install needs the update's tarball (ksplice-KID.tar.gz), not a directory",
                path.display()
            );
        }
        Ok(())
    }

    fn release_dir(&self, release: &str) -> Result<PathBuf> {
        if !safe_component(release) {
            bail!("{release:?}: not a kernel release");
        }
        Ok(self.root.join(release))
    }

    /// Holds the store's lock until dropped (creating the store).
    fn lock(&self) -> Result<File> {
        fs::create_dir_all(&self.root)
            .with_context(|| format!("{}: cannot create", self.root.display()))?;
        let path = self.root.join(".lock");
        let f = File::create(&path).with_context(|| format!("{}: cannot open", path.display()))?;
        f.lock_exclusive()
            .with_context(|| format!("{}: cannot lock", path.display()))?;
        Ok(f)
    }

    /// The ids listed in `<release>/order`, in order.
    fn order(&self, dir: &Path) -> Result<Vec<String>> {
        let path = dir.join("order");
        match fs::read_to_string(&path) {
            Ok(t) => Ok(t
                .lines()
                .map(str::trim)
                .filter(|l| safe_component(l))
                .map(String::from)
                .collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e).with_context(|| format!("{}: cannot read", path.display())),
        }
    }

    fn write_order(&self, dir: &Path, kids: &[String]) -> Result<()> {
        let mut text = kids.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        fsutil::write_atomic(&dir.join("order"), text.as_bytes())
    }

    /// Installs the update tarball `tarball` (id `kid`) for kernel
    /// `release`: a copy in the store, last in the order (an update
    /// installed again keeps its place). Returns the stored tarball.
    pub fn install(&self, tarball: &Path, kid: &str, release: &str) -> Result<PathBuf> {
        if !safe_component(kid) {
            bail!("{kid:?}: not an update id");
        }
        Store::check_tarball(tarball)?;
        let dir = self.release_dir(release)?;
        let _lock = self.lock()?;
        fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create", dir.display()))?;
        let dest = dir.join(format!("ksplice-{kid}.tar.gz"));
        let data =
            fs::read(tarball).with_context(|| format!("{}: cannot read", tarball.display()))?;
        fsutil::write_atomic(&dest, &data)
            .with_context(|| format!("{}: cannot write", dest.display()))?;
        let mut kids = self.order(&dir)?;
        if !kids.iter().any(|k| k == kid) {
            kids.push(kid.to_string());
        }
        self.write_order(&dir, &kids)?;
        Ok(dest)
    }

    /// The updates installed for `release`, in the order they apply in
    /// (ids whose tarball is missing are left out).
    pub fn installed(&self, release: &str) -> Result<Vec<Installed>> {
        let dir = self.release_dir(release)?;
        Ok(self
            .order(&dir)?
            .into_iter()
            .map(|kid| Installed {
                tarball: dir.join(format!("ksplice-{kid}.tar.gz")),
                kid,
            })
            .filter(|i| i.tarball.is_file())
            .collect())
    }

    /// Removes update `kid` from the updates of `release`; false when it
    /// was not installed.
    pub fn uninstall(&self, kid: &str, release: &str) -> Result<bool> {
        if !safe_component(kid) {
            bail!("{kid:?}: not an update id");
        }
        let dir = self.release_dir(release)?;
        if !dir.is_dir() {
            return Ok(false);
        }
        let _lock = self.lock()?;
        let mut kids = self.order(&dir)?;
        let before = kids.len();
        kids.retain(|k| k != kid);
        let tarball = dir.join(format!("ksplice-{kid}.tar.gz"));
        let had_file = tarball.is_file();
        self.write_order(&dir, &kids)?;
        fsutil::remove_if_exists(&tarball)?;
        Ok(kids.len() != before || had_file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ksplice-store-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn install_list_and_uninstall_keep_the_order() {
        let d = scratch("order");
        let s = Store::new(&d.join("lib"));
        for kid in ["b2", "a1"] {
            let t = d.join(format!("ksplice-{kid}.tar.gz"));
            fs::write(&t, kid).unwrap();
            s.install(&t, kid, "6.1.0-test").unwrap();
        }
        // Installed again: replaced, keeps its place.
        fs::write(d.join("ksplice-b2.tar.gz"), "b2 again").unwrap();
        s.install(&d.join("ksplice-b2.tar.gz"), "b2", "6.1.0-test")
            .unwrap();
        let got = s.installed("6.1.0-test").unwrap();
        let kids: Vec<&str> = got.iter().map(|i| i.kid.as_str()).collect();
        assert_eq!(kids, ["b2", "a1"]);
        assert_eq!(fs::read_to_string(&got[0].tarball).unwrap(), "b2 again");
        assert!(s.installed("6.12.0-other").unwrap().is_empty());
        assert!(s.uninstall("b2", "6.1.0-test").unwrap());
        assert!(!s.uninstall("b2", "6.1.0-test").unwrap());
        assert!(!got[0].tarball.exists());
        let kids: Vec<String> = s
            .installed("6.1.0-test")
            .unwrap()
            .into_iter()
            .map(|i| i.kid)
            .collect();
        assert_eq!(kids, ["a1"]);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn hostile_names_and_directories_are_refused() {
        let d = scratch("hostile");
        let s = Store::new(&d.join("lib"));
        let t = d.join("u.tar.gz");
        fs::write(&t, "x").unwrap();
        for bad in ["", "..", "a/b", "a b"] {
            assert!(s.install(&t, bad, "6.1.0").is_err(), "kid {bad:?}");
            assert!(s.install(&t, "k", bad).is_err(), "release {bad:?}");
        }
        let err = s.install(&d, "k", "6.1.0").unwrap_err().to_string();
        assert!(err.contains("needs the update's tarball"), "{err}");
        // An order file naming what is not there lists nothing.
        fs::create_dir_all(d.join("lib/6.1.0")).unwrap();
        fs::write(d.join("lib/6.1.0/order"), "ghost\n../x\n").unwrap();
        assert!(s.installed("6.1.0").unwrap().is_empty());
        let _ = fs::remove_dir_all(&d);
    }
}
