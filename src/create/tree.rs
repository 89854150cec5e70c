//! The source tree during a run: one run per tree (the lock), the sources
//! a killed run left patched put back first, and the [`SourceGuard`] that
//! keeps backups of the files the patch changes (`FILE.KSPLICE_presrc`,
//! `FILE.KSPLICE_newsrc` for a file the patch creates, `FILE.KSPLICE_postsrc`
//! for a patched file set aside) and restores them on every exit path,
//! interruption included.

use anyhow::{Context, Result, anyhow, bail};
use fs2::FileExt;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

/// The names a killed run leaves next to the sources it changed.
const LEFTOVER_SUFFIXES: [&str; 3] = [".KSPLICE_presrc", ".KSPLICE_postsrc", ".KSPLICE_newsrc"];

/// Takes the tree's lock (`.ksplice-create.lock`): one run per tree. The
/// lock is held until the returned file is unlocked or closed.
pub(super) fn lock(tree: &Path) -> Result<File> {
    let lock_path = tree.join(".ksplice-create.lock");
    let lock = File::create(&lock_path)
        .with_context(|| format!("{}: cannot create lock", lock_path.display()))?;
    if lock.try_lock_exclusive().is_err() {
        bail!(
            "{}: another ksplice-create is running on this tree",
            tree.display()
        );
    }
    Ok(lock)
}

/// Sources a killed run left patched: put back first. A patched file
/// parked as FILE.KSPLICE_postsrc (the layout check of a --series run) has
/// the original in place: kept with --series, dropped otherwise, as a
/// backup is.
pub(super) fn recover_leftovers(tree: &Path, series: bool, verbose: i32) -> Result<()> {
    let leftovers = find_files_any(tree, &LEFTOVER_SUFFIXES)?;
    if !leftovers.is_empty() {
        if verbose >= 0 {
            println!(
                "restoring {} source file(s) left patched by an interrupted run",
                leftovers.len()
            );
        }
        recover_files(tree, &leftovers, series)?;
    }
    Ok(())
}

/// Files the patch changed, and how to put them back.
#[derive(Debug, Default)]
pub(super) struct SourceGuard {
    /// (file, backup) pairs: the backup is the original inode, renamed.
    backups: Vec<(PathBuf, PathBuf)>,
    /// Files the patch created.
    created: Vec<PathBuf>,
    /// Keep the patched sources (`--series`).
    keep: bool,
    /// Every file the patch changed or created, kept after a restore.
    touched: Vec<PathBuf>,
    /// Entries of `backups` (then of `created`, offset by `backups.len()`)
    /// whose patched version is parked as `FILE.KSPLICE_postsrc` while the
    /// original is in place (see [`SourceGuard::park_patched`]).
    parked: Vec<usize>,
}

/// The marker of a file the patch creates (`FILE.KSPLICE_newsrc`, empty):
/// a run killed before it could remove the file leaves the marker, which
/// tells the next run to remove it (as a backup tells it to put one back).
fn created_marker(file: &Path) -> PathBuf {
    let mut p = file.as_os_str().to_owned();
    p.push(".KSPLICE_newsrc");
    PathBuf::from(p)
}

/// The name a patched file is parked under while the original is in place.
fn parked_name(file: &Path) -> PathBuf {
    let mut p = file.as_os_str().to_owned();
    p.push(".KSPLICE_postsrc");
    PathBuf::from(p)
}

impl SourceGuard {
    /// The source files the patch changed or created.
    pub(super) fn patched_files(&self) -> Vec<&Path> {
        self.touched.iter().map(PathBuf::as_path).collect()
    }

    /// A guard with nothing to restore yet; `keep` (`--series`) keeps the
    /// patched sources on restoring.
    pub(super) fn new(keep: bool) -> SourceGuard {
        let mut guard = SourceGuard::default();
        guard.keep = keep;
        guard
    }

    /// Moves `file` aside as its backup and puts a copy in its place.
    pub(super) fn back_up(&mut self, file: &Path) -> Result<()> {
        let mut b = file.as_os_str().to_owned();
        b.push(".KSPLICE_presrc");
        let backup = PathBuf::from(b);
        if backup.exists() {
            bail!(
                "{}: a backup from an interrupted run is in the way",
                backup.display()
            );
        }
        if file.exists() {
            fs::rename(file, &backup)
                .with_context(|| format!("{}: cannot back up", file.display()))?;
            self.backups.push((file.to_path_buf(), backup.clone()));
            self.touched.push(file.to_path_buf());
            fs::copy(&backup, file)
                .with_context(|| format!("{}: cannot copy back", file.display()))?;
        } else {
            // patch(1) would make a new file's directory: made first here.
            if let Some(dir) = file.parent() {
                fs::create_dir_all(dir)
                    .with_context(|| format!("{}: cannot create", dir.display()))?;
            }
            File::create(created_marker(file))
                .with_context(|| format!("{}: cannot mark as new", file.display()))?;
            self.created.push(file.to_path_buf());
            self.touched.push(file.to_path_buf());
        }
        Ok(())
    }

    /// Puts the original sources in place for a while, keeping the backups'
    /// promise: the patched files are parked as `FILE.KSPLICE_postsrc`,
    /// files the patch created are parked too. [`SourceGuard::unpark`] (or
    /// [`SourceGuard::restore`], so every exit path) undoes it. Used with
    /// `--series`, where restoring keeps the patched sources.
    pub(super) fn park_patched(&mut self) -> Result<()> {
        let n = self.backups.len();
        for i in 0..n + self.created.len() {
            if i < n {
                let (file, backup) = &self.backups[i];
                let parked = parked_name(file);
                fs::rename(file, &parked)
                    .with_context(|| format!("{}: cannot set aside", file.display()))?;
                if let Err(e) = fs::rename(backup, file) {
                    let _ = fs::rename(&parked, file);
                    bail!("{}: cannot put the original back: {e}", file.display());
                }
            } else {
                let file = &self.created[i - n];
                match fs::rename(file, parked_name(file)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => bail!("{}: cannot set aside: {e}", file.display()),
                }
            }
            self.parked.push(i);
        }
        Ok(())
    }

    /// Puts the patched files parked by [`SourceGuard::park_patched`] back.
    fn unpark(&mut self) -> Result<()> {
        let mut first_err = None;
        let n = self.backups.len();
        while let Some(i) = self.parked.pop() {
            let r = if i < n {
                let (file, backup) = &self.backups[i];
                fs::rename(file, backup).and_then(|()| fs::rename(parked_name(file), file))
            } else {
                let file = &self.created[i - n];
                fs::rename(parked_name(file), file)
            };
            if let Err(e) = r {
                first_err.get_or_insert(anyhow!("cannot put a patched source back: {e}"));
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Puts every changed file back as it was (or drops the backups with `--series`).
    pub(super) fn restore(&mut self) -> Result<()> {
        let mut first_err = self.unpark().err();
        for (file, backup) in self.backups.drain(..).rev() {
            let r = if self.keep {
                fs::remove_file(&backup)
            } else {
                fs::rename(&backup, &file)
            };
            if let Err(e) = r {
                first_err.get_or_insert(anyhow!("{}: cannot restore: {e}", file.display()));
            }
        }
        for file in self.created.drain(..) {
            let marker = created_marker(&file);
            let gone = if self.keep {
                vec![marker]
            } else {
                vec![file, marker]
            };
            for f in gone {
                if let Err(e) = fs::remove_file(&f)
                    && e.kind() != std::io::ErrorKind::NotFound
                {
                    first_err.get_or_insert(anyhow!("{}: cannot remove: {e}", f.display()));
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for SourceGuard {
    fn drop(&mut self) {
        if let Err(e) = self.restore() {
            eprintln!("ksplice-create: {e:#}");
        }
    }
}

/// Puts back the sources a killed run left: `FILE.KSPLICE_presrc` is the
/// original (the patched file is in place), `FILE.KSPLICE_postsrc` the
/// patched version (the original is in place). Without `--series` the
/// originals stay, with it the patched versions (as [`SourceGuard::restore`]).
fn recover_files(tree: &Path, leftovers: &[PathBuf], series: bool) -> Result<()> {
    for b in leftovers {
        let name = b.to_string_lossy();
        // A file the patch created: removed, unless --series keeps it.
        if let Some(new) = name.strip_suffix(".KSPLICE_newsrc") {
            if !series {
                match fs::remove_file(tree.join(new)) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(e).with_context(|| format!("{new}: cannot remove"));
                    }
                    _ => {}
                }
            }
            fs::remove_file(tree.join(b)).with_context(|| format!("{new}: cannot restore"))?;
            continue;
        }
        let (orig, original_aside) = match name.strip_suffix(".KSPLICE_presrc") {
            Some(o) => (PathBuf::from(o), true),
            None => (
                PathBuf::from(name.trim_end_matches(".KSPLICE_postsrc")),
                false,
            ),
        };
        let r = if series == original_aside {
            fs::remove_file(tree.join(b))
        } else {
            fs::rename(tree.join(b), tree.join(&orig))
        };
        r.with_context(|| format!("{}: cannot restore", orig.display()))?;
    }
    Ok(())
}

// ---------------------------------------------------------------- walking and copying trees

pub(super) fn find_files(tree: &Path, ext: &str) -> Result<Vec<PathBuf>> {
    find_files_any(tree, &[ext])
}

/// Files under `tree` (not in hidden directories) whose name ends with one of `exts`.
pub(super) fn find_files_any(tree: &Path, exts: &[&str]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in fs::read_dir(tree.join(&rel))? {
            let e = e?;
            let name = e.file_name();
            let r = rel.join(&name);
            let ft = e.file_type()?;
            if ft.is_dir() && !name.to_string_lossy().starts_with('.') {
                stack.push(r);
            } else if ft.is_file() && exts.iter().any(|x| name.to_string_lossy().ends_with(x)) {
                out.push(r);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Copies the directory `from` to `to`, recursively.
pub(super) fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    for e in fs::read_dir(from)? {
        let e = e?;
        let dst = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_tree(&e.path(), &dst)?;
        } else {
            fs::copy(e.path(), dst)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::create::scratch;

    fn read(p: &Path) -> Option<String> {
        fs::read_to_string(p).ok()
    }

    /// A guard over `a.c` (patched) and `new.c` (created by the patch).
    fn patched_tree(d: &Path, keep: bool) -> SourceGuard {
        fs::write(d.join("a.c"), "orig").unwrap();
        let mut g = SourceGuard::default();
        g.keep = keep;
        g.back_up(&d.join("a.c")).unwrap();
        g.back_up(&d.join("new.c")).unwrap();
        fs::write(d.join("a.c"), "patched").unwrap();
        fs::write(d.join("new.c"), "new").unwrap();
        g
    }

    #[test]
    fn parked_sources_come_back_on_every_path() {
        let d = scratch("park");
        let a = d.join("a.c");
        let mut g = patched_tree(&d, false);
        g.park_patched().unwrap();
        assert_eq!(read(&a).as_deref(), Some("orig"));
        assert_eq!(
            read(&d.join("a.c.KSPLICE_postsrc")).as_deref(),
            Some("patched")
        );
        assert!(!d.join("new.c").exists() && !d.join("a.c.KSPLICE_presrc").exists());
        g.unpark().unwrap();
        assert_eq!(read(&a).as_deref(), Some("patched"));
        assert_eq!(read(&d.join("new.c")).as_deref(), Some("new"));
        assert_eq!(read(&d.join("a.c.KSPLICE_presrc")).as_deref(), Some("orig"));
        // Parked, then dropped (an error path): the tree as found.
        g.park_patched().unwrap();
        drop(g);
        let mut names: Vec<String> = fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["a.c"]);
        assert_eq!(read(&a).as_deref(), Some("orig"));
        // --series: parked, then restored: the patched sources stay.
        let mut g = patched_tree(&d, true);
        g.park_patched().unwrap();
        g.restore().unwrap();
        assert_eq!(read(&a).as_deref(), Some("patched"));
        assert_eq!(read(&d.join("new.c")).as_deref(), Some("new"));
        assert_eq!(fs::read_dir(&d).unwrap().count(), 2);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn leftovers_of_a_killed_run() {
        for series in [false, true] {
            let d = scratch(&format!("leftovers-{series}"));
            // b.c was patched (original aside), c.c parked (patched aside).
            fs::write(d.join("b.c"), "patched").unwrap();
            fs::write(d.join("b.c.KSPLICE_presrc"), "orig").unwrap();
            fs::write(d.join("c.c"), "orig").unwrap();
            fs::write(d.join("c.c.KSPLICE_postsrc"), "patched").unwrap();
            // n.c was created by the patch.
            fs::write(d.join("n.c"), "new").unwrap();
            fs::write(d.join("n.c.KSPLICE_newsrc"), "").unwrap();
            let found = find_files_any(
                &d,
                &[".KSPLICE_presrc", ".KSPLICE_postsrc", ".KSPLICE_newsrc"],
            )
            .unwrap();
            assert_eq!(found.len(), 3);
            recover_files(&d, &found, series).unwrap();
            let want = if series { "patched" } else { "orig" };
            assert_eq!(read(&d.join("b.c")).as_deref(), Some(want));
            assert_eq!(read(&d.join("c.c")).as_deref(), Some(want));
            assert_eq!(d.join("n.c").exists(), series);
            assert_eq!(
                fs::read_dir(&d).unwrap().count(),
                if series { 3 } else { 2 }
            );
            let _ = fs::remove_dir_all(&d);
        }
    }
}
