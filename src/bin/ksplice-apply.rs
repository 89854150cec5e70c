//! `ksplice-apply`: apply a Ksplice update to the running kernel.
//!
//! Parses the command line and runs [`ksplice::update::apply`]: load the
//! update's modules, ask the kernel to apply it, record it; on failure
//! unload everything again.

use anyhow::{Result, bail};
use clap::Parser;
use ksplice::update::apply::{ApplyOpts, apply};
use ksplice::update::{self, CommonOpts, DebugOpts, EXIT_STATUS_HELP, Env, Ui};
use std::path::PathBuf;
use std::process::ExitCode;

/// Apply a Ksplice update (ksplice-ID.tar.gz, or its unpacked directory) to
/// the running kernel, without rebooting.
#[derive(Debug, Parser)]
#[command(name = "ksplice-apply", version, after_help = EXIT_STATUS_HELP)]
struct Cli {
    /// The update, as ksplice-create wrote it (or unpacked).
    #[arg(value_name = "UPDATE", required_unless_present = "api_version")]
    update: Option<PathBuf>,
    /// Apply the update to the loaded code only: changes to modules that are
    /// not loaded are skipped (without it, they make the update fail).
    #[arg(long)]
    partial: bool,
    #[command(flatten)]
    debug: DebugOpts,
    #[command(flatten)]
    common: CommonOpts,
}

fn main() -> ExitCode {
    update::tool_main(
        "ksplice-apply",
        |c: &Cli| &c.common,
        Some("the update's modules are unloaded"),
        run,
    )
}

fn run(cli: &Cli, ui: &Ui) -> Result<u8> {
    let Some(update) = cli.update.as_deref() else {
        bail!("no update given");
    };
    let opts = ApplyOpts {
        update,
        partial: cli.partial,
        debug: &cli.debug,
    };
    apply(&opts, Env::from_env()?, ui)
}
