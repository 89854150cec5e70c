//! `ksplice-view`: list the Ksplice updates applied to the running kernel,
//! or describe one update (in the kernel, or on disk).
//!
//! Parses the command line and runs [`ksplice::update::view`].

use anyhow::Result;
use clap::Parser;
use ksplice::update::view::{Viewed, view};
use ksplice::update::{self, CommonOpts, Env, Ui, VIEW_EXIT_STATUS_HELP};
use std::path::PathBuf;
use std::process::ExitCode;

/// View Ksplice updates: without arguments, list the updates applied to
/// the running kernel (id, description, changed functions); with --id, one
/// of them; with an update file, that update (the kernel is not touched).
#[derive(Debug, Parser)]
#[command(
    name = "ksplice-view",
    version,
    after_help = VIEW_EXIT_STATUS_HELP,
    mut_arg("raw_errors", |a| a.help("Machine-readable errors on stderr (OTHER and a message)")),
    mut_arg("verbose", |a| a.help("Also show the source patch")),
    mut_arg("quiet", |a| a.help("Only the update ids"))
)]
struct Cli {
    /// An update tarball (or unpacked update directory) to describe.
    #[arg(value_name = "UPDATE", conflicts_with_all = ["id", "file"])]
    update: Option<PathBuf>,
    /// Describe the update KSPLICE_ID of the running kernel.
    #[arg(long, value_name = "KSPLICE_ID", conflicts_with = "file")]
    id: Option<String>,
    /// Describe an update on disk (same as giving UPDATE).
    #[arg(long, value_name = "UPDATE")]
    file: Option<PathBuf>,
    #[command(flatten)]
    common: CommonOpts,
}

fn main() -> ExitCode {
    ksplice::util::interrupt::default_sigpipe();
    update::tool_main("ksplice-view", |c: &Cli| &c.common, None, run)
}

fn run(cli: &Cli, ui: &Ui) -> Result<u8> {
    let what = match (cli.update.as_ref().or(cli.file.as_ref()), &cli.id) {
        (Some(f), _) => Viewed::File(f),
        (None, Some(id)) => Viewed::Id(id),
        (None, None) => Viewed::List,
    };
    view(what, ui, Env::from_env)
}
