//! ksplice-create: from a kernel tree and a patch to an update tarball.
//!
//! Flow (as the original): revert what a previous run left, snap build,
//! apply the patch (keeping `.KSPLICE_presrc` backups), diff build, collect
//! the changed targets, build the update's modules from kmodsrc, package
//! `ksplice-<kid>.tar.gz`. Unlike the original, the source tree is always
//! restored as it was found, including when the patch breaks the build or
//! the run is interrupted, and a lock keeps two runs off one tree.
//!
//! [`run`] is the list of stages; each is one function over the run
//! context (`context.rs`), in the file named for it:
//! - `tree.rs`: the lock, the sources a killed run left, the source guard;
//! - `build.rs`: the make steps with Makefile.ksplice (revert, snap, diff),
//!   the progress lines and the commands in their process groups;
//! - `patch.rs`: reading and applying the patch (`--patch`, `--git`,
//!   `--diffext`, `--patch-opt`);
//! - `layout_check.rs`: the structure layout check (DWARF), which also
//!   gives `rewrite_check.rs` the types of data rewritten in place;
//! - `kmodsrc.rs`: building the update's modules;
//! - `package.rs`: the update directory and its tarball (the format is
//!   [`crate::package`]'s).

mod build;
mod context;
mod kmodsrc;
mod layout_check;
mod package;
mod patch;
mod rewrite_check;
mod tree;

use crate::util::interrupt::{Interrupted, check as check_interrupt, interrupted};
use anyhow::{Result, bail};
use context::{Ctx, Paths};
use std::io::Write;
use std::path::{Path, PathBuf};

pub use patch::patched_files;

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
    /// `--short-name-hack` (refused).
    pub short_name_hack: bool,
    /// `--allow-data-change`.
    pub allow_data_change: bool,
    /// `--allow-layout-change`: a changed struct or union layout is a
    /// warning, not a refusal.
    pub allow_layout_change: bool,
}

/// Runs ksplice-create; returns the exit status.
pub fn run(o: &Options) -> Result<i32> {
    check_options(o)?;
    let paths = Paths::find(o)?;
    // One run per tree; the lock is released last, after the sources are
    // restored (when `ctx` drops).
    let lock = tree::lock(&paths.tree)?;
    tree::recover_leftovers(&paths.tree, o.series, o.verbose)?;
    let mut ctx = Ctx::new(o, paths)?;

    ctx.stage("reverting objects of a previous run", build::revert)?;
    check_interrupt()?;
    if !o.skip_prebuild {
        build::copy_config(&ctx)?;
        ctx.stage(
            "snap build (-ffunction-sections -fdata-sections)",
            build::snap,
        )?;
    }
    if o.prebuild {
        return Ok(0);
    }
    check_interrupt()?;
    ctx.stage("applying the patch", patch::apply)?;
    check_interrupt()?;
    ctx.stage("diff build and comparison", build::diff)?;
    check_interrupt()?;
    ctx.reports = build::collect_reports(&ctx.objtree)?;
    if o.verbose >= 0 {
        build::notes(&ctx.reports)
            .iter()
            .for_each(|n| eprintln!("{n}"));
    }
    ctx.stage("checking structure layouts", layout_check::check)?;
    check_interrupt()?;

    ctx.targets = kmodsrc::changed_targets(&ctx)?;
    if ctx.targets.is_empty() {
        eprintln!("No changes detected.");
        let sources: Vec<&Path> = ctx
            .guard
            .patched_files()
            .into_iter()
            .map(|f| f.strip_prefix(&ctx.tree).unwrap_or(f))
            .collect();
        let why = build::nothing_to_patch(&ctx.objtree, &ctx.reports, &sources)?;
        eprintln!("ksplice-create: {why}");
        return Ok(EXIT_NO_CHANGES);
    }
    if ctx.data.join("kmodsrc").is_dir() {
        ctx.stage("building the update's modules (kmodsrc)", kmodsrc::build)?;
        ctx.built = true;
    }
    check_interrupt()?;
    let tarball = ctx.stage("packaging the update", package::write)?;
    let _ = fs2::FileExt::unlock(&lock);
    if o.verbose >= 0 {
        println!(
            "Ksplice update tarball written to {}",
            tarball.file_name().unwrap_or_default().to_string_lossy()
        );
    }
    Ok(0)
}

/// The options that cannot go together.
fn check_options(o: &Options) -> Result<()> {
    let actions = usize::from(o.patch.is_some())
        + usize::from(o.diffext.is_some())
        + usize::from(o.git.is_some())
        + usize::from(o.prebuild);
    if actions != 1 {
        bail!("exactly one of --patch, --diffext, --git and --prebuild is needed");
    }
    if o.standalone == Some(false) {
        bail!(
            "--no-standalone (a kernel with integrated Ksplice) is not supported: Linux 6.1 and 6.12 have no CONFIG_KSPLICE"
        );
    }
    if o.short_name_hack {
        bail!(
            "--short-name-hack is not supported: the update's modules are named ksplice-KID_TARGET-new and -old, the names ksplice-apply expects"
        );
    }
    Ok(())
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

/// `--raw-errors`: the abort code (`OTHER`, the only one ksplice-create
/// has) on the first line of stderr, then the message, as the Perl tool's
/// raw errors; returns the exit status (255, or that of an interruption).
pub fn report_raw_error(e: &anyhow::Error) -> i32 {
    if e.downcast_ref::<Interrupted>().is_some() || interrupted() {
        return report_error(e);
    }
    let _ = writeln!(std::io::stderr(), "OTHER\n{e:#}");
    255
}

/// A fresh scratch directory for a unit test.
#[cfg(test)]
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ksplice-create-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
