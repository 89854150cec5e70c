//! `ksplice-undo`: reverse an applied Ksplice update.
//!
//! Parses the command line and runs [`ksplice::update::undo`]: ask the
//! kernel to reverse the update, unload its modules, remove its record.

use anyhow::{Result, bail};
use clap::Parser;
use ksplice::update::undo::undo;
use ksplice::update::{self, CommonOpts, DebugOpts, Env, UNDO_EXIT_STATUS_HELP, Ui};
use std::process::ExitCode;

/// Undo a Ksplice update applied to the running kernel.
#[derive(Debug, Parser)]
#[command(name = "ksplice-undo", version, after_help = UNDO_EXIT_STATUS_HELP)]
struct Cli {
    /// The update: its id (as ksplice-view lists it), or its tarball or
    /// unpacked directory.
    #[arg(
        value_name = "KSPLICE_ID|UPDATE",
        required_unless_present = "api_version"
    )]
    update: Option<String>,
    #[command(flatten)]
    debug: DebugOpts,
    #[command(flatten)]
    common: CommonOpts,
}

fn main() -> ExitCode {
    update::tool_main(
        "ksplice-undo",
        |c: &Cli| &c.common,
        Some("the update is still applied"),
        run,
    )
}

fn run(cli: &Cli, ui: &Ui) -> Result<u8> {
    let Some(arg) = cli.update.as_deref() else {
        bail!("no update given");
    };
    undo(arg, &cli.debug, Env::from_env()?, ui)
}
