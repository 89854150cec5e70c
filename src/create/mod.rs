//! ksplice-create: from a kernel tree and a patch to an update tarball.
//!
//! Flow (as the original): revert what a previous run left, snap build,
//! apply the patch (keeping `.KSPLICE_presrc` backups), diff build, collect
//! the changed targets, build the update's modules from kmodsrc, package
//! `ksplice-<kid>.tar.gz`. Unlike the original, the source tree is always
//! restored as it was found, including when the patch breaks the build or
//! the run is interrupted, and a lock keeps two runs off one tree.

use crate::package::{Contents, names};
use crate::util::interrupt::{Interrupted, check as check_interrupt, interrupted};
use anyhow::{Context, Result, anyhow, bail};
use fs2::FileExt;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Exit status when the patch changes no object code.
pub const EXIT_NO_CHANGES: i32 = 66;
/// Exit status after SIGINT/SIGTERM.
pub const EXIT_INTERRUPTED: i32 = 130;

/// What ksplice-create is asked to do.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The kernel source tree.
    pub tree: PathBuf,
    /// `--patch`: a unified diff against the tree.
    pub patch: Option<PathBuf>,
    /// `--diffext`: files `FOO<ext>` in the tree are the new versions of `FOO`.
    pub diffext: Option<String>,
    /// `--git`: the changes from the tree's HEAD to this revision.
    pub git: Option<String>,
    /// `--prebuild`: only the snap build.
    pub prebuild: bool,
    /// `--skip-prebuild`: the snap build was done already.
    pub skip_prebuild: bool,
    /// `--config`: System.map, .config, build, flags of the running kernel.
    pub config: Option<PathBuf>,
    /// `--id`: the update id.
    pub id: Option<String>,
    /// `--description`.
    pub description: Option<String>,
    /// `-j`.
    pub jobs: Option<usize>,
    /// `--series`: keep this patch as the base of the next one.
    pub series: bool,
    /// `--build-modules`.
    pub build_modules: bool,
    /// `--only-targets`.
    pub only_targets: Vec<String>,
    /// `--extra-match`.
    pub extra_match: Vec<String>,
    /// `--exclude-match`.
    pub exclude_match: Vec<String>,
    /// `--standalone` / `--no-standalone`.
    pub standalone: Option<bool>,
    /// `--patch-opt` (default `-p1`).
    pub patch_opt: Vec<String>,
    /// Verbosity: -1 quiet, 0 default, 1 verbose, 2 debug.
    pub verbose: i32,
    /// `--allow-data-change`.
    pub allow_data_change: bool,
    /// `--allow-layout-change`: a changed struct or union layout is a
    /// warning, not a refusal.
    pub allow_layout_change: bool,
}

/// Files the patch changed, and how to put them back.
#[derive(Debug, Default)]
struct SourceGuard {
    /// (file, backup) pairs: the backup is the original inode, renamed.
    backups: Vec<(PathBuf, PathBuf)>,
    /// Files the patch created.
    created: Vec<PathBuf>,
    /// Keep the patched sources (`--series`).
    keep: bool,
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
    /// Moves `file` aside as its backup and puts a copy in its place.
    fn back_up(&mut self, file: &Path) -> Result<()> {
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
        }
        Ok(())
    }

    /// Puts the original sources in place for a while, keeping the backups'
    /// promise: the patched files are parked as `FILE.KSPLICE_postsrc`,
    /// files the patch created are parked too. [`SourceGuard::unpark`] (or
    /// [`SourceGuard::restore`], so every exit path) undoes it. Used with
    /// `--series`, where restoring keeps the patched sources.
    fn park_patched(&mut self) -> Result<()> {
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
    fn restore(&mut self) -> Result<()> {
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

/// The files a unified diff changes, relative to the tree (`-pN` applied).
pub fn patched_files(patch: &str, strip: usize) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    let mut minus: Option<String> = None;
    for line in patch.lines() {
        if let Some(rest) = line.strip_prefix("--- ") {
            minus = Some(rest.split('\t').next().unwrap_or("").trim().to_string());
        } else if let Some(rest) = line.strip_prefix("+++ ") {
            let plus = rest.split('\t').next().unwrap_or("").trim().to_string();
            let name = if plus == "/dev/null" {
                minus.take().unwrap_or_default()
            } else {
                plus
            };
            let stripped: PathBuf = name.split('/').skip(strip).collect();
            if !stripped.as_os_str().is_empty() && !out.contains(&stripped) {
                out.push(stripped);
            }
        }
    }
    out
}

fn strip_level(opts: &[String]) -> usize {
    let mut it = opts.iter();
    while let Some(o) = it.next() {
        if let Some(n) = o.strip_prefix("-p").and_then(|n| n.parse().ok()) {
            return n;
        }
        if o == "-p" {
            return it.next().and_then(|n| n.parse().ok()).unwrap_or(1);
        }
        if let Some(n) = o.strip_prefix("--strip=").and_then(|n| n.parse().ok()) {
            return n;
        }
    }
    1
}

/// Where Makefile.ksplice, ksplice-cc and kmodsrc are.
fn data_dir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("KSPLICE_DATA_DIR") {
        return Ok(PathBuf::from(d));
    }
    let exe = std::env::current_exe().context("cannot find the ksplice-create program")?;
    let bin = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    for cand in [
        bin.join("../share/ksplice"),
        bin.join("../.."),
        bin.join(".."),
    ] {
        if cand.join("Makefile.ksplice").is_file() {
            return Ok(cand.canonicalize().unwrap_or(cand));
        }
    }
    bail!("cannot find Makefile.ksplice (install with install.sh or set KSPLICE_DATA_DIR)")
}

fn ksplice_obj_path() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let cand = exe.with_file_name("ksplice-obj");
    if cand.is_file() {
        cand
    } else {
        PathBuf::from("ksplice-obj")
    }
}

/// A random 8-character id, as the original makes them.
fn random_id() -> String {
    let mut bytes = [0u8; 8];
    if File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_err()
    {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        bytes = (t.as_nanos() as u64 ^ u64::from(std::process::id())).to_le_bytes();
    }
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    bytes
        .iter()
        .map(|b| CHARS[*b as usize % CHARS.len()] as char)
        .collect()
}

/// Progress and logging of the stages.
struct Stages {
    verbose: i32,
    log: PathBuf,
    total: usize,
    n: usize,
}

impl Stages {
    fn start(&mut self, what: &str) -> Instant {
        self.n += 1;
        if self.verbose >= 0 {
            println!("[{}/{}] {what}...", self.n, self.total);
        }
        Instant::now()
    }

    fn done(&self, t: Instant) {
        if self.verbose >= 0 {
            println!("      done in {:.1} s", t.elapsed().as_secs_f64());
        }
    }

    /// Runs a command in its own process group; output goes to the log (and
    /// to the terminal when verbose). Interruption kills the whole group.
    fn run(&self, cmd: &mut Command) -> Result<ExitStatus> {
        use std::os::unix::process::CommandExt;
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        if self.verbose >= 1 {
            cmd.stdout(Stdio::inherit()).stderr(Stdio::inherit());
        } else {
            cmd.stdout(log.try_clone()?).stderr(log);
        }
        cmd.process_group(0);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot run {:?}", cmd.get_program()))?;
        loop {
            if let Some(st) = child.try_wait()? {
                if interrupted() {
                    bail!(Interrupted);
                }
                return Ok(st);
            }
            if interrupted() {
                kill_groups(&mut [child]);
                bail!(Interrupted);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `cmds`, at most `jobs` at a time, each as [`Stages::run`] does;
    /// returns whether each succeeded. Interruption (or a command that
    /// cannot be started) kills the running ones.
    fn run_all(&self, cmds: Vec<Command>, jobs: usize) -> Result<Vec<bool>> {
        use std::os::unix::process::CommandExt;
        let mut ok = vec![false; cmds.len()];
        let mut pending = cmds.into_iter().enumerate();
        let mut running: Vec<(usize, std::process::Child)> = Vec::new();
        loop {
            while running.len() < jobs.max(1) {
                let Some((i, mut cmd)) = pending.next() else {
                    break;
                };
                let spawned = fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.log)
                    .and_then(|log| {
                        if self.verbose >= 1 {
                            cmd.stdout(Stdio::inherit()).stderr(Stdio::inherit());
                        } else {
                            cmd.stdout(log.try_clone()?).stderr(log);
                        }
                        cmd.process_group(0).spawn()
                    });
                match spawned {
                    Ok(child) => running.push((i, child)),
                    Err(e) => {
                        let mut children: Vec<_> = running.into_iter().map(|r| r.1).collect();
                        kill_groups(&mut children);
                        bail!("cannot run {:?}: {e}", cmd.get_program());
                    }
                }
            }
            if running.is_empty() {
                break;
            }
            if interrupted() {
                let mut children: Vec<_> = running.into_iter().map(|r| r.1).collect();
                kill_groups(&mut children);
                bail!(Interrupted);
            }
            let mut still = Vec::new();
            for (i, mut child) in running {
                match child.try_wait() {
                    Ok(Some(st)) => ok[i] = st.success(),
                    Ok(None) => still.push((i, child)),
                    Err(_) => {}
                }
            }
            running = still;
            std::thread::sleep(Duration::from_millis(20));
        }
        check_interrupt()?;
        Ok(ok)
    }

    /// The last lines of the log, for a failure message.
    fn tail(&self, n: usize) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

/// Kills each child's process group (TERM, then KILL) and reaps the children.
fn kill_groups(children: &mut [std::process::Child]) {
    for sig in ["TERM", "KILL"] {
        for child in children.iter() {
            let _ = Command::new("kill")
                .args(["-s", sig, "--"])
                .arg(format!("-{}", child.id()))
                .status();
        }
        if sig == "TERM" {
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    for child in children.iter_mut() {
        let _ = child.wait();
    }
}

/// Puts back the sources a killed run left: `FILE.KSPLICE_presrc` is the
/// original (the patched file is in place), `FILE.KSPLICE_postsrc` the
/// patched version (the original is in place). Without `--series` the
/// originals stay, with it the patched versions (as [`SourceGuard::restore`]).
fn recover_leftovers(tree: &Path, leftovers: &[PathBuf], series: bool) -> Result<()> {
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

/// Runs ksplice-create; returns the exit status.
pub fn run(o: &Options) -> Result<i32> {
    let actions = usize::from(o.patch.is_some())
        + usize::from(o.diffext.is_some())
        + usize::from(o.git.is_some())
        + usize::from(o.prebuild);
    if actions != 1 {
        bail!("exactly one of --patch, --diffext, --git and --prebuild is needed");
    }
    if o.standalone == Some(false) {
        bail!(
            "--no-standalone (a kernel with integrated Ksplice) is not supported: Linux 6.1 has no CONFIG_KSPLICE"
        );
    }
    let tree = o
        .tree
        .canonicalize()
        .with_context(|| format!("{}: kernel source tree not found", o.tree.display()))?;
    if !tree.join("Makefile").is_file() || !tree.join("Kbuild").is_file() {
        bail!("{}: not a kernel source tree", tree.display());
    }
    let config = match &o.config {
        Some(c) => c
            .canonicalize()
            .with_context(|| format!("{}: --config directory not found", c.display()))?,
        None => tree.join("ksplice"),
    };
    if config.starts_with(&tree) && o.config.is_some() {
        bail!(
            "{}: the --config directory cannot be inside the kernel tree",
            config.display()
        );
    }
    let system_map = config.join("System.map");
    if !system_map.is_file() {
        bail!(
            "{}: System.map of the running kernel not found (see --config)",
            system_map.display()
        );
    }
    let objtree = if config.join("build").is_dir() {
        config.join("build").canonicalize()?
    } else {
        tree.clone()
    };
    let flags: Vec<String> = match fs::read_to_string(config.join("flags")) {
        Ok(t) => crate::util::fsutil::shell_words(&t).context("flags file")?,
        Err(_) => Vec::new(),
    };
    let data = data_dir()?;

    // One run per tree.
    let lock_path = tree.join(".ksplice-create.lock");
    let lock = File::create(&lock_path)
        .with_context(|| format!("{}: cannot create lock", lock_path.display()))?;
    if lock.try_lock_exclusive().is_err() {
        bail!(
            "{}: another ksplice-create is running on this tree",
            tree.display()
        );
    }

    // Sources a killed run left patched: put them back first.
    // A patched file parked as FILE.KSPLICE_postsrc (the layout check of a
    // --series run) has the original in place: kept with --series, dropped
    // otherwise, as a backup is.
    let leftovers = find_files_any(
        &tree,
        &[".KSPLICE_presrc", ".KSPLICE_postsrc", ".KSPLICE_newsrc"],
    )?;
    if !leftovers.is_empty() {
        if o.verbose >= 0 {
            println!(
                "restoring {} source file(s) left patched by an interrupted run",
                leftovers.len()
            );
        }
        recover_leftovers(&tree, &leftovers, o.series)?;
    }

    let kid = o.id.clone().unwrap_or_else(random_id);
    if kid.is_empty() || !kid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        bail!("--id {kid:?}: use letters, digits and underscores");
    }
    let tmp = std::env::temp_dir().join(format!("ksplice-tmp-{kid}-{}", std::process::id()));
    fs::create_dir_all(&tmp)?;
    let _cleanup = TmpDir(tmp.clone());
    let log = tmp.join("build.log");
    let mut stages = Stages {
        verbose: o.verbose,
        log: log.clone(),
        total: if o.prebuild {
            2
        } else {
            6 + usize::from(data.join("kmodsrc").is_dir())
        } - usize::from(o.skip_prebuild),
        n: 0,
    };

    // The environment of every step.
    let ksplice_obj = ksplice_obj_path();
    let mut make = vec!["make".to_string(), "-rR".to_string()];
    let jobs_opt = o.jobs.or_else(|| {
        std::env::var("CONCURRENCY_LEVEL")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    if let Some(j) = jobs_opt {
        make.push(format!("-j{j}"));
    }
    let jobs = jobs_opt
        .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
        .unwrap_or(1)
        .max(1);
    if o.verbose >= 2 {
        make.push("V=1".into());
    } else if o.verbose < 0 {
        make.push("-s".into());
    }
    make.extend([
        "-C".to_string(),
        tree.display().to_string(),
        "-f".into(),
        data.join("Makefile.ksplice").display().to_string(),
    ]);
    if objtree != tree {
        make.push(format!("O={}", objtree.display()));
    }
    make.extend(flags.iter().cloned());
    if o.build_modules {
        make.push("KSPLICE_BUILD_MODULES=1".into());
    }
    let make_cmd = |extra: &[String]| {
        let mut c = Command::new(&make[0]);
        c.args(&make[1..]).args(extra);
        c.env("KSPLICE_VERBOSE", o.verbose.max(0).to_string())
            .env("KSPLICE_CONFIG_DIR", &config)
            .env("KSPLICE_KID", &kid)
            .env("KSPLICE_OBJ", &ksplice_obj);
        if o.allow_data_change {
            c.env("KSPLICE_ALLOW_DATA_CHANGE", "1");
        }
        c
    };

    // Revert what a previous run left.
    let t = stages.start("reverting objects of a previous run");
    let mut revert = vec!["KSPLICE_MODE=revert".to_string()];
    if o.series {
        revert.push("KSPLICE_SERIES=1".into());
    }
    if !stages.run(&mut make_cmd(&revert))?.success() {
        bail!(
            "reverting the objects of a previous run failed:\n{}",
            stages.tail(20)
        );
    }
    stages.done(t);
    check_interrupt()?;

    if !o.skip_prebuild {
        if config.join(".config").is_file() && !objtree.join(".config").is_file() {
            fs::copy(config.join(".config"), objtree.join(".config"))?;
        }
        let t = stages.start("snap build (-ffunction-sections -fdata-sections)");
        if !stages
            .run(&mut make_cmd(&["KSPLICE_MODE=snap".to_string()]))?
            .success()
        {
            bail!("the snap build failed:\n{}", stages.tail(30));
        }
        stages.done(t);
    }
    if o.prebuild {
        return Ok(0);
    }
    check_interrupt()?;

    // Apply the patch, keeping backups; the guard puts everything back.
    let t = stages.start("applying the patch");
    let patch_file = tmp.join("patch");
    let patch_opt = if o.patch_opt.is_empty() {
        vec!["-p1".to_string()]
    } else {
        o.patch_opt.clone()
    };
    let mut guard = SourceGuard::default();
    guard.keep = o.series;
    if let Some(p) = &o.patch {
        fs::copy(p, &patch_file)
            .with_context(|| format!("{}: cannot read the patch", p.display()))?;
    } else if let Some(rev) = &o.git {
        let out = Command::new("git")
            .arg("-C")
            .arg(&tree)
            .args(["diff", "HEAD"])
            .arg(rev)
            .arg("--")
            .output()?;
        if !out.status.success() {
            bail!(
                "git diff HEAD {rev}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        fs::write(&patch_file, &out.stdout)?;
    }
    if let Some(ext) = &o.diffext {
        let mut text = String::new();
        for new in find_files(&tree, ext)? {
            let orig = PathBuf::from(
                new.to_string_lossy()
                    .strip_suffix(ext.as_str())
                    .unwrap_or_default(),
            );
            let out = Command::new("diff")
                .arg("-u")
                .arg("--")
                .arg(&orig)
                .arg(&new)
                .current_dir(&tree)
                .output()?;
            text.push_str(&String::from_utf8_lossy(&out.stdout));
            guard.back_up(&tree.join(&orig))?;
            fs::copy(tree.join(&new), tree.join(&orig))?;
        }
        fs::write(&patch_file, text)?;
    } else {
        let text = fs::read_to_string(&patch_file).context("the patch is not text")?;
        let files = patched_files(&text, strip_level(&patch_opt));
        if files.is_empty() {
            bail!("the patch changes no file");
        }
        for f in &files {
            if f.components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
                || f.is_absolute()
            {
                bail!("the patch names {}, outside the tree", f.display());
            }
            guard.back_up(&tree.join(f))?;
        }
        let out = Command::new("patch")
            .args(&patch_opt)
            .args([
                "--no-backup-if-mismatch",
                "--reject-file=-",
                "--forward",
                "--batch",
                "-i",
            ])
            .arg(&patch_file)
            .current_dir(&tree)
            .output()?;
        if !out.status.success() {
            bail!(
                "the patch does not apply:\n{}",
                String::from_utf8_lossy(&out.stdout).trim()
            );
        }
    }
    stages.done(t);
    check_interrupt()?;

    // Diff build.
    let t = stages.start("diff build and comparison");
    let kmodsrc = tmp.join("kmodsrc");
    fs::create_dir_all(&kmodsrc)?;
    let mut diff = vec![
        "KSPLICE_MODE=diff".to_string(),
        format!("KSPLICE_KMODSRC={}", kmodsrc.display()),
    ];
    if !o.extra_match.is_empty() {
        diff.push(format!("KSPLICE_EXTRA_MATCH={}", o.extra_match.join(" ")));
    }
    if !o.exclude_match.is_empty() {
        diff.push(format!(
            "KSPLICE_EXCLUDE_MATCH={}",
            o.exclude_match.join(" ")
        ));
    }
    if !o.only_targets.is_empty() {
        diff.push(format!("KSPLICE_ONLY_TARGETS={}", o.only_targets.join(" ")));
    }
    let status = stages.run(&mut make_cmd(&diff))?;
    if !status.success() {
        guard.restore()?;
        let reports = collect_reports(&objtree)?;
        let refused: Vec<String> = reports.iter().flat_map(|(_, r)| refusals(r)).collect();
        if let Some(first) = refused.first() {
            bail!(
                "refusing the patch: {first}{}",
                if refused.len() > 1 {
                    format!(" (and {} more)", refused.len() - 1)
                } else {
                    String::new()
                }
            );
        }
        bail!(
            "applying the patch breaks the kernel build:\n{}",
            stages.tail(30)
        );
    }
    stages.done(t);
    check_interrupt()?;
    let reports = collect_reports(&objtree)?;

    // The layouts of the structs and unions the changed objects use, before
    // and after the patch (DWARF of a private debug build of each).
    let t = stages.start("checking structure layouts");
    let changed = changed_objects(&objtree, &reports);
    // ksplice-cc gives every compile the directory of <ksplice-patch.h>.
    let patch_include = data.join("kmodsrc/include");
    let extra: Vec<String> = if patch_include.is_dir() {
        vec![format!("-I{}", patch_include.display())]
    } else {
        Vec::new()
    };
    let checked = (|| {
        let check = LayoutCheck::new(&objtree, &changed, &tmp.join("layout"), extra)?;
        check.compile(&stages, Side::After, jobs)?;
        if o.series {
            guard.park_patched()?;
            check.compile(&stages, Side::Before, jobs)?;
            guard.restore()?;
        } else {
            guard.restore()?;
            check.compile(&stages, Side::Before, jobs)?;
        }
        check.compare()
    })();
    guard.restore()?;
    let found = match checked {
        Ok(found) => found,
        Err(e) if o.allow_layout_change && e.downcast_ref::<Interrupted>().is_none() => {
            eprintln!(
                "ksplice-create: warning: structure layouts not checked (--allow-layout-change): {e:#}"
            );
            Vec::new()
        }
        Err(e) => return Err(e),
    };
    if !found.is_empty() {
        if !o.allow_layout_change {
            let lines: Vec<String> = found
                .iter()
                .map(|(obj, c)| format!("{obj}: {c}; {LAYOUT_ADVICE}"))
                .collect();
            bail!("{}", lines.join("\nksplice-create: "));
        }
        for (obj, c) in &found {
            eprintln!(
                "ksplice-create: warning: {obj}: {c}; existing objects keep the old layout (--allow-layout-change)"
            );
        }
    }
    if o.verbose >= 1 {
        println!(
            "      {} changed object(s), {} layout change(s)",
            changed.len(),
            found.len()
        );
    }
    stages.done(t);
    check_interrupt()?;

    let mut targets: Vec<(String, String)> = Vec::new();
    for e in fs::read_dir(&kmodsrc)? {
        let p = e?.path();
        if let Some(name) = p
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".mod.KSPLICE"))
        {
            let path = fs::read_to_string(&p)?.trim().to_string();
            targets.push((name.to_string(), path));
        }
    }
    targets.sort();
    if targets.is_empty() {
        eprintln!("No changes detected.");
        return Ok(EXIT_NO_CHANGES);
    }

    // The update's kernel modules, from kmodsrc.
    let kmodsrc_src = data.join("kmodsrc");
    let mut built = false;
    if kmodsrc_src.is_dir() {
        let t = stages.start("building the update's modules (kmodsrc)");
        for e in fs::read_dir(&kmodsrc_src)? {
            let e = e?;
            let ft = e.file_type()?;
            if ft.is_file() {
                fs::copy(e.path(), kmodsrc.join(e.file_name()))?;
            } else if ft.is_dir() {
                // include/: <ksplice-patch.h>, which the core includes too.
                copy_tree(&e.path(), &kmodsrc.join(e.file_name()))?;
            }
        }
        let map = fs::read_to_string(&system_map).unwrap_or_default();
        let map_printk = crate::engine::sysmap::lookup_text(&map, "_printk")
            .or_else(|| crate::engine::sysmap::lookup_text(&map, "printk"))
            .ok_or_else(|| {
                anyhow!(
                    "{}: has no printk; is it the running kernel's System.map?",
                    system_map.display()
                )
            })?;
        let mut cmd = Command::new("make");
        cmd.arg("-C").arg(&tree);
        if objtree != tree {
            cmd.arg(format!("O={}", objtree.display()));
        }
        if let Some(j) = make.iter().find(|a| a.starts_with("-j")) {
            cmd.arg(j);
        }
        cmd.arg(format!("M={}", kmodsrc.display()))
            .arg(format!("KSPLICE_KID={kid}"))
            .arg(format!(
                "KSPLICE_MODULES={}",
                targets
                    .iter()
                    .map(|t| t.0.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            ))
            .arg(format!("map_printk={map_printk}"))
            .arg(format!("KSPLICE_OBJ={}", ksplice_obj.display()))
            .arg("modules")
            .env("KSPLICE_CONFIG_DIR", &config)
            .env("KSPLICE_KID", &kid);
        if !objtree.join("Module.symvers").is_file() {
            cmd.arg("KBUILD_MODPOST_WARN=1");
        }
        if !stages.run(&mut cmd)?.success() {
            bail!("building the update's modules failed:\n{}", stages.tail(30));
        }
        stages.done(t);
        built = true;
    }
    check_interrupt()?;

    // Package.
    let t = stages.start("packaging the update");
    let name = format!("ksplice-{kid}");
    let pkg = tmp.join(&name);
    fs::create_dir_all(pkg.join("debug/objects"))?;
    fs::copy(&patch_file, pkg.join("patch"))?;
    if let Some(d) = &o.description {
        fs::write(pkg.join("description"), format!("{d}\n"))?;
    }
    fs::write(
        pkg.join("api-version"),
        format!("{}\n", crate::package::API_VERSION),
    )?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    fs::write(pkg.join("timestamp"), format!("{}\n", now.as_secs()))?;
    fs::write(pkg.join("utsname"), utsname(&objtree, &config))?;
    fs::write(pkg.join("report.json"), aggregate_report(&kid, &reports))?;
    // `<object> <function>` per changed or added function, for ksplice-view.
    let by_object: Vec<(String, String)> = reports
        .iter()
        .map(|(obj, json)| {
            let rel = obj.strip_prefix(&objtree).unwrap_or(obj);
            (rel.display().to_string(), json.clone())
        })
        .collect();
    fs::write(
        pkg.join("patched"),
        crate::package::patched::patched_file(&by_object)?,
    )?;
    let mut built_targets = Vec::new();
    for (target, _) in &targets {
        let files = names::change_modules(&kid, target).map(|(_, f)| kmodsrc.join(f));
        if files.iter().all(|f| f.is_file()) {
            for f in &files {
                fs::copy(f, pkg.join(f.file_name().unwrap_or_default()))?;
            }
            built_targets.push(target.as_str());
        }
    }
    let contents = Contents::for_targets(&kid, &built_targets);
    let core = kmodsrc.join(&contents.core.file);
    let mut text = String::new();
    if built && core.is_file() {
        fs::copy(&core, pkg.join(&contents.core.file))?;
        text = contents.render();
    } else {
        // No core: the change lines alone, which the tools refuse.
        for line in contents
            .render()
            .lines()
            .filter(|l| l.starts_with("change "))
        {
            text.push_str(line);
            text.push('\n');
        }
    }
    if !built && o.verbose >= 0 {
        eprintln!(
            "ksplice-create: warning: no kmodsrc/ next to Makefile.ksplice: the update carries its objects (debug/objects) but no kernel modules"
        );
    }
    fs::write(pkg.join("contents"), text)?;
    copy_tree(&kmodsrc, &pkg.join("debug/kmodsrc"))?;
    for (obj, _) in &reports {
        let rel = obj.strip_prefix(&objtree).unwrap_or(obj);
        for suffix in [
            "",
            ".KSPLICE",
            ".KSPLICE_pre",
            ".KSPLICE_new_code",
            ".KSPLICE_old_code",
            ".KSPLICE_report.json",
        ] {
            let mut src = obj.as_os_str().to_owned();
            src.push(suffix);
            let src = PathBuf::from(src);
            if src.is_file() {
                let mut dst = pkg.join("debug/objects").join(rel).into_os_string();
                dst.push(suffix);
                let dst = PathBuf::from(dst);
                fs::create_dir_all(dst.parent().unwrap_or(&pkg))?;
                fs::copy(&src, &dst)?;
            }
        }
    }
    let tarball = std::env::current_dir()?.join(format!("{name}.tar.gz"));
    let partial = tarball.with_extension("gz.tmp");
    let st = Command::new("tar")
        .arg("czf")
        .arg(&partial)
        .arg("-C")
        .arg(&tmp)
        .arg("--")
        .arg(&name)
        .status()?;
    if !st.success() {
        let _ = fs::remove_file(&partial);
        bail!("{}: tar failed", tarball.display());
    }
    // An interruption during packaging leaves no tarball either.
    if let Err(e) = check_interrupt() {
        let _ = fs::remove_file(&partial);
        return Err(e);
    }
    fs::rename(&partial, &tarball)?;
    stages.done(t);
    let _ = lock.unlock();
    if o.verbose >= 0 {
        println!(
            "Ksplice update tarball written to {}",
            tarball.file_name().unwrap_or_default().to_string_lossy()
        );
    }
    Ok(0)
}

/// Removes a temporary directory when dropped.
struct TmpDir(PathBuf);

impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn find_files(tree: &Path, ext: &str) -> Result<Vec<PathBuf>> {
    find_files_any(tree, &[ext])
}

/// Files under `tree` (not in hidden directories) whose name ends with one of `exts`.
fn find_files_any(tree: &Path, exts: &[&str]) -> Result<Vec<PathBuf>> {
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

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
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

/// Every `OBJ.KSPLICE_report.json` of this run: (object path, JSON text).
fn collect_reports(objtree: &Path) -> Result<Vec<(PathBuf, String)>> {
    let suffix = ".KSPLICE_report.json";
    find_files(objtree, suffix)?
        .into_iter()
        .map(|rel| {
            let p = objtree.join(&rel);
            let text =
                fs::read_to_string(&p).with_context(|| format!("{}: cannot read", p.display()))?;
            let obj = PathBuf::from(p.to_string_lossy().trim_end_matches(suffix));
            Ok((obj, text))
        })
        .collect()
}

/// The objects this run changed (marker `1`), relative to the objtree.
fn changed_objects(objtree: &Path, reports: &[(PathBuf, String)]) -> Vec<String> {
    let mut out: Vec<String> = reports
        .iter()
        .filter(|(obj, _)| {
            let mut m = obj.as_os_str().to_owned();
            m.push(".KSPLICE");
            fs::read_to_string(PathBuf::from(m)).is_ok_and(|t| t.trim() == "1")
        })
        .map(|(obj, _)| {
            obj.strip_prefix(objtree)
                .unwrap_or(obj)
                .display()
                .to_string()
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Which tree a debug build of the layout check is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// The tree as found.
    Before,
    /// The patched tree.
    After,
}

/// The layout check of the changed objects: each is compiled twice with
/// the command Kbuild used plus DWARF, into a private directory, and the
/// struct and union layouts of the two builds are compared
/// ([`crate::engine::layout`]).
struct LayoutCheck {
    objtree: PathBuf,
    dir: PathBuf,
    /// (object relative to the objtree, its `.cmd` file's text).
    objects: Vec<(String, String)>,
    /// Arguments added at the end of every compile (what ksplice-cc adds).
    extra: Vec<String>,
}

/// The end of a layout refusal: what to do instead.
const LAYOUT_ADVICE: &str = "existing objects keep the old layout: carry new state in shadow data (docs/PATCH-AUTHORS.md) or pass --allow-layout-change";

impl LayoutCheck {
    fn new(
        objtree: &Path,
        objects: &[String],
        dir: &Path,
        extra: Vec<String>,
    ) -> Result<LayoutCheck> {
        fs::create_dir_all(dir)?;
        let mut out = Vec::new();
        for obj in objects {
            let path = Path::new(obj);
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let cmd_file = path
                .parent()
                .map(|p| objtree.join(p))
                .unwrap_or_else(|| objtree.to_path_buf())
                .join(format!(".{name}.cmd"));
            let text = fs::read_to_string(&cmd_file).with_context(|| {
                format!(
                    "{obj}: cannot check structure layouts: {}: cannot read the build command",
                    cmd_file.display()
                )
            })?;
            out.push((obj.clone(), text));
        }
        let check = LayoutCheck {
            objtree: objtree.to_path_buf(),
            dir: dir.to_path_buf(),
            objects: out,
            extra,
        };
        for i in 0..check.objects.len() {
            check.command(i, Side::After)?;
        }
        Ok(check)
    }

    /// The debug compile of object `i`.
    fn command(&self, i: usize, side: Side) -> Result<Command> {
        let (obj, text) = &self.objects[i];
        let out = self.output(i, side).display().to_string();
        let words = crate::engine::layout::debug_compile_command(text, obj, &out).map_err(|e| {
            anyhow!(
                "{obj}: cannot check structure layouts: the build command in its .cmd file: {e}"
            )
        })?;
        let mut c = Command::new(&words[0]);
        c.args(&words[1..])
            .args(&self.extra)
            .current_dir(&self.objtree);
        Ok(c)
    }

    fn output(&self, i: usize, side: Side) -> PathBuf {
        self.dir.join(format!(
            "{i}.{}.o",
            if side == Side::Before {
                "before"
            } else {
                "after"
            }
        ))
    }

    /// Compiles every object of the tree as it is now.
    fn compile(&self, stages: &Stages, side: Side, jobs: usize) -> Result<()> {
        let cmds = (0..self.objects.len())
            .map(|i| self.command(i, side))
            .collect::<Result<Vec<_>>>()?;
        let ok = stages.run_all(cmds, jobs)?;
        if let Some(i) = ok.iter().position(|ok| !ok) {
            bail!(
                "{}: compiling {} the patch with debug information (for the structure layout check) failed:\n{}",
                self.objects[i].0,
                if side == Side::Before {
                    "without"
                } else {
                    "with"
                },
                stages.tail(20)
            );
        }
        Ok(())
    }

    /// Each struct or union whose layout the patch changes, with its object.
    fn compare(&self) -> Result<Vec<(String, crate::engine::layout::LayoutChange)>> {
        let mut found = Vec::new();
        for (i, (obj, _)) in self.objects.iter().enumerate() {
            let read = |side| -> Result<Vec<crate::engine::layout::Layout>> {
                let p = self.output(i, side);
                let data = fs::read(&p).with_context(|| format!("{}: cannot read", p.display()))?;
                match crate::engine::layout::layouts_of_object(&data) {
                    // An assembler source has no types.
                    Err(crate::engine::layout::LayoutError::NoDebugInfo) => Ok(Vec::new()),
                    r => r.map_err(|e| {
                        anyhow!(
                            "{obj}: the debug build {} the patch: {e}",
                            if side == Side::Before {
                                "without"
                            } else {
                                "with"
                            }
                        )
                    }),
                }
            };
            let (before, after) = (read(Side::Before)?, read(Side::After)?);
            for c in crate::engine::layout::compare(&before, &after) {
                found.push((obj.clone(), c));
            }
        }
        Ok(found)
    }
}

/// The refusals a report names, as one-line reasons.
fn refusals(json: &str) -> Vec<String> {
    let Some(start) = json.find("\"refused\": [") else {
        return Vec::new();
    };
    let rest = &json[start..];
    let end = rest.find(']').unwrap_or(rest.len());
    let object = json
        .split("\"object\": \"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or("?");
    rest[..end]
        .split("{\"name\": \"")
        .skip(1)
        .map(|e| {
            let name = e.split('"').next().unwrap_or("?");
            let section = e.split("\"section\": \"").nth(1).and_then(|s| s.split('"').next()).unwrap_or("?");
            let reason = e.split("\"reason\": \"").nth(1).and_then(|s| s.split('"').next()).unwrap_or("changed");
            format!(
                "{object}: writable data {name} in section {section} changed ({reason}); it cannot take effect by replacing code (--allow-data-change ignores it)"
            )
        })
        .collect()
}

fn aggregate_report(kid: &str, reports: &[(PathBuf, String)]) -> String {
    let mut out = format!(
        "{{\n\"kid\": {},\n\"objects\": [\n",
        crate::engine::report::quote(kid)
    );
    for (i, (_, r)) in reports.iter().enumerate() {
        if i > 0 {
            out.push_str(",\n");
        }
        out.push_str(r.trim_end());
    }
    out.push_str("\n]\n}\n");
    out
}

/// `release\nversion\n` of the kernel being patched. The version string
/// (`uname -v`) is that of the running kernel's build: the config
/// directory's `include/generated/utsversion.h` when it has one, else the
/// tree's; empty when neither says (ksplice-apply then checks the release
/// only).
fn utsname(objtree: &Path, config: &Path) -> String {
    let grab = |dir: &Path, file: &str, key: &str| -> Option<String> {
        let text = fs::read_to_string(dir.join(file)).ok()?;
        let line = text.lines().find(|l| l.contains(key))?;
        let q = line.find('"')?;
        Some(line[q + 1..].trim_end().trim_end_matches('"').to_string())
    };
    let release =
        grab(objtree, "include/generated/utsrelease.h", "UTS_RELEASE").unwrap_or_default();
    let version = [config, objtree]
        .iter()
        .find_map(|d| {
            grab(d, "include/generated/utsversion.h", "UTS_VERSION")
                .or_else(|| grab(d, "include/generated/compile.h", "UTS_VERSION"))
        })
        .unwrap_or_default();
    format!("{release}\n{version}\n")
}

/// Writes `text` to stderr, one line per error in the chain.
pub fn report_error(e: &anyhow::Error) -> i32 {
    // A signal to the whole process group (Ctrl-C) also kills the helpers
    // run in it (patch, tar), whose failure is then the interruption.
    if e.downcast_ref::<Interrupted>().is_some() || interrupted() {
        eprintln!("ksplice-create: interrupted; the source tree is restored");
        return EXIT_INTERRUPTED;
    }
    let _ = writeln!(std::io::stderr(), "ksplice-create: {e:#}");
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_of_a_patch() {
        let p = "diff -u a/fs/proc/uptime.c b/fs/proc/uptime.c\n--- a/fs/proc/uptime.c\t2023\n+++ b/fs/proc/uptime.c\t2023\n@@ -1 +1 @@\n\
                 --- /dev/null\n+++ b/fs/proc/new.c\n--- a/old.c\n+++ /dev/null\n";
        assert_eq!(
            patched_files(p, 1),
            vec![
                PathBuf::from("fs/proc/uptime.c"),
                PathBuf::from("fs/proc/new.c"),
                PathBuf::from("old.c")
            ]
        );
        assert_eq!(strip_level(&["-p0".into()]), 0);
        assert_eq!(strip_level(&[]), 1);
    }

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ksplice-create-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

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
            recover_leftovers(&d, &found, series).unwrap();
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

    #[test]
    fn changed_objects_are_those_marked_changed() {
        let d = scratch("changed");
        fs::create_dir_all(d.join("fs/proc")).unwrap();
        fs::write(d.join("fs/proc/a.o.KSPLICE"), "1\n").unwrap();
        fs::write(d.join("fs/proc/b.o.KSPLICE"), "").unwrap();
        let reports = vec![
            (d.join("fs/proc/b.o"), String::new()),
            (d.join("fs/proc/a.o"), String::new()),
            (d.join("fs/proc/c.o"), String::new()),
        ];
        assert_eq!(changed_objects(&d, &reports), ["fs/proc/a.o"]);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn refusal_lines_from_a_report() {
        let r = "{\n  \"object\": \"kernel/printk/printk.o\",\n  \"refused\": [\n    {\"name\": \"console_printk\", \"section\": \".data.console_printk\", \"reason\": \"differing bytes at offset 0x8\", \"offset\": 8}\n  ]\n}\n";
        let v = refusals(r);
        assert_eq!(v.len(), 1);
        assert!(v[0].contains("console_printk") && v[0].contains("kernel/printk/printk.o"));
    }
}
