//! `ksplice-undo`: reverse an applied Ksplice update.
//!
//! Parses the command line ([`ksplice::cli::update::UndoCli`]) and runs
//! [`ksplice::update::undo`]: ask the kernel to reverse the update, unload
//! its modules, remove its record.

use anyhow::{Result, bail};
use ksplice::cli::update::UndoCli;
use ksplice::update::undo::{undo, uninstall};
use ksplice::update::{self, Env, Ui};
use std::process::ExitCode;

fn main() -> ExitCode {
    update::tool_main(
        "ksplice-undo",
        |c: &UndoCli| &c.common,
        Some("the update is still applied"),
        run,
    )
}

fn run(cli: &UndoCli, ui: &Ui) -> Result<u8> {
    let Some(arg) = cli.update.as_deref() else {
        bail!("no update given");
    };
    if cli.uninstall {
        return uninstall(arg, &cli.debug, Env::from_env()?, ui);
    }
    undo(arg, &cli.debug, Env::from_env()?, ui)
}
