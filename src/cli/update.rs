//! The command lines of ksplice-apply, ksplice-undo and ksplice-view; their
//! binaries run them with [`crate::update::tool_main`].

use super::exit;
use crate::update::{CommonOpts, DebugOpts};
use clap::Parser;
use std::path::PathBuf;

/// Apply a Ksplice update (ksplice-ID.tar.gz, or its unpacked directory) to
/// the running kernel, without rebooting.
#[derive(Debug, Parser)]
#[command(name = "ksplice-apply", version, after_help = exit::APPLY.help())]
pub struct ApplyCli {
    /// The update, as ksplice-create wrote it (or unpacked).
    #[arg(
        value_name = "UPDATE",
        required_unless_present_any = ["api_version", "all_installed"]
    )]
    pub update: Option<PathBuf>,
    /// Also keep the update (a tarball) in /var/lib/ksplice/RELEASE/ so that
    /// ksplice.service applies it again at every boot of this kernel;
    /// nothing is kept when it does not apply.
    #[arg(long, conflicts_with = "all_installed")]
    pub install: bool,
    /// Apply every update installed for the running kernel, in the order
    /// they were installed (what ksplice.service runs at boot); go on after
    /// one that fails, and exit with the worst status.
    #[arg(long, conflicts_with = "update")]
    pub all_installed: bool,
    /// Apply the update to the loaded code only: changes to modules that are
    /// not loaded are skipped (without it, they make the update fail).
    #[arg(long)]
    pub partial: bool,
    /// `--debug`, `--debugfile`.
    #[command(flatten)]
    pub debug: DebugOpts,
    /// The options every update tool has.
    #[command(flatten)]
    pub common: CommonOpts,
}

/// Undo a Ksplice update applied to the running kernel.
#[derive(Debug, Parser)]
#[command(name = "ksplice-undo", version, after_help = exit::UNDO.help())]
pub struct UndoCli {
    /// The update: its id (as ksplice-view lists it), or its tarball or
    /// unpacked directory.
    #[arg(
        value_name = "KSPLICE_ID|UPDATE",
        required_unless_present = "api_version"
    )]
    pub update: Option<String>,
    /// Also remove the update from the updates installed for the running
    /// kernel (ksplice-apply --install), undoing it first when it is applied.
    #[arg(long)]
    pub uninstall: bool,
    /// `--debug`, `--debugfile`.
    #[command(flatten)]
    pub debug: DebugOpts,
    /// The options every update tool has.
    #[command(flatten)]
    pub common: CommonOpts,
}

/// View Ksplice updates: without arguments, list the updates applied to
/// the running kernel (id, description, changed functions); with --id, one
/// of them; with an update file, that update (the kernel is not touched).
#[derive(Debug, Parser)]
#[command(
    name = "ksplice-view",
    version,
    after_help = exit::VIEW.help(),
    mut_arg("raw_errors", |a| a.help("Machine-readable errors on stderr (OTHER and a message)")),
    mut_arg("verbose", |a| a.help("Also show the source patch")),
    mut_arg("quiet", |a| a.help("Only the update ids"))
)]
pub struct ViewCli {
    /// An update tarball (or unpacked update directory) to describe.
    #[arg(value_name = "UPDATE", conflicts_with_all = ["id", "file"])]
    pub update: Option<PathBuf>,
    /// Describe the update KSPLICE_ID of the running kernel.
    #[arg(long, value_name = "KSPLICE_ID", conflicts_with = "file")]
    pub id: Option<String>,
    /// Describe an update on disk (same as giving UPDATE).
    #[arg(long, value_name = "UPDATE")]
    pub file: Option<PathBuf>,
    /// Print what is shown as one JSON document (a list: an array of
    /// updates; --id or a file: one update).
    #[arg(long)]
    pub json: bool,
    /// The options every update tool has.
    #[command(flatten)]
    pub common: CommonOpts,
}
