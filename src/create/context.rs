//! The run context: what a run of ksplice-create works on, found once from
//! the [`Options`] (the tree, the config directory, the objtree, Ksplice's
//! data directory, the update id, the run's private directory, the make
//! command line) plus what the stages leave for the next ones (the source
//! guard, the reports, the changed targets).

use super::Options;
use super::build::{self, Stages};
use super::tree::SourceGuard;
use anyhow::{Context, Result, bail};
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Where the options point on disk, checked before the tree is locked.
pub(super) struct Paths {
    /// The kernel source tree (canonical).
    pub(super) tree: PathBuf,
    /// The config directory (`--config`, default `TREE/ksplice`).
    pub(super) config: PathBuf,
    /// The running kernel's System.map (in the config directory).
    pub(super) system_map: PathBuf,
    /// The objtree: the config directory's `build`, else the tree.
    pub(super) objtree: PathBuf,
    /// Extra make arguments (the config directory's `flags`).
    pub(super) flags: Vec<String>,
    /// Where Makefile.ksplice, ksplice-cc and kmodsrc are.
    pub(super) data: PathBuf,
}

impl Paths {
    /// Finds and checks the tree, the config directory and the data directory.
    pub(super) fn find(o: &Options) -> Result<Paths> {
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
        Ok(Paths {
            tree,
            config,
            system_map,
            objtree,
            flags,
            data,
        })
    }
}

/// The run context: built once from the options, then passed to each stage.
///
/// The fields drop in order: the source guard first (the sources are
/// restored), then the run's private directory.
pub(super) struct Ctx<'a> {
    /// The options.
    pub(super) o: &'a Options,
    /// The files the patch changed, and how to put them back.
    pub(super) guard: SourceGuard,
    /// The kernel source tree.
    pub(super) tree: PathBuf,
    /// The config directory.
    pub(super) config: PathBuf,
    /// The running kernel's System.map.
    pub(super) system_map: PathBuf,
    /// The objtree.
    pub(super) objtree: PathBuf,
    /// Where Makefile.ksplice, ksplice-cc and kmodsrc are.
    pub(super) data: PathBuf,
    /// The update id.
    pub(super) kid: String,
    /// The run's private directory (removed when the run ends).
    pub(super) tmp: PathBuf,
    _tmp: TmpDir,
    /// The ksplice-obj program.
    pub(super) ksplice_obj: PathBuf,
    /// The make command line of the Makefile.ksplice steps.
    pub(super) make: Vec<String>,
    /// Parallel jobs (of the layout check's compiles).
    pub(super) jobs: usize,
    /// Progress lines and the build log.
    pub(super) stages: Stages,
    /// The patch as applied (`TMP/patch`).
    pub(super) patch_file: PathBuf,
    /// The update's module sources and what the diff build left for them
    /// (`TMP/kmodsrc`).
    pub(super) kmodsrc: PathBuf,
    /// The per-object reports of the diff build: (object path, JSON text).
    pub(super) reports: Vec<(PathBuf, String)>,
    /// The changed targets: (target, its path in the objtree).
    pub(super) targets: Vec<(String, String)>,
    /// Whether the update's modules were built (kmodsrc was found).
    pub(super) built: bool,
}

impl<'a> Ctx<'a> {
    /// The context of a run over `paths`: the update id (checked), the
    /// run's private directory, the stage count and the make command line.
    pub(super) fn new(o: &'a Options, paths: Paths) -> Result<Ctx<'a>> {
        let kid = o.id.clone().unwrap_or_else(random_id);
        if kid.is_empty() || !kid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            bail!("--id {kid:?}: use letters, digits and underscores");
        }
        let tmp = std::env::temp_dir().join(format!("ksplice-tmp-{kid}-{}", std::process::id()));
        fs::create_dir_all(&tmp)?;
        let cleanup = TmpDir(tmp.clone());
        let stages = Stages {
            verbose: o.verbose,
            log: tmp.join("build.log"),
            total: if o.prebuild {
                2
            } else {
                6 + usize::from(paths.data.join("kmodsrc").is_dir())
            } - usize::from(o.skip_prebuild),
            n: 0,
        };
        let jobs_opt = build::make_jobs(o);
        let make = build::make_args(
            o,
            jobs_opt,
            &paths.tree,
            &paths.objtree,
            &paths.data,
            &paths.flags,
        );
        let jobs = jobs_opt
            .filter(|&j| j > 0)
            .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
            .unwrap_or(1)
            .max(1);
        Ok(Ctx {
            o,
            guard: SourceGuard::new(o.series),
            tree: paths.tree,
            config: paths.config,
            system_map: paths.system_map,
            objtree: paths.objtree,
            data: paths.data,
            kid,
            patch_file: tmp.join("patch"),
            kmodsrc: tmp.join("kmodsrc"),
            tmp,
            _tmp: cleanup,
            ksplice_obj: ksplice_obj_path(),
            make,
            jobs,
            stages,
            reports: Vec::new(),
            targets: Vec::new(),
            built: false,
        })
    }

    /// Runs one stage between its progress line and its timing line.
    pub(super) fn stage<T>(
        &mut self,
        what: &str,
        f: impl FnOnce(&mut Ctx<'a>) -> Result<T>,
    ) -> Result<T> {
        let t = self.stages.start(what);
        let r = f(self)?;
        self.stages.done(t);
        Ok(r)
    }
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

/// The ksplice-obj program: next to this one, else found through PATH.
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

/// Removes a temporary directory when dropped.
struct TmpDir(PathBuf);

impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
